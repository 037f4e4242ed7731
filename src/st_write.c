/*
 * st_write.c - writing safetensors files exactly and atomically.
 *
 * The header matches what the reference writer (safetensors' serialize_to_file) emits for
 * the same tensors: same layout order, same JSON spelling (serde_json's compact form and
 * string escapes), same space padding. The one freedom the reference leaves - the order of
 * "__metadata__" keys, a HashMap's - is fixed here to bytewise sorted.
 *
 * Data goes from the caller's buffers to write(2): large contiguous tensors directly, small
 * pieces and strided arrays through one 1 MiB staging buffer. The file is a temporary
 * sibling until commit: fsync, rename over the final name, fsync the directory.
 */
#include "mlxq_safetensors.h"
#include "st_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STAGE_SIZE (1u << 20)
#define DIRECT_MIN (64u << 10) /* writes this large skip the staging buffer */
#define WRITEBACK_MIN (1u << 20) /* writes this large start their writeback at once */

/* ---- header ---------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n) {
    if (b->oom)
        return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string as serde_json writes it: only '"', '\\' and C0 controls are escaped. */
static void sb_json_string(sbuf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        const char *esc = NULL;
        char u[6];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
            }
        }
        if (!esc && c >= 0x20)
            continue;
        sb_put(b, s + run, i - run);
        if (esc)
            sb_str(b, esc);
        else
            sb_put(b, u, 6);
        run = i + 1;
    }
    sb_put(b, s + run, len - run);
    sb_put(b, "\"", 1);
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

typedef struct {
    const mlxq_st_entry *e;
    size_t index;
} sorted_entry;

/* Layout order: descending dtype (enum order), then name. */
static int layout_cmp(const void *a, const void *b) {
    const mlxq_st_entry *x = ((const sorted_entry *)a)->e, *y = ((const sorted_entry *)b)->e;
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1;
    return bytes_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int name_cmp(const void *a, const void *b) {
    const mlxq_st_entry *x = ((const sorted_entry *)a)->e, *y = ((const sorted_entry *)b)->e;
    return bytes_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int kv_cmp(const void *a, const void *b) {
    const mlxq_st_kv *x = *(const mlxq_st_kv *const *)a, *y = *(const mlxq_st_kv *const *)b;
    return bytes_cmp(x->key, x->key_len, y->key, y->key_len);
}

static mlxq_status check_name(const char *what, const char *s, size_t len, int allow_nul,
                              mlxq_error *err) {
    char q[MLXQ_ST_QUOTE_MAX];
    if (mlxq_st_utf8_valid_prefix((const uint8_t *)s, len) != len)
        return mlxq_fail(err, MLXQ_EARG, "%s %s is not valid UTF-8", what,
                         mlxq_st_quote(q, sizeof q, s, len));
    if (!allow_nul && memchr(s, 0, len))
        return mlxq_fail(err, MLXQ_EARG, "%s %s contains U+0000", what,
                         mlxq_st_quote(q, sizeof q, s, len));
    return MLXQ_OK;
}

/* Size in bytes of an entry, checking shape and overflow. */
static mlxq_status entry_size(const mlxq_st_entry *e, uint64_t *size, mlxq_error *err) {
    char q[MLXQ_ST_QUOTE_MAX];
    unsigned bits = mlxq_st_dtype_bits(e->dtype);
    if (!bits)
        return mlxq_fail(err, MLXQ_EARG, "tensor %s: unknown dtype %d",
                         mlxq_st_quote(q, sizeof q, e->name, e->name_len), (int)e->dtype);
    if (e->ndim < 0 || e->ndim > MLXQ_ST_MAX_NDIM)
        return mlxq_fail(err, MLXQ_EARG, "tensor %s: rank %d is outside 0..%d",
                         mlxq_st_quote(q, sizeof q, e->name, e->name_len), e->ndim,
                         MLXQ_ST_MAX_NDIM);
    uint64_t nel = 1;
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] < 0)
            return mlxq_fail(err, MLXQ_EARG, "tensor %s: negative dimension",
                             mlxq_st_quote(q, sizeof q, e->name, e->name_len));
        uint64_t dim = (uint64_t)e->shape[d];
        if (dim && nel > UINT64_MAX / dim)
            return mlxq_fail(err, MLXQ_EOVERFLOW, "tensor %s: element count overflows",
                             mlxq_st_quote(q, sizeof q, e->name, e->name_len));
        nel *= dim;
    }
    if (nel > UINT64_MAX / bits)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "tensor %s: size overflows",
                         mlxq_st_quote(q, sizeof q, e->name, e->name_len));
    if (nel * bits % 8)
        return mlxq_fail(err, MLXQ_EARG, "tensor %s: %llu elements of %s are not whole bytes",
                         mlxq_st_quote(q, sizeof q, e->name, e->name_len),
                         (unsigned long long)nel, mlxq_st_dtype_name(e->dtype));
    *size = nel * bits / 8;
    return MLXQ_OK;
}

