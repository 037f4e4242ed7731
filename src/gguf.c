/*
 * gguf.c - argument checks, row iteration, threading and reference/fast dispatch for the
 * GGUF block conversions (mlxq_gguf.h); the scalar specification is gguf_ref.c.
 *
 * The fast repack moves codes a 64-bit word at a time (SWAR): a ggml 4-bit block's two
 * 8-byte halves give MLX's four words with masks and shifts, and Q8_0's sign flip is one
 * XOR per eight codes. The fast dequantizers compute each sub-block's scale once and run
 * one flat loop per sub-block (which the compiler can vectorise); they evaluate the same
 * float32 operations as the reference, in the same order.
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "gguf_internal.h"
#include "mlxq_cpu.h"
#include "mlxq_float.h"
#include "mlxq_gguf.h"
#include "mlxq_pool.h"

int mlxq_gguf_block(int type, int *block_size, int *type_size) {
    int bs, ts, repack = 0;
    switch (type) {
    case MLXQ_GGUF_Q4_0: bs = 32, ts = 18, repack = 1; break;
    case MLXQ_GGUF_Q4_1: bs = 32, ts = 20, repack = 1; break;
    case MLXQ_GGUF_Q5_0: bs = 32, ts = 22; break;
    case MLXQ_GGUF_Q5_1: bs = 32, ts = 24; break;
    case MLXQ_GGUF_Q8_0: bs = 32, ts = 34, repack = 1; break;
    case MLXQ_GGUF_Q2_K: bs = 256, ts = 84; break;
    case MLXQ_GGUF_Q3_K: bs = 256, ts = 110; break;
    case MLXQ_GGUF_Q4_K: bs = 256, ts = 144; break;
    case MLXQ_GGUF_Q5_K: bs = 256, ts = 176; break;
    case MLXQ_GGUF_Q6_K: bs = 256, ts = 210; break;
    case MLXQ_GGUF_MXFP4: bs = 32, ts = 17, repack = 1; break;
    default: return 0;
    }
    if (block_size)
        *block_size = bs;
    if (type_size)
        *type_size = ts;
    return 1 + repack;
}

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

static mlxq_gguf_repack_fn fast_repack(int type) {
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

/* numpy's float16 -> float32 (see gguf_ref.c: payload kept) */
static float np_half(const uint8_t *p) {
    const uint16_t h = (uint16_t)(p[0] | p[1] << 8);
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t u;
    if (exp == 0x1F)
        u = sign | 0x7F800000u | (man << 13);
    else if (exp != 0)
        u = sign | ((exp + 112u) << 23) | (man << 13);
    else if (man == 0)
        u = sign;
    else
        u = sign | mlxq_f32_bits((float)man * 0x1p-24f);
    return mlxq_f32_from_bits(u);
}

