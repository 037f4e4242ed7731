/*
 * mlxq_cast.h - MLX's astype between floating dtypes, bit for bit.
 *
 * Contract: mlxq_cast converts every element of `in` (any strides) to out's dtype, where
 * both dtypes are float16, bfloat16, float32 or float64, writing a C-contiguous `out` of the
 * same shape. Results equal MLX 0.32's CPU astype: float32 -> bfloat16/float16 round to
 * nearest even with MLX's NaN patterns (bfloat16 0x7FC0, float16 sign|0x7D00); float64 goes
 * to the narrow types through float32 (two roundings, as MLX's converters take a float);
 * widening is exact (NaNs come out quiet). Runs on the worker pool; never fails on values.
 */
#ifndef MLXQ_CAST_H
#define MLXQ_CAST_H

#include "mlxq_common.h"
#include "mlxq_quant.h"

mlxq_status mlxq_cast(const mlxq_tensor *in, mlxq_tensor *out, mlxq_impl impl, mlxq_error *err);

#endif /* MLXQ_CAST_H */
