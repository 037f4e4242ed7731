/*
 * quant.c - argument checking, row iteration, threading and reference/fast dispatch for
 * mlxq_quantize / mlxq_dequantize. The arithmetic lives in the kernels.
 */
#include <stdio.h>
#include <stdlib.h>

#include "drivers.h"
#include "kernels.h"
#include "mlxq_pool.h"

/* ---- shape checks ------------------------------------------------------------------ */

int64_t mlxq_count_rows(const mlxq_tensor *t) {
    int64_t rows = 1;
    for (int i = 0; i < t->ndim - 1; i++)
        rows *= t->shape[i];
    return rows;
}

static int is_contiguous(const mlxq_tensor *t) {
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0)
            return 1; /* empty: no element is ever addressed (numpy gives such arrays 0 strides) */
    int64_t expect = (int64_t)mlxq_dtype_size(t->dtype);
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return 0;
        expect *= t->shape[i];
    }
    return 1;
}

/* Checks that out is a contiguous array of dtype dt shaped like ref with last dim `last`. */
static mlxq_status check_output(const char *name, const mlxq_tensor *out, const mlxq_tensor *ref,
                                mlxq_dtype dt, int64_t last, mlxq_error *err) {
    if (!out || !out->data)
        return mlxq_fail(err, MLXQ_EARG, "output '%s' is missing", name);
    if (out->dtype != dt)
        return mlxq_fail(err, MLXQ_EDTYPE, "output '%s' must be %s, got %s", name,
                         mlxq_dtype_name(dt), mlxq_dtype_name(out->dtype));
    int bad = out->ndim != ref->ndim || out->shape[out->ndim - 1] != last;
    for (int i = 0; !bad && i < ref->ndim - 1; i++)
        bad = out->shape[i] != ref->shape[i];
    if (bad)
        return mlxq_fail(err, MLXQ_ESHAPE, "output '%s' has the wrong shape", name);
    if (!is_contiguous(out))
        return mlxq_fail(err, MLXQ_EVALUE, "output '%s' must be C-contiguous", name);
    return MLXQ_OK;
}

static mlxq_status check_rank(const char *name, const mlxq_tensor *t, mlxq_error *err) {
    if (t->ndim < 2 || t->ndim > MLXQ_MAX_NDIM)
        return mlxq_fail(err, MLXQ_ERANK, "%s must have at least 2 dimensions (and at most "
                         "%d), got %d", name, MLXQ_MAX_NDIM, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return mlxq_fail(err, MLXQ_ESHAPE, "%s has a negative dimension", name);
    return MLXQ_OK;
}

/* "(2, 64, 32)" into buf, the way numpy prints shapes (truncated if very long). */
static const char *shape_str(const mlxq_tensor *t, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && len + 24 < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "",
                                (long long)t->shape[i]);
    snprintf(buf + len, n - len, t->ndim == 1 ? ",)" : ")");
    return buf;
}

/* Byte offset of row r of t (all axes but the last flattened, C order). */
int64_t mlxq_row_offset(const mlxq_tensor *t, int64_t r) {
    int64_t off = 0;
    for (int i = t->ndim - 2; i >= 0 && r > 0; i--) {
        int64_t n = t->shape[i];
        off += (r % n) * t->strides[i];
        r /= n;
    }
    return off;
}

/* Copies a strided row into a contiguous buffer for the fast kernels. */
static const uint8_t *gather_row(const uint8_t *src, int64_t stride, int64_t n, size_t esize,
                                 uint8_t *buf) {
    if (stride == (int64_t)esize)
        return src;
    for (int64_t i = 0; i < n; i++)
        memcpy(buf + i * esize, src + i * stride, esize);
    return buf;
}

/* ---- quantize ---------------------------------------------------------------------- */

typedef struct {
    const mlxq_tensor *w;
    const mlxq_qparams *p;
    uint8_t *wq, *scales, *biases;
    int64_t cols, wq_row_bytes, n_groups;
    mlxq_affine_quant_fn affine_fast;
    mlxq_fp_quant_fn fp_fast;
    int use_ref;
} quant_job;

