/*
 * fast_tmpl.h - the vectorised kernels, written once against the vocabulary of
 * simd_avx512.h / simd_avx2.h and compiled once per instruction set.
 *
 * The including file sets the target ISA, includes the matching simd_*.h, and defines
 * FN(name) to give every function an ISA suffix. Each kernel computes exactly what the
 * reference kernel for the same row computes (ref_affine.c, ref_fp.c): same operations, same
 * order, same rounding to the same dtypes; the per-group scalar steps are the very functions
 * the reference uses. Only contiguous rows are handled here (the driver gathers others).
 */

#include "kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- dtype-generic loads, roundings and stores ----------------------------------------
 * `dt` is a compile-time constant at every call site after inlining. */

ALWAYS_INLINE vf load_t(const uint8_t *p, int dt) {
    if (dt == MLXQ_BF16)
        return v_load_bf16(p);
    if (dt == MLXQ_F16)
        return v_load_f16(p);
    return v_load_f32(p);
}

/* MLX's float -> bfloat16 rounding on raw bits (NaN handled by the callers). */
ALWAYS_INLINE vi bf16_round_bits(vf x) {
    vi u = v_bits(x);
    vi odd = vi_and(vi_srli(u, 16), vi_set1(1));
    return vi_srli(vi_add(vi_add(u, vi_set1(0x7FFF)), odd), 16);
}

/* Rounds every lane to dtype dt as an MLX op result would be, returned as floats. NaN
 * lanes become what MLX's conversion makes of them (bf16: the positive quiet NaN). */
ALWAYS_INLINE vf round_t(vf x, int dt) {
    if (dt == MLXQ_BF16) {
        vf r = v_from_bits(vi_slli(bf16_round_bits(x), 16));
        return v_select(v_isnan(x), v_from_bits(vi_set1(0x7FC00000)), r);
    }
    if (dt == MLXQ_F16) {
        /* MLX's float -> float16 writes NaN as sign|0x7D00 (hardware: sign|0x7E00 plus
         * payload); widening that back gives 0x7FE00000 | sign, which later ops propagate */
        vi sign = vi_and(vi_srli(v_bits(x), 16), vi_set1(0x8000));
        vi h = vi_select(v_isnan(x), vi_or(sign, vi_set1(0x7D00)), v_cvt_f16_bits(x));
        return v_from_f16_bits(h);
    }
    return x;
}

ALWAYS_INLINE void store_t(uint8_t *p, vf x, int dt) {
    if (dt == MLXQ_BF16) {
        vi r = vi_select(v_isnan(x), vi_set1(0x7FC0), bf16_round_bits(x));
        vi_store_u16(p, r);
    } else if (dt == MLXQ_F16) {
        vi sign = vi_and(vi_srli(v_bits(x), 16), vi_set1(0x8000));
        vi r = vi_select(v_isnan(x), vi_or(sign, vi_set1(0x7D00)), v_cvt_f16_bits(x));
        vi_store_u16(p, r);
    } else {
        v_store_f32(p, x);
    }
}

/* a * b, a + b with x86's NaN rule pinned down (first operand's NaN wins, quieted): the
 * compiler may commute the operands of the instruction, MLX's output bits depend on it. */
ALWAYS_INLINE vf mul_nan_first(vf a, vf b) {
    return v_select(v_isnan(a), v_from_bits(vi_or(v_bits(a), vi_set1(0x400000))), v_mul(a, b));
}
ALWAYS_INLINE vf add_nan_first(vf a, vf b) {
    return v_select(v_isnan(a), v_from_bits(vi_or(v_bits(a), vi_set1(0x400000))), v_add(a, b));
}

/* ---- the GPU device's arithmetic (kernels.h, "MLX's GPU arithmetic") --------------------- */

/* metal::round: halfway cases away from zero (x - trunc(x) is exact). */
ALWAYS_INLINE vf v_round_away(vf x) {
    const vf t = v_trunc(x);
    const vf step = v_from_bits(vi_or(vi_and(v_bits(x), vi_set1((int32_t)0x80000000)),
                                      v_bits(v_set1(1.0f))));
    return v_select(v_ge(v_abs(v_sub(x, t)), v_set1(0.5f)), v_add(t, step), t);
}

ALWAYS_INLINE vf quiet_v(vf a) { return v_from_bits(vi_or(v_bits(a), vi_set1(0x400000))); }

/* r = op(a, b) under the GPU's NaN rule: the first NaN operand, quieted; a NaN made from
 * numbers becomes +0x7FC00000 (x86 makes the negative one). NaNs are rare: one test. */
ALWAYS_INLINE vf gpu_nan2(vf r, vf a, vf b) {
    const vmask n = v_isnan(r);
    if (!v_mask_any(n))
        return r;
    vf fix = v_select(v_isnan(b), quiet_v(b), v_from_bits(vi_set1(MLXQ_GPU_QNAN)));
    fix = v_select(v_isnan(a), quiet_v(a), fix);
    return v_select(n, fix, r);
}

/* static_cast<T>(float) on the GPU, as T bits in int32 lanes (mlxq_gpu_f32_to_f16/_bf16):
 * x86's vcvtps2ph already keeps a NaN's sign and payload top, quieted. */
ALWAYS_INLINE vi gpu_bits_t(vf x, int dt) {
    if (dt == MLXQ_BF16)
        return vi_select(v_isnan(x), vi_or(vi_srli(v_bits(x), 16), vi_set1(0x40)),
                         bf16_round_bits(x));
    return v_cvt_f16_bits(x);
}
ALWAYS_INLINE vf round_t_gpu(vf x, int dt) {
    if (dt == MLXQ_BF16)
        return v_from_bits(vi_slli(gpu_bits_t(x, dt), 16));
    if (dt == MLXQ_F16)
        return v_from_f16_bits(gpu_bits_t(x, dt));
    return x;
}
ALWAYS_INLINE void store_t_gpu(uint8_t *p, vf x, int dt) {
    if (dt == MLXQ_F32)
        v_store_f32(p, x);
    else
        vi_store_u16(p, gpu_bits_t(x, dt));
}

/* ---- bit packing ----------------------------------------------------------------------- */

