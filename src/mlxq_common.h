/*
 * mlxq_common.h - status codes, the error message buffer and element types shared by every
 * mlxq module.
 *
 * Contract: a function that can fail returns an mlxq_status; on failure it has written a
 * one-line, human-readable message into the caller's mlxq_error (when non-NULL) and has
 * left its outputs in an unspecified state but freed everything it allocated. No mlxq
 * function aborts, exits or prints on bad input.
 */
#ifndef MLXQ_COMMON_H
#define MLXQ_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MLXQ_OK = 0,
    MLXQ_EVALUE,    /* an argument has an unsupported value (mode, bits, group size, ...) */
    MLXQ_EARG,      /* arguments missing, superfluous or inconsistent with each other */
    MLXQ_EDTYPE,    /* an array has an unsupported element type */
    MLXQ_ESHAPE,    /* shapes are inconsistent with each other */
    MLXQ_ERANK,     /* an array has an unsupported number of dimensions */
    MLXQ_EDIVISIBLE, /* a dimension is not a multiple of what the format needs */
    MLXQ_ENOMEM,    /* allocation failed */
    MLXQ_EOVERFLOW, /* a size computation would overflow */
    MLXQ_EIO,       /* the operating system refused a file operation */
    MLXQ_EFORMAT,   /* bytes that do not follow the expected file format */
    MLXQ_EINTERNAL  /* a broken invariant inside mlxq: a bug, please report it */
} mlxq_status;

#define MLXQ_ERROR_MAX 512

typedef struct {
    char msg[MLXQ_ERROR_MAX];
} mlxq_error;

/* Formats a message into err (if non-NULL) and returns code, so call sites read
 * `return mlxq_fail(err, MLXQ_EVALUE, "...", ...);`. */
mlxq_status mlxq_fail(mlxq_error *err, mlxq_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Element types: every dtype a safetensors file can carry. The numeric values are part of
 * the Python extension's ABI (mlxq/_dtypes.py mirrors them); append, never renumber. */
typedef enum {
    MLXQ_BOOL = 0,
    MLXQ_U8 = 1,
    MLXQ_I8 = 2,
    MLXQ_U16 = 3,
    MLXQ_I16 = 4,
    MLXQ_U32 = 5,
    MLXQ_I32 = 6,
    MLXQ_U64 = 7,
    MLXQ_I64 = 8,
    MLXQ_F16 = 9,
    MLXQ_BF16 = 10,
    MLXQ_F32 = 11,
    MLXQ_F64 = 12,
    MLXQ_F8_E4M3 = 13,
    MLXQ_F8_E5M2 = 14,
    MLXQ_DTYPE_COUNT
} mlxq_dtype;

/* Size in bytes of one element; 0 for a value outside the enum. */
size_t mlxq_dtype_size(mlxq_dtype dt);
/* Lower-case name ("bfloat16", "uint32", ...) as numpy/MLX spell it; "?" when unknown. */
const char *mlxq_dtype_name(mlxq_dtype dt);
/* 1 for the floating types arithmetic is defined on here: f16, bf16, f32, f64. */
int mlxq_dtype_is_float(mlxq_dtype dt);

/* A strided view of an n-dimensional array; strides are in bytes and may be negative or
 * zero. Shapes use int64 like numpy's npy_intp on 64-bit hosts. */
#define MLXQ_MAX_NDIM 32
typedef struct {
    void *data;
    mlxq_dtype dtype;
    int ndim;
    int64_t shape[MLXQ_MAX_NDIM];
    int64_t strides[MLXQ_MAX_NDIM];
} mlxq_tensor;

#endif /* MLXQ_COMMON_H */
