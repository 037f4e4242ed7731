/*
 * search.c - argument checking, importance gathering, group batching, threading and
 * reference/fast dispatch for mlxq_quantize_search. The arithmetic lives in
 * search_affine.c (specification), search_tmpl.h (vectorised) and search_fp.c.
 */
#include <stdlib.h>

#include "drivers.h"
#include "mlxq_pool.h"
#include "search_internal.h"

/* Groups handed to a kernel per call: enough to fill every lane of several vectors
 * whatever the row length, few enough for the pointer lists to live on the stack. */
#define PIECE 256

static mlxq_status check_importance(const mlxq_tensor *w, const mlxq_tensor *imp,
                                    mlxq_error *err) {
    const int64_t cols = w->shape[w->ndim - 1];
    if (!imp->data)
        return mlxq_fail(err, MLXQ_EARG, "importance is missing");
    if (imp->dtype != MLXQ_F32)
        return mlxq_fail(err, MLXQ_EDTYPE, "importance must be float32, got %s",
                         mlxq_dtype_name(imp->dtype));
    int ok = imp->ndim == 1 && imp->shape[0] == cols;
    if (!ok && imp->ndim == w->ndim - 1 && imp->shape[imp->ndim - 1] == cols) {
        ok = 1;
        for (int i = 0; i < w->ndim - 2; i++)
            ok &= imp->shape[i] == w->shape[i];
    }
    if (!ok)
        return mlxq_fail(err, MLXQ_ESHAPE, "importance must have shape [%lld] (one weight per "
                         "input column) or w's shape without its second-to-last dimension "
                         "(one row per batch slice, e.g. [experts, %lld])",
                         (long long)cols, (long long)cols);
    /* every element, in any strides: C order over the view */
    int64_t n = 1;
    for (int i = 0; i < imp->ndim; i++)
        n *= imp->shape[i];
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0, r = k;
        for (int i = imp->ndim - 1; i >= 0; i--) {
            off += (r % imp->shape[i]) * imp->strides[i];
            r /= imp->shape[i];
        }
        float v;
        memcpy(&v, (const uint8_t *)imp->data + off, 4);
        if (!isfinite(v) || v < 0.0f)
            return mlxq_fail(err, MLXQ_EVALUE, "importance must be finite and >= 0; element "
                             "%lld is %g", (long long)k, (double)v);
    }
    return MLXQ_OK;
}

mlxq_status mlxq_quantize_search_check(const mlxq_tensor *w, const mlxq_qparams *p,
                                       const mlxq_tensor *importance, mlxq_error *err) {
    mlxq_status st = mlxq_quantize_check(w, p, err);
    if (st)
        return st;
    if (importance && (st = check_importance(w, importance, err)))
        return st;
    return MLXQ_OK;
}

typedef struct {
    const mlxq_tensor *w;
    const mlxq_qparams *p;
    const float *imp;      /* contiguous [imp_rows, cols], or NULL */
    int64_t rows_per_imp;  /* consecutive rows sharing one importance row */
    uint8_t *wq, *scales, *biases;
    int64_t cols, n_groups;
    mlxq_affine_search_fn affine; /* NULL for the fp modes */
} search_job;

static void run_piece(const search_job *j, int64_t n, const uint8_t *const *src,
                      const float *const *imp, int64_t k0) {
    const mlxq_qparams *p = j->p;
    const size_t ssize = j->affine ? mlxq_dtype_size(j->w->dtype) : 1;
    uint8_t *wq = j->wq + (size_t)k0 * p->group_size * p->bits / 8;
    uint8_t *sc = j->scales + (size_t)k0 * ssize;
    if (j->affine)
        j->affine(n, src, imp, p->group_size, p->bits, wq, sc, j->biases + (size_t)k0 * ssize,
                  p->device);
    else
        mlxq_fp_search(p, j->w->dtype, n, src, imp, wq, sc);
}

