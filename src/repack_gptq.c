/*
 * repack_gptq.c - GPTQ codes into MLX's layout.
 *
 * GPTQ (AutoGPTQ's QuantLinear.pack, GPTQModel's pack) writes the codes of output column o
 * into qweight[:, o] as one LSB-first bit stream along the input dimension: 2/4/8-bit codes
 * never straddle a word, 3-bit codes fill three words per 32 codes with codes 10 and 21
 * split across a word boundary. That is exactly MLX's row layout for the same bit width, so
 * the weight needs only a word transpose. qzeros uses the same stream along the output
 * dimension and is unpacked to one code per output and group.
 */
#include "mlxq_pool.h"
#include "mlxq_repack.h"
#include "repack_internal.h"

typedef struct {
    const mlxq_tensor *in;
    const mlxq_tensor *out;
    int contiguous;
} transpose_job;

/* Contiguous tensors: 8x8 blocks through registers; columns [c0, c1) of the input. */
static void transpose_contiguous(const transpose_job *job, int64_t c0, int64_t c1) {
    const uint32_t *src = job->in->data;
    uint32_t *dst = job->out->data;
    const int64_t rows = job->in->shape[0], cols = job->in->shape[1];
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8)
        for (int64_t c = c0; c < c1; c++)
            for (int k = 0; k < 8; k++)
                dst[c * rows + r + k] = src[(r + k) * cols + c];
    for (; r < rows; r++)
        for (int64_t c = c0; c < c1; c++)
            dst[c * rows + r] = src[r * cols + c];
}

/* Output rows (input columns) [begin, end), in square tiles so both sides stay in cache. */
static void transpose_range(void *ctx, size_t begin, size_t end) {
    const transpose_job *job = ctx;
    enum { TILE = 32 };
    const int64_t rows = job->in->shape[0];
    if (job->contiguous) {
        for (size_t c0 = begin; c0 < end; c0 += 8)
            transpose_contiguous(job, (int64_t)c0, (int64_t)(c0 + 8 < end ? c0 + 8 : end));
        return;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += TILE) {
        int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (size_t c = begin; c < end; c++)
            for (int64_t r = r0; r < r1; r++)
                mlxq_word_put(job->out, (int64_t)c, r, mlxq_word_at(job->in, r, (int64_t)c));
    }
}

mlxq_status mlxq_transpose_u32(const mlxq_tensor *in, mlxq_tensor *out, mlxq_error *err) {
    static const char fn[] = "mlxq_transpose_u32";
    mlxq_status st;
    if ((st = mlxq_repack_check_words(in, fn, "in", 0, err)) ||
        (st = mlxq_repack_check_words(out, fn, "out", 1, err)) ||
        (st = mlxq_repack_check_shape(out, in->shape[1], in->shape[0], fn, "out", err)))
        return st;
    transpose_job job = {.in = in, .out = out,
                         .contiguous = mlxq_words_contiguous(in) && mlxq_words_contiguous(out)};
    mlxq_parallel_for((size_t)in->shape[1], 32, transpose_range, &job);
    return MLXQ_OK;
}

typedef struct {
    const mlxq_tensor *q;
    const mlxq_tensor *out;
    int bits;
    uint32_t offset;
} zeros_job;

static void zeros_range(void *ctx, size_t begin, size_t end) {
    const zeros_job *job = ctx;
    const int bits = job->bits;
    const uint32_t mask = (1u << bits) - 1u;
    const int64_t n = job->out->shape[0];
    for (size_t g = begin; g < end; g++) {
        for (int64_t j = 0; j < n; j++) {
            int64_t bit = j * bits;
            int64_t w = bit >> 5;
            int sh = (int)(bit & 31);
            uint32_t v = mlxq_word_at(job->q, (int64_t)g, w) >> sh;
            if (sh + bits > 32) /* a 3-bit code split across two words */
                v |= mlxq_word_at(job->q, (int64_t)g, w + 1) << (32 - sh);
            mlxq_word_put(job->out, j, (int64_t)g, (v & mask) + job->offset);
        }
    }
}

mlxq_status mlxq_gptq_unpack_zeros(const mlxq_tensor *qzeros, int bits, int offset,
                                   mlxq_tensor *out, mlxq_error *err) {
    static const char fn[] = "mlxq_gptq_unpack_zeros";
    mlxq_status st;
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
        return mlxq_fail(err, MLXQ_EVALUE, "%s: bits must be 2, 3, 4 or 8, got %d", fn, bits);
    if (offset != 0 && offset != 1)
        return mlxq_fail(err, MLXQ_EVALUE, "%s: offset must be 0 or 1, got %d", fn, offset);
    if ((st = mlxq_repack_check_words(qzeros, fn, "qzeros", 0, err)) ||
        (st = mlxq_repack_check_words(out, fn, "out", 1, err)))
        return st;
    const int64_t groups = qzeros->shape[0], words = qzeros->shape[1];
    if (words > INT64_MAX / 32)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "%s: unpacked width overflows", fn);
    if ((words * 32) % bits != 0)
        return mlxq_fail(err, MLXQ_EDIVISIBLE,
                         "%s: %lld words of qzeros do not hold a whole number of %d-bit codes",
                         fn, (long long)words, bits);
    if ((st = mlxq_repack_check_shape(out, words * 32 / bits, groups, fn, "out", err)))
        return st;
    zeros_job job = {.q = qzeros, .out = out, .bits = bits, .offset = (uint32_t)offset};
    mlxq_parallel_for((size_t)groups, 1, zeros_range, &job);
    return MLXQ_OK;
}
