"""Per-layer quantization configs: the ``"quantization"`` block of an MLX ``config.json``.

An MLX checkpoint records how it was quantized in one JSON object whose global keys sit
side by side with per-layer entries (mlx-lm's ``quantize_model`` writes it; mlx-swift-lm's
``BaseConfiguration.QuantizationContainer`` reads it)::

    "quantization": {
        "group_size": 64, "bits": 4, "mode": "affine",
        "model.embed_tokens": {"group_size": 32, "bits": 8, "mode": "affine"},
        "model.layers.0.self_attn.q_norm": false
    }

:class:`PerLayerQuantization` is that object as a value: a global :class:`Quantization` (the
default for every layer) plus a map from layer path to an override or :data:`SKIP`.
:func:`parse_quantization` decodes it from a ``config.json`` and
:meth:`PerLayerQuantization.to_dict` encodes it back.

>>> cfg = parse_quantization('{"quantization": {"group_size": 64, "bits": 4, "lm_head": false}}')
>>> cfg.quantization_for("model.layers.0.mlp.up_proj")
Quantization(group_size=64, bits=4, mode=<QuantMode.AFFINE: 'affine'>)
>>> cfg.quantization_for("lm_head") is None
True
>>> cfg.to_dict()
{'group_size': 64, 'bits': 4, 'mode': 'affine', 'lm_head': False}
"""

from __future__ import annotations

import dataclasses
import enum
import json
import numbers
import os
import types
from typing import Any, Mapping, Optional, Union

from .errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    MlxqIOError,
    ParseError,
    UnknownEnumValueError,
)
from .errors import OutOfRangeError
from .quant import QuantMode, check_params, default_params

__all__ = [
    "RESERVED_KEYS",
    "SKIP",
    "PerLayerQuantization",
    "Quantization",
    "QuantizationOption",
    "parse_quantization",
]

# Keys of the block that are never layer paths: the three Quantization fields plus the
# interop tags some checkpoints carry next to them (mlx-swift-lm's
# `QuantizationContainer.init(from:)` list, verbatim).
RESERVED_KEYS: frozenset[str] = frozenset(
    {"group_size", "bits", "mode", "quant_method", "linear_class", "quantization_mode"}
)


class _Skip(enum.Enum):
    """Type of :data:`SKIP` (an enum so the marker stays a singleton through copy/pickle)."""

    SKIP = "skip"

    def __repr__(self) -> str:
        return "SKIP"


#: Per-layer "do not quantize this layer"; ``false`` in ``config.json``.
SKIP = _Skip.SKIP


