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
    int contiguous;   /* both tensors C-contiguous: the vector path applies */
} repack_job;

/* One 8x8 block of codes at source column c, input word w, any strides. */
static inline void repack_block(const repack_job *job, int64_t c, int64_t w) {
    uint32_t x[8];
    for (int k = 0; k < 8; k++)
        x[k] = mlxq_word_at(job->q, 8 * w + k, c);
    nibble_transpose8(x);
    for (int s = 0; s < 8; s++)
        mlxq_word_put(job->wq, 8 * c + AWQ_ORDER[s], w, x[s]);
}

#if defined(__GNUC__)
/* Eight blocks side by side: lane j works on source column c0 + j. GCC/Clang vector
 * extensions, so every target gets SIMD code (SSE2 at least) from one portable source. */
typedef uint32_t v8u32 __attribute__((vector_size(32)));

static inline void nibble_transpose8x8(v8u32 x[8]) {
    for (int i = 0; i < 4; i++) {
        v8u32 a = x[i], b = x[i + 4];
        x[i] = (a & 0x0000FFFFu) | (b << 16);
        x[i + 4] = (a >> 16) | (b & 0xFFFF0000u);
    }
    for (int i = 0; i < 8; i += (i & 1) ? 3 : 1) {
        v8u32 a = x[i], b = x[i + 2];
        x[i] = (a & 0x00FF00FFu) | ((b & 0x00FF00FFu) << 8);
        x[i + 2] = ((a >> 8) & 0x00FF00FFu) | (b & 0xFF00FF00u);
    }
    for (int i = 0; i < 8; i += 2) {
        v8u32 a = x[i], b = x[i + 1];
        x[i] = (a & 0x0F0F0F0Fu) | ((b & 0x0F0F0F0Fu) << 4);
        x[i + 1] = ((a >> 4) & 0x0F0F0F0Fu) | (b & 0xF0F0F0F0u);
    }
}

/* Contiguous tensors, source columns [c0, c0 + 8). Results are gathered for 8 input words
 * at a time so each of the 64 output rows receives one 32-byte run, not 8 scattered words. */
static void repack_vec8(const repack_job *job, int64_t c0) {
    const uint32_t *src = job->q->data;
    uint32_t *dst = job->wq->data;
    const int64_t packed_out = job->q->shape[1], words_in = job->words_in;
    int64_t rows[64]; /* output row of lane j, slot s: 8 * (c0 + j) + AWQ_ORDER[s] */
    for (int j = 0; j < 8; j++)
        for (int s = 0; s < 8; s++)
            rows[8 * j + s] = (8 * (c0 + j) + AWQ_ORDER[s]) * words_in;
    for (int64_t w0 = 0; w0 < words_in; w0 += 8) {
        const int n = words_in - w0 < 8 ? (int)(words_in - w0) : 8;
        uint32_t tile[64][8];
        for (int dw = 0; dw < n; dw++) {
            v8u32 x[8];
            for (int k = 0; k < 8; k++)
                memcpy(&x[k], src + (8 * (w0 + dw) + k) * packed_out + c0, sizeof x[k]);
            nibble_transpose8x8(x);
            for (int s = 0; s < 8; s++)
                for (int j = 0; j < 8; j++)
                    tile[8 * j + s][dw] = x[s][j];
        }
        for (int r = 0; r < 64; r++)
            memcpy(dst + rows[r] + w0, tile[r], (size_t)n * sizeof(uint32_t));
    }
}
#endif

/* Columns c of qweight in [begin, end): output rows 8c .. 8c + 7. */
static void repack_range(void *ctx, size_t begin, size_t end) {
    const repack_job *job = ctx;
    size_t c = begin;
#if defined(__GNUC__)
    if (job->contiguous)
        for (; c + 8 <= end; c += 8)
            repack_vec8(job, (int64_t)c);
#endif
    enum { TILE = 16 }; /* columns per step, so the eight source rows read share lines */
    for (size_t c0 = c; c0 < end; c0 += TILE) {
        size_t c1 = c0 + TILE < end ? c0 + TILE : end;
        for (int64_t w = 0; w < job->words_in; w++)
            for (size_t cc = c0; cc < c1; cc++)
                repack_block(job, (int64_t)cc, w);
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
    repack_job job = {.q = qweight, .wq = wq, .words_in = in / 8,
                      .contiguous = mlxq_words_contiguous(qweight) && mlxq_words_contiguous(wq)};
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