mlxq_status mlxq_st_build_header(const mlxq_st_entry *entries, size_t n,
                                 const mlxq_st_kv *metadata, size_t n_metadata, char **header,
                                 size_t *header_len, size_t *order, uint64_t *begin,
                                 mlxq_error *err) {
    *header = NULL;
    *header_len = 0;
    if (!metadata && n_metadata)
        return mlxq_fail(err, MLXQ_EARG, "n_metadata > 0 without metadata");
    mlxq_status st = MLXQ_OK;
    sorted_entry *se = malloc((n ? n : 1) * sizeof *se);
    const mlxq_st_kv **kv = malloc((n_metadata ? n_metadata : 1) * sizeof *kv);
    uint64_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    sbuf b = {0};
    char q[MLXQ_ST_QUOTE_MAX];
    if (!se || !kv || !sizes) {
        st = mlxq_fail(err, MLXQ_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const mlxq_st_entry *e = &entries[i];
        if ((st = check_name("tensor name", e->name, e->name_len, 0, err)))
            goto done;
        if (e->name_len == 12 && memcmp(e->name, "__metadata__", 12) == 0) {
            st = mlxq_fail(err, MLXQ_EARG, "'__metadata__' is reserved and cannot name a tensor");
            goto done;
        }
        if ((st = entry_size(e, &sizes[i], err)))
            goto done;
        se[i] = (sorted_entry){e, i};
    }
    qsort(se, n, sizeof *se, name_cmp);
    for (size_t i = 1; i < n; i++)
        if (name_cmp(&se[i - 1], &se[i]) == 0) {
            st = mlxq_fail(err, MLXQ_EARG, "two tensors are named %s",
                           mlxq_st_quote(q, sizeof q, se[i].e->name, se[i].e->name_len));
            goto done;
        }
    for (size_t i = 0; i < n_metadata; i++) {
        if ((st = check_name("metadata key", metadata[i].key, metadata[i].key_len, 0, err)) ||
            (st = check_name("metadata value", metadata[i].value, metadata[i].value_len, 1,
                             err)))
            goto done;
        kv[i] = &metadata[i];
    }
    qsort(kv, n_metadata, sizeof *kv, kv_cmp);
    for (size_t i = 1; i < n_metadata; i++)
        if (kv_cmp(&kv[i - 1], &kv[i]) == 0) {
            st = mlxq_fail(err, MLXQ_EARG, "metadata key %s appears twice",
                           mlxq_st_quote(q, sizeof q, kv[i]->key, kv[i]->key_len));
            goto done;
        }

    qsort(se, n, sizeof *se, layout_cmp);
    sb_put(&b, "\0\0\0\0\0\0\0\0{", 9);
    int first = 1;
    if (metadata) {
        sb_str(&b, "\"__metadata__\":{");
        for (size_t i = 0; i < n_metadata; i++) {
            if (i)
                sb_put(&b, ",", 1);
            sb_json_string(&b, kv[i]->key, kv[i]->key_len);
            sb_put(&b, ":", 1);
            sb_json_string(&b, kv[i]->value, kv[i]->value_len);
        }
        sb_put(&b, "}", 1);
        first = 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const mlxq_st_entry *e = se[i].e;
        uint64_t sz = sizes[se[i].index];
        if (off > UINT64_MAX - sz) {
            st = mlxq_fail(err, MLXQ_EOVERFLOW, "total data size overflows 64 bits");
            goto done;
        }
        if (!first)
            sb_put(&b, ",", 1);
        first = 0;
        sb_json_string(&b, e->name, e->name_len);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, mlxq_st_dtype_name(e->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d)
                sb_put(&b, ",", 1);
            sb_u64(&b, (uint64_t)e->shape[d]);
        }
        sb_str(&b, "],\"data_offsets\":[");
        sb_u64(&b, off);
        sb_put(&b, ",", 1);
        sb_u64(&b, off + sz);
        sb_str(&b, "]}");
        order[i] = se[i].index;
        begin[se[i].index] = off;
        off += sz;
    }
    sb_put(&b, "}", 1);
    while (!b.oom && b.len % 8)
        sb_put(&b, " ", 1);
    if (b.oom) {
        st = mlxq_fail(err, MLXQ_ENOMEM, "out of memory building the header");
        goto done;
    }
    uint64_t hl = b.len - 8;
    if (hl > MLXQ_ST_MAX_HEADER) {
        st = mlxq_fail(err, MLXQ_EARG, "header would be %llu bytes, over the %u-byte limit",
                       (unsigned long long)hl, MLXQ_ST_MAX_HEADER);
        goto done;
    }
    for (int i = 0; i < 8; i++)
        b.p[i] = (char)(hl >> (8 * i));
    *header = b.p;
    *header_len = b.len;
    b.p = NULL;
done:
    free(b.p);
    free(se);
    free(kv);
    free(sizes);
    return st;
}

