/*
 * search_fp.c - the error-minimising search for mxfp4, mxfp8 and nvfp4 (mlxq_search.h).
 *
 * A group's only free parameter is its shared scale byte, so the search is short: MLX's
 * byte and a few neighbours (mx: the E8M0 exponent -2 .. +1, which trades clipping the
 * largest elements for finer steps; nvfp4: the E4M3 byte -3 .. +1, each 1/8 octave apart).
 * For each byte the elements are encoded exactly as MLX encodes them for that scale
 * (ref_fp.c's steps, with the candidate's divisor), decoded as mlx.core.dequantize decodes
 * them by default (bfloat16; float32 with an nvfp4 global scale on the CPU device; on the
 * GPU device Metal's fp_quantize / fp_dequantize, ref_gpu.c), and the importance-
 * weighted squared error against the input is summed in double, in order. Strictly lower
 * wins; MLX's byte is evaluated first. Scalar on purpose: a handful of candidates per
 * group, threaded by the driver, costs about what MLX's own encoding does.
 */
#include "search_internal.h"

static const int mx_deltas[] = {-2, -1, 1};
static const int nv_deltas[] = {-3, -2, -1, 1};

/* The divisor the elements are divided by for scale byte `byte` (T arithmetic), as
 * mlxq_mx_group_scale / mlxq_nv_group_scale derive it. */
static double divisor_for(mlxq_dtype T, int nv, uint8_t byte) {
    if (nv)
        return mlxq_round_to(T, mlxq_e4m3_to_f32(byte));
    return mlxq_round_to(T, (double)powf(2.0f, (float)((int)byte - 127)));
}

/* Codes of the group for divisor d, exactly as mlxq_ref_fp_quant_row computes them. */
static void encode(const mlxq_qparams *p, mlxq_dtype T, const double *w, int gs, double d,
                   double enc, uint8_t *codes) {
    const int fp8 = p->bits == 8, nv = p->mode == MLXQ_MODE_NVFP4;
    for (int j = 0; j < gs; j++) {
        const double v = mlxq_round_to(T, w[j] / d);
        if (nv)
            codes[j] = mlxq_fp4_code(MLXQ_F32, mlxq_round_to(MLXQ_F32, v * enc));
        else if (fp8)
            codes[j] = mlxq_f32_to_e4m3((float)v);
        else
            codes[j] = mlxq_fp4_code(T, v);
    }
}

/* Weighted squared error of the decoded group against x, decoded as
 * mlxq_ref_fp_dequant_row does with dequantize's default dtype. */
static double decode_error(const mlxq_qparams *p, const double *x, const float *imp, int gs,
                           const uint8_t *codes, uint8_t byte) {
    const int fp8 = p->bits == 8;
    const mlxq_dtype O = MLXQ_BF16, R = mlxq_dequantize_result_dtype(p, O);
    const double sc = mlxq_fp_dequant_scale(p, O, byte);
    double e = 0.0;
    for (int j = 0; j < gs; j++) {
        const double v = fp8 ? mlxq_round_to(O, mlxq_e4m3_to_f32(codes[j]))
                             : mlxq_fp4_lut[codes[j]];
        const double diff = x[j] - mlxq_round_to(R, mlxq_mul(v, sc));
        e += (double)(imp ? imp[j] : 1.0f) * (diff * diff);
    }
    return e;
}

/* The GPU device (ref_gpu.c): codes for scale byte `byte`, w times the factor the scale
 * gives (enc / float(byte)), fp4 by thresholds; the error of fp_dequantize's bfloat16. */
static void encode_gpu(const mlxq_qparams *p, const double *w, int gs, uint8_t byte,
                       float enc, uint8_t *codes) {
    const float sf = p->mode == MLXQ_MODE_NVFP4 ? mlxq_e4m3_to_f32(byte)
                                                : mlxq_gpu_e8m0_value(byte);
    const float factor = sf == 0.0f ? 0.0f : mlxq_gpu_div(enc, sf);
    for (int j = 0; j < gs; j++) {
        const float x = mlxq_gpu_mul((float)w[j], factor);
        codes[j] = p->bits == 8 ? mlxq_f32_to_e4m3(x) : mlxq_gpu_fp4_code(x);
    }
}

static double decode_error_gpu(const mlxq_qparams *p, const double *x, const float *imp, int gs,
                               const uint8_t *codes, uint8_t byte) {
    const float sc = mlxq_gpu_fp_dequant_scale(p, byte);
    double e = 0.0;
    for (int j = 0; j < gs; j++) {
        const float v = p->bits == 8 ? mlxq_e4m3_to_f32(codes[j]) : mlxq_fp4_lut[codes[j]];
        const double diff = x[j] - mlxq_gpu_round_to(MLXQ_BF16, mlxq_gpu_mul(sc, v));
        e += (double)(imp ? imp[j] : 1.0f) * (diff * diff);
    }
    return e;
}

