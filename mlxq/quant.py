"""quantize / dequantize: MLX's ``mx.quantize`` and ``mx.dequantize`` on numpy arrays.

The results are bit-identical to MLX 0.32 on the device asked for: ``device="gpu"`` (the
default) reproduces MLX's GPU (Metal) kernels, what ``mlx_lm.convert`` writes on Apple
silicon; ``device="cpu"`` its CPU backend, what ``mlx[cpu]`` writes on Linux. The same packed
words, the same scale and bias bits, the same dtypes and shapes. See docs/api.md and
docs/formats.md.
"""

from __future__ import annotations

import enum
import numbers
from typing import Literal, Union

import numpy as np

from . import _core
from . import _dtypes
from ._device import Device, resolve as _resolve_device
from ._dtypes import code_of, float_dtype
from .errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    OutOfRangeError,
    ShapeMismatchError,
    UnknownEnumValueError,
    UnsupportedDtypeError,
)

__all__ = ["Device", "QuantMethod", "QuantMode", "astype", "check_params", "quantize",
           "dequantize", "default_params"]


class QuantMode(str, enum.Enum):
    """MLX's quantization modes. Members compare equal to their string values.

    >>> QuantMode("mxfp4") is QuantMode.MXFP4
    True
    >>> QuantMode.AFFINE == "affine"
    True
    """

    AFFINE = "affine"
    MXFP4 = "mxfp4"
    MXFP8 = "mxfp8"
    NVFP4 = "nvfp4"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, mode: Union[str, "QuantMode"]) -> "QuantMode":
        """``QuantMode(mode)``, raising UnknownEnumValueError that lists the valid modes."""
        try:
            return cls(mode)
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise UnknownEnumValueError(
                f"mode={mode!r} is not a quantization mode; expected one of {valid}"
            ) from None


class QuantMethod(str, enum.Enum):
    """How :func:`quantize` chooses each group's scale (and bias).

    ``MLX``: exactly as ``mlx.core.quantize`` (the group's min and max; fp modes: the scale
    rounded up from the group's max). ``MSE``: the candidate with the lowest
    importance-weighted squared error of the weights as MLX dequantizes them, MLX's own
    choice among the candidates (docs/methods.md).

    >>> QuantMethod("mse") is QuantMethod.MSE
    True
    """

    MLX = "mlx"
    MSE = "mse"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, method: Union[str, "QuantMethod"]) -> "QuantMethod":
        """``QuantMethod(method)``, raising UnknownEnumValueError listing the methods."""
        try:
            return cls(method)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise UnknownEnumValueError(
                f"method={method!r} is not a quantization method; expected one of {valid}"
            ) from None


# Index in the C enum `mlxq_mode`.
_MODE_CODES = {QuantMode.AFFINE: 0, QuantMode.MXFP4: 1, QuantMode.MXFP8: 2, QuantMode.NVFP4: 3}

_DEFAULTS = {
    QuantMode.AFFINE: (64, 4),
    QuantMode.MXFP4: (32, 4),
    QuantMode.MXFP8: (32, 8),
    QuantMode.NVFP4: (16, 4),
}

Impl = Literal["fast", "reference"]
_IMPLS = {"fast": 0, "reference": 1}


def default_params(mode: Union[str, QuantMode] = "affine") -> tuple[int, int]:
    """MLX's default ``(group_size, bits)`` for a mode.

    >>> default_params("affine"), default_params("nvfp4")
    ((64, 4), (16, 4))
    """
    return _DEFAULTS[QuantMode.parse(mode)]


def check_params(mode: Union[str, QuantMode], group_size: int, bits: int) -> None:
    """Raises OutOfRangeError unless ``mx.quantize`` accepts ``(group_size, bits)`` in
    ``mode``: affine takes groups of 32/64/128 and 2/3/4/5/6/8 bits; mxfp4 only (32, 4),
    mxfp8 (32, 8), nvfp4 (16, 4). The rule is the kernels' own (one place, in C).

    >>> check_params("affine", 64, 4)
    >>> check_params("affine", 7, 3)
    Traceback (most recent call last):
    ...
    mlxq.errors.OutOfRangeError: group_size=7 is not supported by mode 'affine'; supported group sizes are 32, 64 and 128
    """
    code = _MODE_CODES[QuantMode.parse(mode)]
    _core.check_params(code, _int_arg(group_size, "group_size", 0), _int_arg(bits, "bits", 0))


