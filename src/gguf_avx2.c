/*
 * gguf_avx2.c - AVX2 versions of the hot GGUF dequantizers (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K),
 * eight values at a time, written straight in the output dtype. Each value is the same
 * float32 operations in the same order as gguf_ref.c's (a product, then a difference, each
 * rounded once: the target has no FMA, and vsubps keeps its first operand's NaN as subss
 * does); float16/bfloat16 are rounded as MLX's astype rounds (mlxq_float.h): F16C's
 * round-to-nearest-even with MLX's NaN (sign|0x7D00), bfloat16 by integer rounding with
 * NaN 0x7FC0. The dispatcher in gguf.c calls these only when the active ISA has AVX2; the
 * tests compare them with the scalar specification on every ISA the machine has.
 */
#include "gguf_internal.h"
#include "mlxq_gguf.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,f16c")
#endif

#include <immintrin.h>
#include <string.h>

#include "mlxq_float.h"

/* Eight values to dst[i..i+8) in odt. */
static inline void put8(uint8_t *dst, int64_t i, __m256 v, mlxq_dtype odt) {
    if (odt == MLXQ_F32) {
        _mm256_storeu_ps((float *)(void *)dst + i, v);
        return;
    }
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    __m128i h;
    if (odt == MLXQ_F16) {
        const __m128i hw = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        /* MLX's NaN: the sign and 0x7D00 */
        const __m256i mlx = _mm256_or_si256(_mm256_srli_epi32(_mm256_and_si256(
                                                bits, _mm256_set1_epi32((int)0x80000000u)),
                                            16),
                                            _mm256_set1_epi32(0x7D00));
        const __m128i mlx16 = _mm_packus_epi32(_mm256_castsi256_si128(mlx),
                                               _mm256_extracti128_si256(mlx, 1));
        const __m128i nan16 = _mm_packs_epi32(_mm256_castsi256_si128(nan),
                                              _mm256_extracti128_si256(nan, 1));
        h = _mm_blendv_epi8(hw, mlx16, nan16);
    } else { /* bfloat16: round to nearest even on the low 16 bits, NaN 0x7FC0 */
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd));
        r = _mm256_srli_epi32(r, 16);
        r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), nan);
        h = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    }
    _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i), h);
}

/* Eight unsigned bytes at p as floats. */
static inline __m256 u8x8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

static void q4_0(const uint8_t *src, int64_t nb, mlxq_dtype odt, uint8_t *dst) {
    const __m128i m = _mm_set1_epi8(0x0F);
    const __m256i eight = _mm256_set1_epi32(8);
    for (int64_t b = 0; b < nb; b++, src += 18) {
        const __m256 d = _mm256_set1_ps(mlxq_gguf_np_half(src));
        const __m128i q = _mm_loadu_si128((const __m128i *)(src + 2));
        const __m128i nib[2] = {_mm_and_si128(q, m), _mm_and_si128(_mm_srli_epi16(q, 4), m)};
        for (int k = 0; k < 4; k++) { /* elements 8k..8k+8: nibble k / 2, bytes 8 (k % 2) */
            const __m128i n = (k & 1) ? _mm_srli_si128(nib[k >> 1], 8) : nib[k >> 1];
            const __m256i qi = _mm256_sub_epi32(_mm256_cvtepu8_epi32(n), eight);
            put8(dst, b * 32 + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(qi)), odt);
        }
    }
}

static void q8_0(const uint8_t *src, int64_t nb, mlxq_dtype odt, uint8_t *dst) {
    for (int64_t b = 0; b < nb; b++, src += 34) {
        const __m256 d = _mm256_set1_ps(mlxq_gguf_np_half(src));
        for (int k = 0; k < 4; k++) {
            const __m256i qi = _mm256_cvtepi8_epi32(
                _mm_loadl_epi64((const __m128i *)(src + 2 + 8 * k)));
            put8(dst, b * 32 + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(qi), d), odt); /* x*d */
        }
    }
}

