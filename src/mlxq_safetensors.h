/*
 * mlxq_safetensors.h - reading and writing the safetensors checkpoint format.
 *
 * File layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON (the
 * header), then the data section. The header is an object mapping each tensor name to
 * {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} (offsets relative to the
 * data section), plus an optional "__metadata__" object of string -> string.
 *
 * Reading (st_header.c, st_file.c) never trusts the file: every rule of the reference parser
 * (the Rust `safetensors` crate) is enforced, plus a few it leaves out; docs/io.md lists them
 * all, with where mlxq is stricter. A header accepted here describes tensors that tile the
 * data section exactly, so a caller may view each tensor's bytes at data + begin without any
 * further check.
 *
 * Writing (st_write.c) produces the canonical layout of the reference writer: tensors laid out
 * by descending dtype (the crate's enum order, which keeps every tensor aligned to its element
 * size), ties by name; header entries in the same order, each {"dtype","shape","data_offsets"}
 * compact, "__metadata__" first with its keys sorted; the header padded with spaces to a
 * multiple of 8 bytes. Files go to a temporary sibling that is fsynced and renamed into place,
 * so the final name only ever holds a complete file.
 *
 * Every function returns MLXQ_OK or an error code with a message in *err (see mlxq_common.h):
 * MLXQ_EFORMAT for a malformed file, MLXQ_EIO for a refused system call (the message carries
 * strerror), MLXQ_ENOMEM, MLXQ_EARG for inconsistent arguments to the writer. Messages name the
 * tensor at fault (quoted, escaped, truncated to a readable length) but not the file: the
 * caller knows the path and prefixes it.
 */
#ifndef MLXQ_SAFETENSORS_H
#define MLXQ_SAFETENSORS_H

#include "mlxq_common.h"

/* The dtypes the format names, in the reference crate's declaration order (its Ord, which the
 * writer's layout follows). Sub-byte types (F4, F6_*) pack elements into bits: a tensor of
 * them must hold a whole number of bytes. */
typedef enum {
    MLXQ_ST_BOOL = 0,
    MLXQ_ST_F4,
    MLXQ_ST_F6_E2M3,
    MLXQ_ST_F6_E3M2,
    MLXQ_ST_U8,
    MLXQ_ST_I8,
    MLXQ_ST_F8_E5M2,
    MLXQ_ST_F8_E4M3,
    MLXQ_ST_F8_E8M0,
    MLXQ_ST_F8_E4M3FNUZ,
    MLXQ_ST_F8_E5M2FNUZ,
    MLXQ_ST_I16,
    MLXQ_ST_U16,
    MLXQ_ST_F16,
    MLXQ_ST_BF16,
    MLXQ_ST_I32,
    MLXQ_ST_U32,
    MLXQ_ST_F32,
    MLXQ_ST_C64,
    MLXQ_ST_F64,
    MLXQ_ST_I64,
    MLXQ_ST_U64,
    MLXQ_ST_DTYPE_COUNT
} mlxq_st_dtype;

/* "F32", "BF16", ... as written in headers; NULL outside the enum. */
const char *mlxq_st_dtype_name(mlxq_st_dtype dt);
/* Bits per element (4, 6, 8, 16, 32 or 64); 0 outside the enum. */
unsigned mlxq_st_dtype_bits(mlxq_st_dtype dt);
/* The dtype spelled exactly `name` (`len` bytes); -1 when there is none. Case-sensitive. */
int mlxq_st_dtype_parse(const char *name, size_t len);

/* The largest header the reference parser accepts (and the writer will produce): 100 MB. */
#define MLXQ_ST_MAX_HEADER 100000000u
/* Rank limit: numpy's NPY_MAXDIMS. The format has none; a header with more dimensions is
 * refused because no reader could hold the tensor. */
#define MLXQ_ST_MAX_NDIM 64

/* One tensor of a parsed header. Strings are NUL-terminated and also carry their length;
 * names are valid UTF-8 without U+0000. */
