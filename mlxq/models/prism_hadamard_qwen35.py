"""mlx-lm's ``models/prism_hadamard_qwen35.py``: Prism ML's Hadamard packs of Qwen3.5
(Ternary Bonsai 2), already MLX checkpoints. The projections and the embedding that the
config's ``modules`` manifest names are 2-bit affine layers (groups of 128) with a signed
Walsh-Hadamard rotation folded into their input axis: mlx-lm's model builds them as its own
``HadamardQuantizedLinear``/``HadamardQuantizedEmbedding``, with ``weight``, ``scales``,
``biases`` and, for a rotated one (``block`` > 0), ``signs``. Those modules have no
``to_quantized``: a conversion keeps them as they are (``-q`` quantizes only the dense rest;
``--dtype`` casts their scales, biases and signs like any floating parameter).

``ModelArgs`` and ``Model.__init__`` refuse a pack whose schema and namespace do not match,
whose quantization is not 2-bit affine in groups of 128, whose manifest is empty, names a
module twice, names something that is not one of the text model's ``Linear``/``Embedding``
modules (or with the wrong kind, or a Linear with a bias), declares another dtype than
float16, or a block mlx-lm does not accept for the module's width. ``sanitize`` is qwen3_5's, then every rotated
record must have its ``signs`` (a missing one is refused by name) holding only -1 and +1
(checked when the values are read).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from ..conversion.graph import checked
from ..errors import FormatError, ParseError
from . import qwen3_5
from .base import Family, Order
from .common import Weights

_NAMESPACES = {1: "mlx-lm-text", 2: "mlx-vlm-qwen3_5"}
_QUANTIZATION = {"bits": 2, "group_size": 128, "mode": "affine"}
_BLOCKS = (0, 512, 1024, 2048, 4096, 8192)
#: qwen3_5's nn.Linear / nn.Embedding modules (by their attribute name)
_LINEAR = ("in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj", "q_proj",
           "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj", "gate",
           "shared_expert_gate", "lm_head")
_EMBEDDING = ("embed_tokens",)


def pack_modules(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``modules`` manifest, after ``ModelArgs.__post_init__``'s checks and the
    record checks of ``Model.__init__`` that the config alone decides."""
    schema = config.get("schema_version", 2)
    namespace = config.get("tensor_namespace", "")
    if _NAMESPACES.get(schema) != namespace:
        raise ParseError(f"Unsupported Hadamard pack: schema {schema!r}, namespace "
                         f"{namespace!r}", key="tensor_namespace")
    if config.get("gdn_activation_layout", "grouped") != "grouped":
        raise ParseError("Hadamard packs require grouped GDN activations",
                         key="gdn_activation_layout")
    if config.get("quantization", {}) != _QUANTIZATION:
        raise ParseError("Hadamard packs require 2-bit affine weights, group size 128",
                         key="quantization")
    attention_bias = qwen3_5.text_config(config).get("attention_bias", False)
    modules = config.get("modules", [])
    if not modules or not isinstance(modules, list):
        raise ParseError("Hadamard pack is missing its packed module manifest", key="modules")
    seen: set[str] = set()
    for record in modules:
        path = record.get("path") if isinstance(record, Mapping) else None
        if not isinstance(path, str):
            raise ParseError(f"Hadamard pack: a module record without a path: {record!r:.80}",
                             key="modules")
        if path in seen:
            raise ParseError(f"Duplicate packed module: {path}", key="modules")
        seen.add(path)
        leaf = path.rpartition(".")[2]
        if leaf not in _LINEAR + _EMBEDDING:
            raise ParseError(f"Unknown or unsupported packed module: {path}", key="modules")
        if record.get("embedding") != (leaf in _EMBEDDING):
            raise ParseError(f"Packed module kind mismatch: {path}", key="modules")
        if attention_bias and leaf in ("q_proj", "k_proj", "v_proj", "o_proj"):
            raise ParseError(f"Packed linear with a bias is unsupported: {path}", key="modules")
        if record.get("dtype") != "float16":
            raise ParseError(f"Unsupported packed activation dtype: {path}", key="modules")
        if record.get("block") not in _BLOCKS:
            raise ParseError(f"Invalid Hadamard block {record.get('block')!r} for {path}",
                             key="modules")
    return modules


def _signs_ok(a: np.ndarray) -> bool:
    return bool(np.all((a == 1) | (a == -1)))


def sanitize(weights: Weights, config) -> Weights:
    modules = pack_modules(config)
    weights = qwen3_5.sanitize(weights, config)
    for record in modules:
        # HadamardQuantizedLinear: the packed input width (16 codes a word) must divide into
        # groups of 128 and, when rotated, into the block
        w = weights.get(f"language_model.{record['path']}.weight")
        if w is not None and w.ndim == 2:
            width = w.shape[-1] * 16
            if width % 128:
                raise FormatError(f"Packed input width must be divisible by 128: "
                                  f"{record['path']}", key=record["path"])
            if record["block"] and width % record["block"]:
                raise FormatError(f"Invalid Hadamard block {record['block']} for width "
                                  f"{width}: {record['path']}", key=record["path"])
        if not record["block"]:
            continue
        key = f"language_model.{record['path']}.signs"
        if key not in weights:
            raise FormatError(f"Missing Hadamard sign vector: {key}", key=key)
        weights[key] = checked(weights[key], _signs_ok,
                               "Hadamard signs must contain only -1 and +1", key)
    return weights


_PACKED = "(weight scales biases bias signs)"


def order(config) -> Order:
    """qwen3_5's tree, each Linear/Embedding listing what a packed one holds: weight,
    scales, biases (a dense Linear's bias after them), then signs."""
    tree = qwen3_5.order(config).tree
    names = "|".join(_LINEAR + _EMBEDDING)
    return Order(re.sub(rf"\b({names})\b(?!\()", rf"\1{_PACKED}", tree))


FAMILY = Family(
    "prism_hadamard_qwen35", ("prism_hadamard_qwen35",), sanitize, order,
    quant_predicate=qwen3_5.quant_predicate, cast_predicate=qwen3_5.cast_predicate,
    edit_config=qwen3_5.edit_config,
    # mlx-lm's dequantize_model leaves the packed modules as they are (they are not
    # QuantizedLinear) and drops the config's quantization, which the pack's own ModelArgs
    # then refuses: no loader takes that folder
    no_dequantize="a Hadamard pack's modules are 2-bit codes in a rotated basis that "
                  "mlx-lm's dequantize_model does not undo (its output keeps them packed "
                  "without the quantization block its loader requires); convert without "
                  "dequantize")