/* ---- the writer ------------------------------------------------------------------------ */

struct mlxq_st_writer {
    int fd;
    char *path, *tmp, *dir;
    size_t n;
    size_t *order;
    uint64_t *sizes; /* by entry index */
    size_t cur;      /* position in order */
    uint64_t left;   /* bytes still due for order[cur] */
    char *stage;
    size_t staged;
    /* Random-access mode (mlxq_st_writer_put): where each tensor goes, which are in. */
    uint64_t data_start;
    uint64_t *begin;   /* by entry index, within the data section */
    uint64_t *filled;        /* bytes put so far, by entry index; NULL until the first put */
    unsigned char *complete; /* by entry index: all bytes in (an empty tensor: put once) */
    size_t n_done;           /* tensors complete */
    int sequential;      /* set by the first write/write_strided: the modes exclude each other */
};

static mlxq_status io_fail(mlxq_error *err, const char *what, const char *path) {
    return mlxq_fail(err, MLXQ_EIO, "%s %s: %s", what, path, strerror(errno));
}

/* write() at the file offset (at < 0), or pwrite() at `at`; retried until all is out. */
static mlxq_status write_at(mlxq_st_writer *w, const void *p, size_t len, int64_t at,
                            mlxq_error *err) {
    const char *c = p;
#if defined(SYNC_FILE_RANGE_WRITE)
    /* Large parts start their writeback now, so the fsync at commit waits for what is
     * left rather than the whole file (advice only: its failure changes nothing). */
    const int64_t start = at >= 0 ? at : (int64_t)lseek(w->fd, 0, SEEK_CUR);
    const size_t total = len;
#endif
    while (len) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t r = at < 0 ? write(w->fd, c, chunk) : pwrite(w->fd, c, chunk, (off_t)at);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return io_fail(err, "cannot write", w->tmp);
        }
        c += r;
        len -= (size_t)r;
        if (at >= 0)
            at += r;
    }
#if defined(SYNC_FILE_RANGE_WRITE)
    if (total >= WRITEBACK_MIN && start >= 0)
        (void)sync_file_range(w->fd, (off_t)start, (off_t)total, SYNC_FILE_RANGE_WRITE);
#endif
    return MLXQ_OK;
}

