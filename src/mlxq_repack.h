/*
 * mlxq_repack.h - moving other producers' packed integer codes into MLX's affine layout.
 *
 * MLX stores an affine-quantized Linear weight as wq[out][in * bits / 32] (uint32): each row
 * is a little-endian, LSB-first bit stream of the codes along the input dimension (see
 * docs/formats.md). AutoAWQ (GEMM) and GPTQ checkpoints pack the same codes differently;
 * these functions only move bits. Scales, zeros -> biases and every policy (which layers,
 * which dtypes) live in Python (mlxq/awq.py, mlxq/gptq.py).
 *
 * Common contract: inputs are 2-D tensors of dtype int32 or uint32 (any strides; an int32 is
 * read as its uint32 bit pattern, so negative words keep their top bits); outputs are 2-D
 * uint32 tensors the caller allocated with exactly the documented shape (any strides). The
 * work is split over mlxq_parallel_for; the result does not depend on the thread count. On
 * a bad argument nothing is written and an error code with a message is returned.
 */
#ifndef MLXQ_REPACK_H
#define MLXQ_REPACK_H

#include "mlxq_common.h"

/* AutoAWQ's WQLinear_GEMM writes column 8c+order[s] of row i into 4-bit slot s (shift 4s) of
 * qweight[i][c], with order = {0, 2, 4, 6, 1, 3, 5, 7}. */

/* Unpacks an AutoAWQ-packed 4-bit matrix q[r][c] into its codes in natural column order:
 * out[r][8c] (transpose = 0) or out[8c][r] (transpose = 1), one code (0..15) per uint32.
 * Used for qzeros and for mlxq.unpack_awq_weights. */
mlxq_status mlxq_awq_unpack(const mlxq_tensor *q, int transpose, mlxq_tensor *out,
                            mlxq_error *err);

/* AutoAWQ qweight[in][out / 8] -> MLX 4-bit wq[out][in / 8]: unpack, undo the AWQ order,
 * transpose and repack in one pass. `in` must be a multiple of 8. */
mlxq_status mlxq_awq_repack(const mlxq_tensor *qweight, mlxq_tensor *wq, mlxq_error *err);

/* out[j][i] = in[i][j] as 32-bit words. GPTQ's qweight[in * bits / 32][out] is, column by
 * column, the same LSB-first stream along the input dimension that an MLX row is, for
 * bits 2, 3, 4 and 8 alike, so this transpose is the whole GPTQ weight conversion. */
mlxq_status mlxq_transpose_u32(const mlxq_tensor *in, mlxq_tensor *out, mlxq_error *err);

/* Unpacks GPTQ qzeros[groups][out * bits / 32] (an LSB-first stream along each row, so
 * 3-bit zeros straddle words) into out[out][groups] (transposed), adding `offset` to every
 * code: 1 for the original "gptq" (v1) format, which stores zero - 1, and 0 for "gptq_v2".
 * bits: 2, 3, 4 or 8; offset: 0 or 1. */
mlxq_status mlxq_gptq_unpack_zeros(const mlxq_tensor *qzeros, int bits, int offset,
                                   mlxq_tensor *out, mlxq_error *err);

#endif /* MLXQ_REPACK_H */
