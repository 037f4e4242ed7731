/*
 * mlxq_quant.h - MLX's quantize / dequantize, bit for bit.
 *
 * Modes and their (group_size, bits):
 *   affine  group 32, 64 or 128; bits 2, 3, 4, 5, 6 or 8. Input f16, bf16 or f32 (MLX's CPU
 *           kernel refuses f64, so do we). Outputs wq (uint32), scales and biases (input dtype).
 *   mxfp4   (32, 4)   E2M1 codes with a power-of-two E8M0 scale byte per group.
 *   mxfp8   (32, 8)   E4M3 codes with an E8M0 scale byte per group.
 *   nvfp4   (16, 4)   E2M1 codes with an E4M3 scale byte per group and an optional float32
 *           global scale. fp modes accept f16, bf16, f32 and f64 input, like MLX.
 * Shapes, for input [..., C] (rank >= 2, C % group_size == 0):
 *   wq      [..., C * bits / 32] uint32 (a little-endian, LSB-first bit stream per row)
 *   scales  [..., C / group_size] input dtype (affine) or uint8 (fp modes)
 *   biases  [..., C / group_size] input dtype (affine only)
 *
 * Contract for both entry points:
 *   - inputs may have any strides (transposed, sliced, broadcast); they are never written;
 *   - outputs must be C-contiguous, writable, of exactly the shapes and dtypes above (and,
 *     for dequantize, the output dtype rule documented there), and must not overlap inputs;
 *   - the result is identical to what MLX 0.32.4 computes on p->device (mlxq_qparams.h:
 *     MLXQ_DEVICE_CPU, its CPU backend; MLXQ_DEVICE_GPU, its Metal kernels), whichever
 *     implementation runs (MLXQ_IMPL_REF, the portable scalar specification: ref_affine.c /
 *     ref_fp.c for the CPU, ref_gpu.c for the GPU; or MLXQ_IMPL_FAST, vectorised for the CPU
 *     found at run time and split over the pool);
 *   - on MLXQ_DEVICE_GPU, float64 is refused everywhere (Metal has none), and dequantize
 *     needs scales and biases of one dtype (Metal reads biases as the scales' type);
 *   - on bad arguments nothing is written and a message naming the argument is returned.
 */
#ifndef MLXQ_QUANT_H
#define MLXQ_QUANT_H

#include "mlxq_qparams.h"

typedef enum { MLXQ_IMPL_FAST = 0, MLXQ_IMPL_REF = 1 } mlxq_impl;

/* Every check mlxq_quantize makes of its input and parameters (not of the outputs), so a
 * caller can validate before allocating outputs. */
mlxq_status mlxq_quantize_check(const mlxq_tensor *w, const mlxq_qparams *p, mlxq_error *err);

/* biases must be NULL exactly when p->mode is not affine. */
mlxq_status mlxq_quantize(const mlxq_tensor *w, const mlxq_qparams *p, mlxq_tensor *wq,
                          mlxq_tensor *scales, mlxq_tensor *biases, mlxq_impl impl,
                          mlxq_error *err);

/* `requested` is the dtype asked for (MLX's `dtype`, or its default); out->dtype must be
 * mlxq_dequantize_result_dtype(p, requested). The two differ only on the CPU device for
 * nvfp4 with a global scale, where the requested dtype still decides how decoded values are
 * rounded (and so which NaN bit patterns come out). MLX's CPU rule (the GPU writes the
 * requested dtype):
 *   affine:          any float dtype (MLX: `dtype`, default result_type(scales, biases));
 *   mxfp4/8, nvfp4:  any float dtype (MLX: `dtype`, default bfloat16), except that nvfp4 WITH
 *                    a global scale always yields float32 (float64 when dtype is float64),
 *                    as MLX 0.32 does because its float32 global scale promotes the product.
 * Affine scales/biases may be any float dtypes (f16 with bf16 computes the sum in f32, like
 * MLX's type promotion); fp-mode scales must be uint8. */
mlxq_status mlxq_dequantize(const mlxq_tensor *wq, const mlxq_tensor *scales,
                            const mlxq_tensor *biases, const mlxq_qparams *p,
                            mlxq_dtype requested, mlxq_tensor *out, mlxq_impl impl,
                            mlxq_error *err);

/* Every check mlxq_dequantize makes of its inputs and parameters. On success the output's
 * shape is wq's with the last dimension scales.shape[-1] * group_size. */
mlxq_status mlxq_dequantize_check(const mlxq_tensor *wq, const mlxq_tensor *scales,
                                  const mlxq_tensor *biases, const mlxq_qparams *p,
                                  mlxq_error *err);

#endif /* MLXQ_QUANT_H */
