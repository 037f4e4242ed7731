/*
 * mlxq_packint.h - compressed-tensors `pack-quantized` integer weights to dense values, by
 * the producer's own formula.
 *
 * compressed-tensors (PackedQuantizationCompressor, symmetric) stores a Linear weight
 * [rows, cols] as
 *   weight_packed [rows, words] int32: each row an LSB-first stream of `bits`-bit codes
 *                 (code = q + 2^(bits-1), q the signed integer), 32 / bits codes per word
 *                 for bits 2, 4 and 8 (its dense packer and its older per-word packer agree
 *                 for these widths; they differ for 3, 5, 6 and 7, which are not accepted);
 *   weight_scale  [rows, groups] float: element j of a row uses scale[j / group_size];
 * and decompresses it with `x_q.to(scale.dtype) * scale`:
 *   value = round_T((code - 2^(bits-1)) * s)   T = the scale dtype; the integer is exact in
 *                                               T and the product rounds once (x86 NaN
 *                                               rules: a NaN s propagates, 0 * inf is the
 *                                               default NaN 0xFFC00000)
 *   out   = astype(value, out dtype)           as MLX's astype (bfloat16 NaN 0x7FC0,
 *                                               float16 sign|0x7D00)
 * That differs from MLX's affine dequantize of the same codes with biases = -2^(bits-1) * s
 * (which rounds q*s and then the sum): mlxq.dequantize gives that one.
 *
 * Contract: packed is 2-D int32 or uint32 with words >= ceil(cols * bits / 32); scale is
 * 2-D float32, bfloat16 or float16 with the same number of rows and
 * ceil(cols / group_size) columns; out is C-contiguous [rows, cols] of bfloat16, float16
 * or float32, not overlapping the inputs. Inputs may have any strides and are never
 * written. Rows are split over mlxq_parallel_for; MLXQ_IMPL_REF and MLXQ_IMPL_FAST give
 * identical bytes. On a bad argument nothing is written and a message naming the argument
 * (as mlxq/compressed_tensors.py names it) is returned.
 */
#ifndef MLXQ_PACKINT_H
#define MLXQ_PACKINT_H

#include "mlxq_common.h"
#include "mlxq_quant.h"

/* Every check mlxq_packint_dequant makes of its inputs (not of out). */
mlxq_status mlxq_packint_check(const mlxq_tensor *packed, int bits, const mlxq_tensor *scale,
                               int64_t cols, int64_t group_size, mlxq_error *err);

mlxq_status mlxq_packint_dequant(const mlxq_tensor *packed, int bits, const mlxq_tensor *scale,
                                 int64_t cols, int64_t group_size, mlxq_tensor *out,
                                 mlxq_impl impl, mlxq_error *err);

#endif /* MLXQ_PACKINT_H */
