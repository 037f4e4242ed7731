"""compressed-tensors checkpoints (``quant_method: "compressed-tensors"``): the config, and
the tensor-level conversions of the formats mlxq accepts (docs/source-formats.md).

A compressed-tensors ``quantization_config`` names a storage ``format`` (for the whole model
or per config group) and, per group, which modules it ``targets`` and how their ``weights``
were quantized; ``ignore`` lists modules left dense::

    {"quant_method": "compressed-tensors", "format": "pack-quantized",
     "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
         "num_bits": 4, "type": "int", "symmetric": true, "strategy": "group",
         "group_size": 32}}},
     "ignore": ["lm_head", "re:.*self_attn.*"]}

:func:`parse_config` decodes that into a :class:`CompressedTensorsConfig`; each
:class:`ConfigGroup` has a :class:`Route` saying how its layers convert, or raises
:class:`~mlxq.errors.UnsupportedFormatError` naming the variant and the reason.

``pack-quantized`` (symmetric INT, as Kimi-K2-Thinking ships) stores ``P.weight_packed``
int32 ``[out, in * bits / 32]`` (LSB-first codes ``q + 2^(bits-1)``), ``P.weight_scale``
``[out, in / group_size]`` and ``P.weight_shape`` ``[out, in]``. :func:`to_mlx_affine` keeps
it as MLX affine exactly as mlx-lm's remap does (deepseek_v3 / kimi_k25 ``sanitize``: the
words viewed as uint32, ``scales = weight_scale``, ``biases = -8 * weight_scale`` in the
scale dtype); :func:`dequantize_pack_quantized` gives dense values, by MLX's formula for
that triple (what ``mlx_lm.convert -d`` writes) or by compressed-tensors' own.

>>> import numpy as np, mlxq
>>> packed = np.full((2, 4), 0x9999_9999, np.uint32).view(np.int32)   # every code 9 -> q = 1
>>> scale = np.full((2, 1), 0.5, mlxq.bfloat16)
>>> wq, scales, biases = to_mlx_affine(packed, scale, (2, 32))
>>> wq.dtype, float(biases[0, 0]), to_mlx_affine(packed, scale, (2, 32)).group_size
(dtype('uint32'), -4.0, 32)
>>> dequantize_pack_quantized(packed, scale, (2, 32))[0, :3].astype(np.float32)
array([0.5, 0.5, 0.5], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import enum
import numbers
import re
from typing import Any, Literal, Mapping, Optional

import numpy as np

from .. import _core
from .._dtypes import bfloat16, code_of, float_dtype
from .._packed import mlx_group_size, regroup
from ..errors import (
    ArgumentTypeError,
    DivisibilityError,
    OutOfRangeError,
    ParseError,
    RankMismatchError,
    ShapeMismatchError,
    UnknownEnumValueError,
    UnsupportedDtypeError,
    UnsupportedFormatError,
)
from .fp8 import Rows, _rows
from ..quant import Impl, _as_array, _impl_code, astype, dequantize

__all__ = [
    "AffineTriple",
    "CompressedTensorsConfig",
    "ConfigGroup",
    "Route",
    "WeightScheme",
    "detect",
    "dequantize_pack_quantized",
    "parse_config",
    "to_mlx_affine",
    "to_mlx_mxfp4",
]

#: Storage formats compressed-tensors defines (its ``CompressionFormat``).
KNOWN_FORMATS = frozenset({
    "dense", "sparse-bitmask", "sparse-24-bitmask", "int-quantized", "float-quantized",
    "naive-quantized", "pack-quantized", "marlin-24", "mixed-precision",
    "nvfp4-pack-quantized", "mxfp4-pack-quantized", "mxfp8-quantized",
})

# Widths whose packing is the same in every compressed-tensors release (32 / bits codes per
# int32, LSB first) and equal to MLX's affine bit stream.
PACKED_BITS = (2, 4, 8)


class Route(str, enum.Enum):
    """How the layers of one config group convert."""

    DENSE = "dense"              #: not quantized on disk: nothing to undo
    PACKED_INT = "packed-int"    #: pack-quantized INT: :func:`to_mlx_affine`
    FP8_SCALED = "fp8-scaled"    #: float-quantized FP8, per tensor/channel: mlxq.formats.fp8
    FP8_BLOCK = "fp8-block"      #: float-quantized FP8, block or group scales: mlxq.formats.fp8
    MXFP4 = "mxfp4"              #: mxfp4-pack-quantized: :func:`to_mlx_mxfp4`


def _field(d: Mapping[str, Any], key: str, kind: type | tuple, what: str, default: Any) -> Any:
    v = d.get(key, default)
    if v is None:
        return None
    if kind is int and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
        raise ParseError(f"{what}.{key} must be an int, got {v!r}")
    if kind is not int and not isinstance(v, kind):
        raise ParseError(f"{what}.{key} must be {getattr(kind, '__name__', kind)}, got {v!r}")
    return int(v) if kind is int else v


@dataclasses.dataclass(frozen=True)
class WeightScheme:
    """A config group's ``weights`` (compressed-tensors' ``QuantizationArgs``), with its
    defaults and its inference of ``strategy`` from ``group_size`` (None -> tensor, > 0 ->
    group, -1 -> channel).

    >>> WeightScheme.from_dict({"num_bits": 4, "group_size": 32})
    WeightScheme(num_bits=4, type='int', symmetric=True, strategy='group', group_size=32, block_structure=None, actorder=None)
    """

    num_bits: int = 8
    type: str = "int"
    symmetric: bool = True
    strategy: str = "tensor"
    group_size: Optional[int] = None
    block_structure: Optional[tuple[int, int]] = None
    actorder: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], what: str = "weights") -> "WeightScheme":
        if not isinstance(d, Mapping):
            raise ParseError(f"{what} must be an object, got {type(d).__name__}")
        num_bits = _field(d, "num_bits", int, what, 8)
        qtype = _field(d, "type", str, what, "int")
        symmetric = _field(d, "symmetric", bool, what, True)
        group_size = _field(d, "group_size", int, what, None)
        strategy = _field(d, "strategy", str, what, None)
        if strategy is None:
            strategy = ("tensor" if group_size is None else "channel" if group_size == -1
                        else "group")
        block = d.get("block_structure")
        if isinstance(block, str):  # older configs write "128x128"
            try:
                block = [int(x) for x in block.split("x")]
            except ValueError:
                raise ParseError(f"{what}.block_structure={block!r} is not 'RxC'") from None
        if block is not None:
            if (not isinstance(block, (list, tuple)) or len(block) != 2 or not all(
                    isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block)):
                raise ParseError(f"{what}.block_structure={block!r} must be [rows, cols]")
            block = (int(block[0]), int(block[1]))
        actorder = d.get("actorder")
        if isinstance(actorder, bool):
            actorder = "group" if actorder else None
        elif actorder is not None and not isinstance(actorder, str):
            raise ParseError(f"{what}.actorder must be a string, got {actorder!r}")
        return cls(num_bits, qtype.lower(), bool(symmetric), strategy.lower(), group_size,
                   block, actorder.lower() if actorder else None)


@dataclasses.dataclass(frozen=True)
class ConfigGroup:
    """One entry of ``config_groups``: its name, ``targets``, ``weights`` (None when only
    activations are quantized) and the storage format that applies to it."""

    name: str
    targets: tuple[str, ...]
    weights: Optional[WeightScheme]
    format: str

    @property
    def route(self) -> Route:
        """How this group's layers convert; raises UnsupportedFormatError (or
        UnknownEnumValueError for a format compressed-tensors does not define) otherwise.

        >>> g = ConfigGroup("g", ("Linear",), WeightScheme(4, "int", False, "group", 32), "pack-quantized")
        >>> g.route
        Traceback (most recent call last):
        ...
        mlxq.errors.UnsupportedFormatError: config group 'g': asymmetric pack-quantized weights (with weight_zero_point) are refused: mlx-lm's remap assumes the symmetric zero point 2^(num_bits-1) and mlxq follows it
        """
        return _route(self)

    def matches(self, layer: str, class_name: str = "Linear") -> bool:
        """Whether the group targets ``layer`` (a module path, no ``.weight``): a target is
        a module class name, an exact path, or ``re:`` + a pattern matched at the start of
        the path (compressed-tensors' ``match_name``)."""
        return any(_match(layer, class_name, t) for t in self.targets)


def _match(layer: str, class_name: str, target: str) -> bool:
    if target.startswith("re:"):
        return re.match(target[3:], layer) is not None
    return target == layer or target == class_name


def _refuse(group: ConfigGroup, what: str) -> UnsupportedFormatError:
    return UnsupportedFormatError(f"config group {group.name!r}: {what}")


def _route(g: ConfigGroup) -> Route:
    fmt, w = g.format, g.weights
    if fmt not in KNOWN_FORMATS:
        raise UnknownEnumValueError(
            f"config group {g.name!r}: format {fmt!r} is not a compressed-tensors format "
            f"(known: {', '.join(sorted(KNOWN_FORMATS))})")
    if w is None or fmt == "dense":
        return Route.DENSE
    if fmt in ("sparse-bitmask", "sparse-24-bitmask", "marlin-24"):
        raise _refuse(g, f"format {fmt!r} (sparse storage) is refused: mlxq converts dense "
                         "and quantized weights only; decompress the checkpoint first")
    if fmt == "nvfp4-pack-quantized":
        raise _refuse(g, "format 'nvfp4-pack-quantized' is refused: its weight_global_scale "
                         "is the encoding scale 448*6/amax that compressed-tensors divides "
                         "the E4M3 block scales by, while MLX's nvfp4 multiplies them by "
                         "global_scale/2688 in float32, so the values would not be "
                         "bit-identical (and mlx-lm's loader does not rename these tensors)")
    if fmt in ("int-quantized", "naive-quantized", "mxfp8-quantized"):
        raise _refuse(g, f"format {fmt!r} is not supported yet (no mlx-lm counterpart)")
    if fmt == "mxfp4-pack-quantized":
        if w.type != "float" or w.num_bits != 4 or w.group_size != 32:
            raise _refuse(g, "mxfp4-pack-quantized needs float 4-bit weights in groups of 32")
        return Route.MXFP4
    if not w.symmetric:
        raise _refuse(g, f"asymmetric {fmt} weights (with weight_zero_point) are refused: "
                         "mlx-lm's remap assumes the symmetric zero point 2^(num_bits-1) "
                         "and mlxq follows it")
    if w.actorder in ("group", "dynamic"):
        raise _refuse(g, f"actorder={w.actorder!r} is refused: weight_g_idx assigns columns "
                         "to groups out of order, while MLX's groups are contiguous runs")
    if fmt == "float-quantized":
        if w.type != "float" or w.num_bits != 8:
            raise _refuse(g, f"float-quantized {w.type} {w.num_bits}-bit weights are refused: "
                             "only float8 (E4M3) is defined")
        if w.strategy in ("tensor", "channel"):
            return Route.FP8_SCALED
        if w.strategy in ("block", "group"):
            return Route.FP8_BLOCK
        raise _refuse(g, f"float-quantized strategy {w.strategy!r} is refused: only "
                         "tensor, channel, group and block scales have a fixed layout")
    # pack-quantized, also as a mixed-precision group
    if fmt not in ("pack-quantized", "mixed-precision"):
        raise _refuse(g, f"format {fmt!r} is not supported")
    if w.type != "int":
        raise _refuse(g, f"pack-quantized {w.type} weights are refused: only int is packed")
    if w.num_bits not in PACKED_BITS:
        raise _refuse(g, f"pack-quantized num_bits={w.num_bits} is refused: compressed-"
                         "tensors packs 3, 5, 6 and 7 bits differently across releases (dense "
                         "or 32 // bits per word), so the layout is ambiguous; 2, 4 and 8 are "
                         "accepted")
    if w.strategy not in ("group", "channel", "tensor"):
        raise _refuse(g, f"pack-quantized strategy {w.strategy!r} is refused: only group, "
                         "channel and tensor scales map onto MLX's groups")
    return Route.PACKED_INT


@dataclasses.dataclass(frozen=True)
class CompressedTensorsConfig:
    """A parsed compressed-tensors ``quantization_config``.

    >>> cfg = parse_config({"quant_method": "compressed-tensors", "format": "pack-quantized",
    ...     "config_groups": {"group_0": {"targets": ["Linear"],
    ...         "weights": {"num_bits": 4, "type": "int", "symmetric": True,
    ...                     "strategy": "group", "group_size": 32}}},
    ...     "ignore": ["lm_head", "re:.*self_attn.*"]})
    >>> cfg.group_for("model.layers.0.mlp.experts.1.down_proj").route
    <Route.PACKED_INT: 'packed-int'>
    >>> cfg.group_for("model.layers.0.self_attn.q_proj") is None
    True
    """

    format: str
    groups: tuple[ConfigGroup, ...]
    ignore: tuple[str, ...] = ()
    quantization_status: Optional[str] = None

    def is_ignored(self, layer: str, class_name: str = "Linear") -> bool:
        return any(_match(layer, class_name, t) for t in self.ignore)

    def group_for(self, layer: str, class_name: str = "Linear") -> Optional[ConfigGroup]:
        """The first group targeting ``layer`` unless ``ignore`` lists it; None means the
        layer is stored dense."""
        if self.is_ignored(layer, class_name):
            return None
        for g in self.groups:
            if g.matches(layer, class_name):
                return g
        return None

    def validate(self) -> None:
        """Raises for the first group whose variant mlxq refuses."""
        for g in self.groups:
            _route(g)


def parse_config(quantization_config: Mapping[str, Any]) -> CompressedTensorsConfig:
    """Decodes a compressed-tensors ``quantization_config`` (the dict, as in config.json).

    Raises ParseError for a malformed one (naming the key), UnsupportedFormatError for a
    sparse checkpoint; the quantization variants mlxq refuses are reported per group by
    :attr:`ConfigGroup.route` and :meth:`CompressedTensorsConfig.validate`.
    """
    qc = quantization_config
    if not isinstance(qc, Mapping):
        raise ParseError(f"quantization_config must be an object, got {type(qc).__name__}")
    if qc.get("quant_method") != "compressed-tensors":
        raise ParseError(f"quant_method is {qc.get('quant_method')!r}, not 'compressed-tensors'")
    top = qc.get("format", "dense")
    if not isinstance(top, str):
        raise ParseError(f"format must be a string, got {top!r}")
    if qc.get("sparsity_config"):
        raise UnsupportedFormatError("sparsity_config is set: sparse compressed-tensors "
                                     "checkpoints are refused; decompress them first")
    groups_in = qc.get("config_groups") or {}
    if not isinstance(groups_in, Mapping):
        raise ParseError("config_groups must be an object of name -> group")
    groups = []
    for name, g in groups_in.items():
        what = f"config_groups.{name}"
        if not isinstance(g, Mapping):
            raise ParseError(f"{what} must be an object")
        targets = g.get("targets") or []
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ParseError(f"{what}.targets must be a list of strings")
        w = g.get("weights")
        scheme = None if w is None else WeightScheme.from_dict(w, f"{what}.weights")
        fmt = g.get("format") or top
        if not isinstance(fmt, str):
            raise ParseError(f"{what}.format must be a string, got {fmt!r}")
        groups.append(ConfigGroup(str(name), tuple(targets), scheme, fmt))
    ignore = qc.get("ignore") or []
    if not isinstance(ignore, list) or not all(isinstance(t, str) for t in ignore):
        raise ParseError("ignore must be a list of strings")
    status = qc.get("quantization_status")
    return CompressedTensorsConfig(top, tuple(groups), tuple(ignore),
                                   status if isinstance(status, str) else None)


def detect(config: Mapping[str, Any]) -> Optional[CompressedTensorsConfig]:
    """The compressed-tensors config of a model ``config.json`` dict (its
    ``quantization_config``, or its ``text_config``'s as mlx-lm also looks there), or None
    when the model is not a compressed-tensors checkpoint.

    >>> detect({"quantization_config": {"quant_method": "fp8"}}) is None
    True
    """
    if not isinstance(config, Mapping):
        raise ArgumentTypeError(f"config must be a mapping, got {type(config).__name__}")
    qc = config.get("quantization_config")
    if qc is None and isinstance(config.get("text_config"), Mapping):
        qc = config["text_config"].get("quantization_config")
    if not isinstance(qc, Mapping) or qc.get("quant_method") != "compressed-tensors":
        return None
    return parse_config(qc)


# ---- tensors -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class AffineTriple:
    """MLX affine ``(wq, scales, biases)`` plus the ``group_size`` and ``bits`` to pass to
    ``mx.dequantize`` / ``mlxq.dequantize``; unpacks as the three arrays."""

    wq: np.ndarray
    scales: np.ndarray
    biases: np.ndarray
    group_size: int
    bits: int

    def __iter__(self):
        return iter((self.wq, self.scales, self.biases))


def _shape2(weight_shape: object) -> tuple[int, int]:
    try:
        vals = np.asarray(weight_shape).reshape(-1).tolist()
    except (TypeError, ValueError):  # ragged sequences and the like
        vals = None
    if (vals is None or len(vals) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in vals)):
        raise ArgumentTypeError(f"weight_shape must be two ints (out, in), got {weight_shape!r}")
    out, inn = (int(v) for v in vals)
    if out < 0 or inn < 0:
        raise OutOfRangeError(f"weight_shape=({out}, {inn}) must not be negative")
    return out, inn