/* Q4_K/Q5_K's (scale, min) products, as gguf.c's scalar fast kernels compute them */
static inline void scale_min_k4(const uint8_t *s, float d, float dmin, float ds[8],
                                float dm[8]) {
    for (int j = 0; j < 4; j++) {
        ds[j] = d * (float)(s[j] & 63);
        dm[j] = dmin * (float)(s[j + 4] & 63);
        ds[j + 4] = d * (float)((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
        dm[j + 4] = dmin * (float)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
    }
}

/* 32 codes (bytes, 0..31) of sub-block u, scaled: ds[u] * q - dm[u]. */
static inline void affine32(const uint8_t *codes, float s, float m, mlxq_dtype odt,
                            uint8_t *dst, int64_t at) {
    const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
    for (int k = 0; k < 4; k++)
        put8(dst, at + 8 * k, _mm256_sub_ps(_mm256_mul_ps(vs, u8x8(codes + 8 * k)), vm), odt);
}

static void q4_k(const uint8_t *src, int64_t nb, mlxq_dtype odt, uint8_t *dst) {
    const __m256i m = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++, src += 144) {
        float ds[8], dm[8];
        scale_min_k4(src + 4, mlxq_gguf_np_half(src), mlxq_gguf_np_half(src + 2), ds, dm);
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(src + 16 + 32 * c));
            uint8_t codes[2][32];
            _mm256_storeu_si256((__m256i *)codes[0], _mm256_and_si256(q, m));
            _mm256_storeu_si256((__m256i *)codes[1],
                                _mm256_and_si256(_mm256_srli_epi16(q, 4), m));
            affine32(codes[0], ds[2 * c], dm[2 * c], odt, dst, b * 256 + 64 * c);
            affine32(codes[1], ds[2 * c + 1], dm[2 * c + 1], odt, dst, b * 256 + 64 * c + 32);
        }
    }
}

static void q5_k(const uint8_t *src, int64_t nb, mlxq_dtype odt, uint8_t *dst) {
    const __m256i m = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++, src += 176) {
        float ds[8], dm[8];
        scale_min_k4(src + 4, mlxq_gguf_np_half(src), mlxq_gguf_np_half(src + 2), ds, dm);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(src + 16));
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(src + 48 + 32 * c));
            for (int half = 0; half < 2; half++) {
                const int u = 2 * c + half;
                const __m256i lo = half ? _mm256_and_si256(_mm256_srli_epi16(q, 4), m)
                                        : _mm256_and_si256(q, m);
                /* bit u of each qh byte, moved to bit 4 (no byte shifts in AVX2: 16-bit
                 * shifts, then the byte mask) */
                const __m256i hb = _mm256_and_si256(
                    _mm256_srl_epi16(qh, _mm_cvtsi32_si128(u)), one);
                uint8_t codes[32];
                _mm256_storeu_si256((__m256i *)codes,
                                    _mm256_or_si256(lo, _mm256_slli_epi16(hb, 4)));
                affine32(codes, ds[u], dm[u], odt, dst, b * 256 + 32 * u);
            }
        }
    }
}

static void q6_k(const uint8_t *src, int64_t nb, mlxq_dtype odt, uint8_t *dst) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i off = _mm256_set1_epi32(32);
    for (int64_t b = 0; b < nb; b++, src += 210) {
        const float d = mlxq_gguf_np_half(src + 208);
        const int8_t *sc = (const int8_t *)(src + 192);
        for (int h = 0; h < 2; h++) {
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(src + 128 + 32 * h));
            for (int k = 0; k < 4; k++) { /* elements 128h + 32k + l */
                const __m256i lo8 =
                    _mm256_loadu_si256((const __m256i *)(src + 64 * h + 32 * (k & 1)));
                const __m256i lo = (k >> 1) ? _mm256_and_si256(_mm256_srli_epi16(lo8, 4), m4)
                                            : _mm256_and_si256(lo8, m4);
                const __m256i hi = _mm256_and_si256(
                    _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), m2);
                uint8_t codes[32];
                _mm256_storeu_si256((__m256i *)codes,
                                    _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
                for (int g = 0; g < 2; g++) { /* 16 elements per int8 scale */
                    const __m256 s = _mm256_set1_ps(d * (float)sc[8 * h + 2 * k + g]);
                    for (int e = 0; e < 2; e++) {
                        const __m256i qi = _mm256_sub_epi32(
                            _mm256_cvtepu8_epi32(
                                _mm_loadl_epi64((const __m128i *)(codes + 16 * g + 8 * e))),
                            off);
                        put8(dst, b * 256 + 128 * h + 32 * k + 16 * g + 8 * e,
                             _mm256_mul_ps(s, _mm256_cvtepi32_ps(qi)), odt);
                    }
                }
            }
        }
    }
}

mlxq_gguf_dequant_to_fn mlxq_gguf_avx2_dequant(int type) {
    switch (type) {
    case MLXQ_GGUF_Q4_0: return q4_0;
    case MLXQ_GGUF_Q8_0: return q8_0;
    case MLXQ_GGUF_Q4_K: return q4_k;
    case MLXQ_GGUF_Q5_K: return q5_k;
    case MLXQ_GGUF_Q6_K: return q6_k;
    default: return NULL;
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
mlxq_gguf_dequant_to_fn mlxq_gguf_avx2_dequant(int type) {
    (void)type;
    return NULL;
}
#endif