static void search_rows(void *ctx, size_t begin, size_t end) {
    const search_job *j = ctx;
    const mlxq_tensor *w = j->w;
    const int gs = j->p->group_size;
    const size_t esize = mlxq_dtype_size(w->dtype);
    const int64_t stride = w->strides[w->ndim - 1];
    const int gather = stride != (int64_t)esize;
    uint8_t one_group[128 * 8];
    uint8_t *scratch = gather ? malloc((size_t)PIECE * gs * esize) : NULL;
    /* without scratch memory a strided input goes one group at a time through the stack */
    const int64_t piece = gather && !scratch ? 1 : PIECE;
    const uint8_t *src[PIECE];
    const float *imp[PIECE];
    const int64_t k_end = (int64_t)end * j->n_groups;
    for (int64_t k0 = (int64_t)begin * j->n_groups; k0 < k_end; k0 += piece) {
        const int64_t n = k_end - k0 < piece ? k_end - k0 : piece;
        for (int64_t i = 0; i < n; i++) {
            const int64_t k = k0 + i, r = k / j->n_groups, g = k % j->n_groups;
            const uint8_t *gp = (const uint8_t *)w->data + mlxq_row_offset(w, r) + g * gs * stride;
            if (gather) {
                uint8_t *dst = scratch ? scratch + (size_t)i * gs * esize : one_group;
                for (int e = 0; e < gs; e++)
                    memcpy(dst + (size_t)e * esize, gp + e * stride, esize);
                gp = dst;
            }
            src[i] = gp;
            if (j->imp)
                imp[i] = j->imp + (r / j->rows_per_imp) * j->cols + g * gs;
        }
        run_piece(j, n, src, j->imp ? imp : NULL, k0);
    }
    free(scratch);
}

mlxq_status mlxq_quantize_search(const mlxq_tensor *w, const mlxq_qparams *p,
                                 const mlxq_tensor *importance, mlxq_tensor *wq,
                                 mlxq_tensor *scales, mlxq_tensor *biases, mlxq_impl impl,
                                 mlxq_error *err) {
    mlxq_status st = mlxq_quantize_search_check(w, p, importance, err);
    if (st || (st = mlxq_quantize_check_outputs(w, p, wq, scales, biases, err)))
        return st;
    const int affine = p->mode == MLXQ_MODE_AFFINE;
    const int64_t cols = w->shape[w->ndim - 1], rows = mlxq_count_rows(w);
    search_job job = {
        .w = w, .p = p, .wq = wq->data, .scales = scales->data,
        .biases = affine ? biases->data : NULL, .cols = cols,
        .n_groups = cols / p->group_size, .rows_per_imp = rows > 0 ? rows : 1,
    };
    if (affine) {
        job.affine = impl == MLXQ_IMPL_FAST ? mlxq_fast_affine_search(w->dtype) : NULL;
        if (!job.affine)
            job.affine = w->dtype == MLXQ_F16   ? mlxq_ref_affine_search_f16
                         : w->dtype == MLXQ_BF16 ? mlxq_ref_affine_search_bf16
                                                 : mlxq_ref_affine_search_f32;
    }
    float *imp_copy = NULL;
    if (importance) {
        /* a contiguous float32 copy: the kernels take plain pointers per group */
        int64_t n = 1;
        for (int i = 0; i < importance->ndim; i++)
            n *= importance->shape[i];
        imp_copy = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
        if (!imp_copy)
            return mlxq_fail(err, MLXQ_ENOMEM, "out of memory copying importance");
        for (int64_t k = 0; k < n; k++) {
            int64_t off = 0, r = k;
            for (int i = importance->ndim - 1; i >= 0; i--) {
                off += (r % importance->shape[i]) * importance->strides[i];
                r /= importance->shape[i];
            }
            memcpy(imp_copy + k, (const uint8_t *)importance->data + off, 4);
        }
        job.imp = imp_copy;
        if (importance->ndim > 1 && w->ndim >= 2)
            job.rows_per_imp = w->shape[w->ndim - 2] > 0 ? w->shape[w->ndim - 2] : 1;
    }
    /* a search costs ~100x a plain quantize per element: small tasks still pay off */
    size_t grain = cols > 0 ? (size_t)(2048 / cols) + 1 : 1;
    mlxq_parallel_for((size_t)rows, grain, search_rows, &job);
    free(imp_copy);
    return MLXQ_OK;
}
