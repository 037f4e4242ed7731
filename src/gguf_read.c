/*
 * gguf_read.c - the GGUF block conversions of mlxq_gguf.h fed straight from a file: each
 * pool task reads its rows with pread in pieces of about CHUNK bytes (whole rows) into a
 * buffer of its own and converts them while they are in cache, so the file's bytes cross
 * memory once and the reads run on every thread. The conversion kernels are gguf.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_internal.h"
#include "mlxq_gguf.h"
#include "mlxq_pool.h"

#define CHUNK (256u << 10)

typedef struct {
    int fd;
    int64_t offset, row_bytes, nb;
    mlxq_gguf_repack_fn repack;
    mlxq_gguf_dequant_fn dequant;
    mlxq_gguf_dequant_to_fn dequant_to;
    uint32_t *wq;
    uint8_t *scales;
    uint16_t *biases;
    uint8_t *out;
    mlxq_dtype odt;
    int type_size, block_size;
    int64_t wq_cols, scale_size, out_cols;
    /* set once, by the first task that fails (the others stop at their next chunk) */
    int failed;
    mlxq_status st;
    mlxq_error err;
    int64_t bad;   /* the first row with a block MLX cannot hold, or -1 */
    int64_t nread; /* bytes read, summed by every task */
} read_job;

static void fail(read_job *j, mlxq_status st, const char *fmt_errno, int64_t at) {
    int expected = 0;
    if (__atomic_compare_exchange_n(&j->failed, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        j->st = st;
        if (st == MLXQ_EIO)
            mlxq_fail(&j->err, st, "cannot read at byte %lld: %s", (long long)at, fmt_errno);
        else
            mlxq_fail(&j->err, st, "the file ended at byte %lld, inside the tensor's data (it "
                      "shrank while being read?)", (long long)at);
    }
}

/* Reads len bytes at `at` into buf; 0, or -1 after recording the failure. */
static int read_all(read_job *j, uint8_t *buf, size_t len, int64_t at) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(j->fd, buf + got, len - got, (off_t)(at + (int64_t)got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fail(j, MLXQ_EIO, strerror(errno), at + (int64_t)got);
            return -1;
        }
        if (r == 0) {
            fail(j, MLXQ_EFORMAT, NULL, at + (int64_t)got);
            return -1;
        }
        got += (size_t)r;
    }
    __atomic_fetch_add(&j->nread, (int64_t)len, __ATOMIC_RELAXED);
    return 0;
}

static void note_bad(read_job *j, int64_t r) {
    int64_t cur = __atomic_load_n(&j->bad, __ATOMIC_RELAXED);
    while ((cur < 0 || r < cur) &&
           !__atomic_compare_exchange_n(&j->bad, &cur, r, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
}

static void read_range(void *ctx, size_t begin, size_t end) {
    read_job *j = ctx;
    if (begin >= end)
        return;
    int64_t per = (int64_t)CHUNK / j->row_bytes;
    if (per < 1)
        per = 1;
    if (per > (int64_t)(end - begin))
        per = (int64_t)(end - begin);
    uint8_t *buf = malloc((size_t)(per * j->row_bytes));
    if (!buf) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&j->failed, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            j->st = MLXQ_ENOMEM;
            mlxq_fail(&j->err, MLXQ_ENOMEM, "out of memory for a read buffer");
        }
        return;
    }
    for (int64_t r0 = (int64_t)begin; r0 < (int64_t)end; r0 += per) {
        if (__atomic_load_n(&j->failed, __ATOMIC_ACQUIRE))
            break;
        const int64_t k = (int64_t)end - r0 < per ? (int64_t)end - r0 : per;
        if (read_all(j, buf, (size_t)(k * j->row_bytes), j->offset + r0 * j->row_bytes))
            break;
        for (int64_t i = 0; i < k; i++) {
            const int64_t r = r0 + i;
            const uint8_t *row = buf + i * j->row_bytes;
            if (j->repack) {
                if (j->repack(row, j->nb, j->wq + r * j->wq_cols,
                              j->scales + r * j->nb * j->scale_size,
                              j->biases ? j->biases + r * j->nb : NULL) >= 0)
                    note_bad(j, r);
            } else {
                uint8_t *dst = j->out + r * j->out_cols * (int64_t)mlxq_dtype_size(j->odt);
                if (j->dequant_to)
                    j->dequant_to(row, j->nb, j->odt, dst);
                else
                    mlxq_gguf_dequant_row(j->dequant, row, j->nb, j->type_size,
                                          j->block_size, j->odt, dst);
            }
        }
    }
    free(buf);
}