def _check_bits(num_bits: object) -> int:
    if isinstance(num_bits, bool) or not isinstance(num_bits, numbers.Integral):
        raise ArgumentTypeError(f"num_bits must be an int, got {num_bits!r}")
    if int(num_bits) not in PACKED_BITS:
        raise OutOfRangeError(f"num_bits={num_bits} is not supported; 2, 4 and 8 are")
    return int(num_bits)


def _packed_inputs(weight_packed: object, weight_scale: object, weight_shape: object,
                   num_bits: object) -> tuple[np.ndarray, np.ndarray, int, int, int, int]:
    """Checked (packed, scale [out, groups], out, in, bits, group_size)."""
    p = _as_array(weight_packed, "weight_packed")
    s = _as_array(weight_scale, "weight_scale")
    bits = _check_bits(num_bits)
    if p.dtype not in (np.dtype(np.int32), np.dtype(np.uint32)):
        raise UnsupportedDtypeError(f"weight_packed must be int32 (or uint32), got {p.dtype}")
    if s.dtype not in (np.dtype(np.float32), bfloat16, np.dtype(np.float16)):
        raise UnsupportedDtypeError(
            f"weight_scale must be float32, bfloat16 or float16, got {s.dtype}")
    if p.ndim != 2:
        raise RankMismatchError(f"weight_packed must be 2-D [out, words], got shape {p.shape}")
    out, inn = _shape2(weight_shape)
    words = -(-inn * bits // 32)
    if p.shape != (out, words):
        raise ShapeMismatchError(
            f"weight_packed has shape {p.shape}, expected ({out}, {words}) for weight_shape "
            f"({out}, {inn}) at {bits} bits")
    if s.ndim == 0 or s.size == 1 and s.ndim == 1:  # strategy "tensor"
        s = np.broadcast_to(s.reshape(1, 1), (out, 1))
    if s.ndim != 2 or s.shape[0] != out or s.shape[1] < 1:
        raise ShapeMismatchError(
            f"weight_scale has shape {s.shape}, expected ({out}, groups) for weight_shape "
            f"({out}, {inn})")
    groups = s.shape[1]
    if inn % groups:
        raise ShapeMismatchError(
            f"weight_scale has {groups} groups per row, which does not divide in={inn}")
    return p, s, out, inn, bits, inn // groups


def to_mlx_affine(
    weight_packed: np.ndarray,
    weight_scale: np.ndarray,
    weight_shape: object,
    *,
    num_bits: int = 4,
    rows: Rows = None,
) -> AffineTriple:
    """A pack-quantized Linear as MLX affine ``(wq, scales, biases)``, as mlx-lm's remap.

    ``wq`` is ``weight_packed``'s words as uint32 (a view, no copy), ``scales`` the scales
    and ``biases = -2^(num_bits-1) * scales`` rounded to the scale dtype the way MLX's
    ``-8 * s`` is (exact but for overflow; NaN as MLX writes it). mlx-lm hard-codes the 8,
    i.e. num_bits 4; 2 and 8 bits use the same rule with their own zero point.

    A producer group that MLX cannot hold (channel or tensor scales, groups of 256, ...) is
    re-expressed with the largest MLX group size (128, 64, 32) dividing it, its scale
    repeated, so the dequantized values are the same; mlx-lm would fail to load those.

    Args:
        weight_packed: int32 (or uint32) ``[out, in * num_bits / 32]``.
        weight_scale: float32 / bfloat16 / float16 ``[out, in / group_size]`` (``[out, 1]``
            per channel, one value per tensor).
        weight_shape: ``(out, in)``, e.g. the ``weight_shape`` tensor.
        rows: ``(start, stop)``: only those output rows (views of the same rows).

    Raises:
        UnsupportedDtypeError, RankMismatchError, ShapeMismatchError, DivisibilityError
        (a group no MLX group size divides), OutOfRangeError, ArgumentTypeError.
    """
    p, s, out, inn, bits, group = _packed_inputs(weight_packed, weight_scale, weight_shape,
                                                 num_bits)
    mlx_group = mlx_group_size(group, inn)
    if mlx_group is None:
        raise DivisibilityError(
            f"weight_scale's group size {group} (in={inn}) cannot be expressed in MLX: it "
            "must be a multiple of 32 (MLX groups are 32, 64 or 128 wide)")
    r0, r1 = _rows(rows, out)
    wq = p[r0:r1].view(np.uint32)
    scales = regroup(s[r0:r1], group, mlx_group, inn)
    if not scales.flags.c_contiguous:
        scales = np.ascontiguousarray(scales)  # a broadcast tensor-strategy scale
    zero = float(1 << (bits - 1))
    with np.errstate(over="ignore", invalid="ignore"):
        # MLX: multiply(scales, -8) in the scale dtype, i.e. a float32 product rounded to it
        prod = scales.astype(np.float32) * np.float32(-zero)
    biases = prod if scales.dtype == np.float32 else astype(prod, scales.dtype)
    return AffineTriple(wq, scales, biases, mlx_group, bits)


Formula = Literal["mlx", "compressed-tensors"]


def dequantize_pack_quantized(
    weight_packed: np.ndarray,
    weight_scale: np.ndarray,
    weight_shape: object,
    dtype: object = None,
    *,
    num_bits: int = 4,
    formula: Formula = "mlx",
    rows: Rows = None,
    impl: Impl = "fast",
) -> np.ndarray:
    """Dense values ``[out, in]`` of a pack-quantized Linear.

    Two formulas, which disagree in the last bit of many elements (the MLX one rounds twice):

    - ``"mlx"`` (default): ``mx.dequantize`` of :func:`to_mlx_affine`'s triple, i.e.
      ``T(T(code * s) + T(-2^(bits-1) * s))`` in the scale dtype ``T``: what
      ``mlx_lm.convert -d`` writes for such a checkpoint, and what the kept MLX layers hold;
    - ``"compressed-tensors"``: the producer's ``x_q.to(scale.dtype) * scale``, i.e.
      ``T((code - 2^(bits-1)) * s)`` rounded once (what compressed-tensors' decompressor
      gives; any group size).

    Args:
        weight_packed, weight_scale, weight_shape, num_bits, rows: as for
            :func:`to_mlx_affine`.
        dtype: float16, bfloat16 or float32 (float64 too for ``"mlx"``); default the scale
            dtype (MLX's default, and compressed-tensors').
        formula: ``"mlx"`` or ``"compressed-tensors"``.
        impl: ``"fast"`` or ``"reference"``; identical results.
    """
    if formula == "mlx":
        t = to_mlx_affine(weight_packed, weight_scale, weight_shape, num_bits=num_bits,
                          rows=rows)
        return dequantize(t.wq, t.scales, t.biases, group_size=t.group_size, bits=t.bits,
                          dtype=dtype, impl=impl)
    if formula != "compressed-tensors":
        raise UnknownEnumValueError(
            f"formula={formula!r} is not a dequantization formula; expected 'mlx' or "
            "'compressed-tensors'")
    p, s, out, inn, bits, group = _packed_inputs(weight_packed, weight_scale, weight_shape,
                                                 num_bits)
    odt = s.dtype if dtype is None else float_dtype(dtype, "dtype")
    r0, r1 = _rows(rows, out)
    return _core.packint_dequant(p[r0:r1], code_of(p.dtype, "weight_packed"), bits, s[r0:r1],
                                 code_of(s.dtype, "weight_scale"), inn, group, odt,
                                 code_of(odt, "dtype"), _impl_code(impl))


def to_mlx_mxfp4(weight_packed: np.ndarray, weight_scale: np.ndarray, *,
                 rows: Rows = None) -> tuple[np.ndarray, np.ndarray]:
    """An ``mxfp4-pack-quantized`` Linear as MLX mxfp4 ``(wq, scales)``, byte for byte.

    compressed-tensors stores ``weight_packed`` uint8 ``[out, in / 2]``, two E2M1 codes per
    byte (the even element in the low nibble, codes in MLX's table order) and
    ``weight_scale`` uint8 ``[out, in / 32]``, E8M0 exponents with bias 127: MLX's mxfp4
    layout once the bytes are read as little-endian uint32 (mlx-lm maps the format to mxfp4
    with group size 32).

    >>> import numpy as np
    >>> wq, sc = to_mlx_mxfp4(np.zeros((2, 16), np.uint8), np.full((2, 1), 127, np.uint8))
    >>> wq.dtype, wq.shape, sc.shape
    (dtype('uint32'), (2, 4), (2, 1))
    """
    p = _as_array(weight_packed, "weight_packed")
    s = _as_array(weight_scale, "weight_scale")
    for name, a in (("weight_packed", p), ("weight_scale", s)):
        if a.dtype != np.uint8:
            raise UnsupportedDtypeError(f"{name} must be uint8, got {a.dtype}")
        if a.ndim != 2:
            raise RankMismatchError(f"{name} must be 2-D, got shape {a.shape}")
    out, half = p.shape
    if half % 16:
        raise DivisibilityError(f"weight_packed has {half} bytes per row; MLX's mxfp4 needs a "
                                "multiple of 16 (inputs in groups of 32)")
    if s.shape != (out, half // 16):
        raise ShapeMismatchError(f"weight_scale has shape {s.shape}, expected "
                                 f"({out}, {half // 16}): one E8M0 scale per 32 inputs")
    r0, r1 = _rows(rows, out)
    wq = np.ascontiguousarray(p[r0:r1]).view("<u4").astype(np.uint32, copy=False)
    return wq, s[r0:r1]
