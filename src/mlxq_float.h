/*
 * mlxq_float.h - bit-exact scalar number conversions, as MLX's CPU backend does them.
 *
 * Contract: every function here is total (defined for every input bit pattern, NaN and
 * infinities included), has no undefined behaviour, and returns exactly what MLX's CPU
 * backend produces for the same conversion on x86-64:
 *   - float -> bfloat16: round to nearest even; any NaN becomes the positive quiet NaN 0x7FC0
 *     (MLX's _MLX_BFloat16 constructor drops the NaN's sign and payload).
 *   - float -> float16: round to nearest even with correct subnormals and overflow to inf;
 *     any NaN becomes sign|0x7D00 (MLX's _MLX_Float16 NaN pattern, not the IEEE default 0x7E00).
 *   - float <-> E4M3: MLX's ToFP8/FromFP8 (round to nearest even, saturating to +-448 = 0x7E
 *     for anything at or above 464 in magnitude, NaN and inf included; 0x7F/0xFF decode to
 *     NaN).
 *   - float -> int32: what x86's cvttss2si/cvttsd2si give (truncation; NaN or out of range
 *     -> INT32_MIN), because MLX's astype is a static_cast compiled for x86. The C cast is
 *     undefined for those inputs, so we never use it on them.
 * Header-only so the kernels can inline these into their inner loops.
 */
#ifndef MLXQ_FLOAT_H
#define MLXQ_FLOAT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t mlxq_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float mlxq_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint64_t mlxq_f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* ---- bfloat16 ---------------------------------------------------------------------- */

static inline float mlxq_bf16_to_f32(uint16_t h) {
    return mlxq_f32_from_bits((uint32_t)h << 16);
}

static inline uint16_t mlxq_f32_to_bf16(float f) {
    if (isnan(f))
        return 0x7FC0;
    uint32_t u = mlxq_f32_bits(f);
    /* Round to nearest even on the 16 discarded bits; carries into the exponent give inf. */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- float16 ----------------------------------------------------------------------- */

static inline float mlxq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    uint32_t u;
    if (exp == 0x1F) {
        /* NaNs come out quiet, as from x86's vcvtph2ps and MLX's conversion (which ends in
         * a float multiply); infinities keep a zero mantissa. */
        u = sign | 0x7F800000u | (man << 13) | (man ? 0x400000u : 0u);
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else {
        /* Subnormal half: value = man * 2^-24, exactly representable as a float. */
        float v = (float)man * 0x1p-24f;
        u = sign | mlxq_f32_bits(v);
    }
    return mlxq_f32_from_bits(u);
}

static inline uint16_t mlxq_f32_to_f16(float f) {
    uint32_t u = mlxq_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (isnan(f))
        return sign | 0x7D00u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a >= 0x477FF000u) /* >= 65520: rounds to inf (65504 is the largest half) */
        return sign | 0x7C00u;
    if (a >= 0x38800000u) { /* normal half range: >= 2^-14 */
        uint32_t r = a - 0x38000000u; /* rebias exponent 127 -> 15 */
        r += 0xFFFu + ((r >> 13) & 1u);
        return sign | (uint16_t)(r >> 13);
    }
    if (a < 0x33000001u) /* <= 2^-25: rounds to zero (2^-25 is a tie that goes to even 0) */
        return sign;
    /* Subnormal half: shift the 24-bit significand into place with round to nearest even. */
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e; /* value = m * 2^(e-150); half subnormal unit is 2^-24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return sign | (uint16_t)q;
}

/* ---- E4M3 (fp8) -------------------------------------------------------------------- */

/* MLX's ToFP8: RNE into E4M3 with subnormals; |x| >= 464 (NaN, inf too) saturates to 0x7E. */
static inline uint8_t mlxq_f32_to_e4m3(float f) {
    uint32_t u = mlxq_f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7FFFFFFFu;
    uint8_t r;
    if (a >= (543u << 21)) { /* 464.0 and above, inf and NaN */
        r = 0x7E;
    } else if (a < (121u << 23)) { /* below 2^-6: subnormal E4M3, unit 2^-9 */
        /* The ulp of 2^14 (bits 141<<23) is 2^-9, the E4M3 subnormal unit, so adding it lets
         * the float adder do the round to nearest even; the low bits are then the code. */
        float t = mlxq_f32_from_bits(a) + mlxq_f32_from_bits(141u << 23);
        r = (uint8_t)(mlxq_f32_bits(t) - (141u << 23));
    } else {
        uint32_t odd = (a >> 20) & 1u;
        a += ((uint32_t)(7 - 127) << 23) + 0x7FFFFu + odd;
        r = (uint8_t)(a >> 20);
    }
    return r | sign;
}

/* MLX's FromFP8 (0.32.4): the 7 magnitude bits shifted into a half and scaled by 256, so
 * E4M3's exponent bias and subnormals come out right; 0x7F/0xFF (E4M3's NaN encodings)
 * become a half NaN, i.e. the float NaN 0x7FF00000 with the byte's sign. */
static inline float mlxq_e4m3_to_f32(uint8_t x) {
    uint32_t v = x & 127u;
    if (v == 127u)
        return mlxq_f32_from_bits((x & 128u) ? 0xFFF00000u : 0x7FF00000u);
    float f = mlxq_f16_to_f32((uint16_t)(v << 7)) * 256.0f;
    return (x & 128u) ? -f : f;
}

/* ---- x86 float -> integer ---------------------------------------------------------- */

static inline int32_t mlxq_f32_to_i32_x86(float f) {
    if (!(f > -2147483904.0f && f < 2147483648.0f)) /* NaN or out of range */
        return INT32_MIN;
    return (int32_t)f;
}

static inline int32_t mlxq_f64_to_i32_x86(double d) {
    if (!(d > -2147483649.0 && d < 2147483648.0))
        return INT32_MIN;
    return (int32_t)d;
}

#endif /* MLXQ_FLOAT_H */