static void fast_dq_q4_0(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 18, out += 32) {
        const float d = np_half(src);
        const uint8_t *qs = src + 2;
        for (int j = 0; j < 16; j++)
            out[j] = d * (float)((qs[j] & 0x0F) - 8);
        for (int j = 0; j < 16; j++)
            out[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

static void fast_dq_q8_0(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 34, out += 32) {
        const float d = np_half(src);
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
        scale_min_k4(src + 4, np_half(src), np_half(src + 2), ds, dm);
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
        scale_min_k4(src + 4, np_half(src), np_half(src + 2), ds, dm);
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
        const float d = np_half(src + 208);
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

static mlxq_gguf_dequant_fn fast_dequant(int type) {
    switch (type) {
    case MLXQ_GGUF_Q4_0: return fast_dq_q4_0;
    case MLXQ_GGUF_Q8_0: return fast_dq_q8_0;
    case MLXQ_GGUF_Q4_K: return fast_dq_q4_k;
    case MLXQ_GGUF_Q5_K: return fast_dq_q5_k;
    case MLXQ_GGUF_Q6_K: return fast_dq_q6_k;
    default: return mlxq_gguf_ref_dequant(type); /* already one flat pass per block */
    }
}

/* ---- checks ---------------------------------------------------------------------------- */

static int contiguous(const mlxq_tensor *t) {
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0)
            return 1; /* empty: no element is addressed (numpy may give it any strides) */
    int64_t expect = (int64_t)mlxq_dtype_size(t->dtype);
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return 0;
        expect *= t->shape[i];
    }
    return 1;
}

mlxq_status mlxq_gguf_check(int type, int repack, const mlxq_tensor *src,
                            const mlxq_tensor *rows, int64_t *n, int64_t *blocks,
                            mlxq_error *err) {
    int bs, ts;
    const int kind = mlxq_gguf_block(type, &bs, &ts);
    if (kind == 0 || (repack && kind != 2))
        return mlxq_fail(err, MLXQ_EVALUE, "ggml type %d %s", type,
                         kind ? "has no exact MLX layout (Q4_0, Q4_1, Q8_0 and MXFP4 have)"
                              : "is not one mlxq converts in C");
    if (!src || !src->data)
        return mlxq_fail(err, MLXQ_EARG, "src is missing");
    if (src->dtype != MLXQ_U8)
        return mlxq_fail(err, MLXQ_EDTYPE, "src must be uint8 bytes, got %s",
                         mlxq_dtype_name(src->dtype));
    if (src->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "src must be 2-D [rows, row bytes], got %d "
                         "dimensions", src->ndim);
    if (src->shape[1] % ts)
        return mlxq_fail(err, MLXQ_EDIVISIBLE, "src rows of %lld bytes are not whole blocks "
                         "of %d bytes", (long long)src->shape[1], ts);
    if (src->shape[1] > 1 && src->strides[1] != 1)
        return mlxq_fail(err, MLXQ_EARG, "src rows must be contiguous");
    if (src->shape[0] > 1 && src->strides[0] < src->shape[1])
        return mlxq_fail(err, MLXQ_EARG, "src rows must not overlap");
    *blocks = src->shape[1] / ts;
    *n = src->shape[0];
    if (rows && rows->data) {
        if (rows->dtype != MLXQ_I64 || rows->ndim != 1)
            return mlxq_fail(err, MLXQ_EDTYPE, "rows must be a 1-D int64 array");
        *n = rows->shape[0];
        for (int64_t i = 0; i < *n; i++) {
            int64_t r;
            memcpy(&r, (const uint8_t *)rows->data + i * rows->strides[0], 8);
            if (r < 0 || r >= src->shape[0])
                return mlxq_fail(err, MLXQ_EVALUE, "rows[%lld] = %lld is outside the %lld "
                                 "source rows", (long long)i, (long long)r,
                                 (long long)src->shape[0]);
        }
    }
    return MLXQ_OK;
}

static mlxq_status check_out(const char *name, const mlxq_tensor *t, mlxq_dtype dt,
                             int64_t n, int64_t cols, mlxq_error *err) {
    if (!t || !t->data)
        return mlxq_fail(err, MLXQ_EARG, "%s is missing", name);
    if (t->dtype != dt)
        return mlxq_fail(err, MLXQ_EDTYPE, "%s must be %s, got %s", name, mlxq_dtype_name(dt),
                         mlxq_dtype_name(t->dtype));
    if (t->ndim != 2 || t->shape[0] != n || t->shape[1] != cols)
        return mlxq_fail(err, MLXQ_ESHAPE, "%s must be [%lld, %lld]", name, (long long)n,
                         (long long)cols);
    if (!contiguous(t))
        return mlxq_fail(err, MLXQ_EARG, "%s must be C-contiguous", name);
    return MLXQ_OK;
}

/* ---- row jobs -------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *src;
    int64_t src_stride, nb;
    int type_size, block_size;
    const mlxq_tensor *rows;
    mlxq_gguf_repack_fn repack;
    mlxq_gguf_dequant_fn dequant;
    mlxq_gguf_dequant_to_fn dequant_to;
    uint32_t *wq;
    uint8_t *scales;
    uint16_t *biases;
    uint8_t *out;
    mlxq_dtype odt;
    int64_t wq_cols, scale_size, out_cols;
    int64_t bad; /* the first output row with a block MLX cannot hold, or -1 */
} row_job;