/* Packs n codes (one per byte, each < 2^bits, n a multiple of 16) into an LSB-first bit
 * stream of n*bits/8 bytes. */
ALWAYS_INLINE void pack_codes(const uint8_t *codes, int n, int bits, uint8_t *out) {
    if (bits == 8) {
        memcpy(out, codes, (size_t)n);
    } else if (bits == 4) {
        /* byte i = code[2i] | code[2i+1] << 4: a u8 x i8 multiply-add then a narrowing pack */
        const __m128i w = _mm_set1_epi16(0x1001);
        for (int i = 0; i < n; i += 16) {
            __m128i c = _mm_loadu_si128((const __m128i *)(codes + i));
            __m128i pairs = _mm_maddubs_epi16(c, w);
            _mm_storel_epi64((__m128i *)(out + i / 2), _mm_packus_epi16(pairs, pairs));
        }
    } else {
        /* Eight codes in a u64 (one per byte) fold into 8*bits contiguous bits in three
         * steps: pairs of bytes, pairs of 16-bit halves, then the two 32-bit halves. */
        const int k = bits;
        for (int i = 0; i < n; i += 8) {
            uint64_t x;
            memcpy(&x, codes + i, 8);
            x = (x & 0x00FF00FF00FF00FFull) | (((x >> 8) & 0x00FF00FF00FF00FFull) << k);
            x = (x & 0x0000FFFF0000FFFFull) | (((x >> 16) & 0x0000FFFF0000FFFFull) << (2 * k));
            x = (x & 0x00000000FFFFFFFFull) | ((x >> 32) << (4 * k));
            memcpy(out + (size_t)i * k / 8, &x, (size_t)k);
        }
    }
}

/* The inverse: n*bits/8 packed bytes to n codes, one per byte. */
ALWAYS_INLINE void unpack_codes(const uint8_t *in, int n, int bits, uint8_t *codes) {
    if (bits == 8) {
        memcpy(codes, in, (size_t)n);
    } else if (bits == 4) {
        const __m128i lo4 = _mm_set1_epi8(0x0F);
        for (int i = 0; i < n; i += 16) {
            __m128i b = _mm_loadl_epi64((const __m128i *)(in + i / 2));
            __m128i lo = _mm_and_si128(b, lo4);
            __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), lo4);
            _mm_storeu_si128((__m128i *)(codes + i), _mm_unpacklo_epi8(lo, hi));
        }
    } else {
        const int k = bits;
        const uint64_t m2 = ((1ull << (2 * k)) - 1) * 0x0000000100000001ull;
        const uint64_t m1 = ((1ull << k) - 1) * 0x0001000100010001ull;
        for (int i = 0; i < n; i += 8) {
            uint64_t x = 0;
            memcpy(&x, in + (size_t)i * k / 8, (size_t)k);
            x = (x & ((1ull << (4 * k)) - 1)) | ((x >> (4 * k)) << 32);
            x = (x & m2) | (((x >> (2 * k)) & m2) << 16);
            x = (x & m1) | (((x >> k) & m1) << 8);
            memcpy(codes + i, &x, 8);
        }
    }
}

/* ---- affine ---------------------------------------------------------------------------- */

/* mlxq_affine_params on VW groups at once, lane for lane the same operations: the scalar
 * chain of three dependent divisions per group would otherwise bound the whole kernel. */
/* gpu: mlxq_affine_params_gpu instead (max(range / n_bins, eps) with maxNum, round). */
ALWAYS_INLINE void affine_params_v(vf w_min, vf w_max, int bits, vf *scale_out, vf *bias_out,
                                   int gpu) {
    const vf n_bins = v_set1((float)((1u << bits) - 1u)), eps = v_set1(1e-7f);
    vmask mask = v_gt(v_abs(w_min), v_abs(w_max));
    vf scale = v_div(v_sub(w_max, w_min), n_bins);
    /* maxps returns its second operand for a NaN: std::max keeps the NaN, metal::max not */
    scale = gpu ? v_max(scale, eps) : v_select(v_lt(scale, eps), eps, scale);
    scale = v_select(mask, scale, v_neg(scale));
    vf edge = v_select(mask, w_min, w_max);
    vf q0 = gpu ? v_round_away(v_div(edge, scale)) : v_rint(v_div(edge, scale));
    vmask nz = v_neq_uq(q0, v_set1(0.0f)); /* C's q0 != 0 is true for NaN too */
    *scale_out = v_select(nz, v_div(edge, q0), scale);
    *bias_out = v_select(nz, edge, v_set1(0.0f));
    if (gpu) /* only an invalid operation makes a NaN scale: the GPU's default NaN */
        *scale_out = v_select(v_isnan(*scale_out), v_from_bits(vi_set1(MLXQ_GPU_QNAN)),
                              *scale_out);
}