def _int_arg(value: object, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    v = int(value)
    if not -(2**31) <= v < 2**31:  # the C core takes an int; its own checks name the rest
        raise OutOfRangeError(f"{name}={v} is not supported: out of range")
    return v


def _impl_code(impl: object) -> int:
    code = _IMPLS.get(impl) if isinstance(impl, str) else None
    if code is None:
        raise UnknownEnumValueError(
            f"impl={impl!r} is not a kernel implementation; expected 'fast' or 'reference'"
        )
    return code


def _as_array(x: object, name: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy's own message is kept
            raise ArgumentTypeError(f"{name} cannot be converted to a numpy array: {exc}") from exc
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _global_scale(value: object, mode: QuantMode) -> float | None:
    """MLX takes a float32 array of size 1; numpy arrays must match that, and Python numbers
    are rounded to float32 the way ``mx.array(value)`` would."""
    if value is None:
        return None
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype != np.float32:
            raise UnsupportedDtypeError(
                f"global_scale must have dtype float32, got {arr.dtype}"
            )
        if arr.size != 1:
            raise ShapeMismatchError(f"global_scale must have size 1, got shape {arr.shape}")
        return float(arr.reshape(()))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"global_scale must be a float or a float32 array, got {type(value).__name__}"
        )
    with np.errstate(over="ignore"):  # 1e39 -> inf, silently, as mx.array(1e39) does
        return float(np.float32(value))


def _importance(value: object, w: np.ndarray) -> np.ndarray:
    """The importance argument as a float32 array of shape [C] or w.shape[:-2] + [C],
    checked finite and non-negative."""
    try:
        imp = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy's own message is kept
        raise ArgumentTypeError(f"importance cannot be converted to an array: {exc}") from exc
    if imp.dtype.kind not in "fiu" or imp.dtype == np.bool_:
        raise UnsupportedDtypeError(
            f"importance must hold real numbers (one weight per input column), got dtype "
            f"{imp.dtype}"
        )
    cols = w.shape[-1] if w.ndim else 0
    per_batch = tuple(w.shape[:-2]) + (cols,)
    if imp.shape != (cols,) and (w.ndim < 3 or imp.shape != per_batch):
        want = f"({cols},)" + (f" or {per_batch}" if w.ndim >= 3 else "")
        raise ShapeMismatchError(
            f"importance has shape {imp.shape}; expected {want}: one weight per input column "
            f"of w {tuple(w.shape)}" + (", or one row per expert" if w.ndim >= 3 else "")
        )
    with np.errstate(over="ignore", invalid="ignore"):
        imp32 = imp.astype(np.float32)
    bad = ~np.isfinite(imp32) | (imp32 < 0)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise OutOfRangeError(
            f"importance must be finite and >= 0 (in float32 range); importance{list(idx)} "
            f"is {imp[idx]!r}"
        )
    return imp32


def quantize(
    w: np.ndarray,
    group_size: int | None = None,
    bits: int | None = None,
    mode: Union[str, QuantMode] = "affine",
    global_scale: float | np.ndarray | None = None,
    *,
    impl: Impl = "fast",
    method: Union[str, QuantMethod] = "mlx",
    importance: np.ndarray | None = None,
    device: Union[str, Device, None] = None,
) -> tuple[np.ndarray, ...]:
    """Quantizes ``w`` along its last axis exactly as ``mlx.core.quantize`` does on
    ``device``.

    Args:
        w: a float16, bfloat16 (``ml_dtypes.bfloat16``), float32 or (fp modes only) float64
            array of rank >= 2; leading axes are batch axes (e.g. MoE ``[experts, out, in]``).
            Any strides are accepted; ``w`` is never modified.
        group_size, bits: default to the mode's MLX defaults: affine (64, 4), mxfp4 (32, 4),
            mxfp8 (32, 8), nvfp4 (16, 4). Affine allows group sizes 32/64/128 and bits
            2/3/4/5/6/8; the fp modes allow only their defaults.
        mode: ``"affine"``, ``"mxfp4"``, ``"mxfp8"`` or ``"nvfp4"`` (or a :class:`QuantMode`).
        global_scale: nvfp4 only: a float32 scalar (a Python float is rounded to float32).
        impl: ``"fast"`` (vectorised, threaded) or ``"reference"`` (the portable scalar
            kernel the fast one is tested against). Both give identical results.
        method: ``"mlx"`` (default): bit-identical to ``mx.quantize``. ``"mse"``: each group's
            scale (and affine bias) chosen to minimise the importance-weighted squared error
            of the weights as MLX dequantizes them, never worse than ``"mlx"`` on any group;
            the output is an ordinary MLX triple (docs/methods.md).
        importance: ``method="mse"`` only: one non-negative weight per input column, shape
            ``[C]`` (e.g. the mean squared activation of each input feature, as llama.cpp's
            importance matrices hold), or ``w.shape[:-2] + [C]`` for stacked weights (one
            row per expert of ``[E, out, C]``). None weighs every element equally.
        device: whose arithmetic: ``"gpu"`` (MLX's Metal kernels, what ``mlx_lm.convert``
            writes on Apple silicon) or ``"cpu"`` (MLX's CPU backend, ``mlx[cpu]`` on
            Linux). None: :func:`mlxq.default_device` (``MLXQ_DEVICE``, else ``"gpu"``).
            MLX's GPU kernels refuse float64 input.

    Returns:
        ``(wq, scales, biases)`` for affine, ``(wq, scales)`` for the fp modes, where ``wq`` is
        uint32 ``[..., C * bits / 32]`` and scales/biases are ``[..., C / group_size]`` with
        ``w``'s dtype (affine) or uint8 (fp modes).

    Raises:
        UnknownEnumValueError, OutOfRangeError, UnsupportedDtypeError, RankMismatchError,
        DivisibilityError, InvalidArgumentError: naming the argument at fault.

    >>> import numpy as np, mlxq
    >>> w = np.linspace(-1, 1, 128, dtype=np.float32).reshape(2, 64)
    >>> wq, scales, biases = mlxq.quantize(w, group_size=64, bits=4)
    >>> wq.shape, wq.dtype, scales.shape, scales.dtype
    ((2, 8), dtype('uint32'), (2, 1), dtype('float32'))
    >>> r = np.random.default_rng(0).standard_normal((8, 256)).astype(np.float32)
    >>> err = lambda t: float(((mlxq.dequantize(*t, 64, 3) - r) ** 2).sum())
    >>> err(mlxq.quantize(r, 64, 3, method="mse")) < err(mlxq.quantize(r, 64, 3))
    True
    """
    qmode = QuantMode.parse(mode)
    qmethod = QuantMethod.parse(method)
    dgs, dbits = _DEFAULTS[qmode]
    gs = _int_arg(group_size, "group_size", dgs)
    nbits = _int_arg(bits, "bits", dbits)
    arr = _as_array(w, "w")
    code = code_of(arr.dtype, "w")
    gscale = _global_scale(global_scale, qmode)
    impl_code = _impl_code(impl)
    dev = _resolve_device(device).code
    if qmethod is QuantMethod.MLX:
        if importance is not None:
            raise InvalidArgumentError(
                "importance is only used by method='mse'; method='mlx' ignores the error"
            )
        return _core.quantize(arr, code, _MODE_CODES[qmode], gs, nbits, gscale, impl_code, dev)
    imp = None if importance is None else _importance(importance, arr)
    return _core.quantize_search(
        arr, code, _MODE_CODES[qmode], gs, nbits, gscale, imp, impl_code, dev
    )


def dequantize(
    w: np.ndarray,
    scales: np.ndarray,
    biases: np.ndarray | None = None,
    group_size: int | None = None,
    bits: int | None = None,
    mode: Union[str, QuantMode] = "affine",
    global_scale: float | np.ndarray | None = None,
    dtype: object = None,
    *,
    impl: Impl = "fast",
    device: Union[str, Device, None] = None,
) -> np.ndarray:
    """Reconstructs weights from quantized data exactly as ``mlx.core.dequantize`` does on
    ``device``.

    Args:
        w: the packed uint32 array from :func:`quantize` (any strides).
        scales: affine: any float dtype; fp modes: uint8.
        biases: required for affine, must be None for the fp modes.
        group_size, bits, mode, global_scale: as for :func:`quantize`.
        dtype: output dtype (float16, bfloat16, float32 or float64, or a name). Defaults to
            MLX's: the promoted type of scales and biases for affine (float16 with bfloat16
            gives float32), bfloat16 for the fp modes. On the CPU device, as in MLX 0.32,
            nvfp4 with a global scale always returns float32 (float64 if dtype is float64);
            MLX's GPU kernel returns the dtype asked for.
        impl: ``"fast"`` or ``"reference"``, as for :func:`quantize`.
        device: ``"gpu"`` or ``"cpu"``, as for :func:`quantize`. The two differ in the
            affine sum (the GPU fuses ``scale * q + bias`` into one rounding) and in how fp
            scales are applied; the GPU takes scales and biases of one dtype, no float64.

    Returns:
        An array shaped like ``w`` with last dimension ``scales.shape[-1] * group_size``.

    >>> import numpy as np, mlxq
    >>> w = np.linspace(-1, 1, 128, dtype=np.float32).reshape(2, 64)
    >>> w_hat = mlxq.dequantize(*mlxq.quantize(w))
    >>> bool(np.abs(w_hat - w).max() < 0.07)
    True
    """
    qmode = QuantMode.parse(mode)
    dgs, dbits = _DEFAULTS[qmode]
    gs = _int_arg(group_size, "group_size", dgs)
    nbits = _int_arg(bits, "bits", dbits)
    wq = _as_array(w, "w")
    if wq.dtype != np.uint32:
        # the C glue only sees the item size, so int32 or float32 would pass unnoticed
        raise UnsupportedDtypeError(
            f"w (the packed weights) must have dtype uint32, got {wq.dtype}"
        )
    sc = _as_array(scales, "scales")
    bi = None if biases is None else _as_array(biases, "biases")
    s_code = code_of(sc.dtype, "scales")
    b_code = -1 if bi is None else code_of(bi.dtype, "biases")
    gscale = _global_scale(global_scale, qmode)
    dev = _resolve_device(device)

    requested: np.dtype | None
    if dtype is not None:
        requested = float_dtype(dtype, "dtype")
    elif qmode is QuantMode.AFFINE:
        requested = _promote_float(sc.dtype, bi.dtype) if bi is not None else None
    else:
        requested = _dtypes.bfloat16
    if requested is None:
        # Missing biases or non-float scales/biases: the C core's checks name the culprit
        # before the output dtype is ever used.
        requested = np.dtype(np.float32)
    out = requested
    if qmode is QuantMode.NVFP4 and gscale is not None and dev is Device.CPU:
        # MLX's float32 global scale promotes the product: float32 (float64) whatever was
        # asked; the asked dtype still decides how decoded scales are rounded (NaN patterns).
        out = np.dtype(np.float64) if requested == np.float64 else np.dtype(np.float32)
    return _core.dequantize(
        wq, sc, s_code, bi, b_code, _MODE_CODES[qmode], gs, nbits, gscale,
        code_of(requested, "dtype"), out, code_of(out, "dtype"), _impl_code(impl), dev.code,
    )


def astype(a: np.ndarray, dtype: object, *, impl: Impl = "fast") -> np.ndarray:
    """Casts between float16, bfloat16, float32 and float64 exactly as MLX's ``astype``.

    numpy/ml_dtypes conversions round the same way for ordinary values but produce other NaN
    bit patterns (MLX writes bfloat16 NaN as 0x7FC0 and float16 NaN as sign|0x7D00) and
    narrow float64 in one rounding where MLX rounds to float32 first. Always returns a new
    C-contiguous array.

    >>> import numpy as np, mlxq
    >>> nan = mlxq.astype(np.float32([np.nan, -np.nan]), "bfloat16")
    >>> [hex(x) for x in nan.view(np.uint16)]
    ['0x7fc0', '0x7fc0']
    """
    arr = _as_array(a, "a")
    out = float_dtype(dtype, "dtype")
    return _core.cast(arr, code_of(arr.dtype, "a"), out, code_of(out, "dtype"), _IMPLS[impl])


def _promote_float(a: np.dtype, b: np.dtype) -> np.dtype | None:
    """MLX's promotion of two float dtypes (float16 with bfloat16 gives float32); None when
    either is not a float dtype."""
    if a not in _dtypes.FLOAT_DTYPES or b not in _dtypes.FLOAT_DTYPES:
        return None
    if a == b:
        return a
    if np.dtype(np.float64) in (a, b):
        return np.dtype(np.float64)
    return np.dtype(np.float32)