typedef struct {
    const char *name;
    size_t name_len;
    mlxq_st_dtype dtype;
    int ndim;
    const int64_t *shape; /* ndim entries, each in [0, INT64_MAX] */
    uint64_t begin, end;  /* byte range within the data section; end - begin is the size */
} mlxq_st_tensor;

/* One "__metadata__" entry. Keys have no U+0000; values may (their length is exact). */
typedef struct {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} mlxq_st_kv;

/* A validated header. All memory is owned by the header and released by mlxq_st_header_free. */
typedef struct {
    size_t n_tensors;
    const mlxq_st_tensor *tensors; /* sorted by name (bytewise), names unique */
    int has_metadata;              /* 1 when "__metadata__" was present and not null */
    size_t n_metadata;
    const mlxq_st_kv *metadata; /* sorted by key (bytewise), keys unique */
    uint64_t data_start;        /* 8 + N: where the data section starts in the file */
    uint64_t data_size;         /* bytes the tensors cover: the data section's exact size */
} mlxq_st_header;

/*
 * Parses and validates `len` bytes of header JSON (the N bytes after the length prefix),
 * independently of any file: the tensors must tile [0, data_size) with no gap or overlap,
 * and *out->data_size is that end. data_start is set to 8 + len.
 *
 * This is the fuzz entry point (fuzz/st_header_fuzz.c): any byte string is safe to pass;
 * reads stay within [json, json + len); nothing is retained from json after return.
 * On success *out is a new header; on failure *out is NULL and nothing is leaked.
 */
mlxq_status mlxq_st_parse_header(const void *json, size_t len, mlxq_st_header **out,
                                 mlxq_error *err);

/*
 * Parses a whole file image: `size` bytes starting with the 8-byte length prefix. Adds the
 * file-level rules to mlxq_st_parse_header's: at least 8 bytes, N <= MLXQ_ST_MAX_HEADER,
 * 8 + N <= size (else the file is truncated), and the tensors cover exactly the remaining
 * size - 8 - N bytes (a shorter file is truncated, a longer one has trailing bytes).
 */
mlxq_status mlxq_st_parse(const void *file, size_t size, mlxq_st_header **out, mlxq_error *err);

/* Index of the tensor named `name` (`len` bytes) in h->tensors, or -1. O(log n). */
long mlxq_st_find(const mlxq_st_header *h, const char *name, size_t len);

void mlxq_st_header_free(mlxq_st_header *h);

/*
 * A read-only memory mapping of a whole safetensors file and its validated header
 * (st_file.c). Opening costs a header parse, not a read of the data: tensors are viewed in
 * place at data + t->begin. The file descriptor is closed before mlxq_st_open returns; the
 * mapping lives until mlxq_st_close. If another process truncates the file while it is
 * mapped, touching the lost pages raises SIGBUS: that is inherent to mmap and the reason the
 * writer replaces files by rename instead of rewriting them.
 */
typedef struct {
    const uint8_t *map;   /* the file's bytes, map_size of them (NULL when 0) */
    size_t map_size;
    const uint8_t *data;  /* map + header->data_start */
    mlxq_st_header *header;
} mlxq_st_file;

/* Opens, maps and validates `path` (a regular file). *out is NULL on failure. */
mlxq_status mlxq_st_open(const char *path, mlxq_st_file **out, mlxq_error *err);
/* Unmaps and frees; NULL is a no-op. Every pointer into the file dies here. */
void mlxq_st_close(mlxq_st_file *f);

/* What the writer needs to know of one tensor before any of its bytes. */
typedef struct {
    const char *name; /* UTF-8, no U+0000, not "__metadata__"; unique within a file */
    size_t name_len;
    mlxq_st_dtype dtype;
    int ndim;             /* 0 ..= MLXQ_ST_MAX_NDIM */
    const int64_t *shape; /* each >= 0 */
} mlxq_st_entry;

typedef struct mlxq_st_writer mlxq_st_writer;

