/*
 * mlxq_search.h - quantization in MLX's own formats with each group's parameters chosen to
 * minimise the (importance-weighted) squared error of the weights as MLX dequantizes them.
 *
 * MLX's quantize takes each affine group's min and max, and rounds each fp group's shared
 * scale from the group's max |w|, without looking at the error. MLX dequantizes whatever
 * (wq, scales, biases) it is given, so a better choice per group loads unchanged. For every
 * group this module measures, exactly, the error
 *
 *     E = sum_j imp[j] * (w[j] - deq[j])^2        (in double, j in order)
 *
 * where deq is the value mlx.core.dequantize produces from the stored triple on p->device
 * (affine on the CPU: T(T(q * scale) + bias) with scale and bias already rounded to T, the
 * input dtype; on the GPU the fused T(scale * q + bias); fp modes: the decoded element
 * times the decoded scale, in dequantize's default bfloat16), and "MLX's own choice" is
 * that device's quantize,
 * for MLX's own choice and for a set of candidates, and keeps the lowest. MLX's choice is
 * always a candidate and wins ties, so no group is ever worse than mlxq_quantize's.
 *
 * Candidates. Affine: a 4 x 4 grid of code ranges [min + a*step, max - c*step] with
 * a, c in {0, 0.5, 1, 1.5} steps (step = (max - min) / (2^bits - 1)); each grid point's
 * codes get a weighted least-squares fit of scale and bias (llama.cpp's make_qkx2_quants
 * idea, over both ends of the range); the two best by that fit are then refined: round
 * scale and bias to T, re-pick each code as the nearest of q-1, q, q+1 in exact
 * dequantized values, measure, refit from those codes, measure again; every measurement
 * also tries the orientation flipped (negative scale, bias at the other end), equal
 * before rounding to T but not after. mxfp4 / mxfp8:
 * the E8M0 exponent MLX picks and its neighbours (-2 .. +1); nvfp4: MLX's E4M3 scale byte
 * and its neighbours (-3 .. +1). Groups holding a NaN or an infinity, constant groups and
 * groups whose importances sum to zero keep MLX's choice.
 *
 * Contract (as mlxq_quantize's, see mlxq_quant.h, plus):
 *   - importance: NULL (every weight 1), or a float32 tensor (any strides) of shape [C],
 *     or shape w.shape[:-2] + [C] (one row per batch slice, e.g. [E, C] for stacked
 *     experts [E, out, C]); values must be finite and >= 0;
 *   - outputs are valid MLX quantized arrays of mlxq_quantize's shapes and dtypes;
 *   - MLXQ_IMPL_REF (scalar specification) and MLXQ_IMPL_FAST (vectorised for the CPU
 *     found at run time, split over the pool) give identical bytes for any thread count.
 */
#ifndef MLXQ_SEARCH_H
#define MLXQ_SEARCH_H

#include "mlxq_quant.h"

/* Every check mlxq_quantize_search makes of its input, importance and parameters. */
mlxq_status mlxq_quantize_search_check(const mlxq_tensor *w, const mlxq_qparams *p,
                                       const mlxq_tensor *importance, mlxq_error *err);

/* biases must be NULL exactly when p->mode is not affine. */
mlxq_status mlxq_quantize_search(const mlxq_tensor *w, const mlxq_qparams *p,
                                 const mlxq_tensor *importance, mlxq_tensor *wq,
                                 mlxq_tensor *scales, mlxq_tensor *biases, mlxq_impl impl,
                                 mlxq_error *err);

#endif /* MLXQ_SEARCH_H */
