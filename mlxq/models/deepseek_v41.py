"""mlx-lm's ``models/deepseek_v41.py`` (DeepSeek-V4.1: manifold-constrained
hyper-connections around each block, compressed sparse attention with grouped low-rank output
projections and per-head sinks, a DeepSeek MoE with a sqrt-softplus router; the
``deepseek_v41_text`` ``model_type`` is routed here by ``MODEL_REMAPPING``).

Its ``Model.sanitize`` turns DeepSeek's release naming into the model's, keeping the FP8 and
FP4 weights packed (a checkpoint whose names already start with ``model.`` is returned
as it is):

- the vision, aligner, image and multi-token-prediction tensors (``vision.``, ``aligner.``,
  ``image_``, ``mtp.``), engram tables (``.engram.``) and the image router bias
  (``gate.bias_vl``) are dropped;
- names are renamed by ``_rename`` (``embed`` -> ``model.embed_tokens``, ``head`` ->
  ``lm_head``, ``attn``/``ffn`` -> ``self_attn``/``mlp``, ``wq_a``/``wq_b``/``wkv``/
  ``wo_a``/``wo_b``/``wgate`` -> the ``*_proj`` names, ``hc_attn_*`` -> ``attn_hc.*``,
  ``attn_sink`` -> ``sinks``, ``gate.bias`` -> ``gate.e_score_correction_bias``, ...);
- an ``X.weight`` with an ``X.scale`` beside it (E4M3 bytes with UE8M0 scales per 32x32
  tile, or FP4 codes with one per 32 inputs) is put in MLX's microscaling layout
  (``_repack``): the weight's bytes read as uint32, the scale as its E8M0 byte (``log2 +
  127`` of a float scale), a tile scale repeated over the tile's 32 rows;
- ``o_a_proj`` (block diagonal) is split into its ``o_groups`` groups;
- routed experts ``layers.L.ffn.experts.E.w{1,2,3}`` are stacked (and repacked) into
  ``mlp.experts.switch_mlp.{gate,down,up}_proj``; a layer whose expert count is not the
  config's is refused.

The hyper-connection mixers, sinks, router bias and compressors keep the source dtype
(``cast_predicate``). The router ``mlp.gate`` is a bare parameter.

>>> FAMILY.casts("model.layers.0.attn_hc.fn"), FAMILY.casts("model.norm.weight")
(False, True)
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from ..conversion import graph
from ..errors import FormatError, ParseError
from . import mx
from .base import Family, Order
from .common import Args, Weights

ATTN = ("self_attn(q_a_proj q_a_norm q_b_proj kv_proj kv_norm o_a_proj o_b_proj sinks "
        "compressor(kv_proj gate_proj kv_norm) indexer(q_b_proj weights_proj k_proj k_norm))")
MLP = ("mlp(gate(weight e_score_correction_bias) experts(switch_mlp(gate_proj up_proj "
       "down_proj)) shared_experts(gate_proj up_proj down_proj))")

_DROP_PREFIXES = ("vision.", "aligner.", "image_", "mtp.")
_EXPERT_KEY = r"layers\.(\d+)\.ffn\.experts\.(\d+)\.(w[123])\.(weight|scale)"
_EXPERT_PROJ = {"w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}


def _rename(key: str) -> str:
    """Map one DeepSeek checkpoint name to its MLX name."""
    if key == "head.weight":
        return "lm_head.weight"
    if key == "embed.weight":
        return "model.embed_tokens.weight"
    key = f"model.{key}"
    key = key.replace(".attn.", ".self_attn.")
    key = key.replace(".ffn.", ".mlp.")
    key = key.replace(".attn_norm.", ".input_layernorm.")
    key = key.replace(".ffn_norm.", ".post_attention_layernorm.")
    key = key.replace(".hc_attn_", ".attn_hc.")
    key = key.replace(".hc_ffn_", ".ffn_hc.")
    key = key.replace(".attn_sink", ".sinks")
    key = key.replace(".wq_a.", ".q_a_proj.")
    key = key.replace(".wq_b.", ".q_b_proj.")
    key = key.replace(".wkv.", ".kv_proj.")
    key = key.replace(".wgate.", ".gate_proj.")
    key = key.replace(".wo_a.", ".o_a_proj.")
    key = key.replace(".wo_b.", ".o_b_proj.")
    key = key.replace(".q_norm.", ".q_a_norm.")
    key = key.replace(".compressor.norm.", ".compressor.kv_norm.")
    key = key.replace(".indexer.wk.", ".indexer.k_proj.")
    key = key.replace(".gate.bias", ".gate.e_score_correction_bias")
    key = key.replace(".shared_experts.w1.", ".shared_experts.gate_proj.")
    key = key.replace(".shared_experts.w2.", ".shared_experts.down_proj.")
    key = key.replace(".shared_experts.w3.", ".shared_experts.up_proj.")
    return key


def _e8m0(scale):
    """``(log2(scale.astype(float32)) + 127).astype(uint8)``: a float power-of-two scale
    as its E8M0 exponent byte (float -> uint8 truncates, as MLX's cast)."""
    def fn(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.log2(graph.cast_rows(a, np.dtype(np.float32))) + np.float32(127)
        return graph.cast_rows(e.astype(np.float32), np.dtype(np.uint8))
    return graph.row_wise(fn, [scale], scale.shape, np.uint8)


def _repack(weight, scale, name: str):
    """Put an fp8 or fp4 weight and its ue8m0 scale in MLX's quantized layout."""
    if scale.dtype.name == "float8_e8m0fnu":
        scale = scale.view(mx.uint8)  # MLX loads F8_E8M0 as uint8: the same bytes
    elif scale.dtype != mx.uint8:
        scale = _e8m0(scale)
    if weight.ndim < 2 or scale.ndim != weight.ndim:
        raise FormatError(f"{name}: weight {list(weight.shape)} and scale "
                          f"{list(scale.shape)} are not a packed matrix and its scales",
                          key=name)
    if scale.shape[-2] != weight.shape[-2]:
        # fp8 keeps one scale per 32x32 tile, MLX one per output row.
        rows = weight.shape[-2]
        if scale.shape[-2] * 32 < rows:
            raise FormatError(f"{name}: {scale.shape[-2]} scale rows cannot cover the "
                              f"weight's {rows} rows in tiles of 32", key=name)
        tiled = mx.stack([scale] * 32, axis=-2)
        scale = tiled.reshape(*scale.shape[:-2], scale.shape[-2] * 32, scale.shape[-1])
        scale = scale[..., :rows, :]
    if (weight.shape[-1] * weight.dtype.itemsize) % 4:
        raise FormatError(f"{name}: {weight.shape[-1]} bytes per row cannot be read as "
                          "uint32 words", key=name)
    return weight.view(mx.uint32), scale


def text_args(config: Mapping[str, Any]) -> Args:
    """``ModelArgs.from_dict``: the ``text_config`` when there is one."""
    text = config.get("text_config", config)
    if not isinstance(text, Mapping):
        raise ParseError("config.json: 'text_config' must be an object", key="text_config")
    return Args(text, n_routed_experts=384, o_groups=8)


def sanitize(weights: Weights, config) -> Weights:
    """Rename the checkpoint keys and keep the fp8/fp4 weights packed."""
    args = text_args(config)
    # A converted checkpoint already has MLX names; the published one never starts a key
    # with "model.".
    if any(key.startswith("model.") for key in weights):
        return weights
    text = {key: value for key, value in weights.items()
            if not key.startswith(_DROP_PREFIXES) and ".engram." not in key}
    clean = Weights()
    experts: dict = {}
    for key, value in text.items():
        expert = re.fullmatch(_EXPERT_KEY, key)
        if expert is not None:
            layer, index, proj, kind = expert.groups()
            layer, index = int(layer), int(index)
            rows = experts.setdefault((layer, proj), {})
            rows.setdefault(index, {})[kind] = value
            continue
        # bias_vl routes image tokens, which the text model never sees.
        if key.endswith(".gate.bias_vl"):
            continue
        if key.endswith(".scale") and f"{key.removesuffix('.scale')}.weight" in text:
            continue
        scale = None
        if key.endswith(".weight"):
            scale = text.get(f"{key.removesuffix('.weight')}.scale")
        name = _rename(key)
        if scale is not None:
            value, scale = _repack(value, scale, name)
        if name.endswith(".o_a_proj.weight"):
            # wo_a is block diagonal, so split it back into its groups.
            value = value.reshape(args.o_groups, -1, value.shape[-1])
            if scale is not None:
                scale = scale.reshape(args.o_groups, -1, scale.shape[-1])
        clean[name] = value
        if scale is not None:
            clean[f"{name.removesuffix('weight')}scales"] = scale

    n_experts = args.n_routed_experts
    for (layer, proj), rows in experts.items():
        if len(rows) != n_experts:
            raise FormatError(f"Layer {layer} has {len(rows)} {proj} expert weights, but the "
                              f"config declares {n_experts} experts.",
                              key=f"layers.{layer}.ffn.experts")
        parts = [rows[index] for index in sorted(rows)]
        name = f"model.layers.{layer}.mlp.experts.switch_mlp.{_EXPERT_PROJ[proj]}"
        missing = [i for i, part in zip(sorted(rows), parts) if "weight" not in part]
        if missing:
            raise FormatError(f"layers.{layer}.ffn.experts.{missing[0]}.{proj} has a scale "
                              "but no weight", key=f"layers.{layer}.ffn.experts.{missing[0]}")
        value = mx.stack([part["weight"] for part in parts])
        if "scale" in parts[0]:
            scales = mx.stack([part["scale"] for part in parts])
            value, scales = _repack(value, scales, name)
            clean[f"{name}.scales"] = scales
        clean[f"{name}.weight"] = value
    return clean


def cast_predicate(k: str) -> bool:
    # The reference runtime keeps these in float32.
    keep = ("attn_hc.", "ffn_hc.", "sinks", "e_score_correction_bias", "compressor.")
    return not any(s in k for s in keep)


FAMILY = Family(
    "deepseek_v41", ("deepseek_v41", "deepseek_v41_text"), sanitize,
    Order(f"model(embed_tokens layers*({ATTN} {MLP} input_layernorm post_attention_layernorm "
          "attn_hc(fn base scale) ffn_hc(fn base scale)) norm) lm_head"),
    cast_predicate=cast_predicate,
    not_quantized=(r"\.mlp\.gate$",),
    source_formats=frozenset({"mxfp8"}),
    widths={"self_attn.q_a_proj": "hidden", "self_attn.q_b_proj": "q_lora_rank",
            "self_attn.kv_proj": "hidden", "self_attn.compressor.kv_proj": "hidden",
            "self_attn.compressor.gate_proj": "hidden",
            "self_attn.indexer.q_b_proj": "q_lora_rank",
            "self_attn.indexer.weights_proj": "hidden", "self_attn.indexer.k_proj": "head_dim",
            "mlp.experts.switch_mlp.gate_proj": "hidden",
            "mlp.experts.switch_mlp.up_proj": "hidden",
            "mlp.experts.switch_mlp.down_proj": "moe_intermediate_size",
            "mlp.shared_experts.gate_proj": "hidden", "mlp.shared_experts.up_proj": "hidden",
            "mlp.shared_experts.down_proj": "moe_intermediate_size"})
