/*
 * fp8.c - argument checks, row iteration, threading and reference/fast dispatch for the
 * E4M3 checkpoint dequantizers (mlxq_fp8.h). The arithmetic is mlxq_fp8_scaled_value
 * (kernels.h), run per element by fp8_ref.c and per vector by fast_tmpl.h.
 *
 * The fast kernels take a row's scales as one float per element: block scales are expanded
 * once per block row (block_rows rows share them), broadcast scales once per row unless the
 * row has a single scale. Messages name the arguments as mlxq/fp8.py's functions do.
 */
#include <stdlib.h>

#include "kernels.h"
#include "mlxq_fp8.h"
#include "mlxq_pool.h"

/* ---- checks -------------------------------------------------------------------------- */

static mlxq_status check_codes(const char *name, const mlxq_tensor *t, mlxq_error *err) {
    if (!t || !t->data)
        return mlxq_fail(err, MLXQ_EARG, "%s is missing", name);
    if (t->dtype != MLXQ_F8_E4M3 && t->dtype != MLXQ_U8)
        return mlxq_fail(err, MLXQ_EDTYPE, "%s must hold float8_e4m3fn codes (dtype "
                         "float8_e4m3fn or uint8), got %s", name, mlxq_dtype_name(t->dtype));
    return MLXQ_OK;
}

static mlxq_status check_scale_dtype(const char *name, const mlxq_tensor *t, mlxq_error *err) {
    if (!t || !t->data)
        return mlxq_fail(err, MLXQ_EARG, "%s is missing", name);
    if (t->dtype != MLXQ_F32 && t->dtype != MLXQ_BF16 && t->dtype != MLXQ_F16)
        return mlxq_fail(err, MLXQ_EDTYPE, "%s must be float32, bfloat16 or float16, got %s",
                         name, mlxq_dtype_name(t->dtype));
    return MLXQ_OK;
}

static int is_contiguous(const mlxq_tensor *t) {
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0)
            return 1; /* empty: no element is addressed (numpy may give it any strides) */
    int64_t expect = (int64_t)mlxq_dtype_size(t->dtype);
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return 0;
        expect *= t->shape[i];
    }
    return 1;
}

