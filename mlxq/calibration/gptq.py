"""GPTQ into MLX's affine format (the C core's ``mlxq_gptq``, src/mlxq_gptq.h)."""

from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from .._dtypes import code_of
from ..errors import ArgumentTypeError, OutOfRangeError, UnsupportedDtypeError

__all__ = ["GptqFactor", "gptq_factor", "gptq_quantize"]


class GptqFactor:
    """The Hessian's part of GPTQ (dampened, permuted, the upper Cholesky factor of its
    inverse), made once by :func:`gptq_factor` and shared by every weight fed the same
    input (q/k/v projections) and every row block of one weight."""

    def __init__(self, handle: object, cols: int, damp: float, act_order: bool):
        self._handle, self.cols, self.damp, self.act_order = handle, cols, damp, act_order


def gptq_factor(hessian: np.ndarray, *, damp: float = 0.01, act_order: bool = False
                ) -> GptqFactor:
    """Factors ``hessian`` for :func:`gptq_quantize` (``factor=``); raises as it does."""
    if isinstance(damp, bool) or not isinstance(damp, numbers.Real):
        raise ArgumentTypeError(f"damp must be a number, got {type(damp).__name__} {damp!r}")
    if not 0.0 < float(damp) <= 1.0:
        raise OutOfRangeError(f"damp={damp!r} must be in (0, 1]")
    h = np.asarray(hessian)
    if h.dtype not in (np.float32, np.float64):
        raise UnsupportedDtypeError(f"hessian must be float32 or float64, got {h.dtype}")
    if not h.dtype.isnative:
        h = h.astype(h.dtype.newbyteorder("="))
    handle = _core.gptq_factor(h, code_of(h.dtype, "hessian"), float(damp), bool(act_order))
    return GptqFactor(handle, int(h.shape[0]), float(damp), bool(act_order))


def gptq_quantize(w: np.ndarray, hessian: np.ndarray | None, group_size: int = 64,
                  bits: int = 4, *, damp: float = 0.01, act_order: bool = False,
                  factor: GptqFactor | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantizes the 2-D weight ``w`` [rows, C] with GPTQ given its input Hessian
    ``hessian`` = X^T X [C, C] (float32 or float64; X the layer's inputs, one row per token).

    Returns MLX's affine triple ``(wq, scales, biases)``, shaped and typed as
    :func:`mlxq.quantize` returns it (scales and biases in ``w``'s dtype; groups of
    ``group_size`` consecutive columns), so ``mx.dequantize`` and ``mlx_lm.load`` read it
    unchanged. ``damp``: the dampening added to the diagonal, relative to its mean (raised
    x10 up to 1 while the Hessian is not positive definite). ``act_order``: columns visited
    in decreasing Hessian diagonal, groups still MLX's (their scale and bias fixed from the
    original weights). ``factor``: :func:`gptq_factor` of the Hessian, made once and
    reused (then ``hessian`` may be None; ``damp`` and ``act_order`` are the factor's).

    Raises:
        RankMismatchError, UnsupportedDtypeError, ShapeMismatchError, OutOfRangeError,
        InvalidArgumentError: naming the argument at fault (a non-symmetric, non-finite or
        not positive definite Hessian included).

    >>> import numpy as np, mlxq
    >>> rng = np.random.default_rng(1)
    >>> x = rng.standard_normal((512, 128)) * rng.exponential(1.0, 128)
    >>> h = x.T @ x
    >>> w = rng.standard_normal((16, 128)).astype(np.float32)
    >>> out_err = lambda d: float(np.einsum("ij,jk,ik->", w - d, h, w - d))
    >>> gptq = mlxq.dequantize(*gptq_quantize(w, h, 64, 3), 64, 3)
    >>> rtn = mlxq.dequantize(*mlxq.quantize(w, 64, 3), 64, 3)
    >>> out_err(gptq) < out_err(rtn)
    True
    """
    for name, v in (("group_size", group_size), ("bits", bits)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ArgumentTypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if isinstance(damp, bool) or not isinstance(damp, numbers.Real):
        raise ArgumentTypeError(f"damp must be a number, got {type(damp).__name__} {damp!r}")
    if not 0.0 < float(damp) <= 1.0:
        raise OutOfRangeError(f"damp={damp!r} must be in (0, 1]")
    arr = np.asarray(w)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if factor is not None:
        if not isinstance(factor, GptqFactor):
            raise ArgumentTypeError(f"factor must come from gptq_factor(), got "
                                    f"{type(factor).__name__}")
        return _core.gptq_apply(arr, code_of(arr.dtype, "w"), factor._handle,
                                int(group_size), int(bits))
    h = np.asarray(hessian)
    if h.dtype not in (np.float32, np.float64):
        raise UnsupportedDtypeError(f"hessian must be float32 or float64, got {h.dtype}")
    if not h.dtype.isnative:
        h = h.astype(h.dtype.newbyteorder("="))
    return _core.gptq(arr, code_of(arr.dtype, "w"), h, code_of(h.dtype, "hessian"),
                      int(group_size), int(bits), float(damp), bool(act_order))