static mlxq_status check_source(int type, int repack, int fd, int64_t offset, int64_t n,
                                int64_t row_bytes, int64_t *nb, mlxq_error *err) {
    int bs, ts;
    const int kind = mlxq_gguf_block(type, &bs, &ts);
    if (kind == 0 || (repack && kind != 2))
        return mlxq_fail(err, MLXQ_EVALUE, "ggml type %d %s", type,
                         kind ? "has no exact MLX layout (Q4_0, Q4_1, Q8_0 and MXFP4 have)"
                              : "is not one mlxq converts in C");
    if (fd < 0)
        return mlxq_fail(err, MLXQ_EARG, "fd %d is not an open file", fd);
    if (offset < 0 || n < 0 || row_bytes <= 0 || row_bytes % ts)
        return mlxq_fail(err, MLXQ_EARG, "offset %lld, %lld rows of %lld bytes: not whole "
                         "rows of %d-byte blocks in a file", (long long)offset, (long long)n,
                         (long long)row_bytes, ts);
    if (n > (INT64_MAX - offset) / row_bytes)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "%lld rows of %lld bytes overflow the file "
                         "offsets", (long long)n, (long long)row_bytes);
    *nb = row_bytes / ts;
    return MLXQ_OK;
}

static mlxq_status run(read_job *j, int64_t n, int64_t elements, mlxq_impl impl,
                       int64_t *nread, mlxq_error *err) {
    j->bad = -1;
    if (impl == MLXQ_IMPL_REF) {
        read_range(j, 0, (size_t)n);
    } else { /* tasks of at least a chunk's rows: fewer, larger reads */
        size_t grain = mlxq_gguf_grain(elements);
        const size_t chunk_rows = (size_t)((int64_t)CHUNK / j->row_bytes);
        mlxq_parallel_for((size_t)n, grain > chunk_rows ? grain : chunk_rows, read_range, j);
    }
    if (nread)
        *nread = j->nread;
    if (j->failed) {
        if (err)
            *err = j->err;
        return j->st;
    }
    if (j->bad >= 0) { /* read that row again for the message (rare: a refused file) */
        uint8_t *row = malloc((size_t)j->row_bytes);
        if (!row)
            return mlxq_fail(err, MLXQ_ENOMEM, "out of memory");
        mlxq_status st;
        if (read_all(j, row, (size_t)j->row_bytes, j->offset + j->bad * j->row_bytes)) {
            if (err)
                *err = j->err;
            st = j->st;
        } else {
            st = mlxq_gguf_bad_block(row, j->bad, j->nb, err);
        }
        free(row);
        return st;
    }
    return MLXQ_OK;
}

mlxq_status mlxq_gguf_read_to_mlx(int type, int fd, int64_t offset, int64_t n,
                                  int64_t row_bytes, mlxq_tensor *wq, mlxq_tensor *scales,
                                  mlxq_tensor *biases, int64_t *nread, mlxq_impl impl,
                                  mlxq_error *err) {
    int64_t nb;
    mlxq_status st = check_source(type, 1, fd, offset, n, row_bytes, &nb, err);
    if (st || (st = mlxq_gguf_check_triple(type, n, nb, wq, scales, biases, err)))
        return st;
    const int mx = type == MLXQ_GGUF_MXFP4;
    read_job j = {0};
    j.fd = fd;
    j.offset = offset;
    j.row_bytes = row_bytes;
    j.nb = nb;
    mlxq_gguf_kernels(type, impl, &j.repack, NULL, NULL);
    j.wq = wq->data;
    j.scales = scales->data;
    j.scale_size = mx ? 1 : 2;
    j.biases = mx ? NULL : biases->data;
    j.wq_cols = nb * (type == MLXQ_GGUF_Q8_0 ? 8 : 4);
    return run(&j, n, nb * 32, impl, nread, err);
}

mlxq_status mlxq_gguf_read_dequant(int type, int fd, int64_t offset, int64_t n,
                                   int64_t row_bytes, mlxq_tensor *out, int64_t *nread,
                                   mlxq_impl impl, mlxq_error *err) {
    int64_t nb;
    int bs;
    mlxq_status st = check_source(type, 0, fd, offset, n, row_bytes, &nb, err);
    if (st || (st = mlxq_gguf_check_dense(type, n, nb, out, err)))
        return st;
    mlxq_gguf_block(type, &bs, NULL);
    read_job j = {0};
    j.fd = fd;
    j.offset = offset;
    j.row_bytes = row_bytes;
    j.nb = nb;
    mlxq_gguf_kernels(type, impl, NULL, &j.dequant, &j.dequant_to);
    mlxq_gguf_block(type, &j.block_size, &j.type_size);
    j.out = out->data;
    j.odt = out->dtype;
    j.out_cols = nb * bs;
    return run(&j, n, nb * bs, impl, nread, err);
}
