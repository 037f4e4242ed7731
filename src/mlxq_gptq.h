/*
 * mlxq_gptq.h - GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
 * Generative Pre-trained Transformers", 2022) into MLX's affine format.
 *
 * Given a layer's weight W [rows, C] and the Hessian of its input, H = X^T X [C, C] (X the
 * layer's inputs over calibration text, one row per token), GPTQ quantizes W one column
 * at a time and spreads each column's error over the columns not yet quantized, weighted
 * by the inverse Hessian, so that the layer's output error ||(W - Q) X^T||^2, not the
 * weight error, is what is kept small:
 *
 *   1. dead columns (H[j][j] == 0: an input that is always zero) get H[j][j] = 1 and a zero
 *      weight; then H += damp * mean(diag H) * I (damp retried x10, up to 1, while H is
 *      not positive definite);
 *   2. columns are visited in natural order, or with act_order in decreasing H[j][j] (the
 *      inputs with the most energy first; ties keep the lower index);
 *   3. U = the upper Cholesky factor of (H permuted)^-1, in double;
 *   4. per row, per visited column i (value w_i): q = the code whose value as MLX
 *      dequantizes it, T(T(q * scale) + bias), is nearest to w_i (rint((w_i - bias) / scale)
 *      or its neighbour), err = (w_i - deq(q)) / U[i][i], and every later column k gets
 *      w_k -= err * U[i][k] (in blocks of 128 columns, the paper's lazy batch update; each
 *      w_k receives its updates in increasing i, whatever the blocking).
 *
 * Groups stay MLX's: group g holds columns [g * group_size, (g + 1) * group_size) of the
 * original order whatever the visiting order, so the output is a plain MLX triple that
 * mx.dequantize / mlx_lm.load read unchanged. A group's scale and bias are MLX's own choice
 * (mlxq_affine_params of the group's min and max, stored in T) over the group's values at
 * the moment its first column is visited (natural order: after the errors of earlier groups
 * are spread into it); with act_order they are fixed up front from the original weights
 * ("static groups"), since a group's columns are then visited out of order.
 *
 * All arithmetic is double except what MLX's format fixes (the group's float32 min/max,
 * scale and bias rounded to T, the dequantized values in float32 rounded to T); the result
 * depends on nothing but the inputs: rows are independent and split over the thread pool,
 * each row computed alike whichever thread runs it.
 */
#ifndef MLXQ_GPTQ_H
#define MLXQ_GPTQ_H

#include "mlxq_quant.h"

typedef struct {
    int group_size;  /* 32, 64 or 128 */
    int bits;        /* 2, 3, 4, 5, 6 or 8 */
    double damp;     /* relative dampening, > 0 and <= 1 (the paper: 0.01) */
    int act_order;   /* 1: visit columns in decreasing H[j][j] */
} mlxq_gptq_params;

/* Every check mlxq_gptq makes: w a 2-D f16/bf16/f32 array [rows, C], C divisible by
 * group_size; hessian a finite, symmetric 2-D float32 or float64 array [C, C] with a
 * non-negative diagonal; damp in (0, 1]. */
mlxq_status mlxq_gptq_check(const mlxq_tensor *w, const mlxq_tensor *hessian,
                            const mlxq_gptq_params *p, mlxq_error *err);

/* GPTQ of w into MLX's affine triple (shapes and dtypes as mlxq_quantize's for mode
 * affine). Fails with MLXQ_EVALUE when H is not positive definite even at damp 1. */
mlxq_status mlxq_gptq(const mlxq_tensor *w, const mlxq_tensor *hessian,
                      const mlxq_gptq_params *p, mlxq_tensor *wq, mlxq_tensor *scales,
                      mlxq_tensor *biases, mlxq_error *err);

/* The Hessian's part, shared by every weight fed the same input (q/k/v projections) and
 * every row block of one weight: steps 1-3 above. */
typedef struct {
    int64_t cols;
    double *u;       /* cols x cols, row-major: the upper factor, in visiting order */
    int64_t *perm;   /* visiting order: perm[i] = original column */
    uint8_t *dead;   /* per original column: H[j][j] was 0 */
    int act_order;
} mlxq_gptq_factor;

/* Fills f (free it with mlxq_gptq_factor_free, also after a failure). */
mlxq_status mlxq_gptq_factorize(const mlxq_tensor *hessian, double damp, int act_order,
                                mlxq_gptq_factor *f, mlxq_error *err);
void mlxq_gptq_factor_free(mlxq_gptq_factor *f);

/* Step 4 for w with a factor of its Hessian; f must come from mlxq_gptq_factorize. */
mlxq_status mlxq_gptq_apply(const mlxq_tensor *w, const mlxq_gptq_factor *f, int group_size,
                            int bits, mlxq_tensor *wq, mlxq_tensor *scales,
                            mlxq_tensor *biases, mlxq_error *err);

#endif /* MLXQ_GPTQ_H */