/* gpu: Metal's affine_quantize (mlxq_ref_affine_quant_row_gpu) instead of the CPU's. */
ALWAYS_INLINE void affine_quant_row(const uint8_t *src, int64_t cols, int gs, int bits,
                                    uint8_t *wq, uint8_t *scales, uint8_t *biases, int dt,
                                    int gpu) {
    const size_t esize = mlxq_dtype_size(dt);
    const int nv = gs / VW;
    const int64_t n_groups = cols / gs;
    const vf zero = v_set1(0.0f), nbins = v_set1((float)((1u << bits) - 1u));
    uint8_t codes[128];
    float mins[VW], maxs[VW], sc[VW], bi[VW];
    uint8_t sc_t[VW * 4], bi_t[VW * 4];
    for (int64_t g0 = 0; g0 < n_groups; g0 += VW) {
        const int nb = n_groups - g0 < VW ? (int)(n_groups - g0) : VW;
        /* 1: each group's min and max. Element first in max/min: x86 returns the second
         * operand when one is NaN, so NaN elements never win, as in MLX's
         * `w_max = std::max(w_max, w)` loop. */
        for (int b = 0; b < VW; b++) {
            if (b >= nb) {
                mins[b] = maxs[b] = 0.0f;
                continue;
            }
            const uint8_t *gp = src + (size_t)(g0 + b) * gs * esize;
            /* the GPU's w_max starts at 0, so an all-negative group gets 0 */
            vf mx = v_set1(gpu ? 0.0f : -INFINITY), mn = v_set1(INFINITY);
            for (int i = 0; i < nv; i++) {
                vf x = load_t(gp + (size_t)i * VW * esize, dt);
                mx = v_max(x, mx);
                mn = v_min(x, mn);
            }
            mins[b] = v_hmin(mn);
            maxs[b] = v_hmax(mx);
        }
        /* 2: scales and biases of VW groups together */
        vf vsc, vbi;
        affine_params_v(v_loadu(mins), v_loadu(maxs), bits, &vsc, &vbi, gpu);
        v_storeu(sc, vsc);
        v_storeu(bi, vbi);
        if (gpu) {
            store_t_gpu(sc_t, vsc, dt);
            store_t_gpu(bi_t, vbi, dt);
        } else {
            store_t(sc_t, vsc, dt);
            store_t(bi_t, vbi, dt);
        }
        memcpy(scales + g0 * esize, sc_t, (size_t)nb * esize);
        memcpy(biases + g0 * esize, bi_t, (size_t)nb * esize);
        /* 3: codes. MLX divides by the scale; a divide per element would bound this loop by
         * the divider. y = (w - bias) * (1/scale) is within |y| * 2^-22 of the exact
         * quotient and the rounded quotient within |y| * 2^-24 of it, so rint (and the
         * GPU's round, which differs from it only at halves) agrees whenever y lies
         * farther than |y| * 2^-20 from a half-integer; a group with a lane that does not
         * is redone with the division (rare: ~|y| * 2^-19 per lane). */
        for (int b = 0; b < nb; b++) {
            const uint8_t *gp = src + (size_t)(g0 + b) * gs * esize;
            const float scale = sc[b], bias = bi[b];
            const vf vs = v_set1(scale), vb = v_set1(bias);
            const int recip = isfinite(scale) && isfinite(bias) && fabsf(scale) >= 0x1p-100f;
            const vf vr = v_set1(1.0f / scale);
            vf q[128 / VW];
            vmask close = v_isnan(zero); /* all clear */
            for (int i = 0; i < nv; i++) {
                vf y = v_mul(v_sub(load_t(gp + (size_t)i * VW * esize, dt), vb), vr);
                /* rint for both devices: off the half-integers it equals the GPU's round,
                 * and every lane near one (ties included) is redone below */
                q[i] = v_rint(y);
                vf thr = v_sub(v_set1(0.5f), v_mul(v_abs(y), v_set1(0x1p-20f)));
                close = v_mask_or(close, v_gt(v_abs(v_sub(y, q[i])), thr));
            }
            if (!recip || v_mask_any(close))
                for (int i = 0; i < nv; i++) {
                    vf y = v_div(v_sub(load_t(gp + (size_t)i * VW * esize, dt), vb), vs);
                    q[i] = gpu ? v_round_away(y) : v_rint(y);
                }
            for (int i = 0; i < nv; i++) {
                /* CPU: NaN -> 0 (max's second operand); GPU: min(q, n_bins), a NaN ->
                 * n_bins (min's second operand), never below 0 (mlxq_affine_code_gpu) */
                vf c = gpu ? v_max(v_min(q[i], nbins), zero) : v_min(v_max(q[i], zero), nbins);
                vi_store_u8(codes + i * VW, v_cvt_i32(c));
            }
            pack_codes(codes, gs, bits, wq + (size_t)(g0 + b) * gs * bits / 8);
        }
    }
}

#define AFFINE_QUANT(NAME, DT, GPU)                                                          \
    static void FN(NAME)(const uint8_t *src, int64_t cols, int gs, int bits, uint8_t *wq,     \
                         uint8_t *scales, uint8_t *biases) {                                  \
        affine_quant_row(src, cols, gs, bits, wq, scales, biases, DT, GPU);                   \
    }
AFFINE_QUANT(affine_quant_bf16, MLXQ_BF16, 0)
AFFINE_QUANT(affine_quant_f16, MLXQ_F16, 0)
AFFINE_QUANT(affine_quant_f32, MLXQ_F32, 0)
AFFINE_QUANT(affine_quant_gpu_bf16, MLXQ_BF16, 1)
AFFINE_QUANT(affine_quant_gpu_f16, MLXQ_F16, 1)
AFFINE_QUANT(affine_quant_gpu_f32, MLXQ_F32, 1)
#undef AFFINE_QUANT

/* w = T(T(q * scale) + bias), stored as dtype odt: MLX's multiply then add, each rounded to
 * the scales' dtype T (scales and biases share it on this path). */
ALWAYS_INLINE void affine_dequant_row(const uint8_t *wq, const uint8_t *scales,
                                      const uint8_t *biases, int64_t cols, int gs, int bits,
                                      uint8_t *out, int tdt, int odt) {
    const size_t tsize = mlxq_dtype_size(tdt), osize = mlxq_dtype_size(odt);
    uint8_t codes[128];
    for (int64_t g = 0; g < cols / gs; g++) {
        const vf vs = v_set1((float)mlxq_load_float(scales + g * tsize, tdt));
        const vf vb = v_set1((float)mlxq_load_float(biases + g * tsize, tdt));
        unpack_codes(wq + (size_t)g * gs * bits / 8, gs, bits, codes);
        uint8_t *o = out + (size_t)g * gs * osize;
        for (int i = 0; i < gs; i += VW) {
            vf v = round_t(v_mul(v_load_u8(codes + i), vs), tdt);
            v = round_t(add_nan_first(v, vb), tdt);
            store_t(o + (size_t)i * osize, v, odt);
        }
    }
}

#define AFFINE_DEQUANT(T, TD, O, OD)                                                          \
    static void FN(affine_dequant_##T##_##O)(const uint8_t *wq, const uint8_t *scales,        \
                                             const uint8_t *biases, int64_t cols, int gs,      \
                                             int bits, uint8_t *out) {                         \
        affine_dequant_row(wq, scales, biases, cols, gs, bits, out, TD, OD);                   \
    }
