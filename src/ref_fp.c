/*
 * ref_fp.c - the executable specification of MLX's mxfp4, mxfp8 and nvfp4 on the CPU.
 *
 * On the CPU, MLX 0.32 computes these formats with a graph of ordinary ops (the fallback in
 * mlx::core::fp_quantize / fp_dequantize), each of which rounds its result to its output
 * dtype. This file replays that graph op by op, with the dtype every op produces under MLX's
 * type promotion:
 *   T = the input dtype; P = promote(T, float32), which is float32 unless T is float64.
 *   scales   = max|w| / maxval                                      (T; NaN propagates)
 *   mx:      e = scales == 0 ? 0 : T(int32(ceil(log2(scales))))    (T; int32 cast as x86;
 *            the ceiling is exact: the smallest power of two >= scales, for any finite
 *            scales, subnormals included; NaN and inf give INT32_MIN)
 *            w' = w / 2^e (T);  scale byte = uint8(int32(e + 127))  (wraps modulo 256)
 *   nv:      s8 = E4M3(scales * enc) with enc = 1 or 2688 / global_scale (P)
 *            w' = (w / T(E4M3 value)) * enc                         (T, then P)
 *   fp4:     code = argmin_k |w' - LUT[k]|, ties to the lowest k    (in w's dtype)
 *   fp8:     code = E4M3(w')
 * Dequantize mirrors fp_dequantize: LUT or E4M3 value times 2^(byte-127) (mx) or the E4M3
 * scale (nv), in the output dtype; with a global scale, the product is promoted to P.
 */
#include "kernels.h"

