"""AutoAWQ (GEMM) checkpoints into MLX's affine layout (docs/awq.md).

AutoAWQ's ``WQLinear_GEMM`` stores each quantized Linear ``P`` as

- ``P.qweight``: int32 ``[in, out / 8]``, eight 4-bit codes per word along the output axis,
  column ``8c + [0, 2, 4, 6, 1, 3, 5, 7][s]`` in nibble ``s``;
- ``P.scales``: float ``[in / group_size, out]``;
- ``P.qzeros``: int32 ``[in / group_size, out / 8]``, packed like qweight;

and dequantizes ``w = (q - zero) * scale``. MLX wants ``P.weight`` uint32 ``[out, in / 8]``,
``P.scales`` and ``P.biases`` ``[out, in / group_size]`` with ``w = q * scale + bias``, so
``bias = -zero * scale``. :func:`transform_awq_weights` does that conversion as mlx-lm's
``_transform_awq_weights`` does, checking every layer first (docs/awq.md lists the rules);
the packed codes are moved in C, threaded.

>>> import numpy as np, mlxq
>>> qweight = np.zeros((128, 4), np.int32)          # in=128, out=32
>>> scales = np.full((1, 32), 0.5, np.float16)       # group_size=128
>>> out, q = transform_awq_weights({"l.qweight": qweight, "l.scales": scales}, AwqLoadConfig())
>>> sorted(out), out["l.weight"].shape, out["l.biases"][0, 0]   # implicit zero 8
(['l.biases', 'l.scales', 'l.weight'], (32, 16), np.float16(-4.0))
>>> q.quantization
Quantization(group_size=128, bits=4, mode=<QuantMode.AFFINE: 'affine'>)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Union

import numpy as np

from .. import _core
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

__all__ = ["AwqLoadConfig", "awq_output_dtype", "transform_awq_weights", "unpack_awq_weights"]



@dataclasses.dataclass(frozen=True)
class AwqLoadConfig:
    """The ``quantization_config`` of an AutoAWQ checkpoint.

    Args:
        bits: bits per code; only 4 is accepted by :func:`transform_awq_weights`.
        group_size: inputs per scale (AutoAWQ's ``q_group_size``).
        zero_point: True (asymmetric): use ``P.qzeros`` when present, else the implicit zero
            8; False (symmetric): always the implicit zero 8.
        version: AutoAWQ's kernel layout; only ``"gemm"`` (or ``""``, unspecified) is
            accepted: GEMV and the other layouts pack differently.

    >>> AwqLoadConfig.from_dict({"quant_method": "awq", "bits": 4, "group_size": 64,
    ...                          "zero_point": True, "version": "GEMM"})
    AwqLoadConfig(bits=4, group_size=64, zero_point=True, version='gemm')
    """

    bits: int = 4
    group_size: int = 128
    zero_point: bool = True
    version: str = ""

    def __post_init__(self) -> None:
        for name in ("bits", "group_size"):
            object.__setattr__(self, name, _int_field(getattr(self, name), name))
        if not isinstance(self.zero_point, (bool, np.bool_)):
            raise ArgumentTypeError(f"zero_point must be a bool, got {self.zero_point!r}")
        object.__setattr__(self, "zero_point", bool(self.zero_point))
        if not isinstance(self.version, str):
            raise ArgumentTypeError(f"version must be a str, got {self.version!r}")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "AwqLoadConfig":
        """From a ``quantization_config`` dict (transformers' keys ``bits``/``group_size``,
        or AutoAWQ's own ``w_bit``/``q_group_size``). Missing keys take the defaults; the
        version is lower-cased, as AutoAWQ does when it reads one."""
        if not isinstance(config, Mapping):
            raise ArgumentTypeError(f"config must be a mapping, got {type(config).__name__}")
        version = config.get("version", "")
        return cls(
            bits=config.get("bits", config.get("w_bit", 4)),
            group_size=config.get("group_size", config.get("q_group_size", 128)),
            zero_point=config.get("zero_point", True),
            version=version.lower() if isinstance(version, str) else version,
        )

    def validate(self) -> None:
        """Raises for a configuration :func:`transform_awq_weights` refuses."""
        if self.version not in ("", "gemm"):
            raise UnknownEnumValueError(
                f"AWQ version={self.version!r} is not supported; only 'gemm' is: GEMV and the "
                "other AutoAWQ layouts use a different qweight shape and packing, and "
                "converting them as GEMM would silently corrupt the weights (re-export the "
                "model with version='gemm')"
            )
        if self.bits != 4:
            raise OutOfRangeError(f"AWQ bits={self.bits} is not supported; only 4 is")
        if self.group_size <= 0:
            raise OutOfRangeError(f"AWQ group_size={self.group_size} must be > 0")

    def quantization(self) -> Quantization:
        """The MLX parameters the converted layers get."""
        self.validate()
        group = mlx_group_size(self.group_size, self.group_size)
        if group is None:
            raise OutOfRangeError(
                f"AWQ group_size={self.group_size} cannot be expressed in MLX: it must be a "
                "multiple of 32 (MLX groups are 32, 64 or 128 wide)"
            )
        return Quantization(group, 4)


def _as_config(config: Union[AwqLoadConfig, Mapping[str, Any], None]) -> AwqLoadConfig:
    if config is None:
        return AwqLoadConfig()
    if isinstance(config, AwqLoadConfig):
        return config
    return AwqLoadConfig.from_dict(config)


def unpack_awq_weights(qweight: np.ndarray) -> np.ndarray:
    """AutoAWQ-packed 4-bit words ``[rows, cols]`` -> codes ``[rows, 8 * cols]`` (uint32,
    0..15) in natural column order (mlx-lm's ``_unpack_awq_weights``).

    int32 input is read as its uint32 bit pattern, so a negative word keeps its top nibble.

    >>> unpack_awq_weights(np.array([[0x76543210]], np.int32)).tolist()
    [[0, 4, 1, 5, 2, 6, 3, 7]]
    """
    if not isinstance(qweight, np.ndarray):
        raise ArgumentTypeError(f"qweight must be a numpy array, got {type(qweight).__name__}")
    q = qweight
    if q.dtype not in WORD_DTYPES:
        raise UnsupportedDtypeError(
            f"qweight has dtype {q.dtype}; AutoAWQ packs 4-bit codes into int32 "
            "(uint32 is accepted too)"
        )
    if q.ndim != 2:
        raise RankMismatchError(f"qweight must be 2-D [rows, packed_cols], got shape {q.shape}")
    return _core.awq_unpack(q, word_code(q), False)


def awq_output_dtype(dtypes: Mapping[str, Any]) -> Optional[np.dtype]:
    """The dtype of the generated scales/biases, from tensor dtypes alone (name -> dtype).

    Only the ``P.scales`` of layers that have a ``P.qweight`` count; see
    :func:`mlxq._packed.resolve_output_dtype` for the rule.

    >>> awq_output_dtype({"a.qweight": np.int32, "a.scales": np.float16,
    ...                   "b.qweight": np.int32, "b.scales": np.float32, "norm": np.float64})
    dtype('float32')
    """
    prefixes = {k[: -len(".qweight")] for k in dtypes if k.endswith(".qweight")}
    found = []
    for p in sorted(prefixes):
        dt = dtypes.get(p + ".scales")
        if dt is not None and is_float(np.dtype(dt)):
            found.append(dt)
    return resolve_output_dtype(found)


def _check_layer(
    w: Mapping[str, Any], prefix: str, cfg: AwqLoadConfig
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """One layer's tensors checked before anything is converted (docs/awq.md, "Refused,
    and why"): stale outputs, dtypes, ranks and shapes."""
    for stale in (".weight", ".biases"):
        if prefix + stale in w:
            raise KeyCollisionError(
                f"input has both {prefix}.qweight and {prefix}{stale}; the converted layer "
                f"would overwrite the stale {stale[1:]} (remove it first)",
                layer=prefix,
                key=prefix + stale,
            )
    qkey, skey, zkey = prefix + ".qweight", prefix + ".scales", prefix + ".qzeros"
    qweight = require_array(w[qkey], prefix, qkey)
    scales = require_array(w[skey], prefix, skey)
    if qweight.dtype not in WORD_DTYPES:
        raise UnsupportedDtypeError(
            f"{qkey} has dtype {qweight.dtype}; AutoAWQ packs codes into int32 "
            "(uint32 is accepted too)",
            layer=prefix,
            key=qkey,
        )
    if qweight.ndim != 2:
        raise RankMismatchError(
            f"{qkey} must be 2-D [in_features, out_features / 8], got shape {qweight.shape}",
            layer=prefix,
            key=qkey,
        )
    if scales.ndim != 2:
        raise RankMismatchError(
            f"{skey} must be 2-D [in_features / group_size, out_features], got shape "
            f"{scales.shape}",
            layer=prefix,
            key=skey,
        )
    in_features, packed_out = qweight.shape
    if in_features % cfg.group_size:
        raise DivisibilityError(
            f"in_features={in_features} ({qkey} rows) is not a multiple of "
            f"group_size={cfg.group_size}",
            layer=prefix,
            key=qkey,
        )
    groups, out_features = in_features // cfg.group_size, packed_out * 8
    if scales.shape != (groups, out_features):
        raise ShapeMismatchError(
            f"{skey} must have shape [{groups}, {out_features}] (from {qkey} {qweight.shape} "
            f"and group_size={cfg.group_size}), got {list(scales.shape)}",
            layer=prefix,
            key=skey,
        )
    qzeros = None
    if zkey in w:
        qzeros = require_array(w[zkey], prefix, zkey)
        if qzeros.dtype not in WORD_DTYPES:
            raise UnsupportedDtypeError(
                f"{zkey} has dtype {qzeros.dtype}; AutoAWQ packs zeros into int32 "
                "(uint32 is accepted too)",
                layer=prefix,
                key=zkey,
            )
        if qzeros.shape != (groups, packed_out):
            raise ShapeMismatchError(
                f"{zkey} must have shape [{groups}, {packed_out}], got {list(qzeros.shape)}",
                layer=prefix,
                key=zkey,
            )
    return qweight, scales, qzeros


def transform_awq_weights(
    weights: Mapping[str, np.ndarray],
    config: Union[AwqLoadConfig, Mapping[str, Any], None] = None,
    *,
    out_dtype: Any = None,
) -> tuple[dict[str, np.ndarray], PerLayerQuantization]:
    """Converts the AutoAWQ layers of a weight map to MLX's affine layout.

    For every ``P.qweight``: ``P.weight`` (uint32 ``[out, in / 8]``), ``P.scales`` (the
    transposed scales) and ``P.biases`` (``-zero * scale``, computed in float32 and rounded to
    the scales' dtype, as mlx-lm does) replace ``P.qweight``/``P.scales``/``P.qzeros``. Every
    other tensor passes through untouched, including orphan ``.scales``/``.qzeros`` that
    belong to no ``.qweight``. The inputs are never modified.

    Generated scales and biases are then cast to one dtype: ``out_dtype`` when given,
    otherwise the most precise scales dtype among the converted layers (float16 with bfloat16
    gives float32). Pass-through tensors keep their dtype (mlx-lm casts them all to the last
    layer's scales dtype; this is a deliberate difference, see docs/awq.md).

    A group size that MLX lacks but that is a multiple of 32 (256, say) is re-expressed with
    the largest MLX group size dividing it, repeating each scale and bias: lossless.

    Args:
        weights: name -> numpy array (read-only arrays and memory maps are fine).
        config: an :class:`AwqLoadConfig` or a ``quantization_config`` dict.
        out_dtype: the dtype for the generated scales/biases (float16, bfloat16, float32 or
            float64), e.g. from :func:`awq_output_dtype` over a whole checkpoint's headers.

    Returns:
        ``(new_weights, quantization)``: the new map (input order, converted tensors where
        ``P.qweight`` was) and the MLX parameters (group_size, bits 4, affine).

    Raises:
        UnknownEnumValueError: a version other than ``"gemm"``/``""``.
        OutOfRangeError: bits other than 4, group_size <= 0 or not a multiple of 32.
        InvalidArgumentError: a ``.g_idx`` tensor (a GPTQ act-order checkpoint; use
            :func:`mlxq.formats.gptq.transform_gptq_weights`).
        UnsupportedDtypeError: qweight/qzeros not int32/uint32, scales not floating.
        MissingKeyError: ``P.qweight`` without ``P.scales``.
        KeyCollisionError: ``P.qweight`` next to a stale ``P.weight`` or ``P.biases``.
        RankMismatchError, ShapeMismatchError, DivisibilityError: inconsistent shapes.
    """
    cfg = _as_config(config)
    quant = cfg.quantization()
    out_dt = None if out_dtype is None else float_dtype(out_dtype, "out_dtype")
    w = snapshot(weights)
    for key in w:
        if key.endswith(".g_idx"):
            raise InvalidArgumentError(
                f"{key}: a g_idx tensor belongs to a GPTQ checkpoint, which AutoAWQ's layout "
                "does not describe; convert it with mlxq.formats.gptq.transform_gptq_weights",
                key=key,
            )
    prefixes = [k[: -len(".qweight")] for k in w if k.endswith(".qweight")]
    for p in prefixes:
        s = w.get(p + ".scales")
        if isinstance(s, np.ndarray) and not is_float(s.dtype):
            raise UnsupportedDtypeError(
                f"{p}.scales has dtype {s.dtype}; AutoAWQ scales must be float16, bfloat16, "
                "float32 or float64",
                layer=p,
                key=p + ".scales",
            )
    for p in prefixes:
        if p + ".scales" not in w:
            raise MissingKeyError(
                f"{p}.qweight has no {p}.scales companion (AutoAWQ writes qweight, scales and "
                "qzeros together; refusing to drop the layer)",
                layer=p,
                key=p + ".scales",
            )
    layers = {p: _check_layer(w, p, cfg) for p in prefixes}
    if out_dt is None:
        out_dt = resolve_output_dtype(s.dtype for _, s, _ in layers.values())

    owned = set()
    for p in prefixes:
        owned.update((p + ".qweight", p + ".scales", p + ".qzeros"))
    out: dict[str, np.ndarray] = {}
    for key, arr in w.items():
        if key.endswith(".qweight") and key[: -len(".qweight")] in layers:
            p = key[: -len(".qweight")]
            out.update(_convert_layer(p, *layers[p], cfg, quant.group_size, out_dt))
        elif key not in owned:
            out[key] = arr
    return out, PerLayerQuantization(quant)


def _convert_layer(
    p: str,
    qweight: np.ndarray,
    scales: np.ndarray,
    qzeros: Optional[np.ndarray],
    cfg: AwqLoadConfig,
    mlx_group: int,
    out_dt: Optional[np.dtype],
) -> dict[str, np.ndarray]:
    in_features = qweight.shape[0]
    wq = _core.awq_repack(qweight, word_code(qweight))
    scales_t = np.ascontiguousarray(scales.T)
    if cfg.zero_point and qzeros is not None:
        zeros_t = _core.awq_unpack(qzeros, word_code(qzeros), True)
    else:
        zeros_t = np.full(scales_t.shape, 1 << (cfg.bits - 1), np.uint32)
    biases = biases_from_zeros(zeros_t, scales_t)
    scales_t = regroup(scales_t, cfg.group_size, mlx_group, in_features)
    biases = regroup(biases, cfg.group_size, mlx_group, in_features)
    return {
        p + ".weight": wq,
        p + ".scales": cast_generated(scales_t, out_dt),
        p + ".biases": cast_generated(biases, out_dt),
    }
