"""mlx-lm's ``models/minimax_m3_vl.py`` (MiniMax-M3: a vision-language container whose
language model mlx-lm keeps — GQA attention with lightning-indexer sparse layers, dense
first layers, MoE layers with a shared expert and a biased router, Gemma-style norms).

Its ``Model.sanitize``, step by step: the vision tower and projectors
(``vision_tower.``, ``multi_modal_projector.``, ``patch_merge_mlp.``) are dropped, and with
tied embeddings ``language_model.lm_head.weight``; MXFP8 layers (E4M3 bytes in ``X.weight``
with one E8M0 exponent per 32 inputs in ``X.weight_scale_inv``) become MLX's mxfp8 layout
(``X.scales``, and the weight's bytes read as uint32); then per layer, a dense MLP some
exports keep under ``block_sparse_moe`` moves to ``mlp``, a shared expert folded in as
expert ``num_local_experts`` is split off, fused ``gate_up_proj`` tensors are split in two
(axis -2), and per-expert ``experts.E.{w1,w2,w3}`` are stacked into
``switch_mlp.{gate,down,up}_proj``. The router ``block_sparse_moe.gate`` stays at 8 bits
(``quant_predicate``), its ``e_score_correction_bias`` in the source dtype
(``cast_predicate``).

>>> FAMILY.model_quant("language_model.model.layers.3.block_sparse_moe.gate", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..errors import FormatError, MissingKeyError, ParseError
from . import mx
from ._shared import tied
from .base import Family, Order
from .common import Args, Weights

LAYER = ("self_attn(q_proj k_proj v_proj o_proj q_norm k_norm index_q_proj index_k_proj "
         "index_q_norm index_k_norm) mlp(gate_proj up_proj down_proj) "
         "block_sparse_moe(gate e_score_correction_bias switch_mlp(gate_proj up_proj "
         "down_proj) shared_experts(gate_proj up_proj down_proj)) input_layernorm "
         "post_attention_layernorm")


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``ModelArgs.text_config`` (mlx-lm's ModelArgs requires it)."""
    text = config.get("text_config")
    if text is None:
        raise MissingKeyError("config.json has no 'text_config', which mlx-lm's minimax_m3_vl "
                              "model needs", key="text_config")
    if not isinstance(text, Mapping):
        raise ParseError("config.json: 'text_config' must be an object", key="text_config")
    return text


