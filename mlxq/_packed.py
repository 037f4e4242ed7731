"""What the AutoAWQ and GPTQ converters share: dtype resolution, biases from zeros, regrouping.

Private; the public names live in mlxq.formats.awq, mlxq.formats.gptq and mlxq.formats.external.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import numpy as np

from ._dtypes import FLOAT_DTYPES, bfloat16, code_of
from .errors import ArgumentTypeError, UnsupportedDtypeError
from .quant import astype

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

# Precision rank of the scale dtypes: a higher rank holds every value of a lower one, except
# that float16 and bfloat16 hold neither each other (see resolve_output_dtype).
_RANK = {F16: 1, bfloat16: 2, F32: 3, F64: 4}

# What producers pack codes into (int32 on disk; uint32 is accepted too).
WORD_DTYPES = (np.dtype(np.int32), np.dtype(np.uint32))

# MLX affine group sizes, largest first: a producer's group is re-expressed with the largest
# one that divides it (and the input width), repeating its scale and bias.
MLX_GROUP_SIZES = (128, 64, 32)


def resolve_output_dtype(dtypes: Iterable[Any]) -> Optional[np.dtype]:
    """The one floating dtype every generated ``scales``/``biases`` tensor is cast to.

    The highest-precision scales dtype wins (float64 > float32 > bfloat16 > float16), except
    that float16 together with bfloat16 (and nothing wider) gives float32: neither half holds
    the other's values. None when there are no dtypes. (mlx-lm instead takes the last
    layer's dtype, which can narrow float16 scales to bfloat16: docs/awq.md.)

    >>> import numpy as np, mlxq
    >>> resolve_output_dtype([np.float16, mlxq.bfloat16])
    dtype('float32')
    >>> resolve_output_dtype([np.float16, np.float16]), resolve_output_dtype([])
    (dtype('float16'), None)
    """
    best: Optional[np.dtype] = None
    seen = set()
    for d in dtypes:
        dt = np.dtype(d)
        if dt not in _RANK:
            raise UnsupportedDtypeError(f"scales dtype {dt} is not floating")
        seen.add(dt)
        if best is None or _RANK[dt] > _RANK[best]:
            best = dt
    if best is not None and F16 in seen and bfloat16 in seen and _RANK[best] < _RANK[F32]:
        best = F32
    return best


def require_array(arr: object, layer: str, key: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise ArgumentTypeError(
            f"{key} must be a numpy array, got {type(arr).__name__} "
            "(convert it with numpy.asarray)",
            layer=layer,
            key=key,
        )
    return arr


def snapshot(weights: object) -> dict[str, Any]:
    """The map's items, read once into a dict (a lazy mapping may load on every access)."""
    if not isinstance(weights, Mapping):
        raise ArgumentTypeError(
            f"weights must be a mapping of name -> array, got {type(weights).__name__}"
        )
    items = dict(weights.items())
    for key in items:
        if not isinstance(key, str):
            raise ArgumentTypeError(f"weight names must be str, got {key!r}")
    return items


def word_code(arr: np.ndarray) -> int:
    """The C dtype code of an int32/uint32 array (callers have checked the dtype)."""
    return code_of(arr.dtype, "packed words")


def biases_from_zeros(zeros_t: np.ndarray, scales_t: np.ndarray) -> np.ndarray:
    """``-zero * scale`` as mlx-lm's ``_transform_awq_weights`` computes it: zeros converted
    to float32, negated, multiplied by the scales promoted to float32 (float64 for float64
    scales, as MLX promotes), then rounded to the scales' dtype with MLX's conversion.

    ``zeros_t`` and ``scales_t`` are ``[out, groups]``; zeros is any integer array.
    """
    compute = F64 if scales_t.dtype == F64 else F32
    prod = (-zeros_t.astype(compute)) * scales_t.astype(compute)
    return prod if prod.dtype == scales_t.dtype else astype(prod, scales_t.dtype)


def mlx_group_size(group: int, in_features: int) -> Optional[int]:
    """The largest MLX group size dividing both the producer's group and the input width."""
    for g in MLX_GROUP_SIZES:
        if group % g == 0 and in_features % g == 0:
            return g
    return None


def regroup(a_t: np.ndarray, group: int, mlx_group: int, in_features: int) -> np.ndarray:
    """Per-group values ``[out, producer groups]`` -> ``[out, in / mlx_group]``: MLX group j
    covers inputs that all lie in producer group ``j * mlx_group // group``."""
    if group == mlx_group:
        return a_t
    index = (np.arange(in_features // mlx_group) * mlx_group) // group
    return np.ascontiguousarray(np.take(a_t, index, axis=1))


def cast_generated(a: np.ndarray, out_dtype: Optional[np.dtype]) -> np.ndarray:
    if out_dtype is None or a.dtype == out_dtype:
        return a
    return astype(a, out_dtype)


def is_float(dt: np.dtype) -> bool:
    return np.dtype(dt) in FLOAT_DTYPES
