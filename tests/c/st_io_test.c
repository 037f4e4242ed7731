/*
 * st_io_test.c - the safetensors C API end to end, meant to run under ASan/UBSan with leak
 * detection on (`make test-asan` builds and runs it): write files with the writer (contiguous,
 * strided, zero-size, metadata), read them back through mlxq_st_open, and walk every error
 * path of the writer and the reader, checking that each frees what it allocated.
 *
 *   usage: st_io_test DIR   (DIR: an existing, writable scratch folder)
 */
#include "mlxq_safetensors.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

static char path_buf[4096];
static const char *in_dir(const char *dir, const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
    return path_buf;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_round_trip(const char *dir) {
    int32_t a[2][3] = {{0, 1, 2}, {3, 4, 5}};
    uint8_t b[5] = {9, 8, 7, 6, 5};
    int64_t sa[2] = {3, 2}, sb[1] = {5}, sz[2] = {0, 4};
    mlxq_st_entry e[3] = {
        {"a.T", 3, MLXQ_ST_I32, 2, sa}, /* a transposed: strided */
        {"b", 1, MLXQ_ST_U8, 1, sb},
        {"empty", 5, MLXQ_ST_F32, 2, sz},
    };
    mlxq_st_kv meta[2] = {{"z", 1, "last", 4}, {"format", 6, "mlx", 3}};
    mlxq_error err;
    mlxq_st_writer *w;
    const char *p = in_dir(dir, "rt.safetensors");
    CHECK(mlxq_st_writer_open(p, e, 3, meta, 2, &w, &err) == MLXQ_OK);
    /* layout: I32 before U8; the zero-size F32 is never asked for */
    CHECK(mlxq_st_writer_next(w) == 0);
    int64_t strides[2] = {4, 12}; /* a.T[i][j] = a[j][i] */
    CHECK(mlxq_st_writer_write_strided(w, a, 4, 2, sa, strides, &err) == MLXQ_OK);
    CHECK(mlxq_st_writer_next(w) == 1);
    CHECK(mlxq_st_writer_write(w, b, 2, &err) == MLXQ_OK);
    CHECK(mlxq_st_writer_write(w, b + 2, 3, &err) == MLXQ_OK);
    CHECK(mlxq_st_writer_next(w) == -1);
    CHECK(mlxq_st_writer_commit(w, &err) == MLXQ_OK);

    mlxq_st_file *f;
    CHECK(mlxq_st_open(p, &f, &err) == MLXQ_OK);
    if (!f)
        return;
    const mlxq_st_header *h = f->header;
    CHECK(h->n_tensors == 3 && h->has_metadata && h->n_metadata == 2);
    CHECK(strcmp(h->metadata[0].key, "format") == 0 && strcmp(h->metadata[1].value, "last") == 0);
    CHECK(h->data_start % 8 == 0 && h->data_size == 24 + 5);
    long i = mlxq_st_find(h, "a.T", 3);
    CHECK(i == 0 && h->tensors[i].begin == 0 && h->tensors[i].end == 24);
    const int32_t *at = (const int32_t *)(f->data + h->tensors[i].begin);
    int32_t want[6] = {0, 3, 1, 4, 2, 5};
    CHECK(memcmp(at, want, sizeof want) == 0);
    i = mlxq_st_find(h, "b", 1);
    CHECK(i == 1 && memcmp(f->data + h->tensors[i].begin, b, 5) == 0);
    CHECK(mlxq_st_find(h, "c", 1) == -1);
    mlxq_st_close(f);
}

static void test_writer_errors(const char *dir) {
    uint8_t buf[8] = {0};
    int64_t s4[1] = {4}, neg[1] = {-1}, odd[1] = {3};
    mlxq_st_entry ok = {"x", 1, MLXQ_ST_U8, 1, s4};
    mlxq_error err;
    mlxq_st_writer *w;
    const int before = count_entries(dir);

    mlxq_st_entry dup[2] = {ok, ok};
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), dup, 2, NULL, 0, &w, &err) == MLXQ_EARG && !w);
    mlxq_st_entry reserved = {"__metadata__", 12, MLXQ_ST_U8, 1, s4};
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &reserved, 1, NULL, 0, &w, &err) == MLXQ_EARG);
    mlxq_st_entry nul = {"a\0b", 3, MLXQ_ST_U8, 1, s4};
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &nul, 1, NULL, 0, &w, &err) == MLXQ_EARG);
    mlxq_st_entry bad_utf8 = {"\xff", 1, MLXQ_ST_U8, 1, s4};
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &bad_utf8, 1, NULL, 0, &w, &err) == MLXQ_EARG);
    mlxq_st_entry negative = {"n", 1, MLXQ_ST_U8, 1, neg};
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &negative, 1, NULL, 0, &w, &err) == MLXQ_EARG);
    mlxq_st_entry f4 = {"f", 1, MLXQ_ST_F4, 1, odd};
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &f4, 1, NULL, 0, &w, &err) == MLXQ_EARG);
    mlxq_st_kv dupmeta[2] = {{"k", 1, "1", 1}, {"k", 1, "2", 1}};
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &ok, 1, dupmeta, 2, &w, &err) == MLXQ_EARG);
    CHECK(mlxq_st_writer_open(in_dir(dir, "no/such/dir/e.st"), &ok, 1, NULL, 0, &w, &err) ==
          MLXQ_EIO);
    CHECK(mlxq_st_writer_open(in_dir(dir, ""), &ok, 1, NULL, 0, &w, &err) == MLXQ_EARG);

    /* too many bytes, early commit, abort: the temporary file always goes away */
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &ok, 1, NULL, 0, &w, &err) == MLXQ_OK);
    CHECK(mlxq_st_writer_write(w, buf, 5, &err) == MLXQ_EARG);
    mlxq_st_writer_abort(w);
    CHECK(mlxq_st_writer_open(in_dir(dir, "e.st"), &ok, 1, NULL, 0, &w, &err) == MLXQ_OK);
    CHECK(mlxq_st_writer_write(w, buf, 3, &err) == MLXQ_OK);
    CHECK(mlxq_st_writer_commit(w, &err) == MLXQ_EARG);
    mlxq_st_writer_abort(NULL);
    CHECK(count_entries(dir) == before);
}