AFFINE_DEQUANT(bf16, MLXQ_BF16, bf16, MLXQ_BF16)
AFFINE_DEQUANT(bf16, MLXQ_BF16, f16, MLXQ_F16)
AFFINE_DEQUANT(bf16, MLXQ_BF16, f32, MLXQ_F32)
AFFINE_DEQUANT(f16, MLXQ_F16, bf16, MLXQ_BF16)
AFFINE_DEQUANT(f16, MLXQ_F16, f16, MLXQ_F16)
AFFINE_DEQUANT(f16, MLXQ_F16, f32, MLXQ_F32)
AFFINE_DEQUANT(f32, MLXQ_F32, bf16, MLXQ_BF16)
AFFINE_DEQUANT(f32, MLXQ_F32, f16, MLXQ_F16)
AFFINE_DEQUANT(f32, MLXQ_F32, f32, MLXQ_F32)
#undef AFFINE_DEQUANT

/* mlxq_gpu_affine_value on every lane: the T value (as floats) of Metal's fused
 * scale * q + bias for codes q (small integers). */
ALWAYS_INLINE vf gpu_affine_value_v(vf q, vf vs, vf vb, int tdt) {
    vf r;
    if (tdt == MLXQ_F32) {
        r = v_fma(q, vs, vb);
    } else if (tdt == MLXQ_BF16) {
        r = v_add(v_mul(q, vs), vb); /* q * s is exact in float */
    } else {
        /* half: the exact q * s + b rounded once. q * s is exact in float; TwoSum gives
         * the sum's rounding error, and an inexact sum that rounded to an even float is
         * moved one ulp towards the exact value (round to odd), so the rounding to half
         * below sees no false tie */
        const vf p = v_mul(q, vs);
        r = v_add(p, vb);
        const vf bb = v_sub(r, p);
        const vf err = v_add(v_sub(p, v_sub(r, bb)), v_sub(vb, bb));
        const vmask fix = v_mask_and(v_neq_oq(err, v_set1(0.0f)),
                                     vi_eq(vi_and(v_bits(r), vi_set1(1)), vi_set1(0)));
        /* same signs: the exact value lies beyond r, away from zero */
        const vmask away = vi_eq(vi_srli(v_bits(err), 31), vi_srli(v_bits(r), 31));
        const vi step = vi_select(away, vi_set1(1), vi_set1(-1));
        r = v_select(fix, v_from_bits(vi_add(v_bits(r), step)), r);
    }
    /* NaN: scale's, else bias's, else (inf * 0, inf - inf) the default NaN */
    return round_t_gpu(gpu_nan2(r, vs, vb), tdt);
}

/* Metal's affine_dequantize then astype (mlxq_ref_affine_dequant_row_gpu): the T value of
 * the fused scale * q + bias (mlxq_gpu_affine_value), stored as dtype odt. */
ALWAYS_INLINE void affine_dequant_row_gpu(const uint8_t *wq, const uint8_t *scales,
                                          const uint8_t *biases, int64_t cols, int gs,
                                          int bits, uint8_t *out, int tdt, int odt) {
    const size_t tsize = mlxq_dtype_size(tdt), osize = mlxq_dtype_size(odt);
    uint8_t codes[128];
    for (int64_t g = 0; g < cols / gs; g++) {
        const float s = (float)mlxq_load_float(scales + g * tsize, tdt);
        const float b = (float)mlxq_load_float(biases + g * tsize, tdt);
        uint8_t *o = out + (size_t)g * gs * osize;
        if (isnan(s) || isnan(b)) { /* the whole group is that NaN */
            const vf v = v_set1(mlxq_gpu_affine_value(tdt, s, 0.0f, b));
            for (int i = 0; i < gs; i += VW)
                store_t_gpu(o + (size_t)i * osize, v, odt);
            continue;
        }
        const vf vs = v_set1(s), vb = v_set1(b);
        unpack_codes(wq + (size_t)g * gs * bits / 8, gs, bits, codes);
        for (int i = 0; i < gs; i += VW) {
            const vf v = gpu_affine_value_v(v_load_u8(codes + i), vs, vb, tdt);
            store_t_gpu(o + (size_t)i * osize, v, odt);
        }
    }
}

#define AFFINE_DEQUANT_GPU(T, TD, O, OD)                                                      \
    static void FN(affine_dequant_gpu_##T##_##O)(const uint8_t *wq, const uint8_t *scales,    \
                                                 const uint8_t *biases, int64_t cols, int gs,  \
                                                 int bits, uint8_t *out) {                     \
        affine_dequant_row_gpu(wq, scales, biases, cols, gs, bits, out, TD, OD);               \
    }
AFFINE_DEQUANT_GPU(bf16, MLXQ_BF16, bf16, MLXQ_BF16)
AFFINE_DEQUANT_GPU(bf16, MLXQ_BF16, f16, MLXQ_F16)
AFFINE_DEQUANT_GPU(bf16, MLXQ_BF16, f32, MLXQ_F32)
AFFINE_DEQUANT_GPU(f16, MLXQ_F16, bf16, MLXQ_BF16)
AFFINE_DEQUANT_GPU(f16, MLXQ_F16, f16, MLXQ_F16)
AFFINE_DEQUANT_GPU(f16, MLXQ_F16, f32, MLXQ_F32)
AFFINE_DEQUANT_GPU(f32, MLXQ_F32, bf16, MLXQ_BF16)
AFFINE_DEQUANT_GPU(f32, MLXQ_F32, f16, MLXQ_F16)
AFFINE_DEQUANT_GPU(f32, MLXQ_F32, f32, MLXQ_F32)
#undef AFFINE_DEQUANT_GPU

/* ---- fp formats ------------------------------------------------------------------------ */

/* MLX's ToFP8 on every lane (see mlxq_f32_to_e4m3), as int32 lanes holding the byte. */
ALWAYS_INLINE vi to_e4m3(vf v) {
    vi u = v_bits(v);
    vi sign = vi_and(u, vi_set1((int32_t)0x80000000));
    vi a = vi_sub(u, sign);
    vi low = vi_sub(v_bits(v_add(v_from_bits(a), v_from_bits(vi_set1(141 << 23)))),
                    vi_set1(141 << 23));
    vi odd = vi_and(vi_srli(a, 20), vi_set1(1));
    vi high = vi_srli(vi_add(vi_add(a, vi_set1((int32_t)(((uint32_t)(7 - 127) << 23) + 0x7FFFFu))), odd), 20);
    vi r = vi_select(vi_lt_u(a, vi_set1(121 << 23)), low, high);
    r = vi_select(vi_ge_u(a, vi_set1(543 << 21)), vi_set1(0x7E), r);
    return vi_or(vi_and(r, vi_set1(0xFF)), vi_srli(sign, 24));
}