def _int_field(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class Quantization:
    """The parameters of one quantization: ``mx.quantize``'s ``group_size``, ``bits``, ``mode``.

    Only types are checked here; which (group_size, bits) pairs a mode accepts is the
    kernels' business and is reported when a weight is actually quantized (per-mode rules
    live at the quantize call, in one place).

    >>> Quantization(64, 4)
    Quantization(group_size=64, bits=4, mode=<QuantMode.AFFINE: 'affine'>)
    >>> Quantization(32, 4, "mxfp4").to_dict()
    {'group_size': 32, 'bits': 4, 'mode': 'mxfp4'}
    """

    group_size: int
    bits: int
    mode: QuantMode = QuantMode.AFFINE

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ (ints from numpy, modes from str).
        object.__setattr__(self, "group_size", _int_field(self.group_size, "group_size"))
        object.__setattr__(self, "bits", _int_field(self.bits, "bits"))
        object.__setattr__(self, "mode", QuantMode.parse(self.mode))

    @classmethod
    def for_mode(cls, mode: Union[str, QuantMode] = QuantMode.AFFINE) -> "Quantization":
        """MLX's default parameters for ``mode`` (what ``mx.quantize`` uses when given None).

        >>> Quantization.for_mode("nvfp4")
        Quantization(group_size=16, bits=4, mode=<QuantMode.NVFP4: 'nvfp4'>)
        """
        group_size, bits = default_params(mode)
        return cls(group_size, bits, mode)

    def check_supported(self, *, layer: Optional[str] = None) -> None:
        """Raises InvalidArgumentError naming the key (``group_size`` or ``bits``, and the
        layer) unless MLX's kernels accept these parameters (see
        :func:`mlxq.quant.check_params`).

        >>> Quantization(7, 3).check_supported()
        Traceback (most recent call last):
        ...
        mlxq.errors.InvalidArgumentError: group_size=7 is not supported by mode 'affine'; supported group sizes are 32, 64 and 128
        """
        try:
            check_params(self.mode, self.group_size, self.bits)
        except OutOfRangeError as e:
            key = "group_size" if e.message.startswith("group_size") else "bits"
            raise InvalidArgumentError(e.message, layer=layer, key=key) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object mlx-lm writes for these parameters (``mode`` always included,
        as ``quantize_model`` does)."""
        return {"group_size": self.group_size, "bits": self.bits, "mode": self.mode.value}


#: What a per-layer entry holds: parameters that override the global ones, or :data:`SKIP`.
QuantizationOption = Union[Quantization, _Skip]


@dataclasses.dataclass(frozen=True)
class PerLayerQuantization:
    """A global :class:`Quantization` plus per-layer overrides, keyed by layer path.

    Args:
        quantization: the default for every layer not named in ``per_layer``; ``None`` means
            "only the layers named in ``per_layer`` are quantized".
        per_layer: layer path (a weight name without ``.weight``, e.g.
            ``"model.layers.0.self_attn.q_proj"``) to a :class:`Quantization` or :data:`SKIP`.
            Copied; the stored mapping is read-only.

    >>> cfg = PerLayerQuantization(Quantization(64, 4), {"lm_head": Quantization(64, 6)})
    >>> cfg.quantization_for("lm_head").bits, cfg.quantization_for("model.embed_tokens").bits
    (6, 4)
    """

    quantization: Optional[Quantization] = None
    per_layer: Mapping[str, QuantizationOption] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quantization is not None and not isinstance(self.quantization, Quantization):
            raise ArgumentTypeError(
                "quantization must be a Quantization or None, got "
                f"{type(self.quantization).__name__}"
            )
        if not isinstance(self.per_layer, Mapping):
            raise ArgumentTypeError(
                f"per_layer must be a mapping, got {type(self.per_layer).__name__}"
            )
        copy: dict[str, QuantizationOption] = {}
        for path, option in self.per_layer.items():
            if not isinstance(path, str):
                raise ArgumentTypeError(f"per_layer keys must be str, got {path!r}")
            if path in RESERVED_KEYS:
                # It could never be written to (or read back from) config.json as a layer.
                raise InvalidArgumentError(
                    f"{path!r} is a reserved key of the quantization block, not a layer path",
                    key=path,
                )
            if not (option is SKIP or isinstance(option, Quantization)):
                raise ArgumentTypeError(
                    f"per-layer value must be a Quantization or SKIP, got {option!r}",
                    layer=path,
                )
            copy[path] = option
        object.__setattr__(self, "per_layer", types.MappingProxyType(copy))

    def __hash__(self) -> int:
        return hash((self.quantization, frozenset(self.per_layer.items())))

    def __reduce__(self) -> tuple:
        # A mappingproxy cannot be pickled; rebuild from a plain dict (copy, pickle,
        # multiprocessing).
        return (type(self), (self.quantization, dict(self.per_layer)))

    def __repr__(self) -> str:
        return (
            f"PerLayerQuantization(quantization={self.quantization!r}, "
            f"per_layer={dict(self.per_layer)!r})"
        )

    def quantization_for(self, path: str) -> Optional[Quantization]:
        """The parameters for layer ``path``, or ``None`` to leave it unquantized.

        An override wins; :data:`SKIP` gives ``None``; otherwise the global default (which
        may itself be ``None``). This is mlx-swift-lm's
        ``PerLayerQuantization.quantization(layer:)``.
        """
        option = self.per_layer.get(path)
        if option is SKIP:
            return None
        if option is not None:
            return option  # type: ignore[return-value]
        return self.quantization

    def check_supported(self) -> None:
        """Raises InvalidArgumentError (naming the key, and the layer for a per-layer
        entry) unless every parameter set here is one MLX's kernels accept."""
        if self.quantization is not None:
            self.quantization.check_supported()
        for path, option in self.per_layer.items():
            if isinstance(option, Quantization):
                option.check_supported(layer=path)

    def to_dict(self) -> dict[str, Any]:
        """The ``"quantization"`` block as mlx-lm writes it into ``config.json``.

        Global ``group_size``, ``bits``, ``mode`` first, then each per-layer entry in order:
        an override as an object, :data:`SKIP` as ``false``.
        ``parse_quantization({"quantization": cfg.to_dict()}) == cfg`` always holds.

        Raises:
            InvalidArgumentError: ``quantization`` is None; the block's global
                ``group_size`` and ``bits`` are required (mlx-lm's loader and
                :func:`parse_quantization` read them unconditionally).
        """
        if self.quantization is None:
            raise InvalidArgumentError(
                "to_dict() needs a global quantization: the config.json block requires "
                "group_size and bits"
            )
        block = self.quantization.to_dict()
        for path, option in self.per_layer.items():
            block[path] = False if option is SKIP else option.to_dict()  # type: ignore[union-attr]
        return block

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> "PerLayerQuantization":
        """Decodes the ``"quantization"`` block itself (see :func:`parse_quantization`)."""
        if not isinstance(block, Mapping):
            raise ParseError(
                f"the quantization block must be a JSON object, got {type(block).__name__}"
            )
        # Required globally: mlx-swift-lm's Quantization has non-optional group_size/bits
        # and mlx-lm's loader indexes them directly.
        for name in ("group_size", "bits"):
            if name not in block:
                raise ParseError(
                    f"the quantization block is missing the required key {name!r}", key=name
                )
        quantization = _decode_quantization(block, layer=None, allow_null=False)
        per_layer: dict[str, QuantizationOption] = {}
        for path, value in block.items():
            if path in RESERVED_KEYS:
                continue
            if value is False:
                per_layer[path] = SKIP
            elif value is True:
                # mlx-swift-lm ignores `true`; mlx-lm quantizes the layer with the global
                # parameters, which is what "no entry" means too.
                continue
            elif isinstance(value, Mapping):
                per_layer[path] = _decode_quantization(value, layer=path, allow_null=True)
            else:
                raise ParseError(
                    "a per-layer quantization entry must be false, true or an object, "
                    f"got {json.dumps(value, default=repr)}",
                    layer=path,
                )
        return cls(quantization, per_layer)


def _decode_quantization(
    obj: Mapping[str, Any], *, layer: Optional[str], allow_null: bool
) -> Quantization:
    """One ``{group_size, bits, [mode]}`` object; other keys are ignored (mlx-lm may add
    ``global_scale`` or ``quantize_input`` to a layer's entry).

    ``allow_null`` (per-layer entries): ``null`` group_size/bits mean MLX's default for the
    mode. mlx-lm 0.32 writes ``"group_size": null`` for every layer of a mixed recipe
    converted without ``--q-group-size``, and its loader hands that None to
    ``to_quantized``, where it means the mode's default. A missing key stays an error
    (mlx-swift-lm's rule too; mlx-lm never omits it).
    """
    raw_mode = obj.get("mode", QuantMode.AFFINE.value)
    if not isinstance(raw_mode, (str, QuantMode)):
        raise ParseError(f"mode must be a string, got {raw_mode!r}", layer=layer, key="mode")
    try:
        mode = QuantMode.parse(raw_mode)
    except UnknownEnumValueError as exc:
        raise UnknownEnumValueError(exc.message, layer=layer, key="mode") from None
    defaults = dict(zip(("group_size", "bits"), default_params(mode)))
    values: dict[str, int] = {}
    for name in ("group_size", "bits"):
        if name not in obj:
            raise ParseError(f"missing the required key {name!r}", layer=layer, key=name)
        value = obj[name]
        if value is None and allow_null:
            value = defaults[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ParseError(
                f"{name} must be an integer, got {json.dumps(value, default=repr)}",
                layer=layer,
                key=name,
            )
        values[name] = int(value)
    return Quantization(values["group_size"], values["bits"], mode)


ConfigSource = Union[str, bytes, "os.PathLike[str]", Mapping[str, Any]]


def parse_quantization(config: ConfigSource) -> Optional[PerLayerQuantization]:
    """Reads the ``"quantization"`` block of a model config.

    Args:
        config: the config as a dict, as JSON text (a ``str`` starting with ``{``, or
            ``bytes``), or as a path to ``config.json`` (a ``str`` or path-like; a directory
            means its ``config.json``).

    Returns:
        The decoded block, or ``None`` when the config has no ``"quantization"`` key or
        it is ``null`` (mlx-lm's ``config.get("quantization")`` treats both as
        "not quantized"). A legacy ``"quantization_config"`` alone is not read.

    Raises:
        ParseError: the text is not JSON, the config is not an object, a global
            ``group_size``/``bits`` is missing, or a value has the wrong type.
            Errors about a per-layer entry carry ``.layer``.
        UnknownEnumValueError: a ``mode`` names no quantization mode.
        MlxqIOError: the file cannot be read.

    Decoding rules: ``group_size`` and ``bits`` are required at the top level, ``mode``
    defaults to affine; the keys in :data:`RESERVED_KEYS` are not layers; any other key is a
    layer path whose value ``false`` means :data:`SKIP`, ``true`` is ignored, an object is an
    override (``mode`` optional; ``null`` group_size/bits mean the mode's default) and
    anything else is an error.

    >>> parse_quantization({"model_type": "llama"}) is None
    True
    >>> cfg = parse_quantization({"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}})
    >>> cfg.quantization == Quantization(32, 4, "mxfp4"), dict(cfg.per_layer)
    (True, {})
    """
    doc = _load_config(config)
    if not isinstance(doc, Mapping):
        raise ParseError(f"a model config must be a JSON object, got {type(doc).__name__}")
    block = doc.get("quantization")
    if block is None:
        return None
    return PerLayerQuantization.from_dict(block)


def _load_config(config: ConfigSource) -> Any:
    if isinstance(config, Mapping):
        return config
    if isinstance(config, bytes):
        return _loads(config, "config JSON")
    if isinstance(config, str) and config.lstrip()[:1] in ("{", "["):
        return _loads(config, "config JSON")
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as exc:
            raise MlxqIOError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return _loads(text, path)
    raise ArgumentTypeError(
        "config must be a dict, JSON text or a path to config.json, got "
        f"{type(config).__name__}"
    )


def _loads(text: Union[str, bytes], what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"{what} is not valid JSON: {exc}") from exc