const float mlxq_fp4_lut[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* MLX 0.32.4 rounds the E8M0 scale up to a power of two exactly, so frexp, not a rounded
 * log2, is the specification: s = m * 2^E with m in [0.5, 1), and the ceiling of log2(s)
 * is E - 1 when m is exactly 0.5, else E. Non-finite s follows the int32 cast of a NaN or
 * infinite log2 (x86: INT32_MIN). Observed on the wheel, not read from source: the source
 * we could read (MLX main, 2026-08) still rounded log2 to nearest. */
static int32_t ceil_log2_exact(double s) {
    if (!isfinite(s))
        return INT32_MIN;
    int E;
    double m = frexp(s, &E);
    return m == 0.5 ? E - 1 : E;
}

static double pow2_as(mlxq_dtype t, double e) {
    return t == MLXQ_F64 ? pow(2.0, e) : (double)powf(2.0f, (float)e);
}

static int32_t to_i32_as(mlxq_dtype t, double x) {
    return t == MLXQ_F64 ? mlxq_f64_to_i32_x86(x) : mlxq_f32_to_i32_x86((float)x);
}

static uint8_t fp4_code(mlxq_dtype ct, double v) {
    double best = fabs(mlxq_round_to(ct, v - mlxq_fp4_lut[0]));
    int idx = 0;
    for (int k = 1; k < 16; k++) {
        double d = fabs(mlxq_round_to(ct, v - mlxq_fp4_lut[k]));
        if (d < best) { /* MLX's ArgMin: strict less, so ties keep the lowest index */
            best = d;
            idx = k;
        }
    }
    return (uint8_t)idx;
}

static float nv_encode(const mlxq_qparams *p) {
    /* divide(array(448.0f * 6.0f, float32), global_scale): a float32 division */
    return p->has_global_scale ? 2688.0f / p->global_scale : 1.0f;
}

void mlxq_ref_fp_quant_row(const mlxq_qparams *p, mlxq_dtype T, const uint8_t *src,
                           int64_t stride, int64_t cols, uint8_t *wq, uint8_t *scales) {
    const int gs = p->group_size;
    const int fp8 = p->bits == 8;
    const int nv = p->mode == MLXQ_MODE_NVFP4;
    const double maxval = fp8 ? 448.0 : 6.0;
    const mlxq_dtype P = T == MLXQ_F64 ? MLXQ_F64 : MLXQ_F32;
    const double enc = nv_encode(p);

    for (int64_t g = 0; g < cols / gs; g++) {
        const uint8_t *gp = src + g * gs * stride;
        uint8_t *out = wq + g * gs * p->bits / 8;
        /* max(abs(w)): MLX's MaxReduce propagates NaN */
        double m = -INFINITY;
        int any_nan = 0;
        for (int j = 0; j < gs; j++) {
            double a = fabs(mlxq_load_float(gp + j * stride, T));
            if (isnan(a))
                any_nan = 1;
            else if (a > m)
                m = a;
        }
        if (any_nan)
            m = NAN;
        double s = mlxq_round_to(T, m / maxval);

        if (nv) {
            uint8_t s8 = mlxq_f32_to_e4m3((float)mlxq_round_to(P, s * enc));
            double dec = mlxq_round_to(T, mlxq_e4m3_to_f32(s8));
            scales[g] = s8;
            for (int j = 0; j < gs; j += 2) {
                uint8_t c[2];
                for (int h = 0; h < 2; h++) {
                    double v = mlxq_round_to(T, mlxq_load_float(gp + (j + h) * stride, T) / dec);
                    v = mlxq_round_to(P, v * enc);
                    c[h] = fp4_code(P, v);
                }
                out[j / 2] = (uint8_t)(c[0] | (c[1] << 4));
            }
            continue;
        }

        double e = 0.0;
        if (s != 0.0)
            e = mlxq_round_to(T, (double)ceil_log2_exact(s));
        double pw = mlxq_round_to(T, pow2_as(T, e));
        scales[g] = (uint8_t)to_i32_as(T, mlxq_round_to(T, e + 127.0));
        for (int j = 0; j < gs; j++) {
            double v = mlxq_round_to(T, mlxq_load_float(gp + j * stride, T) / pw);
            if (fp8) {
                out[j] = mlxq_f32_to_e4m3((float)v);
            } else if (j & 1) {
                out[j / 2] |= (uint8_t)(fp4_code(T, v) << 4);
            } else {
                out[j / 2] = fp4_code(T, v);
            }
        }
    }
}

void mlxq_ref_fp_dequant_row(const mlxq_qparams *p, const uint8_t *wq, int64_t wq_stride,
                             const uint8_t *scales, int64_t s_stride, int64_t cols,
                             mlxq_dtype O, uint8_t *out) {
    const int gs = p->group_size;
    const int fp8 = p->bits == 8;
    const int nv = p->mode == MLXQ_MODE_NVFP4;
    const mlxq_dtype R = mlxq_dequantize_result_dtype(p, O);
    const size_t rsize = mlxq_dtype_size(R);
    /* inv_scale_enc = global_scale (float32) / 2688 (in O): computed in promote(O, f32) */
    const double inv = p->has_global_scale ? mlxq_round_to(R, (double)p->global_scale / 2688.0)
                                           : 1.0;
    for (int64_t g = 0; g < cols / gs; g++) {
        uint8_t sb = scales[g * s_stride];
        double sc;
        if (nv) {
            sc = mlxq_round_to(O, mlxq_e4m3_to_f32(sb));
            if (p->has_global_scale)
                sc = mlxq_round_to(R, sc * inv);
        } else {
            sc = mlxq_round_to(O, pow2_as(O, mlxq_round_to(O, (double)sb - 127.0)));
        }
        for (int j = 0; j < gs; j++) {
            int64_t k = g * gs + j;
            int64_t byte = fp8 ? k : k / 2;
            uint32_t word;
            memcpy(&word, wq + (byte / 4) * wq_stride, 4);
            uint8_t b = (uint8_t)(word >> (8 * (byte % 4)));
            double v;
            if (fp8)
                v = mlxq_round_to(O, mlxq_e4m3_to_f32(b));
            else
                v = mlxq_fp4_lut[(k & 1) ? (b >> 4) : (b & 15)];
            mlxq_store_float(out + k * rsize, R, mlxq_round_to(R, v * sc));
        }
    }
}
