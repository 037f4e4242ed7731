/*
 * mlxq_fp8.h - dequantizing float8 (E4M3) checkpoints: 2-D block scales (DeepSeek-V3's
 * `weight_scale_inv`) and broadcast scales (per-tensor / per-channel `weight_scale`).
 *
 * The arithmetic is the MLX graph mlx-lm's `dequant` helper (deepseek_v3, deepseek_v32,
 * minimax, mimo_v2_flash `sanitize`) evaluates, element by element:
 *
 *   v   = from_fp8(code, bfloat16)   E4M3 -> bfloat16, exact for every finite code (E4M3's
 *                                    4 significant bits and exponents 2^-9..2^8 all fit);
 *                                    0x7F and 0xFF become bfloat16's NaN 0x7FC0 (positive:
 *                                    MLX's conversion drops the sign)
 *   p   = v * s                      in P = promote(bfloat16, dtype of s): bfloat16 for a
 *                                    bfloat16 scale, float32 for a float32 or float16 one;
 *                                    one float32 multiply (x86 NaN rule: a NaN v wins, else
 *                                    a NaN s, quieted; inf * 0 is the default NaN
 *                                    0xFFC00000), rounded to P
 *   out = astype(p, out dtype)       round to nearest even with MLX's NaN patterns
 *                                    (bfloat16 0x7FC0; float16 sign|0x7D00)
 *
 * mlx-lm always asks for bfloat16; float16 and float32 outputs are the same graph with a
 * different final astype. The padding to whole blocks and the crop in mlx-lm's `dequant`
 * do not change any kept element, so they have no counterpart here.
 *
 * Common contract: the E4M3 input has dtype MLXQ_F8_E4M3 or MLXQ_U8 (MLX loads F8_E4M3
 * tensors as uint8); scales are float32, bfloat16 or float16; out is bfloat16, float16 or
 * float32, C-contiguous, writable, not overlapping the inputs, and shaped as documented.
 * Inputs may have any strides and are never written. Work is split over mlxq_parallel_for;
 * MLXQ_IMPL_REF (the scalar specification) and MLXQ_IMPL_FAST (vectorised for the ISA
 * found at run time) give identical bytes for every input and thread count. On a bad
 * argument nothing is written and a message naming the argument is returned.
 */
#ifndef MLXQ_FP8_H
#define MLXQ_FP8_H

#include "mlxq_common.h"
#include "mlxq_quant.h"

/* Block scales. The full matrix is W [total_rows, cols]; `weight` holds its rows
 * [row0, row0 + n) as a 2-D tensor [n, cols], so a caller can stream a large matrix in row
 * slices of any size and alignment. `scale` covers the whole matrix: shape
 * [ceil(total_rows / block_rows), ceil(cols / block_cols)], element (i, j) scaling the
 * block of rows [i*block_rows, (i+1)*block_rows) and columns [j*block_cols, ...) (the last
 * block in each direction may be partial). out is [n, cols].
 * block_rows, block_cols >= 1; 0 <= row0 and row0 + n <= total_rows. */
mlxq_status mlxq_fp8_block_dequant(const mlxq_tensor *weight, int64_t row0,
                                   int64_t total_rows, const mlxq_tensor *scale,
                                   int64_t block_rows, int64_t block_cols, mlxq_tensor *out,
                                   mlxq_impl impl, mlxq_error *err);

/* Broadcast scales: `scale` has weight's shape (rank >= 1) with any strides, zero strides
 * included, so a per-tensor scalar or a per-channel [out, 1] column is passed as a
 * broadcast view. out has weight's shape. */
mlxq_status mlxq_fp8_scaled_dequant(const mlxq_tensor *weight, const mlxq_tensor *scale,
                                    mlxq_tensor *out, mlxq_impl impl, mlxq_error *err);

/* Every check the two functions above make of their inputs (not of out), so a caller can
 * validate before allocating the output. */
mlxq_status mlxq_fp8_block_check(const mlxq_tensor *weight, int64_t row0, int64_t total_rows,
                                 const mlxq_tensor *scale, int64_t block_rows,
                                 int64_t block_cols, mlxq_error *err);
mlxq_status mlxq_fp8_scaled_check(const mlxq_tensor *weight, const mlxq_tensor *scale,
                                  mlxq_error *err);

/* The dtype the product is rounded to for a scale of dtype sdt: MLX's promotion of
 * bfloat16 with sdt (bfloat16 -> bfloat16, float16 or float32 -> float32). */
mlxq_dtype mlxq_fp8_product_dtype(mlxq_dtype sdt);

#endif /* MLXQ_FP8_H */
