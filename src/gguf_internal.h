/*
 * gguf_internal.h - the per-row kernels behind mlxq_gguf.h, shared by gguf.c (checks,
 * threading, the fast code moves) and gguf_ref.c (the scalar specification).
 */
#ifndef MLXQ_GGUF_INTERNAL_H
#define MLXQ_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mlxq_common.h"
#include "mlxq_float.h"
#include "mlxq_quant.h"

/* One row of nb blocks -> its MLX triple (scales: uint16 float16 bits, or uint8 for
 * MXFP4; biases NULL for MXFP4). Returns the index of the first block that has no exact MLX
 * layout (an MXFP4 exponent of 255), or -1. */
typedef int64_t (*mlxq_gguf_repack_fn)(const uint8_t *src, int64_t nb, uint32_t *wq,
                                       void *scales, uint16_t *biases);

/* One row of nb blocks -> nb * block_size float32 values. */
typedef void (*mlxq_gguf_dequant_fn)(const uint8_t *src, int64_t nb, float *out);

/* The reference kernels (gguf_ref.c) and the fast scalar ones (gguf_fast.c) for a ggml
 * type id; NULL when not handled. */
mlxq_gguf_repack_fn mlxq_gguf_ref_repack(int type);
mlxq_gguf_dequant_fn mlxq_gguf_ref_dequant(int type);
mlxq_gguf_repack_fn mlxq_gguf_fast_repack(int type);
mlxq_gguf_dequant_fn mlxq_gguf_fast_dequant(int type);

/* numpy's float16 -> float32 (npy_halfbits_to_floatbits), which gguf.quants widens the
 * scales with: exact, and a NaN keeps its payload without being quieted (mlxq_f16_to_f32,
 * MLX's conversion, quiets it); the first float32 multiply quiets it anyway, as in numpy. */
static inline float mlxq_gguf_np_half(const uint8_t *p) {
    const uint16_t h = (uint16_t)(p[0] | p[1] << 8);
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t u;
    if (exp == 0x1F)
        u = sign | 0x7F800000u | (man << 13);
    else if (exp != 0)
        u = sign | ((exp + 112u) << 23) | (man << 13);
    else if (man == 0)
        u = sign;
    else
        u = sign | mlxq_f32_bits((float)man * 0x1p-24f); /* subnormal: exact */
    return mlxq_f32_from_bits(u);
}

/* The bias MLX's GGUF reader stores beside scale d: -k * d in float16 (k = 8 or 128). */
uint16_t mlxq_gguf_neg_bias(uint16_t d, float k);

/* One row of nb blocks -> its values, written in odt (float32, float16 or bfloat16). */
typedef void (*mlxq_gguf_dequant_to_fn)(const uint8_t *src, int64_t nb, mlxq_dtype odt,
                                        uint8_t *dst);

/* The AVX2 dequantizers (gguf_avx2.c); NULL for a type without one or a build without. */
mlxq_gguf_dequant_to_fn mlxq_gguf_avx2_dequant(int type);

/* The kernels `impl` selects for `type` (gguf.c): any pointer may be NULL (not wanted);
 * what is set is NULL where the type has no such kernel. *dequant_to, when set and
 * non-NULL, is preferred over *dequant (the active ISA's vector kernel). */
void mlxq_gguf_kernels(int type, mlxq_impl impl, mlxq_gguf_repack_fn *repack,
                       mlxq_gguf_dequant_fn *dequant, mlxq_gguf_dequant_to_fn *dequant_to);

/* The checks of the outputs of n rows of nb blocks: MLX's triple, or the float32 values. */
mlxq_status mlxq_gguf_check_triple(int type, int64_t n, int64_t nb, const mlxq_tensor *wq,
                                   const mlxq_tensor *scales, const mlxq_tensor *biases,
                                   mlxq_error *err);
mlxq_status mlxq_gguf_check_dense(int type, int64_t n, int64_t nb, const mlxq_tensor *out,
                                  mlxq_error *err);

/* The error for output row r, whose source row (nb MXFP4 blocks) has an exponent of 255. */
mlxq_status mlxq_gguf_bad_block(const uint8_t *row, int64_t r, int64_t nb, mlxq_error *err);

/* n float32 values stored as odt (float16 or bfloat16), rounded as MLX's astype rounds
 * (mlxq_float.h). */
void mlxq_gguf_store_row(const float *v, int64_t n, mlxq_dtype odt, uint8_t *dst);

/* One row of nb blocks dequantized into dst as odt (float32, or float16/bfloat16 a block
 * at a time through float32). */
void mlxq_gguf_dequant_row(mlxq_gguf_dequant_fn dequant, const uint8_t *src, int64_t nb,
                           int type_size, int block_size, mlxq_dtype odt, uint8_t *dst);

/* Rows per pool task for rows of `elements` elements. */
size_t mlxq_gguf_grain(int64_t elements);

#endif /* MLXQ_GGUF_INTERNAL_H */
