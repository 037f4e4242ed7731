/*
 * gguf_fast.c - the fast scalar kernels of mlxq_gguf.h: the repack moves a ggml 4-bit
 * block's codes a 64-bit word at a time (SWAR), or with SSE2 where every x86-64 has it, and
 * computes the biases in the float16 domain; Q8_0's sign flip is one XOR per eight codes.
 * The dequantizers compute each sub-block's scale once and run one flat loop per sub-block;
 * they evaluate the same float32 operations as gguf_ref.c, in the same order.
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "gguf_internal.h"
#include "mlxq_float.h"
#include "mlxq_gguf.h"

/* ---- fast repack ----------------------------------------------------------------------- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define GGUF_LE 1
#else
#define GGUF_LE 0
#endif

static inline uint64_t ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The even bytes of v (bytes 0, 2, 4, 6) as a 32-bit word, byte 0 lowest. */
static inline uint32_t even_bytes(uint64_t v) {
    v &= 0x00FF00FF00FF00FFull;
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFFull;
    return (uint32_t)(v | (v >> 16));
}

/* Byte j of the result: nibble j | nibble j+1 << 4 of the nibbles n (one per byte). */
static inline uint64_t pair(uint64_t n) { return n | (n >> 4); }

/* 16 bytes of a ggml 4-bit block -> MLX's four words: words 0-1 hold elements 0-15 (the
 * low nibbles, two per byte), words 2-3 elements 16-31 (the high nibbles). With SSE2 (every
 * x86-64): each 16-bit lane (bytes 2k, 2k+1) of the low nibbles becomes byte k as
 * lane | lane >> 4, and one saturating pack (the lanes are below 256) lays the low then
 * the high nibbles' bytes side by side. */
static inline void nibble_words(const uint8_t *qs, uint32_t *wq) {
#if defined(__SSE2__)
    const __m128i a = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m = _mm_set1_epi8(0x0F), lane = _mm_set1_epi16(0x00FF);
    const __m128i lo = _mm_and_si128(a, m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(a, 4), m);
    const __m128i l = _mm_and_si128(_mm_or_si128(lo, _mm_srli_epi16(lo, 4)), lane);
    const __m128i h = _mm_and_si128(_mm_or_si128(hi, _mm_srli_epi16(hi, 4)), lane);
    _mm_storeu_si128((__m128i *)wq, _mm_packus_epi16(l, h));
#else
    const uint64_t m = 0x0F0F0F0F0F0F0F0Full;
    const uint64_t a = ld64(qs), b = ld64(qs + 8);
    wq[0] = even_bytes(pair(a & m));
    wq[1] = even_bytes(pair(b & m));
    wq[2] = even_bytes(pair((a >> 4) & m));
    wq[3] = even_bytes(pair((b >> 4) & m));
#endif
}

/* mlxq_gguf_neg_bias(d, 2^shift) in the float16 domain: -2^shift * d only moves the
 * exponent (or overflows to infinity); a NaN keeps its sign and takes MLX's NaN mantissa;
 * subnormals, where the product may become normal, go through the reference. */
static inline uint16_t neg_bias(uint16_t d, unsigned shift) {
    const unsigned e = (d >> 10) & 0x1Fu;
    if (e == 0x1F)
        return (d & 0x3FFu) ? (uint16_t)((d & 0x8000u) | 0x7D00u) : (uint16_t)(d ^ 0x8000u);
    if (e == 0)
        return (d & 0x3FFu) ? mlxq_gguf_neg_bias(d, (float)(1u << shift))
                            : (uint16_t)(d ^ 0x8000u);
    if (e + shift >= 0x1F)
        return (uint16_t)(((d ^ 0x8000u) & 0x8000u) | 0x7C00u);
    return (uint16_t)((d ^ 0x8000u) + (shift << 10));
}

static int64_t fast_q4_0(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                         uint16_t *biases) {
    uint16_t *s = scales;
    for (int64_t b = 0; b < nb; b++, src += 18, wq += 4) {
        memcpy(&s[b], src, 2);
        biases[b] = neg_bias(s[b], 3);
        nibble_words(src + 2, wq);
    }
    return -1;
}

static int64_t fast_q4_1(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                         uint16_t *biases) {
    uint16_t *s = scales;
    for (int64_t b = 0; b < nb; b++, src += 20, wq += 4) {
        memcpy(&s[b], src, 2);
        memcpy(&biases[b], src + 2, 2);
        nibble_words(src + 4, wq);
    }
    return -1;
}

static int64_t fast_q8_0(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                         uint16_t *biases) {
    uint16_t *s = scales;
    const uint64_t flip = 0x8080808080808080ull;
    for (int64_t b = 0; b < nb; b++, src += 34, wq += 8) {
        memcpy(&s[b], src, 2);
        biases[b] = neg_bias(s[b], 7);
        for (int i = 0; i < 4; i++) {
            const uint64_t v = ld64(src + 2 + 8 * i) ^ flip;
            memcpy(wq + 2 * i, &v, 8);
        }
    }
    return -1;
}

