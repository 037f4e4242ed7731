"""numpy dtypes <-> the C core's dtype codes (mirror of `mlxq_dtype` in src/mlxq_common.h)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .errors import UnsupportedDtypeError

bfloat16 = np.dtype(ml_dtypes.bfloat16)
float8_e4m3fn = np.dtype(ml_dtypes.float8_e4m3fn)
float8_e5m2 = np.dtype(ml_dtypes.float8_e5m2)

# Codes are the C enum's values; append, never renumber.
_CODES: dict[np.dtype, int] = {
    np.dtype(np.bool_): 0,
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.uint16): 3,
    np.dtype(np.int16): 4,
    np.dtype(np.uint32): 5,
    np.dtype(np.int32): 6,
    np.dtype(np.uint64): 7,
    np.dtype(np.int64): 8,
    np.dtype(np.float16): 9,
    bfloat16: 10,
    np.dtype(np.float32): 11,
    np.dtype(np.float64): 12,
    float8_e4m3fn: 13,
    float8_e5m2: 14,
}
_BY_CODE = {code: dt for dt, code in _CODES.items()}

FLOAT_DTYPES = (np.dtype(np.float16), bfloat16, np.dtype(np.float32), np.dtype(np.float64))

_NAMES = {
    "float16": np.dtype(np.float16),
    "bfloat16": bfloat16,
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


def code_of(dtype: np.dtype, what: str) -> int:
    """The C code of ``dtype``; raises UnsupportedDtypeError naming ``what`` otherwise."""
    code = _CODES.get(np.dtype(dtype).newbyteorder("="))
    if code is None:
        raise UnsupportedDtypeError(f"{what} has dtype {np.dtype(dtype)}, which mlxq does not support")
    return code


def dtype_of(code: int) -> np.dtype:
    return _BY_CODE[code]


def float_dtype(spec: object, what: str) -> np.dtype:
    """Resolves a dtype given as a numpy dtype, a type, or a name like ``"bfloat16"``.

    Accepts anything ``numpy.dtype()`` accepts plus MLX-style dtype objects whose ``str()``
    ends with the dtype name (``mlx.core.bfloat16``). Only float16, bfloat16, float32 and
    float64 are floating dtypes here.
    """
    dt: np.dtype | None
    if isinstance(spec, str):
        dt = _NAMES.get(spec)
    else:
        try:
            dt = np.dtype(spec)  # type: ignore[call-overload]
        except TypeError:
            dt = _NAMES.get(str(spec).rsplit(".", 1)[-1])
    if dt is None or dt not in FLOAT_DTYPES:
        raise UnsupportedDtypeError(
            f"{what}={spec!r} is not a floating dtype; use float16, bfloat16, float32 or float64"
        )
    return dt