static void quant_rows(void *ctx, size_t begin, size_t end) {
    const quant_job *j = ctx;
    const mlxq_tensor *w = j->w;
    const size_t esize = mlxq_dtype_size(w->dtype);
    const int64_t stride = w->strides[w->ndim - 1];
    const size_t ssize = j->p->mode == MLXQ_MODE_AFFINE ? esize : 1;
    uint8_t *scratch = NULL;
    if (!j->use_ref && stride != (int64_t)esize) {
        scratch = malloc((size_t)j->cols * esize);
        if (!scratch) { /* fall back to the reference, which reads strided rows itself */
            quant_job ref = *j;
            ref.use_ref = 1;
            quant_rows(&ref, begin, end);
            return;
        }
    }
    for (size_t r = begin; r < end; r++) {
        const uint8_t *src = (const uint8_t *)w->data + mlxq_row_offset(w, (int64_t)r);
        uint8_t *wq = j->wq + r * j->wq_row_bytes;
        uint8_t *sc = j->scales + r * j->n_groups * ssize;
        uint8_t *bi = j->biases ? j->biases + r * j->n_groups * ssize : NULL;
        if (j->use_ref) {
            const int gpu = j->p->device == MLXQ_DEVICE_GPU;
            if (j->p->mode == MLXQ_MODE_AFFINE)
                (gpu ? mlxq_ref_affine_quant_row_gpu : mlxq_ref_affine_quant_row)(
                    w->dtype, src, stride, j->cols, j->p->group_size, j->p->bits, wq, sc, bi);
            else
                (gpu ? mlxq_ref_fp_quant_row_gpu : mlxq_ref_fp_quant_row)(
                    j->p, w->dtype, src, stride, j->cols, wq, sc);
        } else {
            const uint8_t *row = gather_row(src, stride, j->cols, esize, scratch);
            if (j->affine_fast)
                j->affine_fast(row, j->cols, j->p->group_size, j->p->bits, wq, sc, bi);
            else
                j->fp_fast(j->p, row, j->cols, wq, sc);
        }
    }
    free(scratch);
}

mlxq_status mlxq_quantize_check(const mlxq_tensor *w, const mlxq_qparams *p,
                                mlxq_error *err) {
    mlxq_status st = mlxq_check_params(p, err);
    if (st)
        return st;
    if (!w || !w->data)
        return mlxq_fail(err, MLXQ_EARG, "w is missing");
    if (!mlxq_dtype_is_float(w->dtype))
        return mlxq_fail(err, MLXQ_EDTYPE, "w must be a floating dtype (float16, bfloat16, "
                         "float32 or float64), got %s", mlxq_dtype_name(w->dtype));
    if (p->mode == MLXQ_MODE_AFFINE && w->dtype == MLXQ_F64)
        return mlxq_fail(err, MLXQ_EDTYPE, "w has dtype float64, which mode 'affine' does "
                         "not support (MLX's CPU kernel refuses it); cast to float32 first");
    if (p->device == MLXQ_DEVICE_GPU && w->dtype == MLXQ_F64)
        return mlxq_fail(err, MLXQ_EDTYPE, "w has dtype float64, which MLX's GPU kernels do "
                         "not support (Metal has no float64); cast to float32 first, or use "
                         "device='cpu' (MLX's CPU backend quantizes float64 in mode '%s')",
                         mlxq_mode_name(p->mode));
    if ((st = check_rank("w", w, err)))
        return st;
    const int64_t cols = w->shape[w->ndim - 1];
    if (cols % p->group_size != 0)
        return mlxq_fail(err, MLXQ_EDIVISIBLE, "the last dimension of w (%lld) is not divisible "
                         "by group_size=%d", (long long)cols, p->group_size);
    return MLXQ_OK;
}