static const uint8_t *src_row(const row_job *j, int64_t i) {
    int64_t r = i;
    if (j->rows && j->rows->data)
        memcpy(&r, (const uint8_t *)j->rows->data + i * j->rows->strides[0], 8);
    return j->src + r * j->src_stride;
}

static void repack_range(void *ctx, size_t begin, size_t end) {
    row_job *j = ctx;
    for (size_t i = begin; i < end; i++) {
        const int64_t r = (int64_t)i;
        int64_t b = j->repack(src_row(j, r), j->nb, j->wq + r * j->wq_cols,
                              j->scales + r * j->nb * j->scale_size,
                              j->biases ? j->biases + r * j->nb : NULL);
        if (b >= 0) { /* keep the lowest row: ranges finish in any order */
            int64_t cur = __atomic_load_n(&j->bad, __ATOMIC_RELAXED);
            while ((cur < 0 || r < cur) &&
                   !__atomic_compare_exchange_n(&j->bad, &cur, r, 0, __ATOMIC_RELAXED,
                                                __ATOMIC_RELAXED)) {
            }
        }
    }
}

void mlxq_gguf_store_row(const float *v, int64_t n, mlxq_dtype odt, uint8_t *dst) {
    if (odt == MLXQ_F16) {
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = mlxq_f32_to_f16(v[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = mlxq_f32_to_bf16(v[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
    }
}

void mlxq_gguf_dequant_row(mlxq_gguf_dequant_fn dequant, const uint8_t *src, int64_t nb,
                           int type_size, int block_size, mlxq_dtype odt, uint8_t *dst) {
    if (odt == MLXQ_F32) {
        dequant(src, nb, (float *)(void *)dst);
        return;
    }
    float v[256]; /* one block (256 elements at most), then rounded into dst */
    for (int64_t b = 0; b < nb; b++) {
        dequant(src + b * type_size, 1, v);
        mlxq_gguf_store_row(v, block_size, odt, dst + b * block_size * 2);
    }
}

static void dequant_range(void *ctx, size_t begin, size_t end) {
    const row_job *j = ctx;
    const int64_t osize = (int64_t)mlxq_dtype_size(j->odt);
    for (size_t i = begin; i < end; i++) {
        uint8_t *dst = j->out + (int64_t)i * j->out_cols * osize;
        if (j->dequant_to)
            j->dequant_to(src_row(j, (int64_t)i), j->nb, j->odt, dst);
        else
            mlxq_gguf_dequant_row(j->dequant, src_row(j, (int64_t)i), j->nb, j->type_size,
                                  j->block_size, j->odt, dst);
    }
}

/* Rows per task: ~16K elements keep the claiming overhead negligible. */
size_t mlxq_gguf_grain(int64_t elements) {
    return elements > 0 ? (size_t)(16384 / elements) + 1 : 1;
}

static void run(row_job *j, int64_t n, int64_t elements, mlxq_range_fn fn, mlxq_impl impl) {
    if (impl == MLXQ_IMPL_REF)
        fn(j, 0, (size_t)n);
    else
        mlxq_parallel_for((size_t)n, mlxq_gguf_grain(elements), fn, j);
}

void mlxq_gguf_kernels(int type, mlxq_impl impl, mlxq_gguf_repack_fn *repack,
                       mlxq_gguf_dequant_fn *dequant, mlxq_gguf_dequant_to_fn *dequant_to) {
    if (repack)
        *repack = impl == MLXQ_IMPL_REF ? mlxq_gguf_ref_repack(type) : fast_repack(type);
    if (dequant)
        *dequant = impl == MLXQ_IMPL_REF ? mlxq_gguf_ref_dequant(type) : fast_dequant(type);
    if (dequant_to)
        *dequant_to = impl != MLXQ_IMPL_REF && mlxq_active_isa() >= MLXQ_ISA_AVX2
                          ? mlxq_gguf_avx2_dequant(type)
                          : NULL;
}

mlxq_status mlxq_gguf_check_triple(int type, int64_t n, int64_t nb, const mlxq_tensor *wq,
                                   const mlxq_tensor *scales, const mlxq_tensor *biases,
                                   mlxq_error *err) {
    mlxq_status st;
    const int mx = type == MLXQ_GGUF_MXFP4;
    const int64_t words = nb * (type == MLXQ_GGUF_Q8_0 ? 8 : 4);
    if ((st = check_out("wq", wq, MLXQ_U32, n, words, err)) ||
        (st = check_out("scales", scales, mx ? MLXQ_U8 : MLXQ_F16, n, nb, err)))
        return st;
    if (mx && biases && biases->data)
        return mlxq_fail(err, MLXQ_EARG, "MXFP4 has no biases: pass none");
    if (!mx && (st = check_out("biases", biases, MLXQ_F16, n, nb, err)))
        return st;
    return MLXQ_OK;
}

mlxq_status mlxq_gguf_check_dense(int type, int64_t n, int64_t nb, const mlxq_tensor *out,
                                  mlxq_error *err) {
    int bs = 0;
    mlxq_gguf_block(type, &bs, NULL);
    if (out && out->data && out->dtype != MLXQ_F32 && out->dtype != MLXQ_F16 &&
        out->dtype != MLXQ_BF16)
        return mlxq_fail(err, MLXQ_EDTYPE, "out must be float32, float16 or bfloat16, got %s",
                         mlxq_dtype_name(out->dtype));
    return check_out("out", out, out && out->data ? out->dtype : MLXQ_F32, n, nb * bs, err);
}

mlxq_status mlxq_gguf_to_mlx(int type, const mlxq_tensor *src, const mlxq_tensor *rows,
                             mlxq_tensor *wq, mlxq_tensor *scales, mlxq_tensor *biases,
                             mlxq_impl impl, mlxq_error *err) {
    int64_t n, nb;
    mlxq_status st = mlxq_gguf_check(type, 1, src, rows, &n, &nb, err);
    if (st || (st = mlxq_gguf_check_triple(type, n, nb, wq, scales, biases, err)))
        return st;
    const int mx = type == MLXQ_GGUF_MXFP4;
    const int64_t words = nb * (type == MLXQ_GGUF_Q8_0 ? 8 : 4);
    row_job j = {0};
    j.src = src->data;
    j.src_stride = src->strides[0];
    j.nb = nb;
    j.rows = rows;
    mlxq_gguf_kernels(type, impl, &j.repack, NULL, NULL);
    j.wq = wq->data;
    j.scales = scales->data;
    j.scale_size = mx ? 1 : 2;
    j.biases = mx ? NULL : biases->data;
    j.wq_cols = words;
    j.bad = -1;
    run(&j, n, nb * 32, repack_range, impl);
    if (j.bad >= 0)
        return mlxq_gguf_bad_block(src_row(&j, j.bad), j.bad, nb, err);
    return MLXQ_OK;
}

mlxq_status mlxq_gguf_bad_block(const uint8_t *row, int64_t r, int64_t nb, mlxq_error *err) {
    int64_t b = 0;
    while (b < nb - 1 && row[b * 17] != 255)
        b++;
    return mlxq_fail(err, MLXQ_EFORMAT, "row %lld, block %lld: an MXFP4 scale exponent of 255 "
                     "(2^127 in ggml, NaN in MLX's E8M0): no exact MLX layout", (long long)r,
                     (long long)b);
}

mlxq_status mlxq_gguf_dequant(int type, const mlxq_tensor *src, const mlxq_tensor *rows,
                              mlxq_tensor *out, mlxq_impl impl, mlxq_error *err) {
    int64_t n, nb;
    int bs;
    mlxq_status st = mlxq_gguf_check(type, 0, src, rows, &n, &nb, err);
    if (st || (st = mlxq_gguf_check_dense(type, n, nb, out, err)))
        return st;
    mlxq_gguf_block(type, &bs, NULL);
    row_job j = {0};
    j.src = src->data;
    j.src_stride = src->strides[0];
    j.nb = nb;
    j.rows = rows;
    mlxq_gguf_kernels(type, impl, NULL, &j.dequant, &j.dequant_to);
    mlxq_gguf_block(type, &j.block_size, &j.type_size);
    j.out = out->data;
    j.odt = out->dtype;
    j.out_cols = nb * bs;
    run(&j, n, nb * bs, dequant_range, impl);
    return MLXQ_OK;
}
