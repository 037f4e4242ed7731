"""GPTQ checkpoints (AutoGPTQ, GPTQModel) into MLX's affine layout (docs/gptq.md).

GPTQ stores each quantized Linear ``P`` as

- ``P.qweight``: int32 ``[in * bits / 32, out]``; column ``o`` is an LSB-first bit stream of
  the codes of output ``o`` along the input axis (3-bit codes straddle words);
- ``P.qzeros``: int32 ``[groups, out * bits / 32]``, the zeros packed the same way along the
  output axis. The original format (``checkpoint_format: "gptq"``, "v1") stores
  ``zero - 1``; GPTQModel's ``"gptq_v2"`` stores the zero itself;
- ``P.scales``: float ``[groups, out]``;
- ``P.g_idx``: int32 ``[in]``, the group of each input (act-order reorders it);

and dequantizes ``w[i, o] = scales[g_idx[i], o] * (q[i, o] - zeros[g_idx[i], o])``.

An MLX row is the same bit stream along the input axis, so ``P.weight`` is ``qweight``
transposed, for 2, 3, 4 and 8 bits alike; ``P.biases = -zero * scale``. A ``g_idx`` that is
the contiguous mapping ``i // group_size`` converts losslessly; a real act-order ``g_idx``
cannot be expressed with contiguous groups and is refused unless ``allow_requantize=True``.

>>> import numpy as np
>>> w = {"l.qweight": np.zeros((16, 32), np.int32), "l.qzeros": np.zeros((1, 4), np.int32),
...      "l.scales": np.ones((1, 32), np.float16), "l.g_idx": np.zeros(128, np.int32)}
>>> out, q = transform_gptq_weights(w, GptqConfig(bits=4, group_size=128))
>>> out["l.weight"].shape, out["l.biases"][0, 0]     # v1: stored 0 means zero 1
((32, 16), np.float16(-1.0))
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Mapping, Optional, Union

import numpy as np

from .. import _core
from .._argnames import arg
from .._dtypes import float_dtype
from .._packed import (
    biases_from_zeros,
    cast_generated,
    is_float,
    mlx_group_size,
    regroup,
    require_array,
    resolve_output_dtype,
    snapshot,
    word_code,
    WORD_DTYPES,
)
from ..config import PerLayerQuantization, Quantization, _int_field
from ..errors import (
    ArgumentTypeError,
    DivisibilityError,
    InvalidArgumentError,
    KeyCollisionError,
    MissingKeyError,
    OutOfRangeError,
    RankMismatchError,
    ShapeMismatchError,
    UnknownEnumValueError,
    UnsupportedDtypeError,
)
from ..metrics import QuantError, quantization_error
from ..quant import astype, dequantize, quantize

__all__ = [
    "GptqConfig",
    "RequantizeReport",
    "gptq_output_dtype",
    "transform_gptq_weights",
]

_FORMATS = ("gptq", "gptq_v2")
_SUFFIXES = (".qweight", ".qzeros", ".scales", ".g_idx")


@dataclasses.dataclass(frozen=True)
class GptqConfig:
    """The ``quantization_config`` of a GPTQ checkpoint.

    Args:
        bits: 2, 3, 4 or 8.
        group_size: inputs per group; -1 means one group over the whole input.
        sym: symmetric quantization. Only used when a layer has no ``qzeros`` (the zero is
            then ``2 ** (bits - 1)``); stored zeros always win, as in GPTQ's kernels.
        desc_act: act-order was used; the layer's ``g_idx`` decides what that means.
        checkpoint_format: ``"gptq"`` (v1, zeros stored minus one) or ``"gptq_v2"``.

    >>> GptqConfig.from_dict({"quant_method": "gptq", "bits": 8, "group_size": -1,
    ...                       "desc_act": False, "sym": True})
    GptqConfig(bits=8, group_size=-1, sym=True, desc_act=False, checkpoint_format='gptq')
    """

    bits: int = 4
    group_size: int = 128
    sym: bool = True
    desc_act: bool = False
    checkpoint_format: str = "gptq"

    def __post_init__(self) -> None:
        for name in ("bits", "group_size"):
            object.__setattr__(self, name, _int_field(getattr(self, name), name))
        for name in ("sym", "desc_act"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ArgumentTypeError(f"{name} must be a bool, got {value!r}")
            object.__setattr__(self, name, bool(value))
        if not isinstance(self.checkpoint_format, str):
            raise ArgumentTypeError(
                f"checkpoint_format must be a str, got {self.checkpoint_format!r}"
            )

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "GptqConfig":
        """From a ``quantization_config`` (or AutoGPTQ ``quantize_config.json``) dict.

        Refuses what this converter cannot read: other checkpoint formats (marlin, bitblas,
        ...), packing words other than int32, and GPTQModel's per-module ``dynamic``
        overrides."""
        if not isinstance(config, Mapping):
            raise ArgumentTypeError(f"config must be a mapping, got {type(config).__name__}")
        fmt = config.get("checkpoint_format", config.get("format", "gptq"))
        if config.get("is_marlin_format"):
            fmt = "marlin"
        pack_dtype = config.get("pack_dtype", "int32")
        if str(pack_dtype).replace("torch.", "") != "int32":
            raise UnknownEnumValueError(
                f"GPTQ pack_dtype={pack_dtype!r} is not supported; only int32 packing words "
                "(what GPTQ checkpoints on the Hub use)"
            )
        if config.get("dynamic"):
            raise InvalidArgumentError(
                "GPTQModel 'dynamic' per-module overrides are not supported: layers would "
                "carry different bits/group sizes than the config says"
            )
        return cls(
            bits=config.get("bits", 4),
            group_size=config.get("group_size", 128),
            sym=config.get("sym", True),
            desc_act=config.get("desc_act", False),
            checkpoint_format=fmt,
        )

    def validate(self) -> None:
        """Raises for a configuration :func:`transform_gptq_weights` refuses."""
        if self.checkpoint_format not in _FORMATS:
            raise UnknownEnumValueError(
                f"GPTQ checkpoint_format={self.checkpoint_format!r} is not supported; "
                "expected 'gptq' or 'gptq_v2' (marlin, bitblas and other kernel layouts "
                "repack the codes differently)"
            )
        if self.bits not in (2, 3, 4, 8):
            raise OutOfRangeError(f"GPTQ bits={self.bits} is not supported; use 2, 3, 4 or 8")
        if self.group_size <= 0 and self.group_size != -1:
            raise OutOfRangeError(f"GPTQ group_size={self.group_size} must be > 0 or -1")

    @property
    def zero_offset(self) -> int:
        """What to add to a stored zero: 1 for v1 (AutoGPTQ packs ``zeros - 1``)."""
        return 1 if self.checkpoint_format == "gptq" else 0

    def quantization(self) -> Quantization:
        """The MLX parameters of the converted layers, when the config alone decides them
        (group_size -1 gives 128; a layer whose width needs another size gets a per-layer
        entry in :func:`transform_gptq_weights`'s result)."""
        self.validate()
        if self.group_size == -1:
            return Quantization(128, self.bits)
        group = mlx_group_size(self.group_size, self.group_size)
        if group is None:
            raise OutOfRangeError(
                f"GPTQ group_size={self.group_size} cannot be expressed in MLX: it must be a "
                "multiple of 32 (MLX groups are 32, 64 or 128 wide)"
            )
        return Quantization(group, self.bits)


@dataclasses.dataclass(frozen=True)
class RequantizeReport:
    """A layer that was dequantized and re-quantized (act-order ``g_idx``).

    ``error`` compares the MLX result with the GPTQ weights it replaces, both dequantized
    (the GPTQ side with the producer's formula, in float32)."""

    layer: str
    quantization: Quantization
    error: QuantError


def _as_config(config: Union[GptqConfig, Mapping[str, Any], None]) -> GptqConfig:
    if config is None:
        return GptqConfig()
    if isinstance(config, GptqConfig):
        return config
    return GptqConfig.from_dict(config)


def gptq_output_dtype(dtypes: Mapping[str, Any]) -> Optional[np.dtype]:
    """The dtype of the generated scales/biases, from tensor dtypes alone (name -> dtype).

    >>> gptq_output_dtype({"a.qweight": np.int32, "a.scales": np.float16})
    dtype('float16')
    """
    found = []
    for k in sorted(dtypes):
        if k.endswith(".qweight"):
            dt = dtypes.get(k[: -len(".qweight")] + ".scales")
            if dt is not None and is_float(np.dtype(dt)):
                found.append(dt)
    return resolve_output_dtype(found)


@dataclasses.dataclass
class _Layer:
    prefix: str
    qweight: np.ndarray
    scales: np.ndarray
    qzeros: Optional[np.ndarray]
    g_idx: Optional[np.ndarray]
    in_features: int
    group: int  # the producer's group width (in_features for group_size -1)
    mlx_group: int


def _check_layer(w: Mapping[str, Any], p: str, cfg: GptqConfig) -> _Layer:
    def fail(cls: type, msg: str, key: str) -> Exception:
        return cls(msg, layer=p, key=key)

    for stale in (".weight", ".biases"):
        if p + stale in w:
            raise fail(
                KeyCollisionError,
                f"input has both {p}.qweight and {p}{stale}; the converted layer would "
                f"overwrite the stale {stale[1:]} (remove it first)",
                p + stale,
            )
    qkey, zkey, skey, gkey = (p + s for s in _SUFFIXES)
    if skey not in w:
        raise fail(MissingKeyError, f"{qkey} has no {skey} companion", skey)
    qweight = require_array(w[qkey], p, qkey)
    scales = require_array(w[skey], p, skey)
    if qweight.dtype not in WORD_DTYPES:
        raise fail(UnsupportedDtypeError,
                   f"{qkey} has dtype {qweight.dtype}; GPTQ packs codes into int32", qkey)
    if not is_float(scales.dtype):
        raise fail(UnsupportedDtypeError,
                   f"{skey} has dtype {scales.dtype}; GPTQ scales must be floating", skey)
    if qweight.ndim != 2:
        raise fail(RankMismatchError,
                   f"{qkey} must be 2-D [in * bits / 32, out], got shape {qweight.shape}", qkey)
    if scales.ndim != 2:
        raise fail(RankMismatchError,
                   f"{skey} must be 2-D [groups, out], got shape {scales.shape}", skey)
    bits = cfg.bits
    in_features, out_features = qweight.shape[0] * 32 // bits, qweight.shape[1]
    if (qweight.shape[0] * 32) % bits:
        raise fail(DivisibilityError,
                   f"{qkey} has {qweight.shape[0]} rows, not a whole number of {bits}-bit "
                   "codes per column", qkey)
    group = in_features if cfg.group_size == -1 else cfg.group_size
    groups = -(-in_features // group)  # AutoGPTQ: math.ceil(infeatures / group_size)
    if scales.shape != (groups, out_features):
        raise fail(ShapeMismatchError,
                   f"{skey} must have shape [{groups}, {out_features}] (from {qkey} "
                   f"{qweight.shape}, bits={bits}, group_size={cfg.group_size}), got "
                   f"{list(scales.shape)}", skey)
    qzeros = None
    if zkey in w:
        qzeros = require_array(w[zkey], p, zkey)
        if qzeros.dtype not in WORD_DTYPES:
            raise fail(UnsupportedDtypeError,
                       f"{zkey} has dtype {qzeros.dtype}; GPTQ packs zeros into int32", zkey)
        if (out_features * bits) % 32 or qzeros.shape != (groups, out_features * bits // 32):
            raise fail(ShapeMismatchError,
                       f"{zkey} must have shape [{groups}, out * bits / 32] with out="
                       f"{out_features}, bits={bits}, got {list(qzeros.shape)}", zkey)
    elif not cfg.sym:
        raise fail(MissingKeyError,
                   f"{qkey} has no {zkey}, and the config is asymmetric (sym=False)", zkey)
    g_idx = None
    if gkey in w:
        g_idx = require_array(w[gkey], p, gkey)
        if g_idx.dtype.kind not in "iu":
            raise fail(UnsupportedDtypeError,
                       f"{gkey} has dtype {g_idx.dtype}; g_idx holds integer group indices",
                       gkey)
        if g_idx.shape != (in_features,):
            raise fail(ShapeMismatchError,
                       f"{gkey} must have shape [{in_features}], got {list(g_idx.shape)}", gkey)
        if g_idx.size and (g_idx.min() < 0 or g_idx.max() >= groups):
            raise fail(OutOfRangeError,
                       f"{gkey} has group indices outside [0, {groups})", gkey)
    elif cfg.desc_act:
        raise fail(MissingKeyError,
                   f"{qkey} has no {gkey}, but the config says desc_act=True", gkey)
    mlx_group = mlx_group_size(group, in_features)
    if mlx_group is None:
        raise fail(DivisibilityError,
                   f"group width {group} and in_features={in_features} have no common MLX "
                   "group size (32, 64 or 128)", qkey)
    return _Layer(p, qweight, scales, qzeros, g_idx, in_features, group, mlx_group)


def _is_contiguous(layer: _Layer) -> bool:
    if layer.g_idx is None:
        return True
    return bool(np.array_equal(layer.g_idx, np.arange(layer.in_features) // layer.group))


def _zeros_t(layer: _Layer, cfg: GptqConfig) -> np.ndarray:
    if layer.qzeros is None:
        return np.full(layer.scales.shape[::-1], 1 << (cfg.bits - 1), np.uint32)
    return _core.gptq_unpack_zeros(layer.qzeros, word_code(layer.qzeros), cfg.bits,
                                   cfg.zero_offset)


def _convert(layer: _Layer, cfg: GptqConfig) -> dict[str, np.ndarray]:
    wq = _core.transpose_u32(layer.qweight, word_code(layer.qweight))
    scales_t = np.ascontiguousarray(layer.scales.T)
    biases = biases_from_zeros(_zeros_t(layer, cfg), scales_t)
    args = (layer.group, layer.mlx_group, layer.in_features)
    return {".weight": wq, ".scales": regroup(scales_t, *args), ".biases": regroup(biases, *args)}


def _requantize(layer: _Layer, cfg: GptqConfig) -> tuple[dict[str, np.ndarray], QuantError]:
    """Dequantizes with GPTQ's formula (float32) and quantizes to MLX affine."""
    out_features = layer.qweight.shape[1]
    wq = _core.transpose_u32(layer.qweight, word_code(layer.qweight))
    # The codes, read back through MLX's own unpacking: scale 1, bias 0.
    ones = np.ones((out_features, layer.in_features // 32), np.float32)
    codes = dequantize(wq, ones, np.zeros_like(ones), group_size=32, bits=cfg.bits)
    g = layer.g_idx.astype(np.int64)
    zeros = _zeros_t(layer, cfg).astype(np.float32)[:, g]
    scales = layer.scales.astype(np.float32).T[:, g]
    dense = scales * (codes - zeros)
    wq2, s2, b2 = quantize(astype(dense, layer.scales.dtype), layer.mlx_group, cfg.bits)
    err = quantization_error(dense, wq2, s2, b2)
    return {".weight": wq2, ".scales": s2, ".biases": b2}, err


def transform_gptq_weights(
    weights: Mapping[str, np.ndarray],
    config: Union[GptqConfig, Mapping[str, Any], None] = None,
    *,
    out_dtype: Any = None,
    allow_requantize: bool = False,
    report: Optional[list] = None,
) -> tuple[dict[str, np.ndarray], PerLayerQuantization]:
    """Converts the GPTQ layers of a weight map to MLX's affine layout.

    For every ``P.qweight``: ``P.weight`` (``qweight`` transposed, uint32
    ``[out, in * bits / 32]``), ``P.scales`` (transposed) and ``P.biases`` (``-zero * scale``
    in float32, rounded to the scales' dtype) replace ``P.qweight``/``P.qzeros``/``P.scales``
    /``P.g_idx``; everything else passes through untouched. Zeros are read as stored
    plus one for ``checkpoint_format="gptq"`` and as stored for ``"gptq_v2"``.

    Groups MLX lacks (group_size -1, 256, a partial last group) are re-expressed with the
    largest MLX group size dividing both the group and the input width, repeating scales and
    biases: lossless. A layer whose MLX group size differs from ``config.quantization()``
    gets a per-layer entry in the returned :class:`~mlxq.PerLayerQuantization`.

    Args:
        weights: name -> numpy array; never modified.
        config: a :class:`GptqConfig` or a ``quantization_config`` dict.
        out_dtype: the dtype of the generated scales/biases; default: the most precise
            scales dtype of the converted layers (float16 with bfloat16 gives float32).
        allow_requantize: for an act-order ``g_idx`` (not ``i // group_size``): dequantize
            with GPTQ's formula and re-quantize to MLX affine (same bits), warning with the
            added error, instead of raising.
        report: if given, a :class:`RequantizeReport` is appended for every re-quantized layer.

    Raises:
        InvalidArgumentError: an act-order ``g_idx`` without ``allow_requantize``.
        UnknownEnumValueError, OutOfRangeError: an unsupported format, bits or group size.
        MissingKeyError, KeyCollisionError, UnsupportedDtypeError, RankMismatchError,
        ShapeMismatchError, DivisibilityError: a malformed layer (error carries the layer).
    """
    cfg = _as_config(config)
    quant = cfg.quantization()
    out_dt = None if out_dtype is None else float_dtype(out_dtype, "out_dtype")
    w = snapshot(weights)
    layers = {}
    for key in w:
        if key.endswith(".qweight"):
            p = key[: -len(".qweight")]
            layers[p] = _check_layer(w, p, cfg)
    for layer in layers.values():
        if not allow_requantize and not _is_contiguous(layer):
            raise InvalidArgumentError(
                f"{layer.prefix}.g_idx is an act-order (desc_act) permutation, not the "
                f"contiguous mapping i // {layer.group}: MLX groups are contiguous, so the "
                f"layer cannot be converted losslessly; use {arg('allow_requantize')} to "
                "dequantize and re-quantize it (adds error, reported)",
                layer=layer.prefix,
                key=layer.prefix + ".g_idx",
            )
    if out_dt is None:
        out_dt = resolve_output_dtype(layer.scales.dtype for layer in layers.values())

    per_layer: dict[str, Quantization] = {}
    owned = {p + s for p in layers for s in _SUFFIXES}
    out: dict[str, np.ndarray] = {}
    for key, arr in w.items():
        if key in owned and key.endswith(".qweight"):
            layer = layers[key[: -len(".qweight")]]
            if _is_contiguous(layer):
                tensors = _convert(layer, cfg)
            else:
                tensors, err = _requantize(layer, cfg)
                rep = RequantizeReport(layer.prefix, Quantization(layer.mlx_group, cfg.bits),
                                       err)
                warnings.warn(f"{layer.prefix}: act-order GPTQ layer re-quantized to MLX "
                              f"affine; added error: {err}", RuntimeWarning, stacklevel=2)
                if report is not None:
                    report.append(rep)
            if layer.mlx_group != quant.group_size:
                per_layer[layer.prefix] = Quantization(layer.mlx_group, cfg.bits)
            tensors[".scales"] = cast_generated(tensors[".scales"], out_dt)
            tensors[".biases"] = cast_generated(tensors[".biases"], out_dt)
            out.update({layer.prefix + s: a for s, a in tensors.items()})
        elif key not in owned:
            out[key] = arr
    return out, PerLayerQuantization(quant, per_layer)