def sanitize(weights: Weights, config) -> Weights:
    args = Args(text_config(config), num_hidden_layers=60, num_local_experts=128,
                tie_word_embeddings=False)
    # The vision tower and the projectors are not used.
    skip = ("vision_tower.", "multi_modal_projector.", "patch_merge_mlp.")
    out = Weights({k: v for k, v in weights.items() if not k.startswith(skip)})
    if args.tie_word_embeddings:
        out.pop("language_model.lm_head.weight", None)

    # MXFP8 stores e4m3 bytes plus one E8M0 exponent per 32 values, which is MLX's mxfp8
    # layout once the bytes are read as uint32.
    for k in [k for k in out if k.endswith(".weight_scale_inv")]:
        base = k[: -len(".weight_scale_inv")]
        out[f"{base}.scales"] = out.pop(k)
        out[f"{base}.weight"] = out[f"{base}.weight"].view(mx.uint32)

    experts = (("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj"))
    for i in range(args.num_hidden_layers):
        moe = f"language_model.model.layers.{i}.block_sparse_moe"
        # Some exports keep a dense layer's MLP under block_sparse_moe (its gate is
        # gate_proj, the router's is gate).
        for proj in ("gate_proj", "up_proj", "down_proj"):
            if f"{moe}.{proj}.weight" not in out:
                continue
            mlp = f"language_model.model.layers.{i}.mlp"
            for part in ("weight", "scales", "biases"):
                v = out.pop(f"{moe}.{proj}.{part}", None)
                if v is not None:
                    out[f"{mlp}.{proj}.{part}"] = v

        # Some conversions fold the shared expert in as one more expert.
        n = args.num_local_experts
        for proj in ("gate_up_proj", "gate_proj", "up_proj", "down_proj"):
            w = out.get(f"{moe}.switch_mlp.{proj}.weight")
            if w is None or w.shape[0] != n + 1:
                continue
            for part in ("weight", "scales", "biases"):
                v = out.pop(f"{moe}.switch_mlp.{proj}.{part}", None)
                if v is None:
                    continue
                out[f"{moe}.switch_mlp.{proj}.{part}"] = mx.contiguous(v[:n])
                out[f"{moe}.shared_experts.{proj}.{part}"] = mx.contiguous(v[n])

        for owner in (f"{moe}.switch_mlp", f"{moe}.shared_experts"):
            for part in ("weight", "scales", "biases"):
                fused = out.pop(f"{owner}.gate_up_proj.{part}", None)
                if fused is None:
                    continue
                gate, up = mx.split(fused, 2, axis=-2)
                out[f"{owner}.gate_proj.{part}"] = mx.contiguous(gate)
                out[f"{owner}.up_proj.{part}"] = mx.contiguous(up)

        if f"{moe}.experts.0.w1.weight" not in out:
            continue
        for src, dst in experts:
            for part in ("weight", "scales", "biases"):
                if f"{moe}.experts.0.{src}.{part}" not in out:
                    continue
                out[f"{moe}.switch_mlp.{dst}.{part}"] = mx.stack(
                    [out.pop(f"{moe}.experts.{e}.{src}.{part}") for e in range(n)])

    # mlx-lm's model has an indexer only on sparse-attention layers: load_weights(strict)
    # refuses an indexer tensor elsewhere, so refuse it here, by name
    for k in out:
        m = re.match(r"language_model\.model\.layers\.(\d+)\.self_attn\.index_", k)
        if m and int(m.group(1)) < args.num_hidden_layers and not _is_sparse_attn(
                text_config(config), int(m.group(1))):
            raise FormatError(f"{k}: layer {m.group(1)} has full attention in config.json, so "
                              "mlx-lm's model has no indexer there (mlx_lm.load would refuse "
                              "the folder)", key=k)
    return out


def _is_sparse_attn(text: Mapping[str, Any], layer_idx: int) -> bool:
    """TextArgs.is_sparse_attn: the published config nests the indexer's settings in
    ``sparse_attention_config``, a transformers 5 re-save spells them flat."""
    sac = text.get("sparse_attention_config") or {}
    if not isinstance(sac, Mapping):
        raise ParseError("config.json: sparse_attention_config must be an object",
                         key="sparse_attention_config")
    if sac.get("sparse_block_size", text.get("index_block_size")) is None:
        return False
    layer_types = text.get("layer_types")
    if isinstance(layer_types, list) and layer_idx < len(layer_types):
        return layer_types[layer_idx] != "full_attention"
    freq = sac.get("sparse_attention_freq", text.get("sparse_attention_freq"))
    if isinstance(freq, list) and layer_idx < len(freq):
        return bool(freq[layer_idx])
    return True


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("block_sparse_moe.gate"):
        return {"group_size": 64, "bits": 8}
    return True


def _order(config) -> Order:
    text = config.get("text_config")
    head = "" if tied(text if isinstance(text, Mapping) else {}, False) else " lm_head"
    return Order(f"language_model(model(embed_tokens layers*({LAYER}) norm){head})")


FAMILY = Family(
    "minimax_m3_vl", ("minimax_m3_vl",), sanitize, _order,
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    source_formats=frozenset({"mxfp8"}),
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.o_proj": "attention",
            "self_attn.index_q_proj": "hidden", "self_attn.index_k_proj": "hidden",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "dense_intermediate_size", "block_sparse_moe.gate": "hidden",
            "block_sparse_moe.switch_mlp.gate_proj": "hidden",
            "block_sparse_moe.switch_mlp.up_proj": "hidden",
            "block_sparse_moe.switch_mlp.down_proj": "intermediate_size",
            "block_sparse_moe.shared_experts.gate_proj": "hidden",
            "block_sparse_moe.shared_experts.up_proj": "hidden",
            "block_sparse_moe.shared_experts.down_proj": "shared_intermediate_size"})