/* MLX's FromFP8 on int32 lanes holding bytes: a half with the 7 magnitude bits, times 256,
 * the byte's sign; 0x7F/0xFF are NaN. */
ALWAYS_INLINE vf from_e4m3(vi b) {
    vi mag = vi_and(b, vi_set1(127));
    vf f = v_mul(v_from_f16_bits(vi_slli(mag, 7)), v_set1(256.0f));
    f = v_select(vi_eq(mag, vi_set1(127)), v_from_bits(vi_set1(0x7FF00000)), f);
    return v_from_bits(vi_or(v_bits(f), vi_slli(vi_and(b, vi_set1(128)), 24)));
}

/* argmin_k |v - LUT[k]| in float32, ties to the lowest k: MLX's ArgMin over float diffs. */
ALWAYS_INLINE vi fp4_argmin_f32(vf v) {
    vf best = v_abs(v_sub(v, v_set1(mlxq_fp4_lut[0])));
    vi idx = vi_set1(0);
    for (int k = 1; k < 16; k++) {
        vf d = v_abs(v_sub(v, v_set1(mlxq_fp4_lut[k])));
        vmask m = v_lt(d, best);
        best = v_select(m, d, best);
        idx = vi_select(m, vi_set1(k), idx);
    }
    return idx;
}

/* 16-bit dtypes: the E2M1 code of every bf16/f16 bit pattern, built from the reference
 * mlxq_fp4_code, so the table lookup is the reference by construction. */
ALWAYS_INLINE void fp4_codes_16bit(vf v, int dt, uint8_t *codes) {
    const uint8_t *table = mlxq_fp4_code_table(dt);
    uint16_t h[VW];
    vi bits = dt == MLXQ_BF16 ? vi_srli(v_bits(v), 16) : v_cvt_f16_bits(v);
    vi_store_u16((uint8_t *)h, bits);
    for (int i = 0; i < VW; i++)
        codes[i] = table[h[i]];
}

ALWAYS_INLINE void fp_quant_row(const mlxq_qparams *p, const uint8_t *src, int64_t cols,
                                uint8_t *wq, uint8_t *scales, int dt) {
    const int gs = p->group_size, nv = gs / VW;
    const int fp8 = p->bits == 8, nvfp = p->mode == MLXQ_MODE_NVFP4;
    const size_t esize = mlxq_dtype_size(dt);
    const double enc = mlxq_nv_encode(p);
    const vf venc = v_set1((float)enc);
    /* enc is exactly 1 without a global scale: the nvfp4 step is then a table too */
    const mlxq_mx_scale_table *tab16 =
        dt == MLXQ_F32 || (nvfp && enc != 1.0) ? NULL
                                                : mlxq_scale_table_for(dt, nvfp ? 2 : fp8);
    uint8_t codes[32];
    vf x[32 / VW];
    for (int64_t g = 0; g < cols / gs; g++) {
        const uint8_t *gp = src + (size_t)g * gs * esize;
        vf m = v_set1(-INFINITY);
        vmask nan = v_isnan(m);
        for (int i = 0; i < nv; i++) {
            x[i] = load_t(gp + (size_t)i * VW * esize, dt);
            nan = v_mask_or(nan, v_isnan(x[i]));
            m = v_max(v_abs(x[i]), m);
        }
        const int any_nan = v_mask_any(nan);
        double amax = any_nan ? NAN : (double)v_hmax(m);
        double divisor;
        if (tab16) {
            /* amax is one of the group's bf16/f16 values: look its step up */
            uint16_t h = any_nan ? (dt == MLXQ_BF16 ? 0x7FC0 : 0x7E00)
                         : dt == MLXQ_BF16 ? (uint16_t)(mlxq_f32_bits((float)amax) >> 16)
                                           : mlxq_f32_to_f16((float)amax);
            scales[g] = tab16->byte[h];
            divisor = tab16->divisor[h];
        } else if (nvfp) {
            mlxq_nv_group_scale(dt, amax, enc, &divisor, &scales[g]);
        } else {
            mlxq_mx_group_scale(dt, amax, fp8, &divisor, &scales[g]);
        }
        const vf vd = v_set1((float)divisor);
        for (int i = 0; i < nv; i++) {
            vf v = round_t(v_div(x[i], vd), dt);
            if (nvfp)
                vi_store_u8(codes + i * VW, fp4_argmin_f32(v_mul(v, venc)));
            else if (fp8)
                vi_store_u8(codes + i * VW, to_e4m3(v));
            else if (dt == MLXQ_F32)
                vi_store_u8(codes + i * VW, fp4_argmin_f32(v));
            else
                fp4_codes_16bit(v, dt, codes + i * VW);
        }
        pack_codes(codes, gs, p->bits, wq + (size_t)g * gs * p->bits / 8);
    }
}

static void FN(fp_quant_bf16)(const mlxq_qparams *p, const uint8_t *src, int64_t cols,
                              uint8_t *wq, uint8_t *scales) {
    fp_quant_row(p, src, cols, wq, scales, MLXQ_BF16);
}
static void FN(fp_quant_f16)(const mlxq_qparams *p, const uint8_t *src, int64_t cols,
                             uint8_t *wq, uint8_t *scales) {
    fp_quant_row(p, src, cols, wq, scales, MLXQ_F16);
}
static void FN(fp_quant_f32)(const mlxq_qparams *p, const uint8_t *src, int64_t cols,
                             uint8_t *wq, uint8_t *scales) {
    fp_quant_row(p, src, cols, wq, scales, MLXQ_F32);
}

/* odt: the dtype asked for (the element values are rounded to it first, as MLX's LUT and
 * from_fp8 produce it); rdt: the result dtype (float32 for nvfp4 with a global scale). */
