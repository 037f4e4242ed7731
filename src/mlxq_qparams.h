/*
 * mlxq_qparams.h - the parameters of a quantization and MLX's rules about them: modes,
 * devices, per-mode defaults, the parameter check and the dtype rules of dequantize.
 *
 * A leaf: it depends on mlxq_common.h only, so the kernels and the drivers both include it
 * and no kernel ever calls up into its driver (quant.c) for a rule.
 *
 * Devices. MLX computes quantize/dequantize with different arithmetic on its two devices:
 *   MLXQ_DEVICE_CPU  MLX's CPU backend (fast::Quantize::eval_cpu for affine quantize, the
 *                    op-graph fallbacks of mlx::core::fp_quantize / affine_dequantize /
 *                    fp_dequantize for the rest): what `mlx[cpu]` on Linux writes.
 *   MLXQ_DEVICE_GPU  MLX's Metal kernels (affine_quantize / affine_dequantize in
 *                    kernels/quantized.h, fp_quantize / fp_dequantize in
 *                    kernels/fp_quantized.h): what mlx_lm.convert writes on Apple silicon,
 *                    the default device there. docs/formats.md sets the two side by side.
 * CPU is 0, so a zero-initialised mlxq_qparams asks for the CPU backend's arithmetic.
 */
#ifndef MLXQ_QPARAMS_H
#define MLXQ_QPARAMS_H

#include "mlxq_common.h"

typedef enum {
    MLXQ_MODE_AFFINE = 0,
    MLXQ_MODE_MXFP4 = 1,
    MLXQ_MODE_MXFP8 = 2,
    MLXQ_MODE_NVFP4 = 3
} mlxq_mode;

typedef enum { MLXQ_DEVICE_CPU = 0, MLXQ_DEVICE_GPU = 1 } mlxq_device;

typedef struct {
    mlxq_mode mode;
    int group_size;
    int bits;
    int has_global_scale; /* nvfp4 only */
    float global_scale;
    mlxq_device device;   /* whose arithmetic: MLX's CPU backend or its GPU kernels */
} mlxq_qparams;

/* "affine", "mxfp4", ...; NULL for a value outside the enum. */
const char *mlxq_mode_name(mlxq_mode mode);

/* "cpu" or "gpu", MLX's names; NULL for a value outside the enum. */
const char *mlxq_device_name(mlxq_device device);

/* MLX's per-mode defaults: affine (64, 4), mxfp4 (32, 4), mxfp8 (32, 8), nvfp4 (16, 4). */
void mlxq_default_params(mlxq_mode mode, int *group_size, int *bits);

/* Checks mode, group_size, bits, device and the global-scale rule; the message names the
 * bad one. */
mlxq_status mlxq_check_params(const mlxq_qparams *p, mlxq_error *err);

/* MLX's type promotion between two float dtypes (f16 + bf16 -> f32). */
mlxq_dtype mlxq_promote_float(mlxq_dtype a, mlxq_dtype b);

/* Dtype MLX gives dequantize's output when the caller passes no dtype. */
mlxq_dtype mlxq_dequantize_default_dtype(const mlxq_qparams *p, mlxq_dtype scales,
                                         mlxq_dtype biases);

/* The dtype actually produced for a requested output dtype: the requested one, except on
 * the CPU for nvfp4 with a global scale, where the fallback graph's float32 global scale
 * promotes the product to float32 (float64 when float64 is asked for). The GPU kernel
 * (fp_dequantize) writes the requested dtype. */
mlxq_dtype mlxq_dequantize_result_dtype(const mlxq_qparams *p, mlxq_dtype requested);

#endif /* MLXQ_QPARAMS_H */