/* out: a C-contiguous bf16/f16/f32 tensor of weight's shape. */
static mlxq_status check_out(const mlxq_tensor *out, const mlxq_tensor *w, mlxq_error *err) {
    if (!out || !out->data)
        return mlxq_fail(err, MLXQ_EARG, "out is missing");
    if (out->dtype != MLXQ_BF16 && out->dtype != MLXQ_F16 && out->dtype != MLXQ_F32)
        return mlxq_fail(err, MLXQ_EDTYPE, "dtype must be bfloat16, float16 or float32, got %s",
                         mlxq_dtype_name(out->dtype));
    int bad = out->ndim != w->ndim;
    for (int i = 0; !bad && i < w->ndim; i++)
        bad = out->shape[i] != w->shape[i];
    if (bad)
        return mlxq_fail(err, MLXQ_ESHAPE, "out must have the shape of the rows produced "
                         "(the weight's, or its row slice)");
    if (!is_contiguous(out))
        return mlxq_fail(err, MLXQ_EARG, "out must be C-contiguous");
    return MLXQ_OK;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* Elements per task: rows of ~16K elements keep the claiming overhead negligible. */
static size_t grain_for(int64_t cols) { return cols > 0 ? (size_t)(16384 / cols) + 1 : 1; }

/* ---- block scales -------------------------------------------------------------------- */

typedef struct {
    const mlxq_tensor *w, *s;
    uint8_t *out;
    int64_t row0, block_rows, block_cols, cols;
    mlxq_dtype odt;
    mlxq_fp8_dequant_fn fast; /* NULL: reference */
} block_job;

static void block_rows_ref(const block_job *j, size_t begin, size_t end) {
    const size_t osize = mlxq_dtype_size(j->odt);
    for (size_t r = begin; r < end; r++) {
        const int64_t br = (j->row0 + (int64_t)r) / j->block_rows;
        mlxq_ref_fp8_dequant_row((const uint8_t *)j->w->data + (int64_t)r * j->w->strides[0],
                                 j->w->strides[1],
                                 (const uint8_t *)j->s->data + br * j->s->strides[0],
                                 j->s->strides[1], j->block_cols, j->s->dtype, j->cols,
                                 j->odt, j->out + r * (size_t)j->cols * osize);
    }
}

static void block_range(void *ctx, size_t begin, size_t end) {
    const block_job *j = ctx;
    if (!j->fast) {
        block_rows_ref(j, begin, end);
        return;
    }
    const int64_t cols = j->cols, wstride = j->w->strides[1];
    float *srow = malloc((size_t)cols * sizeof(float));
    uint8_t *gather = wstride != 1 ? malloc((size_t)cols) : NULL;
    if (!srow || (wstride != 1 && !gather)) { /* the reference needs no scratch */
        free(srow);
        free(gather);
        block_rows_ref(j, begin, end);
        return;
    }
    const size_t osize = mlxq_dtype_size(j->odt);
    const int64_t n_blocks = j->s->shape[1];
    int64_t cur = -1;
    for (size_t r = begin; r < end; r++) {
        const int64_t br = (j->row0 + (int64_t)r) / j->block_rows;
        if (br != cur) {
            const uint8_t *sp = (const uint8_t *)j->s->data + br * j->s->strides[0];
            for (int64_t b = 0; b < n_blocks; b++) {
                float v = (float)mlxq_load_float(sp + b * j->s->strides[1], j->s->dtype);
                int64_t lo = b * j->block_cols;
                int64_t hi = cols - lo < j->block_cols ? cols : lo + j->block_cols;
                for (int64_t c = lo; c < hi; c++)
                    srow[c] = v;
            }
            cur = br;
        }
        const uint8_t *wp = (const uint8_t *)j->w->data + (int64_t)r * j->w->strides[0];
        if (gather) {
            for (int64_t c = 0; c < cols; c++)
                gather[c] = wp[c * wstride];
            wp = gather;
        }
        j->fast(wp, srow, n_blocks == 1 ? 0 : 1, cols, j->out + r * (size_t)cols * osize);
    }
    free(srow);
    free(gather);
}

mlxq_status mlxq_fp8_block_check(const mlxq_tensor *weight, int64_t row0, int64_t total_rows,
                                 const mlxq_tensor *scale, int64_t block_rows,
                                 int64_t block_cols, mlxq_error *err) {
    mlxq_status st;
    if ((st = check_codes("weight", weight, err)) ||
        (st = check_scale_dtype("scale_inv", scale, err)))
        return st;
    if (weight->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "weight must be 2-D [out, in], got %d dimensions",
                         weight->ndim);
    if (scale->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "scale_inv must be 2-D [row blocks, column blocks], "
                         "got %d dimensions", scale->ndim);
    if (block_rows < 1 || block_cols < 1)
        return mlxq_fail(err, MLXQ_EVALUE, "block_size=(%lld, %lld) must be positive",
                         (long long)block_rows, (long long)block_cols);
    const int64_t n = weight->shape[0], cols = weight->shape[1];
    if (row0 < 0 || total_rows < 0 || row0 > total_rows || n > total_rows - row0)
        return mlxq_fail(err, MLXQ_EVALUE, "rows [%lld, %lld) are not inside the weight's "
                         "%lld rows", (long long)row0, (long long)(row0 + n),
                         (long long)total_rows);
    const int64_t want0 = ceil_div(total_rows, block_rows), want1 = ceil_div(cols, block_cols);
    if (scale->shape[0] != want0 || scale->shape[1] != want1)
        return mlxq_fail(err, MLXQ_ESHAPE, "scale_inv has shape (%lld, %lld), expected "
                         "(%lld, %lld): one scale per %lldx%lld block of the %lldx%lld weight",
                         (long long)scale->shape[0], (long long)scale->shape[1],
                         (long long)want0, (long long)want1, (long long)block_rows,
                         (long long)block_cols, (long long)total_rows, (long long)cols);
    return MLXQ_OK;
}

mlxq_status mlxq_fp8_block_dequant(const mlxq_tensor *weight, int64_t row0,
                                   int64_t total_rows, const mlxq_tensor *scale,
                                   int64_t block_rows, int64_t block_cols, mlxq_tensor *out,
                                   mlxq_impl impl, mlxq_error *err) {
    mlxq_status st = mlxq_fp8_block_check(weight, row0, total_rows, scale, block_rows,
                                          block_cols, err);
    if (st)
        return st;
    const int64_t n = weight->shape[0], cols = weight->shape[1];
    if ((st = check_out(out, weight, err)))
        return st;
    if (n == 0 || cols == 0)
        return MLXQ_OK;
    block_job job = {weight, scale, out->data, row0, block_rows, block_cols, cols, out->dtype,
                     NULL};
    if (impl == MLXQ_IMPL_FAST)
        job.fast = mlxq_fast_fp8_dequant(mlxq_fp8_product_dtype(scale->dtype), out->dtype);
    mlxq_parallel_for((size_t)n, grain_for(cols), block_range, &job);
    return MLXQ_OK;
}

/* ---- broadcast scales ---------------------------------------------------------------- */

typedef struct {
    const mlxq_tensor *w, *s;
    uint8_t *out;
    int64_t cols;
    mlxq_dtype odt;
    mlxq_fp8_dequant_fn fast;
} scaled_job;

/* Byte offset of row r (C order over all dimensions but the last) in t. */
static int64_t row_offset(const mlxq_tensor *t, int64_t r) {
    int64_t off = 0;
    for (int i = t->ndim - 2; i >= 0 && r > 0; i--) {
        off += (r % t->shape[i]) * t->strides[i];
        r /= t->shape[i];
    }
    return off;
}

static void scaled_rows_ref(const scaled_job *j, size_t begin, size_t end) {
    const int nd = j->w->ndim;
    const size_t osize = mlxq_dtype_size(j->odt);
    for (size_t r = begin; r < end; r++)
        mlxq_ref_fp8_dequant_row(
            (const uint8_t *)j->w->data + row_offset(j->w, (int64_t)r), j->w->strides[nd - 1],
            (const uint8_t *)j->s->data + row_offset(j->s, (int64_t)r), j->s->strides[nd - 1],
            1, j->s->dtype, j->cols, j->odt, j->out + r * (size_t)j->cols * osize);
}

static void scaled_range(void *ctx, size_t begin, size_t end) {
    const scaled_job *j = ctx;
    if (!j->fast) {
        scaled_rows_ref(j, begin, end);
        return;
    }
    const int nd = j->w->ndim;
    const int64_t cols = j->cols, wstride = j->w->strides[nd - 1];
    const int64_t sstride = j->s->strides[nd - 1];
    float *srow = malloc((sstride ? (size_t)cols : 1) * sizeof(float));
    uint8_t *gather = wstride != 1 ? malloc((size_t)cols) : NULL;
    if (!srow || (wstride != 1 && !gather)) {
        free(srow);
        free(gather);
        scaled_rows_ref(j, begin, end);
        return;
    }
    const size_t osize = mlxq_dtype_size(j->odt);
    int64_t cur = -1;
    for (size_t r = begin; r < end; r++) {
        const int64_t soff = row_offset(j->s, (int64_t)r);
        if (soff != cur) { /* a per-tensor scale is loaded once per task */
            const uint8_t *sp = (const uint8_t *)j->s->data + soff;
            for (int64_t c = 0; c < (sstride ? cols : 1); c++)
                srow[c] = (float)mlxq_load_float(sp + c * sstride, j->s->dtype);
            cur = soff;
        }
        const uint8_t *wp = (const uint8_t *)j->w->data + row_offset(j->w, (int64_t)r);
        if (gather) {
            for (int64_t c = 0; c < cols; c++)
                gather[c] = wp[c * wstride];
            wp = gather;
        }
        j->fast(wp, srow, sstride ? 1 : 0, cols, j->out + r * (size_t)cols * osize);
    }
    free(srow);
    free(gather);
}

mlxq_status mlxq_fp8_scaled_check(const mlxq_tensor *weight, const mlxq_tensor *scale,
                                  mlxq_error *err) {
    mlxq_status st;
    if ((st = check_codes("weight", weight, err)) ||
        (st = check_scale_dtype("scale", scale, err)))
        return st;
    if (weight->ndim < 1 || weight->ndim > MLXQ_MAX_NDIM)
        return mlxq_fail(err, MLXQ_ERANK, "weight must have at least one dimension");
    int bad = scale->ndim != weight->ndim;
    for (int i = 0; !bad && i < weight->ndim; i++)
        bad = scale->shape[i] != weight->shape[i];
    if (bad)
        return mlxq_fail(err, MLXQ_ESHAPE, "scale must be broadcast to the weight's shape");
    return MLXQ_OK;
}

mlxq_status mlxq_fp8_scaled_dequant(const mlxq_tensor *weight, const mlxq_tensor *scale,
                                    mlxq_tensor *out, mlxq_impl impl, mlxq_error *err) {
    mlxq_status st = mlxq_fp8_scaled_check(weight, scale, err);
    if (st)
        return st;
    if ((st = check_out(out, weight, err)))
        return st;
    const int64_t cols = weight->shape[weight->ndim - 1];
    int64_t rows = 1;
    for (int i = 0; i < weight->ndim - 1; i++)
        rows *= weight->shape[i];
    if (rows == 0 || cols == 0)
        return MLXQ_OK;
    scaled_job job = {weight, scale, out->data, cols, out->dtype, NULL};
    if (impl == MLXQ_IMPL_FAST)
        job.fast = mlxq_fast_fp8_dequant(mlxq_fp8_product_dtype(scale->dtype), out->dtype);
    mlxq_parallel_for((size_t)rows, grain_for(cols), scaled_range, &job);
    return MLXQ_OK;
}
