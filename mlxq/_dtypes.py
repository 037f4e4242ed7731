"""numpy dtypes <-> the C core's dtype codes (mirror of `mlxq_dtype` in src/mlxq_common.h).

numpy's bfloat16 and float8 dtypes come from ml_dtypes, whose import takes about 0.1 s
(1 s for ml_dtypes 0.7.0, which the requirements exclude for that reason); it happens on first use of any of them (``bfloat16``, ``float8_e4m3fn``,
``float8_e5m2``, ``FLOAT_DTYPES`` or a lookup below), not when this module is imported, so
the commands that never touch an array start fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UnsupportedDtypeError

_CODES: dict[np.dtype, int] = {}
_BY_CODE: dict[int, np.dtype] = {}
_NAMES: dict[str, np.dtype] = {}
_FLOATS: list[np.dtype] = []
_LAZY = ("bfloat16", "float8_e4m3fn", "float8_e5m2", "FLOAT_DTYPES")
# Declared for readers and type checkers; set by _load (module __getattr__ until then).
bfloat16: np.dtype
float8_e4m3fn: np.dtype
float8_e5m2: np.dtype
FLOAT_DTYPES: tuple[np.dtype, ...]


def _load() -> None:
    if _CODES:
        return
    import ml_dtypes

    bf16 = np.dtype(ml_dtypes.bfloat16)
    e4m3, e5m2 = np.dtype(ml_dtypes.float8_e4m3fn), np.dtype(ml_dtypes.float8_e5m2)
    # Codes are the C enum's values; append, never renumber.
    codes = {
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
        bf16: 10,
        np.dtype(np.float32): 11,
        np.dtype(np.float64): 12,
        e4m3: 13,
        e5m2: 14,
    }
    floats = (np.dtype(np.float16), bf16, np.dtype(np.float32), np.dtype(np.float64))
    globals().update(bfloat16=bf16, float8_e4m3fn=e4m3, float8_e5m2=e5m2, FLOAT_DTYPES=floats)
    _NAMES.update({str(dt): dt for dt in floats})
    _FLOATS.extend(floats)
    _BY_CODE.update({code: dt for dt, code in codes.items()})
    _CODES.update(codes)  # last: its being non-empty means loaded


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def code_of(dtype: np.dtype, what: str) -> int:
    """The C code of ``dtype``; raises UnsupportedDtypeError naming ``what`` otherwise."""
    _load()
    code = _CODES.get(np.dtype(dtype).newbyteorder("="))
    if code is None:
        raise UnsupportedDtypeError(f"{what} has dtype {np.dtype(dtype)}, which mlxq does not support")
    return code


def dtype_of(code: int) -> np.dtype:
    _load()
    return _BY_CODE[code]


def float_dtype(spec: object, what: str) -> np.dtype:
    """Resolves a dtype given as a numpy dtype, a type, or a name like ``"bfloat16"``.

    Accepts anything ``numpy.dtype()`` accepts plus MLX-style dtype objects whose ``str()``
    ends with the dtype name (``mlx.core.bfloat16``). Only float16, bfloat16, float32 and
    float64 are floating dtypes here.
    """
    _load()
    dt: np.dtype | None
    if isinstance(spec, str):
        dt = _NAMES.get(spec)
    else:
        try:
            dt = np.dtype(spec)  # type: ignore[call-overload]
        except TypeError:
            dt = _NAMES.get(str(spec).rsplit(".", 1)[-1])
    if dt is None or dt not in _FLOATS:
        raise UnsupportedDtypeError(
            f"{what}={spec!r} is not a floating dtype; use float16, bfloat16, float32 or float64"
        )
    return dt

