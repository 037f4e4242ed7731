"""Quantization quality: how far a quantized tensor is from the dense one it came from.

For a dense source ``w`` and its quantized form, :func:`quantization_error` dequantizes with
mlxq (bit-identical to MLX) and reports, in float64:

- ``rmse``: sqrt(mean((w_hat - w)^2))
- ``max_abs``, ``mean_abs``: largest and mean |w_hat - w|
- ``snr_db``: 10 * log10(sum(w^2) / sum((w_hat - w)^2)) (inf when exact)
- ``cosine``: cosine similarity of w_hat and w (flattened)

:func:`weight_map_error` does the same for every quantized layer of a weight map (the
quantization parameters of each layer are read off the array shapes) and adds an aggregate
over all of them. Work is done a block of rows at a time, so memory stays bounded for
memory-mapped checkpoints.

>>> import numpy as np, mlxq
>>> w = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
>>> err = quantization_error(w, *mlxq.quantize(w, group_size=64, bits=8))
>>> err.snr_db > 40, err.cosine > 0.9999
(True, True)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from .errors import ShapeMismatchError
from .quant import dequantize

__all__ = ["QuantError", "infer_params", "quantization_error", "weight_map_error"]

_BLOCK_ELEMENTS = 1 << 22  # dequantize about this many elements at a time


@dataclasses.dataclass(frozen=True)
class QuantError:
    """Error statistics of one tensor (or an aggregate of several)."""

    n: int
    rmse: float
    max_abs: float
    mean_abs: float
    snr_db: float
    cosine: float

    def __str__(self) -> str:
        return (f"rmse {self.rmse:.4g}, max abs {self.max_abs:.4g}, mean abs {self.mean_abs:.4g}, "
                f"SNR {self.snr_db:.2f} dB, cosine {self.cosine:.6f}")


@dataclasses.dataclass
class _Sums:
    n: int = 0
    sq_err: float = 0.0
    abs_err: float = 0.0
    max_abs: float = 0.0
    sq_ref: float = 0.0
    sq_hat: float = 0.0
    dot: float = 0.0

    def add(self, ref: np.ndarray, hat: np.ndarray) -> None:
        d = hat - ref
        self.n += ref.size
        self.sq_err += float(np.dot(d.ravel(), d.ravel()))
        ad = np.abs(d)
        self.abs_err += float(ad.sum())
        if ad.size:
            self.max_abs = max(self.max_abs, float(ad.max()))
        self.sq_ref += float(np.dot(ref.ravel(), ref.ravel()))
        self.sq_hat += float(np.dot(hat.ravel(), hat.ravel()))
        self.dot += float(np.dot(ref.ravel(), hat.ravel()))

    def merge(self, other: "_Sums") -> None:
        self.n += other.n
        self.sq_err += other.sq_err
        self.abs_err += other.abs_err
        self.max_abs = max(self.max_abs, other.max_abs)
        self.sq_ref += other.sq_ref
        self.sq_hat += other.sq_hat
        self.dot += other.dot

    def result(self) -> QuantError:
        n = max(self.n, 1)
        snr = math.inf if self.sq_err == 0 else (
            10 * math.log10(self.sq_ref / self.sq_err) if self.sq_ref > 0 else -math.inf)
        denom = math.sqrt(self.sq_ref) * math.sqrt(self.sq_hat)
        cos = self.dot / denom if denom > 0 else (1.0 if self.sq_err == 0 else 0.0)
        return QuantError(self.n, math.sqrt(self.sq_err / n), self.max_abs, self.abs_err / n,
                          snr, cos)


def infer_params(dense_shape: tuple[int, ...], wq: np.ndarray, scales: np.ndarray,
                 biases: np.ndarray | None) -> tuple[int, int, str]:
    """``(group_size, bits, mode)`` of a quantized tensor, read off the array shapes: bits
    from the packed width, the group size from the number of scales, the mode from the
    scales' dtype (uint8 for the fp formats) and the group size (nvfp4 uses 16)."""
    cols = dense_shape[-1]
    if cols == 0 or scales.shape[-1] == 0 or (wq.shape[-1] * 32) % cols or cols % scales.shape[-1]:
        raise ShapeMismatchError(
            f"cannot infer quantization parameters from dense shape {list(dense_shape)}, "
            f"wq {list(wq.shape)} and scales {list(scales.shape)}")
    bits = wq.shape[-1] * 32 // cols
    gs = cols // scales.shape[-1]
    if biases is not None:
        return gs, bits, "affine"
    if gs == 16:
        return gs, bits, "nvfp4"
    return gs, bits, "mxfp8" if bits == 8 else "mxfp4"


