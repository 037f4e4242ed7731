"""Float8 (E4M3) checkpoints: block-scaled and per-tensor / per-channel dequantization
(docs/source-formats.md).

Two layouts are in use:

- **block scales** (``quant_method: "fp8"`` with ``weight_block_size``, as DeepSeek-V3/R1,
  Kimi K2, MiniMax-M2, GLM-4.5-FP8 and the Qwen3 ``-FP8`` releases write them): ``P.weight``
  E4M3 ``[out, in]`` and ``P.weight_scale_inv`` float32 ``[ceil(out / B0), ceil(in / B1)]``,
  one scale per ``B0 x B1`` block (the last block in each direction may be partial);
- **broadcast scales** (compressed-tensors ``float-quantized``, as llm-compressor writes
  them): ``P.weight`` E4M3 and ``P.weight_scale`` float32, a scalar (per tensor) or
  ``[out, 1]`` (per output channel).

Both compute what mlx-lm's ``dequant`` (deepseek_v3 ``sanitize``) computes:
``astype(from_fp8(w, bfloat16) * scale, dtype)``, the product in float32 for a float32
scale (bfloat16 for a bfloat16 one), bit for bit, NaN codes and non-finite scales included.
Rows can be produced in slices (``rows=(r0, r1)``) so a converter can stream a matrix of any
size through bounded memory; every slice equals the same rows of the whole result.

>>> import numpy as np, mlxq
>>> w = np.full((2, 3), 0x38, np.uint8)            # E4M3 0x38 = 1.0
>>> s = np.array([[0.5]], np.float32)              # one 128x128 block
>>> mlxq.formats.fp8.dequantize_fp8_block(w, s).astype(np.float32)
array([[0.5, 0.5, 0.5],
       [0.5, 0.5, 0.5]], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .. import _core
from .._dtypes import bfloat16, code_of, float_dtype
from ..errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    OutOfRangeError,
    ParseError,
    RankMismatchError,
    ShapeMismatchError,
    UnknownEnumValueError,
    UnsupportedDtypeError,
)
from ..quant import Impl, _as_array, _impl_code

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "Fp8Config",
    "block_size_of",
    "dequantize_fp8_block",
    "dequantize_fp8_scaled",
]

#: The block DeepSeek-V3's release uses, and the one mlx-lm's ``dequant`` hard-codes.
DEFAULT_BLOCK_SIZE = (128, 128)

BlockSize = Union[int, Sequence[int]]
Rows = Optional[Sequence[int]]


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    v = int(value)
    if not -(2**63) <= v < 2**63:
        raise OutOfRangeError(f"{what}={v} is out of range")
    return v


def block_size_of(block_size: BlockSize) -> tuple[int, int]:
    """``(rows, cols)`` of a block given as an int (square) or a pair, such as a config's
    ``weight_block_size``; both must be positive.

    >>> block_size_of([128, 128]), block_size_of(64)
    ((128, 128), (64, 64))
    """
    if isinstance(block_size, numbers.Integral) and not isinstance(block_size, bool):
        pair = (block_size, block_size)
    elif isinstance(block_size, (list, tuple)) and len(block_size) == 2:
        pair = tuple(block_size)
    else:
        raise ArgumentTypeError(
            f"block_size must be an int or a pair of ints (weight_block_size), got {block_size!r}"
        )
    b0, b1 = (_int(b, "block_size") for b in pair)
    if b0 < 1 or b1 < 1:
        raise OutOfRangeError(f"block_size=({b0}, {b1}) must be positive")
    return b0, b1


@dataclasses.dataclass(frozen=True)
class Fp8Config:
    """The ``quantization_config`` of a ``quant_method: "fp8"`` checkpoint (transformers'
    fine-grained FP8, as DeepSeek-V3 and the Qwen3 ``-FP8`` releases write it).

    Args:
        block_size: ``weight_block_size`` as ``(B0, B1)``: each weight has a
            ``weight_scale_inv`` of one float32 per block; None: one per tensor.
        fmt: the float8 encoding; only ``"e4m3"`` exists in these checkpoints.
        activation_scheme: ``"dynamic"`` or ``"static"`` (static adds ``input_scale``
            tensors, which a weight converter drops).
        scale_fmt: ``"ue8m0"`` when the scales are powers of two (DeepSeek-V3.1); they are
            still stored as float32 and dequantize the same way.
        modules_to_not_convert: module names stored unquantized.

    >>> Fp8Config.from_dict({"quant_method": "fp8", "fmt": "e4m3",
    ...                      "activation_scheme": "dynamic", "weight_block_size": [128, 128]})
    Fp8Config(block_size=(128, 128), fmt='e4m3', activation_scheme='dynamic', scale_fmt=None, modules_to_not_convert=())
    """

    block_size: Optional[tuple[int, int]] = DEFAULT_BLOCK_SIZE
    fmt: str = "e4m3"
    activation_scheme: str = "dynamic"
    scale_fmt: Optional[str] = None
    modules_to_not_convert: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "Fp8Config":
        """From the ``quantization_config`` dict; raises ParseError when it is malformed or
        not ``quant_method: "fp8"``, UnknownEnumValueError for a ``fmt`` other than e4m3."""
        if not isinstance(config, Mapping):
            raise ParseError(f"quantization_config must be an object, got {type(config).__name__}")
        if config.get("quant_method") != "fp8":
            raise ParseError(f"quant_method is {config.get('quant_method')!r}, not 'fp8'")
        fmt = config.get("fmt", "e4m3")
        if fmt != "e4m3":
            raise UnknownEnumValueError(
                f"fmt={fmt!r} is not supported: FP8 checkpoints store float8_e4m3fn weights "
                "(fmt 'e4m3'), which is what MLX's from_fp8 decodes")
        raw = config.get("weight_block_size")
        try:
            block = None if raw is None else block_size_of(raw)
        except (ArgumentTypeError, OutOfRangeError) as exc:
            raise ParseError(f"weight_block_size={raw!r} is not a pair of positive ints") from exc
        scheme = config.get("activation_scheme", "dynamic")
        scale_fmt = config.get("scale_fmt")
        skip = config.get("modules_to_not_convert") or ()
        if not isinstance(scheme, str) or not (scale_fmt is None or isinstance(scale_fmt, str)):
            raise ParseError("activation_scheme and scale_fmt must be strings")
        if not isinstance(skip, (list, tuple)) or not all(isinstance(m, str) for m in skip):
            raise ParseError("modules_to_not_convert must be a list of strings")
        return cls(block, fmt, scheme, scale_fmt, tuple(skip))


def _rows(rows: Rows, n: int) -> tuple[int, int]:
    if rows is None:
        return 0, n
    if not isinstance(rows, (list, tuple)) or len(rows) != 2:
        raise ArgumentTypeError(f"rows must be a pair (start, stop), got {rows!r}")
    r0, r1 = _int(rows[0], "rows[0]"), _int(rows[1], "rows[1]")
    if not 0 <= r0 <= r1 <= n:
        raise OutOfRangeError(f"rows=({r0}, {r1}) must satisfy 0 <= start <= stop <= {n}")
    return r0, r1


def _codes(weight: object) -> tuple[np.ndarray, int]:
    w = _as_array(weight, "weight")
    return w, code_of(w.dtype, "weight")


def _check_out(out: Optional[np.ndarray], dtype: np.dtype, shape: tuple[int, ...],
               *inputs: np.ndarray) -> None:
    """A caller's output buffer: exactly the result's dtype and shape, C-contiguous,
    writable, sharing no memory with the inputs (the C core checks the layout again)."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise ArgumentTypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise UnsupportedDtypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if out.shape != shape:
        raise ShapeMismatchError(f"out has shape {out.shape}, expected {shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise InvalidArgumentError("out must be C-contiguous and writable")
    if any(np.may_share_memory(out, a) for a in inputs):
        raise InvalidArgumentError("out must not overlap weight or the scales")


def dequantize_fp8_block(
    weight: np.ndarray,
    scale_inv: np.ndarray,
    block_size: BlockSize = DEFAULT_BLOCK_SIZE,
    dtype: object = bfloat16,
    *,
    rows: Rows = None,
    out: Optional[np.ndarray] = None,
    impl: Impl = "fast",
) -> np.ndarray:
    """Dequantizes a block-scaled E4M3 matrix exactly as mlx-lm's ``dequant`` does.

    Args:
        weight: E4M3 codes ``[out, in]``, dtype ``float8_e4m3fn`` or ``uint8`` (the raw bytes,
            as MLX loads them); any strides, e.g. a memory-mapped tensor. Never modified.
        scale_inv: ``[ceil(out / B0), ceil(in / B1)]`` float32, bfloat16 or float16 (the
            checkpoint's ``weight_scale_inv``, which despite its name multiplies).
        block_size: ``(B0, B1)``, or one int for square blocks (``weight_block_size``).
        dtype: the output dtype: bfloat16 (mlx-lm's), float16 or float32.
        rows: ``(start, stop)``: produce only those rows of the result, reading only those
            rows of ``weight`` (and their block rows of ``scale_inv``); any bounds.
        out: an array to write the result into (its dtype ``dtype``, its shape the
            result's), e.g. one buffer reused for every row slice of a stream.
        impl: ``"fast"`` (vectorised, threaded) or ``"reference"`` (the scalar
            specification); identical results.

    Returns:
        ``[stop - start, in]`` (``[out, in]`` without ``rows``) of ``dtype``: each element is
        ``astype(from_fp8(code, bfloat16) * scale, dtype)``, computed in float32 (bfloat16
        for a bfloat16 scale).

    Raises:
        UnsupportedDtypeError, RankMismatchError, ShapeMismatchError (``scale_inv`` not one
        scale per block), OutOfRangeError (block size, rows), ArgumentTypeError.

    >>> import numpy as np, mlxq
    >>> w = np.zeros((200, 130), np.uint8); w[130, 129] = 0x40     # E4M3 0x40 = 2.0
    >>> s = np.array([[1, 2], [3, 4]], np.float32)
    >>> out = mlxq.formats.fp8.dequantize_fp8_block(w, s, rows=(128, 200))
    >>> out.shape, float(out[2, 129])
    ((72, 130), 8.0)
    """
    w, w_code = _codes(weight)
    s = _as_array(scale_inv, "scale_inv")
    s_code = code_of(s.dtype, "scale_inv")
    b0, b1 = block_size_of(block_size)
    odt = float_dtype(dtype, "dtype")
    if w.ndim != 2:
        raise RankMismatchError(f"weight must be 2-D [out, in], got shape {w.shape}")
    r0, r1 = _rows(rows, w.shape[0])
    _check_out(out, odt, (r1 - r0, w.shape[1]), w, s)
    return _core.fp8_block_dequant(
        w[r0:r1], w_code, r0, w.shape[0], s, s_code, b0, b1, odt, code_of(odt, "dtype"), out,
        _impl_code(impl),
    )


def _broadcast_scale(scale: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The scale as a broadcast view of the weight's shape, for the layouts whose meaning
    is unambiguous: one value (per tensor), or one per output channel with the input axis
    kept as 1 (``[out, 1]``, ``[E, out, 1]``, ``[E, 1, 1]``)."""
    if scale.size == 1 and scale.ndim <= len(shape):
        return np.broadcast_to(scale.reshape((1,) * len(shape)), shape)
    if scale.ndim == 1:
        raise ShapeMismatchError(
            f"scale of shape {scale.shape} is ambiguous for a weight of shape {shape}: a 1-D "
            "scale broadcasts along the input axis, while per-channel scales are written "
            "[out, 1]; reshape it to say which"
        )
    fits = scale.ndim <= len(shape) and scale.shape[-1] == 1 and all(
        d in (1, w) for d, w in zip(scale.shape[::-1], shape[::-1])
    )
    if not fits:
        raise ShapeMismatchError(
            f"scale has shape {scale.shape}, which is neither a per-tensor scale (one value) "
            f"nor per-channel ([..., out, 1]) for a weight of shape {shape}"
        )
    return np.broadcast_to(scale, shape)


def dequantize_fp8_scaled(
    weight: np.ndarray,
    scale: np.ndarray,
    dtype: object = bfloat16,
    *,
    rows: Rows = None,
    out: Optional[np.ndarray] = None,
    impl: Impl = "fast",
) -> np.ndarray:
    """Dequantizes E4M3 weights with a per-tensor or per-channel scale (compressed-tensors
    ``float-quantized``, llm-compressor's ``weight_scale``).

    The arithmetic is :func:`dequantize_fp8_block`'s: ``astype(from_fp8(code, bfloat16) *
    scale, dtype)``, which is also what mlx-lm's mistral4 ``sanitize`` computes for its
    broadcast scales and, because every E4M3 value is exact in bfloat16 and their products
    with a bfloat16 or float32 scale are rounded once to float32, compressed-tensors'
    ``weight.to(scale.dtype) * scale`` followed by the cast to ``dtype``.

    Args:
        weight: E4M3 codes ``[..., out, in]`` (``float8_e4m3fn`` or ``uint8``), rank >= 1.
        scale: float32, bfloat16 or float16: one value (shape ``()``, ``(1,)``, ``(1, 1)``),
            or one per output channel ``[out, 1]`` (``[E, out, 1]`` / ``[E, 1, 1]`` for
            stacked experts). A 1-D scale of more than one value is refused as ambiguous.
        dtype: bfloat16, float16 or float32.
        rows: ``(start, stop)`` along the first axis of ``weight``: only those are produced.
        out: an array to write the result into, as for :func:`dequantize_fp8_block`.
        impl: ``"fast"`` or ``"reference"``.

    >>> import numpy as np, mlxq
    >>> w = np.array([[0x38, 0xB8], [0x40, 0x7F]], np.uint8)       # 1, -1, 2, NaN
    >>> s = np.array([[0.25], [2.0]], np.float32)                  # per output channel
    >>> mlxq.formats.fp8.dequantize_fp8_scaled(w, s, np.float32)
    array([[ 0.25, -0.25],
           [ 4.  ,   nan]], dtype=float32)
    """
    w, w_code = _codes(weight)
    s = _as_array(scale, "scale")
    s_code = code_of(s.dtype, "scale")
    odt = float_dtype(dtype, "dtype")
    if w.ndim < 1:
        raise RankMismatchError("weight must have at least one dimension, got a scalar")
    sb = _broadcast_scale(s, w.shape)
    r0, r1 = _rows(rows, w.shape[0])
    _check_out(out, odt, (r1 - r0,) + w.shape[1:], w, s)
    return _core.fp8_scaled_dequant(
        w[r0:r1], w_code, sb[r0:r1], s_code, odt, code_of(odt, "dtype"), out, _impl_code(impl)
    )
