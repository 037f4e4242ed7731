/*
 * simd_avx512.h - the vector vocabulary of fast_tmpl.h, for AVX-512 (16 float lanes).
 *
 * Include only from a file compiled for AVX-512F/BW/VL/DQ + F16C + BMI2 (fast_avx512.c
 * sets the target with a pragma; the dispatcher only calls it on such CPUs). Every
 * operation is exact IEEE single precision with round-to-nearest-even: no FMA, no
 * approximate reciprocals, so results equal the scalar reference op for op.
 * max/min follow x86's rule (if either operand is NaN the SECOND is returned), which the
 * kernels rely on to skip NaN elements the way MLX's std::max/std::min loops do.
 */
#ifndef MLXQ_SIMD_AVX512_H
#define MLXQ_SIMD_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#define VW 16
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vmask;

static inline vf v_set1(float x) { return _mm512_set1_ps(x); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf v_rint(vf a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline vf v_trunc(vf a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}
/* a * b + c with one rounding */
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_abs(vf a) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7FFFFFFF)));
}
static inline float v_hmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline float v_hmin(vf a) { return _mm512_reduce_min_ps(a); }

static inline vmask v_isnan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
static inline int v_mask_any(vmask m) { return m != 0; }
static inline vmask v_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vmask v_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vmask v_neq_uq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
static inline vmask v_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vmask v_neq_oq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_OQ); }
static inline vmask v_mask_and(vmask a, vmask b) { return a & b; }
static inline vf v_neg(vf a) {
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int32_t)0x80000000)));
}
static inline vmask v_mask_or(vmask a, vmask b) { return a | b; }
/* lanes where both masks agree */
static inline vmask v_mask_eq(vmask a, vmask b) { return (vmask)~(a ^ b); }
static inline vf v_select(vmask m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }

static inline vi v_bits(vf a) { return _mm512_castps_si512(a); }
static inline vf v_from_bits(vi a) { return _mm512_castsi512_ps(a); }
static inline vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm512_or_si512(a, b); }
static inline vi vi_srli(vi a, int n) { return _mm512_srli_epi32(a, n); }
static inline vi vi_slli(vi a, int n) { return _mm512_slli_epi32(a, n); }
static inline vmask vi_lt_u(vi a, vi b) { return _mm512_cmplt_epu32_mask(a, b); }
static inline vmask vi_ge_u(vi a, vi b) { return _mm512_cmpge_epu32_mask(a, b); }
static inline vmask vi_eq(vi a, vi b) { return _mm512_cmpeq_epi32_mask(a, b); }
static inline vi vi_select(vmask m, vi a, vi b) { return _mm512_mask_blend_epi32(m, b, a); }
/* Exact for floats holding integers in int32 range. */
static inline vi v_cvt_i32(vf a) { return _mm512_cvttps_epi32(a); }
static inline vf vi_cvt_f32(vi a) { return _mm512_cvtepi32_ps(a); }

/* ---- loads and stores of one vector of elements ------------------------------------ */

static inline vf v_load_f32(const uint8_t *p) { return _mm512_loadu_ps(p); }
static inline vf v_loadu(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_storeu(float *p, vf a) { _mm512_storeu_ps(p, a); }
static inline vf v_load_bf16(const uint8_t *p) {
    __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}
static inline vf v_load_f16(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
/* VW bytes, each a small unsigned integer, as floats. */
static inline vf v_load_u8(const uint8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
/* VW bytes zero-extended to int32 lanes. */
static inline vi vi_load_u8(const uint8_t *p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
}
/* The low byte of each int32 lane: VW bytes. */
static inline void vi_store_u8(uint8_t *p, vi a) {
    _mm_storeu_si128((__m128i *)p, _mm512_cvtepi32_epi8(a));
}
/* The low 16 bits of each int32 lane: VW uint16. */
static inline void vi_store_u16(uint8_t *p, vi a) {
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(a));
}
static inline void v_store_f32(uint8_t *p, vf a) { _mm512_storeu_ps(p, a); }
/* f32 -> f16 bits with RNE; NaN lanes fixed up to MLX's pattern by the caller. */
static inline vi v_cvt_f16_bits(vf a) {
    return _mm512_cvtepu16_epi32(_mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline vf v_from_f16_bits(vi h) {
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
}

/* ---- small tables ------------------------------------------------------------------- */

/* out[i] = table[idx[i] & 15] for a 16-entry float table. */
static inline vf v_lut16(const float *table, vi idx) {
    return _mm512_permutexvar_ps(idx, _mm512_loadu_ps(table));
}

/* ---- double lanes: VW / 2 per vector, so one vf splits into a low and a high vd ------ */

#define VD 8
typedef __m512d vd;
typedef __mmask8 vdmask;

static inline vd vd_set1(double x) { return _mm512_set1_pd(x); }
static inline vd vd_add(vd a, vd b) { return _mm512_add_pd(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm512_sub_pd(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm512_mul_pd(a, b); }
static inline vd vd_div(vd a, vd b) { return _mm512_div_pd(a, b); }
/* -a by the sign bit, as C's unary minus (so -0.0 for 0.0). */
static inline vd vd_neg(vd a) { return _mm512_xor_pd(a, _mm512_set1_pd(-0.0)); }
static inline vdmask vd_lt(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
static inline vdmask vd_gt(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
static inline vdmask vd_isnan(vd a) { return _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q); }
static inline vd vd_select(vdmask m, vd a, vd b) { return _mm512_mask_blend_pd(m, b, a); }
static inline vd vd_loadu(const double *p) { return _mm512_loadu_pd(p); }
static inline void vd_storeu(double *p, vd a) { _mm512_storeu_pd(p, a); }
/* The low / high half of a vf's lanes widened (exactly) to double. */
static inline vd vd_lo(vf a) { return _mm512_cvtps_pd(_mm512_castps512_ps256(a)); }
static inline vd vd_hi(vf a) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)); }
/* Two vd narrowed to float with round-to-nearest-even, as C's (float) cast. */
static inline vf vd_to_vf(vd lo, vd hi) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

#endif /* MLXQ_SIMD_AVX512_H */