def _error_sums(dense: np.ndarray, wq: np.ndarray, scales: np.ndarray,
                biases: np.ndarray | None, group_size: int, bits: int, mode: str,
                global_scale: float | None, device: str | None = None) -> _Sums:
    if dense.shape[:-1] != wq.shape[:-1] or dense.shape[:-1] != scales.shape[:-1]:
        raise ShapeMismatchError(
            f"dense {list(dense.shape)} does not match wq {list(wq.shape)} / scales "
            f"{list(scales.shape)}")
    cols = dense.shape[-1]
    d2 = dense.reshape(-1, cols)
    q2 = wq.reshape(-1, wq.shape[-1])
    s2 = scales.reshape(-1, scales.shape[-1])
    b2 = None if biases is None else biases.reshape(-1, biases.shape[-1])
    rows = max(1, _BLOCK_ELEMENTS // max(cols, 1))
    sums = _Sums()
    for r in range(0, d2.shape[0], rows):
        hat = dequantize(q2[r:r + rows], s2[r:r + rows], None if b2 is None else b2[r:r + rows],
                         group_size, bits, mode, global_scale, dtype=np.float32,
                         device=device)
        sums.add(d2[r:r + rows].astype(np.float64), hat.astype(np.float64))
    return sums


def quantization_error(dense: np.ndarray, wq: np.ndarray, scales: np.ndarray,
                       biases: np.ndarray | None = None, *, group_size: int | None = None,
                       bits: int | None = None, mode: str | None = None,
                       global_scale: float | None = None,
                       device: str | None = None) -> QuantError:
    """Error statistics of ``dequantize(wq, scales, biases)`` against ``dense``.

    group_size, bits and mode default to what the shapes imply (see :func:`infer_params`);
    device (whose dequantize, as :func:`mlxq.dequantize`) to :func:`mlxq.default_device`.
    """
    gs, b, m = infer_params(dense.shape, wq, scales, biases)
    return _error_sums(np.asarray(dense), wq, scales, biases, group_size or gs, bits or b,
                       mode or m, global_scale, device).result()


def weight_map_error(dense: Mapping[str, np.ndarray], quantized: Mapping[str, np.ndarray]
                     ) -> tuple[dict[str, QuantError], QuantError]:
    """Per-layer errors for every layer ``P`` quantized in ``quantized`` (``P.scales``
    present) whose dense ``P.weight`` is in ``dense``, and their aggregate.

    Returns ``(per_layer, total)``; ``per_layer`` is keyed by layer path, in sorted order.
    """
    per_layer: dict[str, QuantError] = {}
    total = _Sums()
    for key in sorted(quantized):
        if not key.endswith(".scales"):
            continue
        path = key[: -len(".scales")]
        wkey = f"{path}.weight"
        if wkey not in dense or wkey not in quantized:
            continue
        wq, scales = quantized[wkey], quantized[key]
        biases = quantized.get(f"{path}.biases")
        src = np.asarray(dense[wkey])
        gs, bits, mode = infer_params(src.shape, wq, scales, biases)
        sums = _error_sums(src, wq, scales, biases, gs, bits, mode, None)
        per_layer[path] = sums.result()
        total.merge(sums)
    return per_layer, total.result()