ALWAYS_INLINE void fp_dequant_row(const mlxq_qparams *p, const uint8_t *wq,
                                  const uint8_t *scales, int64_t cols, uint8_t *out, int odt,
                                  int rdt) {
    const int gs = p->group_size, fp8 = p->bits == 8;
    const size_t rsize = mlxq_dtype_size(rdt);
    uint8_t codes[32];
    for (int64_t g = 0; g < cols / gs; g++) {
        const vf sc = v_set1((float)mlxq_fp_dequant_scale(p, odt, scales[g]));
        unpack_codes(wq + (size_t)g * gs * p->bits / 8, gs, p->bits, codes);
        uint8_t *o = out + (size_t)g * gs * rsize;
        for (int i = 0; i < gs; i += VW) {
            vi c = v_cvt_i32(v_load_u8(codes + i));
            vf v = fp8 ? round_t(from_e4m3(c), odt) : v_lut16(mlxq_fp4_lut, c);
            store_t(o + (size_t)i * rsize, round_t(mul_nan_first(v, sc), rdt), rdt);
        }
    }
}

/* fp4_e2m1 on every lane (mlxq_gpu_fp4_code): a count of the thresholds |x| passes (the
 * E2M1 midpoints, > or >= for ties to the even code), NaN -> 7, the sign from signbit. */
