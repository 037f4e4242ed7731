/*
 * kernels.h - internal: the per-row kernels behind mlxq_quant.h, and the value helpers the
 * reference kernels share. Not installed, not part of the API.
 *
 * A "row" is one slice along the last axis of the logical [rows, cols] view. Reference
 * kernels take element strides (bytes) for their inputs; fast kernels require contiguous
 * rows (the driver gathers strided rows into a scratch buffer first). Outputs are always
 * contiguous row slices. Every kernel writes every output byte of its row.
 */
#ifndef MLXQ_KERNELS_H
#define MLXQ_KERNELS_H

#include "mlxq_float.h"
#include "mlxq_quant.h"

/* ---- values as the reference kernels see them --------------------------------------- */

/* Loads a float-typed element as a double (exact for every float dtype). */
static inline double mlxq_load_float(const uint8_t *p, mlxq_dtype dt) {
    switch (dt) {
    case MLXQ_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return mlxq_f16_to_f32(h);
    }
    case MLXQ_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return mlxq_bf16_to_f32(h);
    }
    case MLXQ_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    default: {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    }
}

/* Rounds x to dtype dt the way MLX stores an op's result: a float32 computation rounded to
 * the narrow type. Computing an f32 op in double and rounding once to float gives the
 * correctly rounded f32 result for + - * / (53 >= 2*24 + 2), so callers may do the op in
 * double and pass it here. */
static inline double mlxq_round_to(mlxq_dtype dt, double x) {
    switch (dt) {
    case MLXQ_F16:
        return mlxq_f16_to_f32(mlxq_f32_to_f16((float)x));
    case MLXQ_BF16:
        return mlxq_bf16_to_f32(mlxq_f32_to_bf16((float)x));
    case MLXQ_F32:
        return (float)x;
    default:
        return x;
    }
}

/* Stores x (already representable, or to be rounded as mlxq_round_to does) as dtype dt. */
static inline void mlxq_store_float(uint8_t *p, mlxq_dtype dt, double x) {
    switch (dt) {
    case MLXQ_F16: {
        uint16_t h = mlxq_f32_to_f16((float)x);
        memcpy(p, &h, 2);
        break;
    }
    case MLXQ_BF16: {
        uint16_t h = mlxq_f32_to_bf16((float)x);
        memcpy(p, &h, 2);
        break;
    }
    case MLXQ_F32: {
        float f = (float)x;
        memcpy(p, &f, 4);
        break;
    }
    default:
        memcpy(p, &x, 8);
        break;
    }
}

/* E2M1 code values in MLX's table order; the order decides argmin ties (lowest index). */
extern const float mlxq_fp4_lut[16];

/* ---- reference (portable scalar) kernels ------------------------------------------- */

void mlxq_ref_affine_quant_row(mlxq_dtype dt, const uint8_t *src, int64_t stride,
                               int64_t cols, int group_size, int bits, uint8_t *wq,
                               uint8_t *scales, uint8_t *biases);

void mlxq_ref_affine_dequant_row(const uint8_t *wq, int64_t wq_stride, const uint8_t *scales,
                                 int64_t s_stride, mlxq_dtype sdt, const uint8_t *biases,
                                 int64_t b_stride, mlxq_dtype bdt, int64_t cols,
                                 int group_size, int bits, mlxq_dtype odt, uint8_t *out);

void mlxq_ref_fp_quant_row(const mlxq_qparams *p, mlxq_dtype dt, const uint8_t *src,
                           int64_t stride, int64_t cols, uint8_t *wq, uint8_t *scales);

void mlxq_ref_fp_dequant_row(const mlxq_qparams *p, const uint8_t *wq, int64_t wq_stride,
                             const uint8_t *scales, int64_t s_stride, int64_t cols,
                             mlxq_dtype odt, uint8_t *out);

/* ---- fast kernels ------------------------------------------------------------------ */

/* A fast implementation of one operation for one dtype combination, chosen once per call by
 * the dispatcher; NULL when the combination has no fast version (the reference runs). */
typedef void (*mlxq_affine_quant_fn)(const uint8_t *src, int64_t cols, int group_size,
                                     int bits, uint8_t *wq, uint8_t *scales, uint8_t *biases);
typedef void (*mlxq_affine_dequant_fn)(const uint8_t *wq, const uint8_t *scales,
                                       const uint8_t *biases, int64_t cols, int group_size,
                                       int bits, uint8_t *out);
typedef void (*mlxq_fp_quant_fn)(const mlxq_qparams *p, const uint8_t *src, int64_t cols,
                                 uint8_t *wq, uint8_t *scales);
typedef void (*mlxq_fp_dequant_fn)(const mlxq_qparams *p, const uint8_t *wq,
                                   const uint8_t *scales, int64_t cols, uint8_t *out);

mlxq_affine_quant_fn mlxq_fast_affine_quant(mlxq_dtype dt, int bits);
mlxq_affine_dequant_fn mlxq_fast_affine_dequant(mlxq_dtype sdt, mlxq_dtype bdt,
                                                mlxq_dtype odt, int bits);
mlxq_fp_quant_fn mlxq_fast_fp_quant(const mlxq_qparams *p, mlxq_dtype dt);
mlxq_fp_dequant_fn mlxq_fast_fp_dequant(const mlxq_qparams *p, mlxq_dtype odt);

#endif /* MLXQ_KERNELS_H */
