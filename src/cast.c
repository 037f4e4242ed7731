/*
 * cast.c - mlxq_cast: a reference element loop (load as double, round as MLX stores) and
 * the vector kernels of fast_tmpl.h for contiguous f16/bf16/f32 runs.
 */
#include <stdlib.h>

#include "kernels.h"
#include "mlxq_cast.h"
#include "mlxq_pool.h"

typedef struct {
    const mlxq_tensor *in;
    mlxq_tensor *out;
    int64_t inner;        /* elements per row (last dimension) */
    mlxq_cast_fn fast;    /* NULL: reference loop */
} cast_job;

static int64_t row_offset(const mlxq_tensor *t, int64_t r) {
    int64_t off = 0;
    for (int i = t->ndim - 2; i >= 0 && r > 0; i--) {
        off += (r % t->shape[i]) * t->strides[i];
        r /= t->shape[i];
    }
    return off;
}

static void cast_ref_row(const uint8_t *src, int64_t stride, mlxq_dtype sdt, uint8_t *dst,
                         mlxq_dtype ddt, int64_t n) {
    const size_t dsize = mlxq_dtype_size(ddt);
    if (sdt == ddt || (sdt == MLXQ_BF16 && ddt == MLXQ_F32)) {
        /* bit-level copies in MLX too (astype to the same dtype is a no-op, bfloat16 ->
         * float32 a shift): no trip through double, which would quiet signalling NaNs */
        for (int64_t i = 0; i < n; i++) {
            if (sdt == ddt) {
                memcpy(dst + i * dsize, src + i * stride, dsize);
            } else {
                uint16_t h;
                memcpy(&h, src + i * stride, 2);
                uint32_t u = (uint32_t)h << 16;
                memcpy(dst + i * dsize, &u, 4);
            }
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = mlxq_load_float(src + i * stride, sdt);
        /* narrowing from f64 goes through float32 first, like MLX's float-taking ctors */
        if (sdt == MLXQ_F64 && ddt != MLXQ_F64)
            v = (float)v;
        mlxq_store_float(dst + i * dsize, ddt, v);
    }
}

static void cast_rows(void *ctx, size_t begin, size_t end) {
    const cast_job *j = ctx;
    const mlxq_tensor *in = j->in;
    const int64_t stride = in->ndim ? in->strides[in->ndim - 1] : 0;
    const size_t ssize = mlxq_dtype_size(in->dtype), dsize = mlxq_dtype_size(j->out->dtype);
    for (size_t r = begin; r < end; r++) {
        const uint8_t *src = (const uint8_t *)in->data + row_offset(in, (int64_t)r);
        uint8_t *dst = (uint8_t *)j->out->data + r * j->inner * dsize;
        if (j->fast && stride == (int64_t)ssize)
            j->fast(src, dst, j->inner);
        else
            cast_ref_row(src, stride, in->dtype, dst, j->out->dtype, j->inner);
    }
}

mlxq_status mlxq_cast(const mlxq_tensor *in, mlxq_tensor *out, mlxq_impl impl, mlxq_error *err) {
    if (!mlxq_dtype_is_float(in->dtype) || !mlxq_dtype_is_float(out->dtype))
        return mlxq_fail(err, MLXQ_EDTYPE, "cast supports float16, bfloat16, float32 and "
                         "float64, not %s -> %s", mlxq_dtype_name(in->dtype),
                         mlxq_dtype_name(out->dtype));
    if (in->ndim != out->ndim || in->ndim > MLXQ_MAX_NDIM)
        return mlxq_fail(err, MLXQ_ESHAPE, "cast: input and output ranks differ");
    int64_t expect = (int64_t)mlxq_dtype_size(out->dtype);
    int empty = 0; /* numpy may give an empty array any strides: no element is addressed */
    for (int i = 0; i < in->ndim; i++)
        empty |= out->shape[i] == 0;
    for (int i = in->ndim - 1; i >= 0; i--) {
        if (in->shape[i] != out->shape[i] || in->shape[i] < 0)
            return mlxq_fail(err, MLXQ_ESHAPE, "cast: input and output shapes differ");
        if (!empty && out->shape[i] != 1 && out->strides[i] != expect)
            return mlxq_fail(err, MLXQ_EARG, "cast: the output must be C-contiguous");
        expect *= out->shape[i];
    }
    /* A 0-d array is one row of one element. */
    int64_t inner = in->ndim ? in->shape[in->ndim - 1] : 1, rows = 1;
    for (int i = 0; i < in->ndim - 1; i++)
        rows *= in->shape[i];
    if (inner == 0 || rows == 0)
        return MLXQ_OK;
    cast_job job = {in, out, inner, NULL};
    if (impl == MLXQ_IMPL_FAST)
        job.fast = mlxq_fast_cast(in->dtype, out->dtype);
    size_t grain = (size_t)(65536 / inner) + 1;
    mlxq_parallel_for((size_t)rows, grain, cast_rows, &job);
    return MLXQ_OK;
}
