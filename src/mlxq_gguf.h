/*
 * mlxq_gguf.h - llama.cpp's GGUF block formats: the ones MLX's quantized layout holds exactly
 * repacked into it, and the common ones it cannot hold dequantized to float32.
 *
 * A GGUF tensor's row is a run of blocks, each `block_size` elements in `type_size` bytes
 * (mlxq_gguf_block). The source here is a 2-D uint8 array [n_src, row_bytes] of whole rows
 * (row_bytes = blocks per row * type_size); `rows`, when given, is a 1-D int64 array [n] of
 * source row indices: output row i is made from source row rows[i] (llama's permuted Q/K
 * rows are put back in Hugging Face's order this way, with the repack in the same pass);
 * without it, output row i is source row i and n = n_src.
 *
 * Repack (mlxq_gguf_to_mlx), bit for bit what MLX's GGUF reader (mx.load; its
 * extract_q4_0_data / extract_q4_1_data / extract_q8_0_data) gives for the tensor:
 *
 *   Q4_0   f16 d, 16 bytes of 4-bit q    wq 4-bit, scales d, biases round16(-8 * d)
 *   Q4_1   f16 d, f16 m, 16 bytes of q   wq 4-bit, scales d, biases m
 *   Q8_0   f16 d, 32 int8 q              wq 8-bit codes q + 128 (q ^ 0x80), scales d,
 *                                        biases round16(-128 * d)
 *   MXFP4  E8M0 e, 16 bytes of E2M1 q    wq 4-bit, scales e (uint8; mx.load has no MXFP4)
 *
 * Group size 32 throughout; wq is uint32 [n, elements * bits / 32], scales and biases are
 * [n, blocks] (float16 bits as uint16; uint8 scales and no biases for MXFP4). A ggml 4-bit
 * block keeps element j in the low nibble and element j + 16 in the high nibble of byte j;
 * MLX packs elements in order, eight per little-endian word, low nibble first: the codes
 * move, the values do not. round16 is MLX's float -> float16 (mlxq_float.h): -8 * d is
 * exact but for overflow to infinity, and a NaN d gives the NaN sign|0x7D00. An MXFP4 block
 * whose exponent is 255 (ggml reads it as 2^127, MLX's E8M0 as NaN) has no exact MLX
 * layout: MLXQ_EFORMAT, naming the row and block.
 *
 * Dequantize (mlxq_gguf_dequant): float32 [n, elements], bit for bit what the `gguf`
 * package's reference dequantizers (gguf.quants.dequantize, numpy) give, for Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and MXFP4: the same float32 operations in
 * the same order (each product and difference rounded once: no FMA, which setup.py's
 * -ffp-contract=off guarantees), float16 scales widened as numpy widens them (a NaN's
 * payload kept, not quieted), the x86 NaN rules of the multiply (NaN operand quieted; inf
 * * 0 the default NaN 0xFFC00000). The per-type formulas are in gguf_ref.c.
 *
 * Common contract: the source is uint8, 2-D, each row contiguous (any row stride), and is
 * never written; rows, when given, is int64, 1-D, every entry in [0, n_src); outputs are
 * C-contiguous, writable, exactly the documented shape and dtype, and do not overlap the
 * source. Rows are split over mlxq_parallel_for; MLXQ_IMPL_REF (the scalar specification,
 * gguf_ref.c) and MLXQ_IMPL_FAST (gguf.c: word-at-a-time code moves, threaded) give
 * identical bytes for every input and thread count. On a bad argument nothing is written and
 * a message naming the argument is returned.
 */
#ifndef MLXQ_GGUF_H
#define MLXQ_GGUF_H

#include "mlxq_common.h"
#include "mlxq_quant.h"

/* ggml's type ids (ggml.h's enum ggml_type, as GGUF stores them) of the block formats
 * handled here. */
enum {
    MLXQ_GGUF_Q4_0 = 2,
    MLXQ_GGUF_Q4_1 = 3,
    MLXQ_GGUF_Q5_0 = 6,
    MLXQ_GGUF_Q5_1 = 7,
    MLXQ_GGUF_Q8_0 = 8,
    MLXQ_GGUF_Q2_K = 10,
    MLXQ_GGUF_Q3_K = 11,
    MLXQ_GGUF_Q4_K = 12,
    MLXQ_GGUF_Q5_K = 13,
    MLXQ_GGUF_Q6_K = 14,
    MLXQ_GGUF_MXFP4 = 39
};

/* Elements and bytes per block of `type`; returns 1 when mlxq_gguf_dequant handles the type,
 * 2 when mlxq_gguf_to_mlx does too, 0 (nothing written) otherwise. */
int mlxq_gguf_block(int type, int *block_size, int *type_size);

/* Rows of Q4_0, Q4_1, Q8_0 or MXFP4 -> MLX's (wq, scales, biases); biases must be NULL for
 * MXFP4 and given for the others. rows: NULL or [n] (see above). */
mlxq_status mlxq_gguf_to_mlx(int type, const mlxq_tensor *src, const mlxq_tensor *rows,
                             mlxq_tensor *wq, mlxq_tensor *scales, mlxq_tensor *biases,
                             mlxq_impl impl, mlxq_error *err);

/* Rows of any type mlxq_gguf_block accepts -> out [n, elements]: float32 (gguf.quants'
 * values), or float16 / bfloat16 (those values rounded as MLX's astype rounds them,
 * mlxq_float.h: what casting the float32 result would give, in one pass). */
mlxq_status mlxq_gguf_dequant(int type, const mlxq_tensor *src, const mlxq_tensor *rows,
                              mlxq_tensor *out, mlxq_impl impl, mlxq_error *err);

/* The same two conversions reading the rows from a file (gguf_read.c): rows [0, n) of
 * row_bytes each (whole blocks), stored from byte `offset` of the open file `fd`, are read
 * with pread a few hundred KiB at a time by the pool's threads, each converting what it
 * read while it is in cache. *nread (when given) is set to the bytes read. A read error
 * is MLXQ_EIO with the system's message; a file that ends before the rows do is
 * MLXQ_EFORMAT ("shrank while being read?"). On any error the outputs are unspecified. */
mlxq_status mlxq_gguf_read_to_mlx(int type, int fd, int64_t offset, int64_t n,
                                  int64_t row_bytes, mlxq_tensor *wq, mlxq_tensor *scales,
                                  mlxq_tensor *biases, int64_t *nread, mlxq_impl impl,
                                  mlxq_error *err);
mlxq_status mlxq_gguf_read_dequant(int type, int fd, int64_t offset, int64_t n,
                                   int64_t row_bytes, mlxq_tensor *out, int64_t *nread,
                                   mlxq_impl impl, mlxq_error *err);

/* The checks both in-memory functions make of `type`, src and rows (not of the outputs),
 * so a caller can validate before allocating; *n is set to the number of output rows and
 * *blocks to the blocks per row. */
mlxq_status mlxq_gguf_check(int type, int repack, const mlxq_tensor *src,
                            const mlxq_tensor *rows, int64_t *n, int64_t *blocks,
                            mlxq_error *err);

#endif /* MLXQ_GGUF_H */
