/*
 * ref_fp.c - the executable specification of MLX's mxfp4, mxfp8 and nvfp4 on the CPU.
 *
 * On the CPU, MLX 0.32 computes these formats with a graph of ordinary ops (the fallback in
 * mlx::core::fp_quantize / fp_dequantize), each of which rounds its result to its output
 * dtype. This file replays that graph op by op, with the dtype every op produces under MLX's
 * type promotion:
 *   T = the input dtype, except that float64 input is quantized exactly as its float32
 *   rounding would be (observed on MLX 0.32.4 over thousands of cases, tiny and huge
 *   magnitudes included); P = promote(T, float32) = float32.
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

double mlxq_nv_encode(const mlxq_qparams *p) {
    /* divide(array(448.0f * 6.0f, float32), global_scale): a float32 division */
    return p->has_global_scale ? 2688.0f / p->global_scale : 1.0f;
}

uint8_t mlxq_fp4_code(mlxq_dtype ct, double v) {
    return fp4_code(ct, v);
}

void mlxq_mx_group_scale(mlxq_dtype T, double amax, int fp8, double *divisor, uint8_t *byte) {
    double s = mlxq_round_to(T, amax / (fp8 ? 448.0 : 6.0));
    double e = 0.0;
    if (s != 0.0)
        e = mlxq_round_to(T, (double)ceil_log2_exact(s));
    *divisor = mlxq_round_to(T, pow2_as(T, e));
    *byte = (uint8_t)to_i32_as(T, mlxq_round_to(T, e + 127.0));
}

void mlxq_nv_group_scale(mlxq_dtype T, double amax, double enc, double *divisor,
                         uint8_t *byte) {
    const mlxq_dtype P = T == MLXQ_F64 ? MLXQ_F64 : MLXQ_F32;
    double s = mlxq_round_to(T, amax / 6.0);
    *byte = mlxq_f32_to_e4m3((float)mlxq_round_to(P, s * enc));
    *divisor = mlxq_round_to(T, mlxq_e4m3_to_f32(*byte));
}

double mlxq_fp_dequant_scale(const mlxq_qparams *p, mlxq_dtype O, uint8_t byte) {
    if (p->mode != MLXQ_MODE_NVFP4)
        return mlxq_round_to(O, pow2_as(O, mlxq_round_to(O, (double)byte - 127.0)));
    double sc = mlxq_round_to(O, mlxq_e4m3_to_f32(byte));
    if (p->has_global_scale) {
        /* inv_scale_enc = global_scale (float32) / 2688 (in O): computed in promote(O, f32) */
        const mlxq_dtype R = mlxq_dequantize_result_dtype(p, O);
        sc = mlxq_round_to(R, mlxq_mul(sc, mlxq_round_to(R, (double)p->global_scale / 2688.0)));
    }
    return sc;
}

/* max(abs(w)) over a group: MLX's MaxReduce propagates NaN. */
static double group_amax(const double *w, int gs) {
    double m = -INFINITY;
    int any_nan = 0;
    for (int j = 0; j < gs; j++) {
        double a = fabs(w[j]);
        if (isnan(a))
            any_nan = 1;
        else if (a > m)
            m = a;
    }
    return any_nan ? NAN : m;
}

void mlxq_ref_fp_quant_row(const mlxq_qparams *p, mlxq_dtype dt, const uint8_t *src,
                           int64_t stride, int64_t cols, uint8_t *wq, uint8_t *scales) {
    const int gs = p->group_size;
    const int fp8 = p->bits == 8;
    const int nv = p->mode == MLXQ_MODE_NVFP4;
    const mlxq_dtype T = dt == MLXQ_F64 ? MLXQ_F32 : dt;
    const double enc = mlxq_nv_encode(p);
    double w[32];

    for (int64_t g = 0; g < cols / gs; g++) {
        const uint8_t *gp = src + g * gs * stride;
        uint8_t *out = wq + g * gs * p->bits / 8;
        for (int j = 0; j < gs; j++)
            w[j] = mlxq_round_to(T, mlxq_load_float(gp + j * stride, dt));
        double amax = group_amax(w, gs);
        double divisor;
        if (nv)
            mlxq_nv_group_scale(T, amax, enc, &divisor, &scales[g]);
        else
            mlxq_mx_group_scale(T, amax, fp8, &divisor, &scales[g]);
        for (int j = 0; j < gs; j++) {
            double v = mlxq_round_to(T, w[j] / divisor);
            uint8_t c;
            if (nv) /* (w / E4M3 scale) * enc: the multiply promotes to float32 */
                c = fp4_code(MLXQ_F32, mlxq_round_to(MLXQ_F32, v * enc));
            else if (fp8)
                c = mlxq_f32_to_e4m3((float)v);
            else
                c = fp4_code(T, v);
            if (fp8)
                out[j] = c;
            else if (j & 1)
                out[j / 2] |= (uint8_t)(c << 4);
            else
                out[j / 2] = c;
        }
    }
}

void mlxq_ref_fp_dequant_row(const mlxq_qparams *p, const uint8_t *wq, int64_t wq_stride,
                             const uint8_t *scales, int64_t s_stride, int64_t cols,
                             mlxq_dtype O, uint8_t *out) {
    const int gs = p->group_size;
    const int fp8 = p->bits == 8;
    const mlxq_dtype R = mlxq_dequantize_result_dtype(p, O);
    const size_t rsize = mlxq_dtype_size(R);
    for (int64_t g = 0; g < cols / gs; g++) {
        double sc = mlxq_fp_dequant_scale(p, O, scales[g * s_stride]);
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
            mlxq_store_float(out + k * rsize, R, mlxq_round_to(R, mlxq_mul(v, sc)));
        }
    }
}
