"""The already-quantized layers of an MLX checkpoint: found, verified, never guessed.

A layer ``P`` is stored quantized when the checkpoint has ``P.scales``: then ``P.weight``
holds packed ``uint32`` words, affine layers also have ``P.biases``, and an nvfp4 layer may
have ``P.global_scale``. Its parameters are read the way ``mlx_lm.load`` reads them:

- a per-layer entry of the config's ``quantization`` block wins. An object is passed to
  ``to_quantized`` verbatim (no ``mode`` means affine; a null ``group_size``/``bits`` means
  the mode's default); ``true`` means the global parameters; ``false`` means "not
  quantized", which contradicts a ``P.scales``;
- otherwise the bits and mode come from the block's global entry, and the input width and
  group size follow from the shapes: ``in = weight.shape[-1] * 32 / bits`` and
  ``group_size = in / scales.shape[-1]``. So a 4-bit layer stored with groups of 128 under a
  block that says 4-bit g64 reads as g128, as mlx-lm's ``infer_quant_config`` reads it.

Everything is checked, and any inconsistency is a :class:`~mlxq.errors.FormatError` naming
the layer: widths that are not a whole number of values or groups, group sizes and bits
MLX does not support in that mode, an entry that contradicts the shapes (or names a layer stored dense), leading
dimensions that differ between weight, scales and biases, ``uint8`` scales in affine mode
or float scales in an fp mode, a missing or superfluous ``P.biases``, a weight that is not
``uint32``, a ``P.scales`` without ``P.weight``, a packed ``uint32`` weight without
``P.scales``, and quantized tensors in a checkpoint whose config has no block. Where the
architecture knows the module's true input width from the config (the hidden size for the
token embedding, the attention and MLP inputs, ...), a reading whose width differs is
refused as well: the block's bits contradict the tensors, and only a per-layer entry can
say what the layer really holds.

>>> import numpy as np
>>> from mlxq.tensorspec import TensorSpec as T
>>> u32, bf16 = np.dtype(np.uint32), np.dtype(np.float16)
>>> specs = {"l.weight": T((8, 32), u32), "l.scales": T((8, 2), bf16),
...          "l.biases": T((8, 2), bf16)}
>>> stored_layers(specs, {"group_size": 64, "bits": 4})["l"]
StoredLayer(path='l', group_size=128, bits=4, mode='affine', in_features=256, biases=True, global_scale=False)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .config import SKIP, PerLayerQuantization, Quantization
from .errors import FormatError, MlxqError, ParseError
from .quant import QuantMode, check_params
from .tensorspec import TensorSpec

__all__ = ["StoredLayer", "parse_block", "stored_layers"]

# Dtypes are compared by numpy name: a spec's dtype may be a numpy dtype or that name
# (``mlxq inspect`` reads headers without loading ml_dtypes, which holds bfloat16).
_FLOAT_SCALES = ("float16", "bfloat16", "float32")
# infer_quant_config: the one (bits, group size) each fp mode allows
_FP_MODES = {(4, 16): "nvfp4", (4, 32): "mxfp4", (8, 32): "mxfp8"}


def _name(dt: Any) -> Optional[str]:
    if dt is None or isinstance(dt, str):
        return dt
    return np.dtype(dt).name


def _is_float_scale(dt: Any) -> bool:
    return _name(dt) in _FLOAT_SCALES


@dataclasses.dataclass(frozen=True)
class StoredLayer:
    """One stored quantized layer, as ``mlx_lm.load`` reads it."""

    path: str
    group_size: int
    bits: int
    mode: str
    in_features: int
    biases: bool
    global_scale: bool

    def describe(self) -> str:
        """``"affine 4-bit g64"``."""
        return f"{self.mode} {self.bits}-bit g{self.group_size}"


def parse_block(block: Any) -> PerLayerQuantization:
    """The config's ``quantization`` block decoded and validated: types (ParseError naming
    the key) and values MLX supports (InvalidArgumentError naming the key and layer)."""
    if not isinstance(block, Mapping):
        raise ParseError(f"config.json: 'quantization' must be an object, got "
                         f"{type(block).__name__} {block!r:.60}", key="quantization")
    try:
        q = PerLayerQuantization.from_dict(block)
    except MlxqError as e:
        raise type(e)(f"config.json: quantization: {e.message}", key=e.key) from None
    q.check_supported()
    return q


def stored_layers(specs: Mapping[str, TensorSpec], block: Any,
                  in_features: Optional[Callable[[str], Optional[int]]] = None
                  ) -> dict[str, StoredLayer]:
    """Every stored quantized layer of a checkpoint (tensor name -> spec: a
    :class:`~mlxq.tensorspec.TensorSpec`, or anything with its ``shape`` and ``size`` and a
    ``dtype`` given as numpy's name of it, ``"bfloat16"``), verified against
    the config's ``quantization`` block (``None`` when the config has none) and, where
    ``in_features(path)`` knows it (the architecture's width of that module for the
    config), the layer's true input width. See the module docstring for the rules.

    Raises:
        FormatError: naming the layer, for any inconsistency.
        ParseError / InvalidArgumentError / UnknownEnumValueError: a malformed block.
    """
    layers = sorted(n[: -len(".scales")] for n in specs if n.endswith(".scales"))
    packed = sorted(n[: -len(".weight")] for n, s in specs.items()
                    if n.endswith(".weight") and _name(s.dtype) == "uint32"
                    and n[: -len(".weight")] + ".scales" not in specs)
    if packed:
        p = packed[0]
        raise FormatError(f"{p}.weight is packed uint32 but there is no {p}.scales: a "
                          "quantized layer stores its scales beside its weight", layer=p)
    if block is None:
        if not layers:
            return {}
        raise FormatError(f"tensors such as {layers[0]}.scales are quantized but config.json "
                          "has no 'quantization' block (mlx-lm needs it to read them)",
                          layer=layers[0])
    plq = parse_block(block)
    for path, entry in block.items():
        if (isinstance(entry, Mapping) or entry is True) and path + ".scales" not in specs \
                and path + ".weight" in specs:
            raise FormatError(f"config.json's quantization block says it is quantized "
                              f"({entry!r}), but the checkpoint has no {path}.scales (a dense "
                              f"{path}.weight instead)", layer=path)
    return {p: _read_layer(p, specs, block, plq, in_features) for p in layers}


def _read_layer(path: str, specs: Mapping[str, TensorSpec], block: Mapping[str, Any],
                plq: PerLayerQuantization,
                in_features: Optional[Callable[[str], Optional[int]]]) -> StoredLayer:
    def fail(msg: str, key: Optional[str] = None) -> FormatError:
        return FormatError(msg, layer=path, key=key)

    w = specs.get(path + ".weight")
    s = specs[path + ".scales"]
    b = specs.get(path + ".biases")
    g = specs.get(path + ".global_scale")
    if w is None:
        raise fail(f"{path}.scales has no {path}.weight beside it")
    if _name(w.dtype) != "uint32":
        what = _name(w.dtype) or "a sub-byte dtype"
        raise fail(f"weight is {what}, but a quantized layer (it has {path}.scales) packs its "
                   "weight into uint32 words")
    if len(w.shape) < 2 or len(s.shape) != len(w.shape) or w.shape[:-1] != s.shape[:-1]:
        raise fail(f"weight {list(w.shape)} and scales {list(s.shape)} must have the same "
                   "rank (at least 2) and leading dimensions")
    if w.shape[-1] == 0 or s.shape[-1] == 0:
        raise fail(f"weight {list(w.shape)} or scales {list(s.shape)} has no columns")

    entry = block.get(path)
    named = entry is not None and not isinstance(entry, bool)
    if entry is False:
        raise fail(f"config.json's quantization block marks it false (not quantized), but the "
                   f"checkpoint has {path}.scales")
    q: Quantization = plq.per_layer[path] if named else plq.quantization  # type: ignore
    if q is None or q is SKIP:  # pragma: no cover - parse_block guarantees a global entry
        raise fail("no quantization parameters for it")
    mode = QuantMode(q.mode).value
    if mode == "affine" and not _is_float_scale(s.dtype):
        raise fail(f"scales are {_name(s.dtype)}, but mode 'affine' stores float16/bfloat16/float32 "
                   "scales (uint8 scales belong to mxfp4/mxfp8/nvfp4)")
    if mode != "affine" and _name(s.dtype) != "uint8":
        raise fail(f"scales are {_name(s.dtype)}, but mode {mode!r} stores uint8 scales (float "
                   "scales belong to mode 'affine'); config.json's quantization block and the "
                   "tensors disagree")
    words, groups = w.shape[-1], s.shape[-1]
    bits = q.bits
    known = in_features(path) if in_features is not None and not named else None
    if entry is None and mode != "affine" and known and (words * 32) % known == 0 \
            and known % groups == 0:
        # mlx-lm's infer_quant_config: a layer the block does not name is read at the
        # module's true input width, and uint8 scales name the mode their (bits, group
        # size) allow (DeepSeek-V4.1 keeps mxfp4 experts beside mxfp8 layers under one
        # mxfp8 block)
        inferred = _FP_MODES.get((words * 32 // known, known // groups))
        if inferred is not None:
            mode, bits = inferred, words * 32 // known
    if (words * 32) % bits:
        raise fail(f"weight has {words} uint32 words per row, not a whole number of "
                   f"{bits}-bit values")
    width = words * 32 // bits
    if width % groups:
        raise fail(f"{width} {bits}-bit values per row do not split into {groups} "
                   "groups")
    gs = width // groups
    source = f"per-layer entry {entry!r}" if named else (
        f"global {bits}-bit block" if entry is None else "entry true (global parameters)")
    if (named or entry is True) and gs != q.group_size:
        raise fail(f"config.json's {source} says group size {q.group_size}, but weight "
                   f"{list(w.shape)} with scales {list(s.shape)} has groups of {gs} at "
                   f"{bits} bits")
    try:
        check_params(mode, gs, bits)
    except MlxqError:
        raise fail(f"weight {list(w.shape)} with scales {list(s.shape)} read with the "
                   f"{source} gives {bits}-bit groups of {gs}, which mode {mode!r} does not "
                   "support; the block's bits contradict the tensors", key="bits") from None
    if known is not None and known != width:
        raise fail(f"read with the {source} its input width would be {width}, but the "
                   f"model's input width there is {known} (from config.json): the block's "
                   "bits contradict the tensors (add a per-layer entry with its real bits "
                   "and group size)", key="bits")
    if mode == "affine":
        if b is None:
            raise fail(f"mode 'affine' needs {path}.biases beside {path}.scales; it is missing")
        if b.shape != s.shape or not _is_float_scale(b.dtype):
            raise fail(f"biases {_name(b.dtype)} {list(b.shape)} must match scales "
                       f"{_name(s.dtype)} "
                       f"{list(s.shape)} in shape and be floating")
    elif b is not None:
        raise fail(f"mode {mode!r} has no biases, but the checkpoint has {path}.biases")
    if g is not None:
        if mode != "nvfp4":
            raise fail(f"{path}.global_scale belongs to mode 'nvfp4', not {mode!r}")
        if g.size != 1 or _name(g.dtype) != "float32":
            raise fail(f"global_scale must be one float32, got {_name(g.dtype)} "
                       f"{list(g.shape)}")
    return StoredLayer(path, gs, bits, mode, width, b is not None, g is not None)