ALWAYS_INLINE vi gpu_fp4_codes(vf x) {
    static const float lim[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    const vf a = v_abs(x);
    vi c = vi_set1(0);
    for (int k = 0; k < 7; k++) {
        const vmask pass = (k & 1) ? v_ge(a, v_set1(lim[k])) : v_gt(a, v_set1(lim[k]));
        c = vi_add(c, vi_select(pass, vi_set1(1), vi_set1(0)));
    }
    c = vi_or(c, vi_and(vi_srli(v_bits(x), 28), vi_set1(8)));
    return vi_select(v_isnan(x), vi_set1(7), c);
}

/* Metal's fp_quantize (mlxq_ref_fp_quant_row_gpu): the group's amax by maxNum, the scale
 * step by the reference's own mlxq_gpu_fp_group_scale, the elements times its factor. */
ALWAYS_INLINE void fp_quant_row_gpu(const mlxq_qparams *p, const uint8_t *src, int64_t cols,
                                    uint8_t *wq, uint8_t *scales, int dt) {
    const int gs = p->group_size, nv = gs / VW;
    const int fp8 = p->bits == 8, nvfp = p->mode == MLXQ_MODE_NVFP4;
    const size_t esize = mlxq_dtype_size(dt);
    const float enc = p->has_global_scale ? mlxq_gpu_div(2688.0f, p->global_scale) : 1.0f;
    uint8_t codes[32];
    vf x[32 / VW];
    for (int64_t g = 0; g < cols / gs; g++) {
        const uint8_t *gp = src + (size_t)g * gs * esize;
        /* maxps returns its second operand for a NaN lane: NaN elements never win; mx
         * starts below every |w| so that a group of NaNs is left at -inf, i.e. NaN */
        vf m = v_set1(nvfp ? 0.0f : -INFINITY);
        for (int i = 0; i < nv; i++) {
            x[i] = load_t(gp + (size_t)i * VW * esize, dt);
            m = v_max(v_abs(x[i]), m);
        }
        float amax = v_hmax(m);
        if (amax == -INFINITY)
            amax = NAN;
        float factor;
        mlxq_gpu_fp_group_scale(p, amax, enc, &scales[g], &factor);
        const vf vf_ = v_set1(factor);
        for (int i = 0; i < nv; i++) {
            const vf v = gpu_nan2(v_mul(x[i], vf_), x[i], vf_);
            vi_store_u8(codes + i * VW, fp8 ? to_e4m3(v) : gpu_fp4_codes(v));
        }
        pack_codes(codes, gs, p->bits, wq + (size_t)g * gs * p->bits / 8);
    }
}

/* Metal's fp_dequantize (mlxq_ref_fp_dequant_row_gpu): static_cast<T>(scale * value). */
ALWAYS_INLINE void fp_dequant_row_gpu(const mlxq_qparams *p, const uint8_t *wq,
                                      const uint8_t *scales, int64_t cols, uint8_t *out,
                                      int odt) {
    const int gs = p->group_size, fp8 = p->bits == 8;
    const size_t osize = mlxq_dtype_size(odt);
    uint8_t codes[32];
    for (int64_t g = 0; g < cols / gs; g++) {
        const vf sc = v_set1(mlxq_gpu_fp_dequant_scale(p, scales[g]));
        unpack_codes(wq + (size_t)g * gs * p->bits / 8, gs, p->bits, codes);
        uint8_t *o = out + (size_t)g * gs * osize;
        for (int i = 0; i < gs; i += VW) {
            vi c = v_cvt_i32(v_load_u8(codes + i));
            vf v = fp8 ? from_e4m3(c) : v_lut16(mlxq_fp4_lut, c);
            store_t_gpu(o + (size_t)i * osize, gpu_nan2(v_mul(sc, v), sc, v), odt);
        }
    }
}

#define FP_GPU(T, TD)                                                                         \
    static void FN(fp_quant_gpu_##T)(const mlxq_qparams *p, const uint8_t *src, int64_t cols,  \
                                     uint8_t *wq, uint8_t *scales) {                           \
        fp_quant_row_gpu(p, src, cols, wq, scales, TD);                                        \
    }                                                                                          \
    static void FN(fp_dequant_gpu_##T)(const mlxq_qparams *p, const uint8_t *wq,               \
                                       const uint8_t *scales, int64_t cols, uint8_t *out) {    \
        fp_dequant_row_gpu(p, wq, scales, cols, out, TD);                                      \
    }
FP_GPU(bf16, MLXQ_BF16)
FP_GPU(f16, MLXQ_F16)
FP_GPU(f32, MLXQ_F32)
#undef FP_GPU

#define FP_DEQUANT(O, OD, R, RD)                                                              \
    static void FN(fp_dequant_##O##_##R)(const mlxq_qparams *p, const uint8_t *wq,            \
                                         const uint8_t *scales, int64_t cols, uint8_t *out) {  \
        fp_dequant_row(p, wq, scales, cols, out, OD, RD);                                      \
    }
FP_DEQUANT(bf16, MLXQ_BF16, bf16, MLXQ_BF16)
FP_DEQUANT(f16, MLXQ_F16, f16, MLXQ_F16)
FP_DEQUANT(f32, MLXQ_F32, f32, MLXQ_F32)
FP_DEQUANT(bf16, MLXQ_BF16, f32, MLXQ_F32) /* nvfp4 with a global scale */
FP_DEQUANT(f16, MLXQ_F16, f32, MLXQ_F32)
#undef FP_DEQUANT

/* ---- E4M3 checkpoints (mlxq_fp8.h) ----------------------------------------------------- */

/* from_fp8(code, bfloat16) widened back to float: every finite E4M3 value is exact in
 * bfloat16, so only the NaN codes change, to bfloat16's positive NaN. */
ALWAYS_INLINE vf e4m3_as_bf16(vi b) {
    vf f = from_e4m3(b);
    return v_select(v_isnan(f), v_from_bits(vi_set1(0x7FC00000)), f);
}

ALWAYS_INLINE void fp8_dequant_run(const uint8_t *w, const float *s, int s_step, int64_t n,
                                   uint8_t *out, int pdt, int odt) {
    const size_t osize = mlxq_dtype_size(odt);
    int64_t i = 0;
    if (s_step == 0) {
        const vf vs = v_set1(s[0]);
        for (; i + VW <= n; i += VW) {
            vf p = round_t(mul_nan_first(e4m3_as_bf16(vi_load_u8(w + i)), vs), pdt);
            store_t(out + (size_t)i * osize, p, odt);
        }
    } else {
        for (; i + VW <= n; i += VW) {
            vf p = round_t(mul_nan_first(e4m3_as_bf16(vi_load_u8(w + i)), v_loadu(s + i)), pdt);
            store_t(out + (size_t)i * osize, p, odt);
        }
    }
    for (; i < n; i++) /* tail: the reference element */
        mlxq_store_float(out + (size_t)i * osize, odt,
                         mlxq_fp8_scaled_value(w[i], s[i * s_step], pdt));
}

#define FP8_DEQUANT(P, PD, O, OD)                                                             \
    static void FN(fp8_dequant_##P##_##O)(const uint8_t *w, const float *s, int s_step,       \
                                          int64_t n, uint8_t *out) {                           \
        fp8_dequant_run(w, s, s_step, n, out, PD, OD);                                         \
    }
FP8_DEQUANT(bf16, MLXQ_BF16, bf16, MLXQ_BF16)
FP8_DEQUANT(bf16, MLXQ_BF16, f16, MLXQ_F16)
FP8_DEQUANT(bf16, MLXQ_BF16, f32, MLXQ_F32)
FP8_DEQUANT(f32, MLXQ_F32, bf16, MLXQ_BF16)
FP8_DEQUANT(f32, MLXQ_F32, f16, MLXQ_F16)
FP8_DEQUANT(f32, MLXQ_F32, f32, MLXQ_F32)
#undef FP8_DEQUANT

/* ---- compressed-tensors pack-quantized (mlxq_packint.h) -------------------------------- */

ALWAYS_INLINE void packint_dequant_row(const uint8_t *packed, int bits, const float *s,
                                       int64_t group_size, int64_t n, uint8_t *codes,
                                       uint8_t *out, int sdt, int odt) {
    const size_t osize = mlxq_dtype_size(odt);
    const int off = 1 << (bits - 1);
    const vf voff = v_set1((float)off);
    unpack_codes(packed, (int)((n + 15) / 16 * 16), bits, codes);
    for (int64_t g0 = 0, gi = 0; g0 < n; g0 += group_size, gi++) {
        const int64_t g1 = n - g0 < group_size ? n : g0 + group_size;
        const vf vs = v_set1(s[gi]);
        int64_t i = g0;
        for (; i + VW <= g1; i += VW) {
            vf q = v_sub(v_load_u8(codes + i), voff); /* exact: small integers */
            store_t(out + (size_t)i * osize, round_t(v_mul(q, vs), sdt), odt);
        }
        for (; i < g1; i++)
            mlxq_store_float(out + (size_t)i * osize, odt,
                             mlxq_packint_value((int)codes[i] - off, s[gi], sdt));
    }
}

#define PACKINT_DEQUANT(S, SD, O, OD)                                                         \
    static void FN(packint_dequant_##S##_##O)(const uint8_t *packed, int bits, const float *s, \
                                              int64_t group_size, int64_t n, uint8_t *codes,   \
                                              uint8_t *out) {                                  \
        packint_dequant_row(packed, bits, s, group_size, n, codes, out, SD, OD);               \
    }
PACKINT_DEQUANT(bf16, MLXQ_BF16, bf16, MLXQ_BF16)
PACKINT_DEQUANT(bf16, MLXQ_BF16, f16, MLXQ_F16)
PACKINT_DEQUANT(bf16, MLXQ_BF16, f32, MLXQ_F32)
PACKINT_DEQUANT(f16, MLXQ_F16, bf16, MLXQ_BF16)
PACKINT_DEQUANT(f16, MLXQ_F16, f16, MLXQ_F16)
PACKINT_DEQUANT(f16, MLXQ_F16, f32, MLXQ_F32)
PACKINT_DEQUANT(f32, MLXQ_F32, bf16, MLXQ_BF16)
PACKINT_DEQUANT(f32, MLXQ_F32, f16, MLXQ_F16)
PACKINT_DEQUANT(f32, MLXQ_F32, f32, MLXQ_F32)
#undef PACKINT_DEQUANT

/* ---- casts ------------------------------------------------------------------------------ */

ALWAYS_INLINE void cast_run(const uint8_t *src, uint8_t *dst, int64_t n, int from, int to) {
    const size_t ss = mlxq_dtype_size(from), ds = mlxq_dtype_size(to);
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        store_t(dst + i * ds, load_t(src + i * ss, from), to);
    for (; i < n; i++) /* tail: the scalar conversions, same rounding */
        mlxq_store_float(dst + i * ds, to, mlxq_load_float(src + i * ss, from));
}

#define CAST(A, AD, B, BD)                                                                    \
    static void FN(cast_##A##_##B)(const uint8_t *src, uint8_t *dst, int64_t n) {              \
        cast_run(src, dst, n, AD, BD);                                                         \
    }
CAST(f32, MLXQ_F32, bf16, MLXQ_BF16)
CAST(f32, MLXQ_F32, f16, MLXQ_F16)
CAST(bf16, MLXQ_BF16, f32, MLXQ_F32)
CAST(bf16, MLXQ_BF16, f16, MLXQ_F16)
CAST(f16, MLXQ_F16, f32, MLXQ_F32)
CAST(f16, MLXQ_F16, bf16, MLXQ_BF16)
#undef CAST

/* ---- the table the dispatcher reads ------------------------------------------------------ */

static const mlxq_fast_kernels FN(kernels) = {
    .affine_quant = {[MLXQ_BF16] = FN(affine_quant_bf16), [MLXQ_F16] = FN(affine_quant_f16),
                     [MLXQ_F32] = FN(affine_quant_f32)},
    .affine_dequant =
        {
            [MLXQ_BF16] = {[MLXQ_BF16] = FN(affine_dequant_bf16_bf16),
                           [MLXQ_F16] = FN(affine_dequant_bf16_f16),
                           [MLXQ_F32] = FN(affine_dequant_bf16_f32)},
            [MLXQ_F16] = {[MLXQ_BF16] = FN(affine_dequant_f16_bf16),
                          [MLXQ_F16] = FN(affine_dequant_f16_f16),
                          [MLXQ_F32] = FN(affine_dequant_f16_f32)},
            [MLXQ_F32] = {[MLXQ_BF16] = FN(affine_dequant_f32_bf16),
                          [MLXQ_F16] = FN(affine_dequant_f32_f16),
                          [MLXQ_F32] = FN(affine_dequant_f32_f32)},
        },
    .fp_quant = {[MLXQ_BF16] = FN(fp_quant_bf16), [MLXQ_F16] = FN(fp_quant_f16),
                 [MLXQ_F32] = FN(fp_quant_f32)},
    .fp_dequant =
        {
            [MLXQ_BF16] = {[MLXQ_BF16] = FN(fp_dequant_bf16_bf16),
                           [MLXQ_F32] = FN(fp_dequant_bf16_f32)},
            [MLXQ_F16] = {[MLXQ_F16] = FN(fp_dequant_f16_f16), [MLXQ_F32] = FN(fp_dequant_f16_f32)},
            [MLXQ_F32] = {[MLXQ_F32] = FN(fp_dequant_f32_f32)},
        },
    .cast =
        {
            [MLXQ_F32] = {[MLXQ_BF16] = FN(cast_f32_bf16), [MLXQ_F16] = FN(cast_f32_f16)},
            [MLXQ_BF16] = {[MLXQ_F32] = FN(cast_bf16_f32), [MLXQ_F16] = FN(cast_bf16_f16)},
            [MLXQ_F16] = {[MLXQ_F32] = FN(cast_f16_f32), [MLXQ_F16] = NULL,
                          [MLXQ_BF16] = FN(cast_f16_bf16)},
        },
    .fp8_dequant =
        {
            [MLXQ_BF16] = {[MLXQ_BF16] = FN(fp8_dequant_bf16_bf16),
                           [MLXQ_F16] = FN(fp8_dequant_bf16_f16),
                           [MLXQ_F32] = FN(fp8_dequant_bf16_f32)},
            [MLXQ_F32] = {[MLXQ_BF16] = FN(fp8_dequant_f32_bf16),
                          [MLXQ_F16] = FN(fp8_dequant_f32_f16),
                          [MLXQ_F32] = FN(fp8_dequant_f32_f32)},
        },
    .packint_dequant =
        {
            [MLXQ_BF16] = {[MLXQ_BF16] = FN(packint_dequant_bf16_bf16),
                           [MLXQ_F16] = FN(packint_dequant_bf16_f16),
                           [MLXQ_F32] = FN(packint_dequant_bf16_f32)},
            [MLXQ_F16] = {[MLXQ_BF16] = FN(packint_dequant_f16_bf16),
                          [MLXQ_F16] = FN(packint_dequant_f16_f16),
                          [MLXQ_F32] = FN(packint_dequant_f16_f32)},
            [MLXQ_F32] = {[MLXQ_BF16] = FN(packint_dequant_f32_bf16),
                          [MLXQ_F16] = FN(packint_dequant_f32_f16),
                          [MLXQ_F32] = FN(packint_dequant_f32_f32)},
        },
    .affine_quant_gpu = {[MLXQ_BF16] = FN(affine_quant_gpu_bf16),
                         [MLXQ_F16] = FN(affine_quant_gpu_f16),
                         [MLXQ_F32] = FN(affine_quant_gpu_f32)},
    .affine_dequant_gpu =
        {
            [MLXQ_BF16] = {[MLXQ_BF16] = FN(affine_dequant_gpu_bf16_bf16),
                           [MLXQ_F16] = FN(affine_dequant_gpu_bf16_f16),
                           [MLXQ_F32] = FN(affine_dequant_gpu_bf16_f32)},
            [MLXQ_F16] = {[MLXQ_BF16] = FN(affine_dequant_gpu_f16_bf16),
                          [MLXQ_F16] = FN(affine_dequant_gpu_f16_f16),
                          [MLXQ_F32] = FN(affine_dequant_gpu_f16_f32)},
            [MLXQ_F32] = {[MLXQ_BF16] = FN(affine_dequant_gpu_f32_bf16),
                          [MLXQ_F16] = FN(affine_dequant_gpu_f32_f16),
                          [MLXQ_F32] = FN(affine_dequant_gpu_f32_f32)},
        },
    .fp_quant_gpu = {[MLXQ_BF16] = FN(fp_quant_gpu_bf16), [MLXQ_F16] = FN(fp_quant_gpu_f16),
                     [MLXQ_F32] = FN(fp_quant_gpu_f32)},
    .fp_dequant_gpu = {[MLXQ_BF16] = FN(fp_dequant_gpu_bf16),
                       [MLXQ_F16] = FN(fp_dequant_gpu_f16),
                       [MLXQ_F32] = FN(fp_dequant_gpu_f32)},
};
