/*
 * gguf.c - argument checks, row iteration, threading and kernel dispatch for the GGUF block
 * conversions (mlxq_gguf.h). The kernels: gguf_ref.c (the scalar specification),
 * gguf_fast.c (word-at-a-time code moves, one loop per sub-block), gguf_avx2.c (vector
 * dequantizers); reading from a file: gguf_read.c.
 */
#include <string.h>

#include "gguf_internal.h"
#include "mlxq_cpu.h"
#include "mlxq_float.h"
#include "mlxq_gguf.h"
#include "mlxq_pool.h"

int mlxq_gguf_block(int type, int *block_size, int *type_size) {
    int bs, ts, repack = 0;
    switch (type) {
    case MLXQ_GGUF_Q4_0: bs = 32, ts = 18, repack = 1; break;
    case MLXQ_GGUF_Q4_1: bs = 32, ts = 20, repack = 1; break;
    case MLXQ_GGUF_Q5_0: bs = 32, ts = 22; break;
    case MLXQ_GGUF_Q5_1: bs = 32, ts = 24; break;
    case MLXQ_GGUF_Q8_0: bs = 32, ts = 34, repack = 1; break;
    case MLXQ_GGUF_Q2_K: bs = 256, ts = 84; break;
    case MLXQ_GGUF_Q3_K: bs = 256, ts = 110; break;
    case MLXQ_GGUF_Q4_K: bs = 256, ts = 144; break;
    case MLXQ_GGUF_Q5_K: bs = 256, ts = 176; break;
    case MLXQ_GGUF_Q6_K: bs = 256, ts = 210; break;
    case MLXQ_GGUF_MXFP4: bs = 32, ts = 17, repack = 1; break;
    default: return 0;
    }
    if (block_size)
        *block_size = bs;
    if (type_size)
        *type_size = ts;
    return 1 + repack;
}

/* ---- checks ---------------------------------------------------------------------------- */

static int contiguous(const mlxq_tensor *t) {
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

mlxq_status mlxq_gguf_check(int type, int repack, const mlxq_tensor *src,
                            const mlxq_tensor *rows, int64_t *n, int64_t *blocks,
                            mlxq_error *err) {
    int bs, ts;
    const int kind = mlxq_gguf_block(type, &bs, &ts);
    if (kind == 0 || (repack && kind != 2))
        return mlxq_fail(err, MLXQ_EVALUE, "ggml type %d %s", type,
                         kind ? "has no exact MLX layout (Q4_0, Q4_1, Q8_0 and MXFP4 have)"
                              : "is not one mlxq converts in C");
    if (!src || !src->data)
        return mlxq_fail(err, MLXQ_EARG, "src is missing");
    if (src->dtype != MLXQ_U8)
        return mlxq_fail(err, MLXQ_EDTYPE, "src must be uint8 bytes, got %s",
                         mlxq_dtype_name(src->dtype));
    if (src->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "src must be 2-D [rows, row bytes], got %d "
                         "dimensions", src->ndim);
    if (src->shape[1] % ts)
        return mlxq_fail(err, MLXQ_EDIVISIBLE, "src rows of %lld bytes are not whole blocks "
                         "of %d bytes", (long long)src->shape[1], ts);
    if (src->shape[1] > 1 && src->strides[1] != 1)
        return mlxq_fail(err, MLXQ_EARG, "src rows must be contiguous");
    if (src->shape[0] > 1 && src->strides[0] < src->shape[1])
        return mlxq_fail(err, MLXQ_EARG, "src rows must not overlap");
    *blocks = src->shape[1] / ts;
    *n = src->shape[0];
    if (rows && rows->data) {
        if (rows->dtype != MLXQ_I64 || rows->ndim != 1)
            return mlxq_fail(err, MLXQ_EDTYPE, "rows must be a 1-D int64 array");
        *n = rows->shape[0];
        for (int64_t i = 0; i < *n; i++) {
            int64_t r;
            memcpy(&r, (const uint8_t *)rows->data + i * rows->strides[0], 8);
            if (r < 0 || r >= src->shape[0])
                return mlxq_fail(err, MLXQ_EVALUE, "rows[%lld] = %lld is outside the %lld "
                                 "source rows", (long long)i, (long long)r,
                                 (long long)src->shape[0]);
        }
    }
    return MLXQ_OK;
}

static mlxq_status check_out(const char *name, const mlxq_tensor *t, mlxq_dtype dt,
                             int64_t n, int64_t cols, mlxq_error *err) {
    if (!t || !t->data)
        return mlxq_fail(err, MLXQ_EARG, "%s is missing", name);
    if (t->dtype != dt)
        return mlxq_fail(err, MLXQ_EDTYPE, "%s must be %s, got %s", name, mlxq_dtype_name(dt),
                         mlxq_dtype_name(t->dtype));
    if (t->ndim != 2 || t->shape[0] != n || t->shape[1] != cols)
        return mlxq_fail(err, MLXQ_ESHAPE, "%s must be [%lld, %lld]", name, (long long)n,
                         (long long)cols);
    if (!contiguous(t))
        return mlxq_fail(err, MLXQ_EARG, "%s must be C-contiguous", name);
    return MLXQ_OK;
}

/* ---- row jobs -------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *src;
    int64_t src_stride, nb;
    int type_size, block_size;
    const mlxq_tensor *rows;
    mlxq_gguf_repack_fn repack;
    mlxq_gguf_dequant_fn dequant;
    mlxq_gguf_dequant_to_fn dequant_to;
    uint32_t *wq;
    uint8_t *scales;
    uint16_t *biases;
    uint8_t *out;
    mlxq_dtype odt;
    int64_t wq_cols, scale_size, out_cols;
    int64_t bad; /* the first output row with a block MLX cannot hold, or -1 */
} row_job;