static mlxq_status write_all(mlxq_st_writer *w, const void *p, size_t len, mlxq_error *err) {
    return write_at(w, p, len, -1, err);
}

static mlxq_status flush_stage(mlxq_st_writer *w, mlxq_error *err) {
    mlxq_status st = write_all(w, w->stage, w->staged, err);
    w->staged = 0;
    return st;
}

static void skip_empty(mlxq_st_writer *w) {
    while (w->cur < w->n && w->left == 0) {
        w->cur++;
        if (w->cur < w->n)
            w->left = w->sizes[w->order[w->cur]];
    }
}

long mlxq_st_writer_next(const mlxq_st_writer *w) {
    return w->cur < w->n ? (long)w->order[w->cur] : -1;
}

/* Moves `len` bytes into the file (staged or direct) without tensor accounting. */
static mlxq_status emit(mlxq_st_writer *w, const void *p, size_t len, mlxq_error *err) {
    if (len >= DIRECT_MIN) {
        mlxq_status st = flush_stage(w, err);
        return st ? st : write_all(w, p, len, err);
    }
    if (STAGE_SIZE - w->staged < len) {
        mlxq_status st = flush_stage(w, err);
        if (st)
            return st;
    }
    memcpy(w->stage + w->staged, p, len);
    w->staged += len;
    return MLXQ_OK;
}

static mlxq_status account(mlxq_st_writer *w, size_t len, mlxq_error *err) {
    if (w->filled)
        return mlxq_fail(err, MLXQ_EARG, "sequential write after mlxq_st_writer_put");
    w->sequential = 1;
    uint64_t rest = len;
    while (rest) {
        if (w->cur >= w->n)
            return mlxq_fail(err, MLXQ_EARG, "more bytes than the tensors hold");
        uint64_t take = rest < w->left ? rest : w->left;
        w->left -= take;
        rest -= take;
        skip_empty(w);
    }
    return MLXQ_OK;
}

mlxq_status mlxq_st_writer_write(mlxq_st_writer *w, const void *data, size_t len,
                                 mlxq_error *err) {
    mlxq_status st = account(w, len, err);
    return st ? st : emit(w, data, len, err);
}

mlxq_status mlxq_st_writer_write_strided(mlxq_st_writer *w, const void *data, size_t itemsize,
                                         int ndim, const int64_t *shape,
                                         const int64_t *strides, mlxq_error *err) {
    if (ndim < 0 || ndim > MLXQ_ST_MAX_NDIM || itemsize == 0 || itemsize > STAGE_SIZE)
        return mlxq_fail(err, MLXQ_EARG, "bad strided array description");
    uint64_t total = itemsize;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return mlxq_fail(err, MLXQ_EARG, "negative dimension");
        if (shape[d] == 0)
            return MLXQ_OK;
        if ((uint64_t)shape[d] > UINT64_MAX / total)
            return mlxq_fail(err, MLXQ_EOVERFLOW, "array size overflows");
        total *= (uint64_t)shape[d];
    }
    if (total > SIZE_MAX)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "array size overflows");
    mlxq_status st = account(w, (size_t)total, err);
    if (st)
        return st;
    if (ndim == 0)
        return emit(w, data, itemsize, err);
    /* Rows of the last dimension are copied whole when contiguous, else element by element;
     * the outer dimensions are walked with an odometer. */
    int64_t idx[MLXQ_ST_MAX_NDIM] = {0};
    const int last = ndim - 1;
    const int64_t rowlen = shape[last];
    const int contiguous_row = strides[last] == (int64_t)itemsize;
    const char *base = data;
    for (;;) {
        const char *row = base;
        for (int d = 0; d < last; d++)
            row += idx[d] * strides[d];
        if (contiguous_row) {
            if ((st = emit(w, row, (size_t)rowlen * itemsize, err)))
                return st;
        } else {
            for (int64_t k = 0; k < rowlen; k++) {
                if (STAGE_SIZE - w->staged < itemsize && (st = flush_stage(w, err)))
                    return st;
                memcpy(w->stage + w->staged, row + k * strides[last], itemsize);
                w->staged += itemsize;
            }
        }
        int d = last - 1;
        while (d >= 0 && ++idx[d] == shape[d])
            idx[d--] = 0;
        if (d < 0)
            break;
    }
    return MLXQ_OK;
}