static int64_t fast_mxfp4(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                          uint16_t *biases) {
    (void)biases;
    uint8_t *s = scales;
    int64_t bad = -1;
    for (int64_t b = 0; b < nb; b++, src += 17, wq += 4) {
        s[b] = src[0];
        if (src[0] == 255 && bad < 0)
            bad = b;
        nibble_words(src + 1, wq);
    }
    return bad;
}

mlxq_gguf_repack_fn mlxq_gguf_fast_repack(int type) {
    if (!GGUF_LE) /* the word moves assume little-endian words */
        return mlxq_gguf_ref_repack(type);
    switch (type) {
    case MLXQ_GGUF_Q4_0: return fast_q4_0;
    case MLXQ_GGUF_Q4_1: return fast_q4_1;
    case MLXQ_GGUF_Q8_0: return fast_q8_0;
    case MLXQ_GGUF_MXFP4: return fast_mxfp4;
    default: return NULL;
    }
}

/* ---- fast dequantize ------------------------------------------------------------------- */

static void fast_dq_q4_0(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 18, out += 32) {
        const float d = mlxq_gguf_np_half(src);
        const uint8_t *qs = src + 2;
        for (int j = 0; j < 16; j++)
            out[j] = d * (float)((qs[j] & 0x0F) - 8);
        for (int j = 0; j < 16; j++)
            out[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

static void fast_dq_q8_0(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 34, out += 32) {
        const float d = mlxq_gguf_np_half(src);
        const int8_t *q = (const int8_t *)(src + 2);
        for (int j = 0; j < 32; j++)
            out[j] = (float)q[j] * d;
    }
}

static void scale_min_k4(const uint8_t *s, float d, float dmin, float ds[8], float dm[8]) {
    for (int j = 0; j < 4; j++) {
        ds[j] = d * (float)(s[j] & 63);
        dm[j] = dmin * (float)(s[j + 4] & 63);
        ds[j + 4] = d * (float)((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
        dm[j + 4] = dmin * (float)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
    }
}

static void fast_dq_q4_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 144, out += 256) {
        float ds[8], dm[8];
        scale_min_k4(src + 4, mlxq_gguf_np_half(src), mlxq_gguf_np_half(src + 2), ds, dm);
        const uint8_t *qs = src + 16;
        for (int c = 0; c < 4; c++, qs += 32) {
            float *o = out + 64 * c;
            const float s0 = ds[2 * c], m0 = dm[2 * c], s1 = ds[2 * c + 1], m1 = dm[2 * c + 1];
            for (int l = 0; l < 32; l++)
                o[l] = s0 * (float)(qs[l] & 0x0F) - m0;
            for (int l = 0; l < 32; l++)
                o[32 + l] = s1 * (float)(qs[l] >> 4) - m1;
        }
    }
}

static void fast_dq_q5_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 176, out += 256) {
        float ds[8], dm[8];
        scale_min_k4(src + 4, mlxq_gguf_np_half(src), mlxq_gguf_np_half(src + 2), ds, dm);
        const uint8_t *qh = src + 16, *qs = src + 48;
        for (int c = 0; c < 4; c++, qs += 32) {
            float *o = out + 64 * c;
            const int u0 = 2 * c, u1 = 2 * c + 1;
            const float s0 = ds[u0], m0 = dm[u0], s1 = ds[u1], m1 = dm[u1];
            for (int l = 0; l < 32; l++)
                o[l] = s0 * (float)((qs[l] & 0x0F) | ((qh[l] >> u0) & 1) << 4) - m0;
            for (int l = 0; l < 32; l++)
                o[32 + l] = s1 * (float)((qs[l] >> 4) | ((qh[l] >> u1) & 1) << 4) - m1;
        }
    }
}

static void fast_dq_q6_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 210, out += 256) {
        const float d = mlxq_gguf_np_half(src + 208);
        const int8_t *sc = (const int8_t *)(src + 192);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = src + 64 * h, *qh = src + 128 + 32 * h;
            for (int k = 0; k < 4; k++) { /* 32 elements: r = 32k + l */
                float *o = out + 128 * h + 32 * k;
                const uint8_t *lo = ql + 32 * (k & 1);
                const int shl = 4 * (k >> 1), shh = 2 * k;
                const float d0 = d * (float)sc[8 * h + 2 * k];
                const float d1 = d * (float)sc[8 * h + 2 * k + 1];
                for (int l = 0; l < 16; l++)
                    o[l] = d0 * (float)((((lo[l] >> shl) & 0x0F) |
                                         ((qh[l] >> shh) & 3) << 4) - 32);
                for (int l = 16; l < 32; l++)
                    o[l] = d1 * (float)((((lo[l] >> shl) & 0x0F) |
                                         ((qh[l] >> shh) & 3) << 4) - 32);
            }
        }
    }
}

mlxq_gguf_dequant_fn mlxq_gguf_fast_dequant(int type) {
    switch (type) {
    case MLXQ_GGUF_Q4_0: return fast_dq_q4_0;
    case MLXQ_GGUF_Q8_0: return fast_dq_q8_0;
    case MLXQ_GGUF_Q4_K: return fast_dq_q4_k;
    case MLXQ_GGUF_Q5_K: return fast_dq_q5_k;
    case MLXQ_GGUF_Q6_K: return fast_dq_q6_k;
    default: return mlxq_gguf_ref_dequant(type); /* already one flat pass per block */
    }
}

