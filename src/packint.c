/*
 * packint.c - argument checks, row iteration, threading and reference/fast dispatch for
 * mlxq_packint_dequant (mlxq_packint.h). The fast kernel gets each row's words gathered
 * into a zero-padded scratch (so it may unpack whole vectors past the row's end) and its
 * group scales as floats.
 */
#include <stdlib.h>

#include "kernels.h"
#include "mlxq_packint.h"
#include "mlxq_pool.h"

static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

mlxq_status mlxq_packint_check(const mlxq_tensor *packed, int bits, const mlxq_tensor *scale,
                               int64_t cols, int64_t group_size, mlxq_error *err) {
    if (!packed || !packed->data)
        return mlxq_fail(err, MLXQ_EARG, "weight_packed is missing");
    if (!scale || !scale->data)
        return mlxq_fail(err, MLXQ_EARG, "weight_scale is missing");
    if (packed->dtype != MLXQ_I32 && packed->dtype != MLXQ_U32)
        return mlxq_fail(err, MLXQ_EDTYPE, "weight_packed must be int32 (or uint32), got %s",
                         mlxq_dtype_name(packed->dtype));
    if (scale->dtype != MLXQ_F32 && scale->dtype != MLXQ_BF16 && scale->dtype != MLXQ_F16)
        return mlxq_fail(err, MLXQ_EDTYPE, "weight_scale must be float32, bfloat16 or "
                         "float16, got %s", mlxq_dtype_name(scale->dtype));
    if (bits != 2 && bits != 4 && bits != 8)
        return mlxq_fail(err, MLXQ_EVALUE, "num_bits=%d is not supported; 2, 4 and 8 are", bits);
    if (packed->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "weight_packed must be 2-D [out, words], got %d "
                         "dimensions", packed->ndim);
    if (scale->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "weight_scale must be 2-D [out, groups], got %d "
                         "dimensions", scale->ndim);
    if (cols < 0 || group_size < 1)
        return mlxq_fail(err, MLXQ_EVALUE, "in_features=%lld and group_size=%lld must be "
                         "non-negative and positive", (long long)cols, (long long)group_size);
    if (cols > INT64_MAX / 8)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "in_features=%lld is too large", (long long)cols);
    const int64_t words = ceil_div(cols * bits, 32);
    if (packed->shape[1] < words)
        return mlxq_fail(err, MLXQ_ESHAPE, "weight_packed has %lld words per row, fewer than "
                         "the %lld that %lld %d-bit codes need", (long long)packed->shape[1],
                         (long long)words, (long long)cols, bits);
    const int64_t groups = ceil_div(cols, group_size);
    if (scale->shape[0] != packed->shape[0] || scale->shape[1] != groups)
        return mlxq_fail(err, MLXQ_ESHAPE, "weight_scale has shape (%lld, %lld), expected "
                         "(%lld, %lld): one scale per %lld inputs of each of the %lld rows",
                         (long long)scale->shape[0], (long long)scale->shape[1],
                         (long long)packed->shape[0], (long long)groups,
                         (long long)group_size, (long long)packed->shape[0]);
    return MLXQ_OK;
}

typedef struct {
    const mlxq_tensor *p, *s;
    uint8_t *out;
    int bits;
    int64_t cols, group_size, groups;
    mlxq_dtype odt;
    mlxq_packint_dequant_fn fast;
} packint_job;

static void rows_ref(const packint_job *j, size_t begin, size_t end) {
    const size_t osize = mlxq_dtype_size(j->odt);
    for (size_t r = begin; r < end; r++)
        mlxq_ref_packint_dequant_row(
            (const uint8_t *)j->p->data + (int64_t)r * j->p->strides[0], j->p->strides[1],
            j->bits, (const uint8_t *)j->s->data + (int64_t)r * j->s->strides[0],
            j->s->strides[1], j->s->dtype, j->group_size, j->cols, j->odt,
            j->out + r * (size_t)j->cols * osize);
}

static void rows_range(void *ctx, size_t begin, size_t end) {
    const packint_job *j = ctx;
    if (!j->fast) {
        rows_ref(j, begin, end);
        return;
    }
    const int64_t n16 = (j->cols + 15) / 16 * 16;
    const int64_t words = ceil_div(j->cols * j->bits, 32);
    const size_t pbytes = (size_t)(n16 * j->bits / 8 + 8); /* slack for 64-bit loads */
    uint8_t *packed = calloc(pbytes, 1);
    uint8_t *codes = malloc((size_t)n16);
    float *sc = malloc((size_t)j->groups * sizeof(float));
    if (!packed || !codes || !sc) {
        free(packed);
        free(codes);
        free(sc);
        rows_ref(j, begin, end);
        return;
    }
    const size_t osize = mlxq_dtype_size(j->odt);
    for (size_t r = begin; r < end; r++) {
        const uint8_t *wp = (const uint8_t *)j->p->data + (int64_t)r * j->p->strides[0];
        const uint8_t *sp = (const uint8_t *)j->s->data + (int64_t)r * j->s->strides[0];
        for (int64_t k = 0; k < words; k++)
            memcpy(packed + k * 4, wp + k * j->p->strides[1], 4);
        for (int64_t g = 0; g < j->groups; g++)
            sc[g] = (float)mlxq_load_float(sp + g * j->s->strides[1], j->s->dtype);
        j->fast(packed, j->bits, sc, j->group_size, j->cols, codes,
                j->out + r * (size_t)j->cols * osize);
    }
    free(packed);
    free(codes);
    free(sc);
}

mlxq_status mlxq_packint_dequant(const mlxq_tensor *packed, int bits, const mlxq_tensor *scale,
                                 int64_t cols, int64_t group_size, mlxq_tensor *out,
                                 mlxq_impl impl, mlxq_error *err) {
    mlxq_status st = mlxq_packint_check(packed, bits, scale, cols, group_size, err);
    if (st)
        return st;
    if (!out || !out->data)
        return mlxq_fail(err, MLXQ_EARG, "out is missing");
    if (out->dtype != MLXQ_BF16 && out->dtype != MLXQ_F16 && out->dtype != MLXQ_F32)
        return mlxq_fail(err, MLXQ_EDTYPE, "dtype must be bfloat16, float16 or float32, got %s",
                         mlxq_dtype_name(out->dtype));
    const int64_t rows = packed->shape[0];
    const int64_t osize = (int64_t)mlxq_dtype_size(out->dtype);
    const int empty = rows == 0 || cols == 0; /* numpy may give empty arrays any strides */
    if (out->ndim != 2 || out->shape[0] != rows || out->shape[1] != cols ||
        (!empty && cols > 1 && out->strides[1] != osize) ||
        (!empty && rows > 1 && out->strides[0] != cols * osize))
        return mlxq_fail(err, MLXQ_ESHAPE, "out must be C-contiguous [%lld, %lld]",
                         (long long)rows, (long long)cols);
    if (rows == 0 || cols == 0)
        return MLXQ_OK;
    packint_job job = {packed, scale, out->data, bits, cols, group_size,
                       ceil_div(cols, group_size), out->dtype, NULL};
    if (impl == MLXQ_IMPL_FAST)
        job.fast = mlxq_fast_packint_dequant(scale->dtype, out->dtype, bits);
    mlxq_parallel_for((size_t)rows, cols > 0 ? (size_t)(16384 / cols) + 1 : 1, rows_range, &job);
    return MLXQ_OK;
}
