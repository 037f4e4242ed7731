"""The ``mx`` that family ports are written against: MLX's names for the lazy operations of
:mod:`mlxq.conversion.graph` and for the dtypes, so a port of mlx-lm's ``sanitize`` reads
line for line like the original (``mx.stack(to_join)``, ``v.view(mx.uint32)``)."""

from __future__ import annotations

import numpy as np

from .. import _dtypes
from ..conversion.graph import (  # noqa: F401 - re-exported under MLX's names
    Tensor as array,
    concatenate,
    contiguous,
    dequantize,
    fp8_block_dequant,
    norm as _norm,
    pad,
    quantize,
    split,
    stack,
)

bool_ = np.dtype(np.bool_)
uint8 = np.dtype(np.uint8)
uint16 = np.dtype(np.uint16)
uint32 = np.dtype(np.uint32)
int8 = np.dtype(np.int8)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
bfloat16: np.dtype  # from ml_dtypes, loaded on first use (see __getattr__)


def __getattr__(name: str) -> np.dtype:
    # ml_dtypes takes most of a second to import: only a conversion needs bfloat16, not
    # reading a checkpoint's layout (mlxq inspect)
    if name == "bfloat16":
        return _dtypes.bfloat16
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def flatten(a: array, start_axis: int = 0, end_axis: int = -1) -> array:
    return a.flatten(start_axis, end_axis)


def moveaxis(a: array, source: int, destination: int) -> array:
    return a.moveaxis(source, destination)


def swapaxes(a: array, axis1: int, axis2: int) -> array:
    return a.swapaxes(axis1, axis2)


def transpose(a: array, axes=None) -> array:
    return a.transpose(*(axes or ()))


class linalg:
    """``mx.linalg``: the ``norm`` of the families that normalise an output head."""

    @staticmethod
    def norm(a: array, axis: int = -1, keepdims: bool = False) -> array:
        return _norm(a, axis=axis, keepdims=keepdims)