mlxq_status mlxq_quantize_check_outputs(const mlxq_tensor *w, const mlxq_qparams *p,
                                        mlxq_tensor *wq, mlxq_tensor *scales,
                                        mlxq_tensor *biases, mlxq_error *err) {
    mlxq_status st;
    const int64_t cols = w->shape[w->ndim - 1];
    const int64_t n_groups = cols / p->group_size;
    const int affine = p->mode == MLXQ_MODE_AFFINE;
    const mlxq_dtype sdt = affine ? w->dtype : MLXQ_U8;
    if ((st = check_output("wq", wq, w, MLXQ_U32, cols * p->bits / 32, err)) ||
        (st = check_output("scales", scales, w, sdt, n_groups, err)))
        return st;
    if (affine && (st = check_output("biases", biases, w, sdt, n_groups, err)))
        return st;
    if (!affine && biases && biases->data)
        return mlxq_fail(err, MLXQ_EARG, "mode '%s' has no biases output",
                         mlxq_mode_name(p->mode));
    return MLXQ_OK;
}

mlxq_status mlxq_quantize(const mlxq_tensor *w, const mlxq_qparams *p, mlxq_tensor *wq,
                          mlxq_tensor *scales, mlxq_tensor *biases, mlxq_impl impl,
                          mlxq_error *err) {
    mlxq_status st = mlxq_quantize_check(w, p, err);
    if (st)
        return st;
    if ((st = mlxq_quantize_check_outputs(w, p, wq, scales, biases, err)))
        return st;
    const int64_t cols = w->shape[w->ndim - 1];
    const int64_t n_groups = cols / p->group_size;
    const int affine = p->mode == MLXQ_MODE_AFFINE;

    quant_job job = {
        .w = w, .p = p, .wq = wq->data, .scales = scales->data,
        .biases = affine ? biases->data : NULL, .cols = cols,
        .wq_row_bytes = cols * p->bits / 8, .n_groups = n_groups,
    };
    if (impl == MLXQ_IMPL_FAST) {
        if (affine)
            job.affine_fast = mlxq_fast_affine_quant(w->dtype, p->bits, p->device);
        else
            job.fp_fast = mlxq_fast_fp_quant(p, w->dtype);
    }
    job.use_ref = !job.affine_fast && !job.fp_fast;
    const int64_t rows = mlxq_count_rows(w);
    /* Rows of at least ~16K elements per task keep the claiming overhead negligible. */
    size_t grain = cols > 0 ? (size_t)(16384 / cols) + 1 : 1;
    mlxq_parallel_for((size_t)rows, grain, quant_rows, &job);
    return MLXQ_OK;
}

/* ---- dequantize -------------------------------------------------------------------- */

typedef struct {
    const mlxq_tensor *wq, *scales, *biases;
    const mlxq_qparams *p;
    mlxq_dtype odt;
    uint8_t *out;
    int64_t cols, n_groups, out_row_bytes;
    mlxq_affine_dequant_fn affine_fast;
    mlxq_fp_dequant_fn fp_fast;
    int use_ref;
} dequant_job;

