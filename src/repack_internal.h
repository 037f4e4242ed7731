/*
 * repack_internal.h - argument checks and strided word access shared by repack_*.c.
 */
#ifndef MLXQ_REPACK_INTERNAL_H
#define MLXQ_REPACK_INTERNAL_H

#include <string.h>

#include "mlxq_common.h"

/* Checks that `t` is a 2-D tensor of int32/uint32 (in) or uint32 (out). */
static inline mlxq_status mlxq_repack_check_words(const mlxq_tensor *t, const char *fn,
                                                  const char *name, int output,
                                                  mlxq_error *err) {
    if (!t || !t->data)
        return mlxq_fail(err, MLXQ_EARG, "%s: %s is missing", fn, name);
    if (t->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "%s: %s must be 2-D, got %d dimensions", fn, name,
                         t->ndim);
    if (t->dtype != MLXQ_U32 && (output || t->dtype != MLXQ_I32))
        return mlxq_fail(err, MLXQ_EDTYPE, "%s: %s must be %s, got %s", fn, name,
                         output ? "uint32" : "int32 or uint32", mlxq_dtype_name(t->dtype));
    if (t->shape[0] < 0 || t->shape[1] < 0)
        return mlxq_fail(err, MLXQ_ESHAPE, "%s: %s has a negative dimension", fn, name);
    return MLXQ_OK;
}

static inline mlxq_status mlxq_repack_check_shape(const mlxq_tensor *t, int64_t rows,
                                                  int64_t cols, const char *fn,
                                                  const char *name, mlxq_error *err) {
    if (t->shape[0] != rows || t->shape[1] != cols)
        return mlxq_fail(err, MLXQ_ESHAPE,
                         "%s: %s must have shape [%lld, %lld], got [%lld, %lld]", fn, name,
                         (long long)rows, (long long)cols, (long long)t->shape[0],
                         (long long)t->shape[1]);
    return MLXQ_OK;
}

/* 1 when a 2-D 32-bit tensor is C-contiguous, so the kernels may use plain pointers. */
static inline int mlxq_words_contiguous(const mlxq_tensor *t) {
    return t->strides[1] == 4 && t->strides[0] == 4 * t->shape[1];
}

/* Word (r, c) of a 2-D 32-bit tensor; memcpy because strides need not be aligned. */
static inline uint32_t mlxq_word_at(const mlxq_tensor *t, int64_t r, int64_t c) {
    uint32_t v;
    memcpy(&v, (const char *)t->data + r * t->strides[0] + c * t->strides[1], sizeof v);
    return v;
}

static inline void mlxq_word_put(const mlxq_tensor *t, int64_t r, int64_t c, uint32_t v) {
    memcpy((char *)t->data + r * t->strides[0] + c * t->strides[1], &v, sizeof v);
}

#endif /* MLXQ_REPACK_INTERNAL_H */
