/*
 * gguf_internal.h - the per-row kernels behind mlxq_gguf.h, shared by gguf.c (checks,
 * threading, the fast code moves) and gguf_ref.c (the scalar specification).
 */
#ifndef MLXQ_GGUF_INTERNAL_H
#define MLXQ_GGUF_INTERNAL_H

#include <stdint.h>

/* One row of nb blocks -> its MLX triple (scales: uint16 float16 bits, or uint8 for
 * MXFP4; biases NULL for MXFP4). Returns the index of the first block that has no exact MLX
 * layout (an MXFP4 exponent of 255), or -1. */
typedef int64_t (*mlxq_gguf_repack_fn)(const uint8_t *src, int64_t nb, uint32_t *wq,
                                       void *scales, uint16_t *biases);

/* One row of nb blocks -> nb * block_size float32 values. */
typedef void (*mlxq_gguf_dequant_fn)(const uint8_t *src, int64_t nb, float *out);

/* The reference kernels (gguf_ref.c) for a ggml type id; NULL when not handled. */
mlxq_gguf_repack_fn mlxq_gguf_ref_repack(int type);
mlxq_gguf_dequant_fn mlxq_gguf_ref_dequant(int type);

/* The bias MLX's GGUF reader stores beside scale d: -k * d in float16 (k = 8 or 128). */
uint16_t mlxq_gguf_neg_bias(uint16_t d, float k);

#endif /* MLXQ_GGUF_INTERNAL_H */
