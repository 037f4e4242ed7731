/*
 * repack_awq.c - AutoAWQ (GEMM) 4-bit codes into MLX's layout.
 *
 * AutoAWQ's WQLinear_GEMM.from_linear packs eight output columns into one int32 word along
 * the output dimension, column 8c + AWQ_ORDER[s] in nibble slot s. MLX wants eight input
 * rows per word along the input dimension, element k in nibble k. So each aligned 8x8 block
 * of codes is a nibble-matrix transpose: words x[k] = qweight[8w + k][c] (k = input row),
 * slot s of x[k] -> nibble k of the MLX word for output row 8c + AWQ_ORDER[s].
 */
#include "mlxq_pool.h"
#include "mlxq_repack.h"
#include "repack_internal.h"

/* AutoAWQ's order_map (awq/modules/linear/gemm.py; AWQ_ORDER in awq/utils/packing_utils.py). */
static const int AWQ_ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

/* Transposes the 8x8 matrix of nibbles held in x[0..7] (word = row, nibble = column) in
 * place: three rounds of swapping off-diagonal blocks of 4, 2 and 1 nibbles, branch-free. */
static inline void nibble_transpose8(uint32_t x[8]) {
    for (int i = 0; i < 4; i++) {
        uint32_t a = x[i], b = x[i + 4];
        x[i] = (a & 0x0000FFFFu) | (b << 16);
        x[i + 4] = (a >> 16) | (b & 0xFFFF0000u);
    }
    for (int i = 0; i < 8; i += (i & 1) ? 3 : 1) { /* 0, 1, 4, 5 */
        uint32_t a = x[i], b = x[i + 2];
        x[i] = (a & 0x00FF00FFu) | ((b & 0x00FF00FFu) << 8);
        x[i + 2] = ((a >> 8) & 0x00FF00FFu) | (b & 0xFF00FF00u);
    }
    for (int i = 0; i < 8; i += 2) {
        uint32_t a = x[i], b = x[i + 1];
        x[i] = (a & 0x0F0F0F0Fu) | ((b & 0x0F0F0F0Fu) << 4);
        x[i + 1] = ((a >> 4) & 0x0F0F0F0Fu) | (b & 0xF0F0F0F0u);
    }
}

typedef struct {
    const mlxq_tensor *q;
    const mlxq_tensor *wq;
    int64_t words_in; /* in / 8 */
} repack_job;

/* Columns c of qweight in [begin, end): output rows 8c .. 8c + 7. Columns are walked in
 * tiles so the eight source rows read per step share cache lines. */
static void repack_range(void *ctx, size_t begin, size_t end) {
    const repack_job *job = ctx;
    enum { TILE = 16 };
    for (size_t c0 = begin; c0 < end; c0 += TILE) {
        size_t c1 = c0 + TILE < end ? c0 + TILE : end;
        for (int64_t w = 0; w < job->words_in; w++) {
            for (size_t c = c0; c < c1; c++) {
                uint32_t x[8];
                for (int k = 0; k < 8; k++)
                    x[k] = mlxq_word_at(job->q, 8 * w + k, (int64_t)c);
                nibble_transpose8(x);
                for (int s = 0; s < 8; s++)
                    mlxq_word_put(job->wq, 8 * (int64_t)c + AWQ_ORDER[s], w, x[s]);
            }
        }
    }
}

mlxq_status mlxq_awq_repack(const mlxq_tensor *qweight, mlxq_tensor *wq, mlxq_error *err) {
    static const char fn[] = "mlxq_awq_repack";
    mlxq_status st;
    if ((st = mlxq_repack_check_words(qweight, fn, "qweight", 0, err)) ||
        (st = mlxq_repack_check_words(wq, fn, "wq", 1, err)))
        return st;
    const int64_t in = qweight->shape[0], packed_out = qweight->shape[1];
    if (in % 8 != 0)
        return mlxq_fail(err, MLXQ_EDIVISIBLE,
                         "%s: in_features (%lld rows of qweight) must be a multiple of 8", fn,
                         (long long)in);
    if (packed_out > INT64_MAX / 8)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "%s: out_features overflows", fn);
    if ((st = mlxq_repack_check_shape(wq, packed_out * 8, in / 8, fn, "wq", err)))
        return st;
    repack_job job = {.q = qweight, .wq = wq, .words_in = in / 8};
    mlxq_parallel_for((size_t)packed_out, 16, repack_range, &job);
    return MLXQ_OK;
}

typedef struct {
    const mlxq_tensor *q;
    const mlxq_tensor *out;
    int transpose;
} unpack_job;

static void unpack_range(void *ctx, size_t begin, size_t end) {
    const unpack_job *job = ctx;
    const int64_t cols = job->q->shape[1];
    for (size_t r = begin; r < end; r++) {
        for (int64_t c = 0; c < cols; c++) {
            uint32_t x = mlxq_word_at(job->q, (int64_t)r, c);
            for (int s = 0; s < 8; s++) {
                int64_t col = 8 * c + AWQ_ORDER[s];
                uint32_t v = (x >> (4 * s)) & 0xFu;
                if (job->transpose)
                    mlxq_word_put(job->out, col, (int64_t)r, v);
                else
                    mlxq_word_put(job->out, (int64_t)r, col, v);
            }
        }
    }
}

mlxq_status mlxq_awq_unpack(const mlxq_tensor *q, int transpose, mlxq_tensor *out,
                            mlxq_error *err) {
    static const char fn[] = "mlxq_awq_unpack";
    mlxq_status st;
    if ((st = mlxq_repack_check_words(q, fn, "q", 0, err)) ||
        (st = mlxq_repack_check_words(out, fn, "out", 1, err)))
        return st;
    const int64_t rows = q->shape[0], cols = q->shape[1];
    if (cols > INT64_MAX / 8)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "%s: unpacked width overflows", fn);
    st = transpose ? mlxq_repack_check_shape(out, cols * 8, rows, fn, "out", err)
                   : mlxq_repack_check_shape(out, rows, cols * 8, fn, "out", err);
    if (st)
        return st;
    unpack_job job = {.q = q, .out = out, .transpose = transpose != 0};
    mlxq_parallel_for((size_t)rows, 64, unpack_range, &job);
    return MLXQ_OK;
}