static const uint8_t *src_row(const row_job *j, int64_t i) {
    int64_t r = i;
    if (j->rows && j->rows->data)
        memcpy(&r, (const uint8_t *)j->rows->data + i * j->rows->strides[0], 8);
    return j->src + r * j->src_stride;
}

static void repack_range(void *ctx, size_t begin, size_t end) {
    row_job *j = ctx;
    for (size_t i = begin; i < end; i++) {
        const int64_t r = (int64_t)i;
        int64_t b = j->repack(src_row(j, r), j->nb, j->wq + r * j->wq_cols,
                              j->scales + r * j->nb * j->scale_size,
                              j->biases ? j->biases + r * j->nb : NULL);
        if (b >= 0) { /* keep the lowest row: ranges finish in any order */
            int64_t cur = __atomic_load_n(&j->bad, __ATOMIC_RELAXED);
            while ((cur < 0 || r < cur) &&
                   !__atomic_compare_exchange_n(&j->bad, &cur, r, 0, __ATOMIC_RELAXED,
                                                __ATOMIC_RELAXED)) {
            }
        }
    }
}

void mlxq_gguf_store_row(const float *v, int64_t n, mlxq_dtype odt, uint8_t *dst) {
    if (odt == MLXQ_F16) {
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = mlxq_f32_to_f16(v[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = mlxq_f32_to_bf16(v[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
    }
}

void mlxq_gguf_dequant_row(mlxq_gguf_dequant_fn dequant, const uint8_t *src, int64_t nb,
                           int type_size, int block_size, mlxq_dtype odt, uint8_t *dst) {
    if (odt == MLXQ_F32) {
        dequant(src, nb, (float *)(void *)dst);
        return;
    }
    float v[256]; /* one block (256 elements at most), then rounded into dst */
    for (int64_t b = 0; b < nb; b++) {
        dequant(src + b * type_size, 1, v);
        mlxq_gguf_store_row(v, block_size, odt, dst + b * block_size * 2);
    }
}

static void dequant_range(void *ctx, size_t begin, size_t end) {
    const row_job *j = ctx;
    const int64_t osize = (int64_t)mlxq_dtype_size(j->odt);
    for (size_t i = begin; i < end; i++) {
        uint8_t *dst = j->out + (int64_t)i * j->out_cols * osize;
        if (j->dequant_to)
            j->dequant_to(src_row(j, (int64_t)i), j->nb, j->odt, dst);
        else
            mlxq_gguf_dequant_row(j->dequant, src_row(j, (int64_t)i), j->nb, j->type_size,
                                  j->block_size, j->odt, dst);
    }
}

/* Rows per task: ~16K elements keep the claiming overhead negligible. */
size_t mlxq_gguf_grain(int64_t elements) {
    return elements > 0 ? (size_t)(16384 / elements) + 1 : 1;
}

static void run(row_job *j, int64_t n, int64_t elements, mlxq_range_fn fn, mlxq_impl impl) {
    if (impl == MLXQ_IMPL_REF)
        fn(j, 0, (size_t)n);
    else
        mlxq_parallel_for((size_t)n, mlxq_gguf_grain(elements), fn, j);
}

void mlxq_gguf_kernels(int type, mlxq_impl impl, mlxq_gguf_repack_fn *repack,
                       mlxq_gguf_dequant_fn *dequant, mlxq_gguf_dequant_to_fn *dequant_to) {
    if (repack)
        *repack = impl == MLXQ_IMPL_REF ? mlxq_gguf_ref_repack(type)
                                         : mlxq_gguf_fast_repack(type);
    if (dequant)
        *dequant = impl == MLXQ_IMPL_REF ? mlxq_gguf_ref_dequant(type)
                                          : mlxq_gguf_fast_dequant(type);
    if (dequant_to)
        *dequant_to = impl != MLXQ_IMPL_REF && mlxq_active_isa() >= MLXQ_ISA_AVX2
                          ? mlxq_gguf_avx2_dequant(type)
                          : NULL;
}

mlxq_status mlxq_gguf_check_triple(int type, int64_t n, int64_t nb, const mlxq_tensor *wq,
                                   const mlxq_tensor *scales, const mlxq_tensor *biases,
                                   mlxq_error *err) {
    mlxq_status st;
    const int mx = type == MLXQ_GGUF_MXFP4;
    const int64_t words = nb * (type == MLXQ_GGUF_Q8_0 ? 8 : 4);
    if ((st = check_out("wq", wq, MLXQ_U32, n, words, err)) ||
        (st = check_out("scales", scales, mx ? MLXQ_U8 : MLXQ_F16, n, nb, err)))
        return st;
    if (mx && biases && biases->data)
        return mlxq_fail(err, MLXQ_EARG, "MXFP4 has no biases: pass none");
    if (!mx && (st = check_out("biases", biases, MLXQ_F16, n, nb, err)))
        return st;
    return MLXQ_OK;
}

mlxq_status mlxq_gguf_check_dense(int type, int64_t n, int64_t nb, const mlxq_tensor *out,
                                  mlxq_error *err) {
    int bs = 0;
    mlxq_gguf_block(type, &bs, NULL);
    if (out && out->data && out->dtype != MLXQ_F32 && out->dtype != MLXQ_F16 &&
        out->dtype != MLXQ_BF16)
        return mlxq_fail(err, MLXQ_EDTYPE, "out must be float32, float16 or bfloat16, got %s",
                         mlxq_dtype_name(out->dtype));
    return check_out("out", out, out && out->data ? out->dtype : MLXQ_F32, n, nb * bs, err);
}

mlxq_status mlxq_gguf_to_mlx(int type, const mlxq_tensor *src, const mlxq_tensor *rows,
                             mlxq_tensor *wq, mlxq_tensor *scales, mlxq_tensor *biases,
                             mlxq_impl impl, mlxq_error *err) {
    int64_t n, nb;
    mlxq_status st = mlxq_gguf_check(type, 1, src, rows, &n, &nb, err);
    if (st || (st = mlxq_gguf_check_triple(type, n, nb, wq, scales, biases, err)))
        return st;
    const int mx = type == MLXQ_GGUF_MXFP4;
    const int64_t words = nb * (type == MLXQ_GGUF_Q8_0 ? 8 : 4);
    row_job j = {0};
    j.src = src->data;
    j.src_stride = src->strides[0];
    j.nb = nb;
    j.rows = rows;
    mlxq_gguf_kernels(type, impl, &j.repack, NULL, NULL);
    j.wq = wq->data;
    j.scales = scales->data;
    j.scale_size = mx ? 1 : 2;
    j.biases = mx ? NULL : biases->data;
    j.wq_cols = words;
    j.bad = -1;
    run(&j, n, nb * 32, repack_range, impl);
    if (j.bad >= 0)
        return mlxq_gguf_bad_block(src_row(&j, j.bad), j.bad, nb, err);
    return MLXQ_OK;
}

mlxq_status mlxq_gguf_bad_block(const uint8_t *row, int64_t r, int64_t nb, mlxq_error *err) {
    int64_t b = 0;
    while (b < nb - 1 && row[b * 17] != 255)
        b++;
    return mlxq_fail(err, MLXQ_EFORMAT, "row %lld, block %lld: an MXFP4 scale exponent of 255 "
                     "(2^127 in ggml, NaN in MLX's E8M0): no exact MLX layout", (long long)r,
                     (long long)b);
}

mlxq_status mlxq_gguf_dequant(int type, const mlxq_tensor *src, const mlxq_tensor *rows,
                              mlxq_tensor *out, mlxq_impl impl, mlxq_error *err) {
    int64_t n, nb;
    int bs;
    mlxq_status st = mlxq_gguf_check(type, 0, src, rows, &n, &nb, err);
    if (st || (st = mlxq_gguf_check_dense(type, n, nb, out, err)))
        return st;
    mlxq_gguf_block(type, &bs, NULL);
    row_job j = {0};
    j.src = src->data;
    j.src_stride = src->strides[0];
    j.nb = nb;
    j.rows = rows;
    mlxq_gguf_kernels(type, impl, NULL, &j.dequant, &j.dequant_to);
    mlxq_gguf_block(type, &j.block_size, &j.type_size);
    j.out = out->data;
    j.odt = out->dtype;
    j.out_cols = nb * bs;
    run(&j, n, nb * bs, dequant_range, impl);
    return MLXQ_OK;
}