/*
 * Starts writing `path`: validates the entries and metadata (names unique and well formed,
 * sizes without overflow, header within MLXQ_ST_MAX_HEADER), creates a temporary file in
 * path's directory (named ".<basename>.<random>.tmp", mode 0666 less the umask), and writes
 * the length prefix and header. The entries and metadata may be freed after the call.
 * metadata == NULL (n_metadata must be 0) writes no "__metadata__" key; an empty non-NULL
 * array writes "__metadata__":{}.
 *
 * Then feed tensor bytes in the order mlxq_st_writer_next gives, through mlxq_st_writer_write
 * (contiguous bytes, any number of calls per tensor) or mlxq_st_writer_write_strided, and
 * finish with mlxq_st_writer_commit, or mlxq_st_writer_abort to give up. Either frees the
 * writer. Nothing appears under `path` before a successful commit.
 */
mlxq_status mlxq_st_writer_open(const char *path, const mlxq_st_entry *entries, size_t n,
                                const mlxq_st_kv *metadata, size_t n_metadata,
                                mlxq_st_writer **out, mlxq_error *err);

/* Index into the entries passed to open of the tensor whose bytes come next, or -1 when
 * every tensor has all its bytes. */
long mlxq_st_writer_next(const mlxq_st_writer *w);

/* Appends `len` bytes to the current tensor (possibly completing it and continuing into the
 * next ones). Writing more bytes than the tensors hold is MLXQ_EARG. */
mlxq_status mlxq_st_writer_write(mlxq_st_writer *w, const void *data, size_t len,
                                 mlxq_error *err);

/* Appends the elements of a strided array in C order (row-major), gathering them through a
 * bounded buffer (never a copy of the whole array). Strides are in bytes, any sign. */
mlxq_status mlxq_st_writer_write_strided(mlxq_st_writer *w, const void *data, size_t itemsize,
                                         int ndim, const int64_t *shape,
                                         const int64_t *strides, mlxq_error *err);

/* The random-access alternative to the two above, for producers that make tensors in their
 * own order (a converter streaming in mlx-lm's parameter order while the layout follows the
 * canonical one): writes all `len` bytes of entry `index` at its place in the file (pwrite).
 * `len` must equal the tensor's size; each tensor is put once. A writer is either sequential
 * or random-access: mixing the two is MLXQ_EARG. */
mlxq_status mlxq_st_writer_put(mlxq_st_writer *w, size_t index, const void *data, size_t len,
                               mlxq_error *err);
/* Part of a tensor: `len` bytes at byte `offset` of entry `index`. A tensor's parts must
 * arrive in order (offset = the bytes put so far) and not overrun it; it is complete when
 * all its bytes are in. mlxq_st_writer_put is this with offset 0 and the whole size. */
mlxq_status mlxq_st_writer_put_range(mlxq_st_writer *w, size_t index, uint64_t offset,
                                     const void *data, size_t len, mlxq_error *err);

/* Checks every byte was written, fsyncs the file, renames it to the final path and fsyncs
 * the directory. Frees w whatever happens; on failure the temporary file is removed. */
mlxq_status mlxq_st_writer_commit(mlxq_st_writer *w, mlxq_error *err);

/* Removes the temporary file and frees w. NULL is a no-op. */
void mlxq_st_writer_abort(mlxq_st_writer *w);

/*
 * The header the writer would produce, for callers that assemble files themselves and for
 * tests: a malloc'd buffer of *header_len bytes (8-byte prefix included, padded to a multiple
 * of 8). order[i] (n entries, caller-allocated) receives the index of the i-th tensor in the
 * data section and begin[j] (n entries) entry j's offset in it. Free the buffer with free().
 */
mlxq_status mlxq_st_build_header(const mlxq_st_entry *entries, size_t n,
                                 const mlxq_st_kv *metadata, size_t n_metadata, char **header,
                                 size_t *header_len, size_t *order, uint64_t *begin,
                                 mlxq_error *err);

#endif /* MLXQ_SAFETENSORS_H */