mlxq_status mlxq_st_writer_put_range(mlxq_st_writer *w, size_t index, uint64_t offset,
                                     const void *data, size_t len, mlxq_error *err) {
    if (w->sequential)
        return mlxq_fail(err, MLXQ_EARG, "mlxq_st_writer_put after a sequential write");
    if (index >= w->n)
        return mlxq_fail(err, MLXQ_EARG, "tensor #%zu does not exist (%zu tensors)", index, w->n);
    if (!w->filled) {
        w->filled = calloc(w->n ? w->n : 1, sizeof *w->filled);
        w->complete = calloc(w->n ? w->n : 1, 1);
        if (!w->filled || !w->complete) {
            free(w->filled);
            free(w->complete);
            w->filled = NULL;
            w->complete = NULL;
            return mlxq_fail(err, MLXQ_ENOMEM, "out of memory");
        }
    }
    uint64_t size = w->sizes[index], have = w->filled[index];
    if (w->complete[index])
        return mlxq_fail(err, MLXQ_EARG, "tensor #%zu was already written", index);
    if (offset != have)
        return mlxq_fail(err, MLXQ_EARG, "tensor #%zu: bytes must arrive in order (next is "
                         "byte %llu, got %llu)", index, (unsigned long long)have,
                         (unsigned long long)offset);
    if (len > size - have)
        return mlxq_fail(err, MLXQ_EARG, "tensor #%zu holds %llu bytes, got %llu more than "
                         "that", index, (unsigned long long)size,
                         (unsigned long long)(have + len - size));
    mlxq_status st =
        write_at(w, data, len, (int64_t)(w->data_start + w->begin[index] + offset), err);
    if (st)
        return st;
    w->filled[index] = have + len;
    if (have + len == size) {
        w->complete[index] = 1;
        w->n_done++;
    }
    return MLXQ_OK;
}

mlxq_status mlxq_st_writer_put(mlxq_st_writer *w, size_t index, const void *data, size_t len,
                               mlxq_error *err) {
    if (index < w->n && len != w->sizes[index])
        return mlxq_fail(err, MLXQ_EARG, "tensor #%zu holds %llu bytes, got %zu", index,
                         (unsigned long long)w->sizes[index], len);
    return mlxq_st_writer_put_range(w, index, 0, data, len, err);
}

static void writer_free(mlxq_st_writer *w) {
    free(w->begin);
    free(w->filled);
    free(w->complete);
    free(w->path);
    free(w->tmp);
    free(w->dir);
    free(w->order);
    free(w->sizes);
    free(w->stage);
    free(w);
}

void mlxq_st_writer_abort(mlxq_st_writer *w) {
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    unlink(w->tmp);
    writer_free(w);
}

static uint64_t random64(void) {
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    static unsigned long counter; /* fallback only; uniqueness comes from O_EXCL retries */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^
           ++counter;
}

