#include "mlxq_common.h"

#include <stdarg.h>
#include <stdio.h>

mlxq_status mlxq_fail(mlxq_error *err, mlxq_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static const struct {
    const char *name;
    size_t size;
} dtype_info[MLXQ_DTYPE_COUNT] = {
    [MLXQ_BOOL] = {"bool", 1},        [MLXQ_U8] = {"uint8", 1},
    [MLXQ_I8] = {"int8", 1},          [MLXQ_U16] = {"uint16", 2},
    [MLXQ_I16] = {"int16", 2},        [MLXQ_U32] = {"uint32", 4},
    [MLXQ_I32] = {"int32", 4},        [MLXQ_U64] = {"uint64", 8},
    [MLXQ_I64] = {"int64", 8},        [MLXQ_F16] = {"float16", 2},
    [MLXQ_BF16] = {"bfloat16", 2},    [MLXQ_F32] = {"float32", 4},
    [MLXQ_F64] = {"float64", 8},      [MLXQ_F8_E4M3] = {"float8_e4m3fn", 1},
    [MLXQ_F8_E5M2] = {"float8_e5m2", 1},
};

size_t mlxq_dtype_size(mlxq_dtype dt) {
    return ((unsigned)dt < MLXQ_DTYPE_COUNT) ? dtype_info[dt].size : 0;
}

const char *mlxq_dtype_name(mlxq_dtype dt) {
    return ((unsigned)dt < MLXQ_DTYPE_COUNT) ? dtype_info[dt].name : "?";
}

int mlxq_dtype_is_float(mlxq_dtype dt) {
    return dt == MLXQ_F16 || dt == MLXQ_BF16 || dt == MLXQ_F32 || dt == MLXQ_F64;
}
