/*
 * simd_avx2.h - the vector vocabulary of fast_tmpl.h, for AVX2 (8 float lanes).
 *
 * Include only from a file compiled for AVX2 + FMA + F16C + BMI2 (fast_avx2.c). Same contract
 * as simd_avx512.h: exact IEEE single precision, x86 max/min NaN rule (second operand).
 * Masks are all-ones/all-zero lanes in a float vector.
 */
#ifndef MLXQ_SIMD_AVX2_H
#define MLXQ_SIMD_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#define VW 8
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vmask;

static inline vf v_set1(float x) { return _mm256_set1_ps(x); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf v_rint(vf a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vf v_trunc(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
/* a * b + c with one rounding (FMA3, part of this file's target) */
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_abs(vf a) {
    return _mm256_castsi256_ps(
        _mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(0x7FFFFFFF)));
}
/* Horizontal reductions over lanes that hold no NaN. */
static inline float v_hmax(vf a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
static inline float v_hmin(vf a) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline vmask v_isnan(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
static inline int v_mask_any(vmask m) { return _mm256_movemask_ps(m) != 0; }
static inline vmask v_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vmask v_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vmask v_neq_uq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
static inline vmask v_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vmask v_neq_oq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_OQ); }
static inline vmask v_mask_and(vmask a, vmask b) { return _mm256_and_ps(a, b); }
static inline vf v_neg(vf a) {
    return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32((int32_t)0x80000000)));
}
static inline vmask v_mask_or(vmask a, vmask b) { return _mm256_or_ps(a, b); }
/* lanes where both masks agree */
static inline vmask v_mask_eq(vmask a, vmask b) {
    return _mm256_xor_ps(_mm256_xor_ps(a, b), _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
}
static inline vf v_select(vmask m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }

static inline vi v_bits(vf a) { return _mm256_castps_si256(a); }
static inline vf v_from_bits(vi a) { return _mm256_castsi256_ps(a); }
static inline vi vi_set1(int32_t x) { return _mm256_set1_epi32(x); }
static inline vi vi_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm256_or_si256(a, b); }
static inline vi vi_srli(vi a, int n) { return _mm256_srli_epi32(a, n); }
static inline vi vi_slli(vi a, int n) { return _mm256_slli_epi32(a, n); }
/* Unsigned compares through the sign-flip trick (AVX2 has only signed ones). */
static inline vmask vi_lt_u(vi a, vi b) {
    const vi flip = _mm256_set1_epi32((int32_t)0x80000000);
    return _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_xor_si256(b, flip), _mm256_xor_si256(a, flip)));
}
static inline vmask vi_ge_u(vi a, vi b) {
    return _mm256_xor_ps(vi_lt_u(a, b), _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
}
static inline vmask vi_eq(vi a, vi b) { return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b)); }
static inline vi vi_select(vmask m, vi a, vi b) {
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
}
static inline vi v_cvt_i32(vf a) { return _mm256_cvttps_epi32(a); }
static inline vf vi_cvt_f32(vi a) { return _mm256_cvtepi32_ps(a); }

/* ---- loads and stores of one vector of elements ------------------------------------ */

static inline vf v_load_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }
static inline vf v_loadu(const float *p) { return _mm256_loadu_ps(p); }
static inline void v_storeu(float *p, vf a) { _mm256_storeu_ps(p, a); }
static inline vf v_load_bf16(const uint8_t *p) {
    __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
static inline vf v_load_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
static inline vf v_load_u8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
/* VW bytes zero-extended to int32 lanes. */
static inline vi vi_load_u8(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
static inline void vi_store_u8(uint8_t *p, vi a) {
    /* lanes hold values < 256: narrow 32 -> 16 -> 8 with saturating packs, fixing the
     * 128-bit lane interleave of the 256-bit packs. */
    __m128i lo = _mm256_castsi256_si128(a), hi = _mm256_extracti128_si256(a, 1);
    __m128i w = _mm_packus_epi32(lo, hi);
    _mm_storel_epi64((__m128i *)p, _mm_packus_epi16(w, w));
}
static inline void vi_store_u16(uint8_t *p, vi a) {
    __m128i lo = _mm256_castsi256_si128(a), hi = _mm256_extracti128_si256(a, 1);
    _mm_storeu_si128((__m128i *)p, _mm_packus_epi32(lo, hi));
}
static inline void v_store_f32(uint8_t *p, vf a) { _mm256_storeu_ps((float *)p, a); }
static inline vi v_cvt_f16_bits(vf a) {
    return _mm256_cvtepu16_epi32(_mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline vf v_from_f16_bits(vi h) {
    __m128i lo = _mm256_castsi256_si128(h), hi = _mm256_extracti128_si256(h, 1);
    return _mm256_cvtph_ps(_mm_packus_epi32(lo, hi));
}

/* ---- small tables ------------------------------------------------------------------- */

/* out[i] = table[idx[i] & 15] for a 16-entry float table. */
static inline vf v_lut16(const float *table, vi idx) {
    vf lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table), idx);
    vf hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table + 8), idx);
    vmask upper = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)); /* bit 3 -> sign */
    return _mm256_blendv_ps(lo, hi, upper);
}

/* ---- double lanes: VW / 2 per vector, so one vf splits into a low and a high vd ------ */

#define VD 4
typedef __m256d vd;
typedef __m256d vdmask;

static inline vd vd_set1(double x) { return _mm256_set1_pd(x); }
static inline vd vd_add(vd a, vd b) { return _mm256_add_pd(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm256_sub_pd(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm256_mul_pd(a, b); }
static inline vd vd_div(vd a, vd b) { return _mm256_div_pd(a, b); }
/* -a by the sign bit, as C's unary minus (so -0.0 for 0.0). */
static inline vd vd_neg(vd a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
static inline vdmask vd_lt(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
static inline vdmask vd_gt(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
static inline vdmask vd_isnan(vd a) { return _mm256_cmp_pd(a, a, _CMP_UNORD_Q); }
static inline vd vd_select(vdmask m, vd a, vd b) { return _mm256_blendv_pd(b, a, m); }
static inline vd vd_loadu(const double *p) { return _mm256_loadu_pd(p); }
static inline void vd_storeu(double *p, vd a) { _mm256_storeu_pd(p, a); }
/* The low / high half of a vf's lanes widened (exactly) to double. */
static inline vd vd_lo(vf a) { return _mm256_cvtps_pd(_mm256_castps256_ps128(a)); }
static inline vd vd_hi(vf a) { return _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)); }
/* Two vd narrowed to float with round-to-nearest-even, as C's (float) cast. */
static inline vf vd_to_vf(vd lo, vd hi) {
    return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
}

#endif /* MLXQ_SIMD_AVX2_H */
