/*
 * st_header_fuzz.c - libFuzzer target for the safetensors header parser and validator.
 *
 * Two input modes, chosen by the first byte, so that mutations reach the JSON as well as
 * the framing:
 *   'F' + bytes   the bytes are a whole file image, given to mlxq_st_parse;
 *   anything else the input is header JSON, given to mlxq_st_parse_header; when it is
 *                 accepted, a file image with that header and a zero-filled data section
 *                 of the size it declares (if small) must parse to the same table.
 * On success every invariant the header promises is checked; a broken one aborts (a bug).
 * MLXQ_EINTERNAL (json-c disagreeing with the strict JSON check) aborts too.
 *
 * Build and run: `make fuzz` (clang -fsanitize=fuzzer,address,undefined).
 */
#include "mlxq_safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static void check_header(const mlxq_st_header *h, uint64_t avail) {
    CHECK(h->data_size <= avail);
    uint64_t covered = 0;
    for (size_t i = 0; i < h->n_tensors; i++) {
        const mlxq_st_tensor *t = &h->tensors[i];
        CHECK(t->name && strlen(t->name) == t->name_len);
        CHECK(t->ndim >= 0 && t->ndim <= MLXQ_ST_MAX_NDIM);
        CHECK(t->begin <= t->end && t->end <= h->data_size);
        uint64_t bits = mlxq_st_dtype_bits(t->dtype), nel = 1;
        CHECK(bits != 0);
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] >= 0);
            nel = t->shape[d] == 0 ? 0 : nel * (uint64_t)t->shape[d]; /* checked in parse */
        }
        CHECK(nel * bits % 8 == 0 && nel * bits / 8 == t->end - t->begin);
        covered += t->end - t->begin;
        if (i)
            CHECK(strcmp(h->tensors[i - 1].name, t->name) != 0 ||
                  h->tensors[i - 1].name_len != t->name_len);
        CHECK(mlxq_st_find(h, t->name, t->name_len) == (long)i);
    }
    CHECK(covered == h->data_size); /* no overlap, no gap */
    for (size_t i = 0; i < h->n_metadata; i++)
        CHECK(h->metadata[i].key && h->metadata[i].value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mlxq_st_header *h = NULL;
    mlxq_error err;
    mlxq_status st;
    if (size >= 1 && data[0] == 'F') {
        st = mlxq_st_parse(data + 1, size - 1, &h, &err);
        CHECK(st != MLXQ_EINTERNAL);
        if (st == MLXQ_OK) {
            CHECK(h->data_start + h->data_size == size - 1);
            check_header(h, size - 1 - h->data_start);
            mlxq_st_header_free(h);
        } else
            CHECK(h == NULL);
        return 0;
    }
    st = mlxq_st_parse_header(data, size, &h, &err);
    CHECK(st != MLXQ_EINTERNAL);
    if (st != MLXQ_OK) {
        CHECK(h == NULL);
        return 0;
    }
    check_header(h, h->data_size);
    if (h->data_size <= (1u << 16)) {
        size_t total = 8 + size + (size_t)h->data_size;
        uint8_t *img = calloc(1, total);
        if (img) {
            for (int i = 0; i < 8; i++)
                img[i] = (uint8_t)((uint64_t)size >> (8 * i));
            memcpy(img + 8, data, size);
            mlxq_st_header *h2 = NULL;
            st = mlxq_st_parse(img, total, &h2, &err);
            CHECK(st == MLXQ_OK);
            CHECK(h2->n_tensors == h->n_tensors && h2->data_size == h->data_size);
            for (size_t i = 0; i < h->n_tensors; i++)
                CHECK(h2->tensors[i].begin == h->tensors[i].begin &&
                      h2->tensors[i].dtype == h->tensors[i].dtype);
            mlxq_st_header_free(h2);
            free(img);
        }
    }
    mlxq_st_header_free(h);
    return 0;
}