static void dequant_rows(void *ctx, size_t begin, size_t end) {
    const dequant_job *j = ctx;
    const mlxq_tensor *wq = j->wq, *sc = j->scales, *bi = j->biases;
    const int64_t wq_words = wq->shape[wq->ndim - 1];
    const int64_t wq_stride = wq->strides[wq->ndim - 1];
    const int64_t s_stride = sc->strides[sc->ndim - 1];
    const int64_t b_stride = bi ? bi->strides[bi->ndim - 1] : 0;
    const size_t ssize = mlxq_dtype_size(sc->dtype);
    const size_t bsize = bi ? mlxq_dtype_size(bi->dtype) : 0;
    uint8_t *scratch = NULL, *wq_buf = NULL, *s_buf = NULL, *b_buf = NULL;
    if (!j->use_ref) {
        size_t need = (size_t)wq_words * 4 + (size_t)j->n_groups * (ssize + bsize);
        scratch = malloc(need ? need : 1);
        if (!scratch) {
            dequant_job ref = *j;
            ref.use_ref = 1;
            dequant_rows(&ref, begin, end);
            return;
        }
        wq_buf = scratch;
        s_buf = wq_buf + (size_t)wq_words * 4;
        b_buf = s_buf + (size_t)j->n_groups * ssize;
    }
    for (size_t r = begin; r < end; r++) {
        const uint8_t *w_row = (const uint8_t *)wq->data + mlxq_row_offset(wq, (int64_t)r);
        const uint8_t *s_row = (const uint8_t *)sc->data + mlxq_row_offset(sc, (int64_t)r);
        const uint8_t *b_row = bi ? (const uint8_t *)bi->data + mlxq_row_offset(bi, (int64_t)r) : NULL;
        uint8_t *out = j->out + r * j->out_row_bytes;
        if (j->use_ref) {
            const int gpu = j->p->device == MLXQ_DEVICE_GPU;
            if (j->p->mode == MLXQ_MODE_AFFINE && gpu)
                mlxq_ref_affine_dequant_row_gpu(w_row, wq_stride, s_row, s_stride, b_row,
                                                b_stride, sc->dtype, j->cols, j->p->group_size,
                                                j->p->bits, j->odt, out);
            else if (j->p->mode == MLXQ_MODE_AFFINE)
                mlxq_ref_affine_dequant_row(w_row, wq_stride, s_row, s_stride, sc->dtype, b_row,
                                            b_stride, bi->dtype, j->cols, j->p->group_size,
                                            j->p->bits, j->odt, out);
            else
                (gpu ? mlxq_ref_fp_dequant_row_gpu : mlxq_ref_fp_dequant_row)(
                    j->p, w_row, wq_stride, s_row, s_stride, j->cols, j->odt, out);
            continue;
        }
        w_row = gather_row(w_row, wq_stride, wq_words, 4, wq_buf);
        s_row = gather_row(s_row, s_stride, j->n_groups, ssize, s_buf);
        if (j->affine_fast) {
            b_row = gather_row(b_row, b_stride, j->n_groups, bsize, b_buf);
            j->affine_fast(w_row, s_row, b_row, j->cols, j->p->group_size, j->p->bits, out);
        } else {
            j->fp_fast(j->p, w_row, s_row, j->cols, out);
        }
    }
    free(scratch);
}

static int same_batch(const mlxq_tensor *a, const mlxq_tensor *b) {
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim - 1; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

mlxq_status mlxq_dequantize_check(const mlxq_tensor *wq, const mlxq_tensor *scales,
                                  const mlxq_tensor *biases, const mlxq_qparams *p,
                                  mlxq_error *err) {
    mlxq_status st = mlxq_check_params(p, err);
    if (st)
        return st;
    const int affine = p->mode == MLXQ_MODE_AFFINE;
    if (!wq || !wq->data || !scales || !scales->data)
        return mlxq_fail(err, MLXQ_EARG, "wq and scales are required");
    if (affine && (!biases || !biases->data))
        return mlxq_fail(err, MLXQ_EARG, "biases are required for mode 'affine'");
    if (!affine && biases && biases->data)
        return mlxq_fail(err, MLXQ_EARG, "biases must be None for mode '%s'",
                         mlxq_mode_name(p->mode));
    if (wq->dtype != MLXQ_U32)
        return mlxq_fail(err, MLXQ_EDTYPE, "wq must be uint32, got %s",
                         mlxq_dtype_name(wq->dtype));
    if (affine) {
        if (!mlxq_dtype_is_float(scales->dtype))
            return mlxq_fail(err, MLXQ_EDTYPE, "scales must be a floating dtype for mode "
                             "'affine', got %s", mlxq_dtype_name(scales->dtype));
        if (!mlxq_dtype_is_float(biases->dtype))
            return mlxq_fail(err, MLXQ_EDTYPE, "biases must be a floating dtype, got %s",
                             mlxq_dtype_name(biases->dtype));
    } else if (scales->dtype != MLXQ_U8) {
        return mlxq_fail(err, MLXQ_EDTYPE, "scales must be uint8 for mode '%s', got %s",
                         mlxq_mode_name(p->mode), mlxq_dtype_name(scales->dtype));
    }
    if (affine && p->device == MLXQ_DEVICE_GPU) {
        /* Metal's affine_dequantize reads biases as the scales' type T and computes in T;
         * nothing on the GPU is float64 */
        if (scales->dtype != biases->dtype)
            return mlxq_fail(err, MLXQ_EDTYPE, "scales (%s) and biases (%s) must have one dtype "
                             "on device 'gpu' (MLX's Metal affine_dequantize reads both as the "
                             "scales' type); use device='cpu' for mixed dtypes",
                             mlxq_dtype_name(scales->dtype), mlxq_dtype_name(biases->dtype));
        if (scales->dtype == MLXQ_F64)
            return mlxq_fail(err, MLXQ_EDTYPE, "float64 is not supported on device 'gpu' "
                             "(Metal has no float64); use device='cpu' or float32");
    }
    if ((st = check_rank("wq", wq, err)) || (st = check_rank("scales", scales, err)))
        return st;
    if (affine && (st = check_rank("biases", biases, err)))
        return st;
    if (!same_batch(wq, scales) || (affine && !same_batch(wq, biases))) {
        char a[160], b[160], c[160];
        return mlxq_fail(err, MLXQ_ESHAPE, "the leading dimensions of wq %s, scales %s%s%s "
                         "differ", shape_str(wq, a, sizeof a), shape_str(scales, b, sizeof b),
                         affine ? " and biases " : "",
                         affine ? shape_str(biases, c, sizeof c) : "");
    }
    const int64_t words = wq->shape[wq->ndim - 1];
    const int64_t n_groups = scales->shape[scales->ndim - 1];
    if (affine && biases->shape[biases->ndim - 1] != n_groups) {
        char a[160], b[160];
        return mlxq_fail(err, MLXQ_ESHAPE, "scales %s and biases %s have different shapes",
                         shape_str(scales, a, sizeof a), shape_str(biases, b, sizeof b));
    }
    if (n_groups > INT64_MAX / p->group_size)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "scales' last dimension (%lld) is too large",
                         (long long)n_groups);
    if (words > INT64_MAX / 32 || (words * 32) % p->bits != 0 ||
        words * 32 / p->bits != n_groups * p->group_size)
        return mlxq_fail(err, MLXQ_ESHAPE, "wq's last dimension (%lld words) does not hold "
                         "scales' %lld groups of %d elements at %d bits", (long long)words,
                         (long long)n_groups, p->group_size, p->bits);
    return MLXQ_OK;
}