static void test_reader_errors(const char *dir) {
    mlxq_error err;
    mlxq_st_file *f;
    CHECK(mlxq_st_open(in_dir(dir, "missing"), &f, &err) == MLXQ_EIO && !f);
    CHECK(mlxq_st_open(dir, &f, &err) == MLXQ_EIO && !f);
    static const char *bad[] = {"", "\x02\0\0\0\0\0\0\0{", "\x02\0\0\0\0\0\0\0{}x",
                                "\x02\0\0\0\0\0\0\0[]"};
    static const size_t len[] = {0, 9, 11, 10};
    for (int k = 0; k < 4; k++) {
        const char *p = in_dir(dir, "bad.st");
        FILE *fp = fopen(p, "wb");
        fwrite(bad[k], 1, len[k], fp);
        fclose(fp);
        CHECK(mlxq_st_open(p, &f, &err) == MLXQ_EFORMAT && !f);
        remove(p);
    }
    mlxq_st_header *h;
    CHECK(mlxq_st_parse_header("{\"a\":1}", 7, &h, &err) == MLXQ_EFORMAT && !h);
    CHECK(mlxq_st_parse_header("{}", 2, &h, &err) == MLXQ_OK && h && h->n_tensors == 0);
    mlxq_st_header_free(h);
    mlxq_st_header_free(NULL);
    mlxq_st_close(NULL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    test_round_trip(argv[1]);
    test_writer_errors(argv[1]);
    test_reader_errors(argv[1]);
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("st_io_test: all checks passed\n");
    return failures != 0;
}