mlxq_status mlxq_st_writer_open(const char *path, const mlxq_st_entry *entries, size_t n,
                                const mlxq_st_kv *metadata, size_t n_metadata,
                                mlxq_st_writer **out, mlxq_error *err) {
    *out = NULL;
    mlxq_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return mlxq_fail(err, MLXQ_ENOMEM, "out of memory");
    w->fd = -1;
    w->n = n;
    char *header = NULL;
    size_t header_len;
    uint64_t *begin = malloc((n ? n : 1) * sizeof *begin);
    w->order = malloc((n ? n : 1) * sizeof *w->order);
    w->sizes = malloc((n ? n : 1) * sizeof *w->sizes);
    w->stage = malloc(STAGE_SIZE);
    size_t plen = strlen(path);
    w->path = malloc(plen + 1);
    w->dir = malloc(plen + 2);
    w->tmp = malloc(plen + 40);
    mlxq_status st;
    if (!begin || !w->order || !w->sizes || !w->stage || !w->path || !w->dir || !w->tmp) {
        st = mlxq_fail(err, MLXQ_ENOMEM, "out of memory");
        goto fail;
    }
    st = mlxq_st_build_header(entries, n, metadata, n_metadata, &header, &header_len, w->order,
                              begin, err);
    if (st)
        goto fail;
    for (size_t i = 0; i < n; i++)
        entry_size(&entries[i], &w->sizes[i], NULL); /* checked by build_header */
    memcpy(w->path, path, plen + 1);

    /* temporary sibling: <dir>/.<base>.<16 hex>.tmp, hidden so no *.safetensors glob sees it */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    const char *base = slash ? slash + 1 : path;
    if (!*base) {
        st = mlxq_fail(err, MLXQ_EARG, "path %s names a directory", path);
        goto fail;
    }
    if (slash) {
        memcpy(w->dir, path, dlen ? dlen : 1); /* "/x" -> "/" */
        w->dir[dlen ? dlen : 1] = 0;
    } else
        strcpy(w->dir, ".");
    size_t blen = strlen(base);
    for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
        uint64_t r = random64();
        if (blen > 200) /* keep the name within NAME_MAX */
            snprintf(w->tmp, plen + 40, "%.*s.mlxq-%016llx.tmp", (int)(base - path), path,
                     (unsigned long long)r);
        else
            snprintf(w->tmp, plen + 40, "%.*s.%s.%016llx.tmp", (int)(base - path), path, base,
                     (unsigned long long)r);
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd < 0 && errno != EEXIST) {
            st = io_fail(err, "cannot create a temporary file in", w->dir);
            goto fail;
        }
    }
    if (w->fd < 0) {
        st = mlxq_fail(err, MLXQ_EIO, "cannot create a unique temporary file in %s", w->dir);
        goto fail;
    }
    if ((st = write_all(w, header, header_len, err)))
        goto fail;
    free(header);
    w->begin = begin;
    w->data_start = header_len;
    w->cur = 0;
    w->left = n ? w->sizes[w->order[0]] : 0;
    skip_empty(w);
    *out = w;
    return MLXQ_OK;
fail:
    free(header);
    free(begin);
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp);
    }
    writer_free(w);
    return st;
}

mlxq_status mlxq_st_writer_commit(mlxq_st_writer *w, mlxq_error *err) {
    mlxq_status st;
    if (w->complete) {
        if (w->n_done < w->n) {
            size_t missing = 0;
            while (w->complete[missing])
                missing++;
            st = mlxq_fail(err, MLXQ_EARG, "commit before every tensor was written (%zu of "
                                           "%zu missing, first #%zu)",
                           w->n - w->n_done, w->n, missing);
            mlxq_st_writer_abort(w);
            return st;
        }
    } else if (w->cur < w->n) {
        st = mlxq_fail(err, MLXQ_EARG, "commit before every tensor was written (%llu bytes "
                                       "of tensor #%zu still due)",
                       (unsigned long long)w->left, w->order[w->cur]);
        mlxq_st_writer_abort(w);
        return st;
    }
    if ((st = flush_stage(w, err))) {
        mlxq_st_writer_abort(w);
        return st;
    }
    if (fsync(w->fd) != 0) {
        st = io_fail(err, "cannot fsync", w->tmp);
        mlxq_st_writer_abort(w);
        return st;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        st = io_fail(err, "cannot close", w->tmp);
        mlxq_st_writer_abort(w);
        return st;
    }
    if (rename(w->tmp, w->path) != 0) {
        st = io_fail(err, "cannot rename the temporary file to", w->path);
        mlxq_st_writer_abort(w);
        return st;
    }
    /* Make the rename durable. Some file systems refuse fsync on a directory (EINVAL); the
     * file itself is already complete under its name, so that is not an error. */
    int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)
            st = io_fail(err, "cannot fsync the directory", w->dir);
        close(dfd);
    }
    writer_free(w);
    return st;
}