mlxq_status mlxq_dequantize(const mlxq_tensor *wq, const mlxq_tensor *scales,
                            const mlxq_tensor *biases, const mlxq_qparams *p,
                            mlxq_dtype requested, mlxq_tensor *out, mlxq_impl impl,
                            mlxq_error *err) {
    mlxq_status st = mlxq_dequantize_check(wq, scales, biases, p, err);
    if (st)
        return st;
    const int affine = p->mode == MLXQ_MODE_AFFINE;
    const int64_t n_groups = scales->shape[scales->ndim - 1];
    if (!out || !mlxq_dtype_is_float(requested))
        return mlxq_fail(err, MLXQ_EDTYPE, "the output dtype must be a floating dtype, not %s",
                         mlxq_dtype_name(requested));
    if (p->device == MLXQ_DEVICE_GPU && requested == MLXQ_F64)
        return mlxq_fail(err, MLXQ_EDTYPE, "float64 is not supported on device 'gpu' "
                         "(Metal has no float64); use device='cpu' or float32");
    const int64_t cols = n_groups * p->group_size;
    /* nvfp4 with a global scale yields float32 (float64) whatever was asked for; the asked
     * dtype still rounds the decoded values (and decides the NaN patterns). */
    const mlxq_dtype rdt = mlxq_dequantize_result_dtype(p, requested);
    if ((st = check_output("out", out, wq, rdt, cols, err)))
        return st;
    dequant_job job = {
        .wq = wq, .scales = scales, .biases = affine ? biases : NULL, .p = p,
        .odt = requested, .out = out->data, .cols = cols, .n_groups = n_groups,
        .out_row_bytes = cols * (int64_t)mlxq_dtype_size(rdt),
    };
    if (impl == MLXQ_IMPL_FAST) {
        if (affine)
            job.affine_fast = mlxq_fast_affine_dequant(scales->dtype, biases->dtype, requested,
                                                       p->bits, p->device);
        else
            job.fp_fast = mlxq_fast_fp_dequant(p, requested);
    }
    job.use_ref = !job.affine_fast && !job.fp_fast;
    size_t grain = cols > 0 ? (size_t)(16384 / cols) + 1 : 1;
    mlxq_parallel_for((size_t)mlxq_count_rows(wq), grain, dequant_rows, &job);
    return MLXQ_OK;
}