static void search_group(const mlxq_qparams *p, mlxq_dtype dt, const uint8_t *src,
                         const float *imp, uint8_t *out, uint8_t *scale_out) {
    const int gs = p->group_size, fp8 = p->bits == 8, nv = p->mode == MLXQ_MODE_NVFP4;
    const mlxq_dtype T = dt == MLXQ_F64 ? MLXQ_F32 : dt; /* as mlxq_ref_fp_quant_row */
    const size_t esize = mlxq_dtype_size(dt);
    const double enc = mlxq_nv_encode(p);
    double x[32], w[32], amax = -INFINITY, sw = 0.0;
    int finite = 1, any_nan = 0;
    for (int j = 0; j < gs; j++) {
        x[j] = mlxq_load_float(src + j * esize, dt);
        w[j] = mlxq_round_to(T, x[j]);
        finite &= isfinite(w[j]) != 0;
        any_nan |= isnan(w[j]) != 0;
        if (fabs(w[j]) > amax)
            amax = fabs(w[j]);
        sw += imp ? imp[j] : 1.0f;
    }
    if (any_nan)
        amax = NAN; /* MLX's MaxReduce propagates NaN (group_amax in ref_fp.c) */

    double divisor;
    uint8_t byte, codes[32], cand[32];
    const int gpu = p->device == MLXQ_DEVICE_GPU;
    const float enc_gpu = p->has_global_scale ? mlxq_gpu_div(2688.0f, p->global_scale) : 1.0f;
    if (gpu) { /* Metal's fp_quantize: amax by maxNum (mx: NaN only if all are NaN) */
        float gmax = nv ? 0.0f : NAN, factor;
        for (int j = 0; j < gs; j++)
            gmax = mlxq_max_num(gmax, fabsf((float)w[j]));
        mlxq_gpu_fp_group_scale(p, gmax, enc_gpu, &byte, &factor);
        encode_gpu(p, w, gs, byte, enc_gpu, codes);
    } else if (nv) {
        mlxq_nv_group_scale(T, amax, enc, &divisor, &byte);
    } else {
        mlxq_mx_group_scale(T, amax, fp8, &divisor, &byte);
    }
    if (!gpu)
        encode(p, T, w, gs, divisor, enc, codes);

    if (finite && sw > 0.0) {
        double best = gpu ? decode_error_gpu(p, x, imp, gs, codes, byte)
                          : decode_error(p, x, imp, gs, codes, byte);
        if (isnan(best))
            best = INFINITY;
        const int *deltas = nv ? nv_deltas : mx_deltas;
        const int n_deltas = nv ? (int)(sizeof nv_deltas / sizeof *nv_deltas)
                                : (int)(sizeof mx_deltas / sizeof *mx_deltas);
        const int top = nv ? 0x7E : 254; /* largest finite scale byte */
        const uint8_t mlx_byte = byte;
        for (int i = 0; i < n_deltas; i++) {
            const int b = (int)mlx_byte + deltas[i];
            if (b < 0 || b > top)
                continue;
            double e;
            if (gpu) {
                encode_gpu(p, w, gs, (uint8_t)b, enc_gpu, cand);
                e = decode_error_gpu(p, x, imp, gs, cand, (uint8_t)b);
            } else {
                encode(p, T, w, gs, divisor_for(T, nv, (uint8_t)b), enc, cand);
                e = decode_error(p, x, imp, gs, cand, (uint8_t)b);
            }
            if (e < best) {
                best = e;
                byte = (uint8_t)b;
                memcpy(codes, cand, (size_t)gs);
            }
        }
    }
    for (int j = 0; j < gs; j++) {
        if (fp8)
            out[j] = codes[j];
        else if (j & 1)
            out[j / 2] |= (uint8_t)(codes[j] << 4);
        else
            out[j / 2] = codes[j];
    }
    *scale_out = byte;
}

void mlxq_fp_search(const mlxq_qparams *p, mlxq_dtype dt, int64_t n,
                    const uint8_t *const *src, const float *const *imp, uint8_t *wq,
                    uint8_t *scales) {
    const int gs = p->group_size;
    for (int64_t k = 0; k < n; k++)
        search_group(p, dt, src[k], imp ? imp[k] : NULL, wq + (size_t)k * gs * p->bits / 8,
                     scales + k);
}
