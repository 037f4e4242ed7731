"""mlx-lm's ``models/kimi_linear.py`` (Kimi-Linear: Kimi Delta Attention (KDA) layers
interleaved with MLA layers, DeepSeek-style MoE with a sigmoid router).

Its ``Model.sanitize``, step by step: multi-token-prediction weights (``model.mtp*``) and,
with tied embeddings, ``lm_head.weight`` are dropped; in every MoE layer (from
``first_k_dense_replace`` on, every ``moe_layer_freq``-th) the routed experts
``block_sparse_moe.experts.E.{w1,w2,w3}.weight`` are stacked into
``mlp.switch_mlp.{gate,down,up}_proj.weight`` and the shared experts, the router
``gate.weight`` and its ``gate.e_score_correction_bias`` move from ``block_sparse_moe.`` to
``mlp.`` (the bias to ``mlp.e_score_correction_bias``); in every KDA layer (those
``linear_attn_config["kda_layers"]`` lists, counted from 1) the ``{q,k,v}_conv1d.weight``
PyTorch kernels ``[C, 1, K]`` become ``{q,k,v}_conv.conv.weight`` ``[C, K, 1]`` and a
multi-dimensional ``dt_bias`` is flattened; each MLA ``kv_b_proj`` is split into
``embed_q`` / ``unembed_out`` (:func:`mlxq.models.common.split_kv_b_proj`, with
``head_dim`` standing in for an absent ``qk_nope_head_dim`` / ``v_head_dim``). The router
``mlp.gate`` stays at 8 bits (``quant_predicate``); ``e_score_correction_bias``, ``A_log``
and ``dt_bias`` keep the source dtype (``cast_predicate``).

:mod:`mlxq.models.kimi_k3` (Kimi K3) builds on the same layer kinds.

>>> FAMILY.casts("model.layers.0.self_attn.A_log"), FAMILY.casts("model.layers.0.mlp.gate.weight")
(False, True)
"""

from __future__ import annotations

import types

from ..errors import ParseError
from . import mx
from ._shared import tied
from .base import Family, Order
from .common import REQUIRED, Args, Weights, split_kv_b_proj

KDA = ("q_proj k_proj v_proj q_conv(conv) k_conv(conv) v_conv(conv) f_a_proj f_b_proj b_proj "
       "g_a_proj g_b_proj A_log dt_bias o_norm")
MLA = "kv_a_proj_with_mqa kv_a_layernorm embed_q unembed_out"
MLP = ("mlp(gate_proj up_proj down_proj gate switch_mlp(gate_proj up_proj down_proj) "
       "e_score_correction_bias shared_experts(gate_proj up_proj down_proj))")


def model_args(config) -> Args:
    return Args(config, num_hidden_layers=REQUIRED, num_attention_heads=REQUIRED,
                head_dim=REQUIRED, kv_lora_rank=REQUIRED, linear_attn_config=REQUIRED,
                num_experts=REQUIRED, tie_word_embeddings=False, qk_nope_head_dim=None,
                v_head_dim=None, first_k_dense_replace=0, moe_layer_freq=1)


def kda_layers(args: Args) -> list:
    """``linear_attn_config["kda_layers"]`` (1-based indices of the KDA layers)."""
    cfg = args.linear_attn_config
    layers = cfg.get("kda_layers") if isinstance(cfg, dict) else None
    if not isinstance(layers, list) or not all(isinstance(i, int) for i in layers):
        raise ParseError("config.json: linear_attn_config.kda_layers must be a list of layer "
                         "numbers", key="linear_attn_config")
    return layers


def is_moe_layer(args: Args, l: int) -> bool:
    """KimiDecoderLayer's choice of ``KimiSparseMoE`` over ``KimiMLP``."""
    freq = args.moe_layer_freq
    return (args.num_experts > 0 and l >= args.first_k_dense_replace
            and freq > 0 and l % freq == 0)


def mla_dims(args: Args):
    """What :func:`split_kv_b_proj` reads, with KimiMLAAttention's fallbacks to head_dim."""
    return types.SimpleNamespace(
        qk_nope_head_dim=args.qk_nope_head_dim or args.head_dim,
        v_head_dim=args.v_head_dim or args.head_dim, kv_lora_rank=args.kv_lora_rank,
        num_attention_heads=args.num_attention_heads)


def move_kda_convs(weights: Weights, attn_prefix: str) -> None:
    """The KDA conv step: ``{q,k,v}_conv1d.weight`` -> ``{q,k,v}_conv.conv.weight``, a 3-D
    PyTorch kernel moved to MLX's ``[C, K, 1]``."""
    for src_name, dst_name in (("q_conv1d", "q_conv"), ("k_conv1d", "k_conv"),
                               ("v_conv1d", "v_conv")):
        src_key = f"{attn_prefix}.{src_name}.weight"
        if src_key in weights:
            w = weights.pop(src_key)
            if w.ndim == 3:
                w = w.moveaxis(2, 1)
            weights[f"{attn_prefix}.{dst_name}.conv.weight"] = w


def sanitize(weights: Weights, config) -> Weights:
    args = model_args(config)
    kda = kda_layers(args)
    weights = Weights({k: v for k, v in weights.items() if not k.startswith("model.mtp")})

    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    for layer_idx in range(args.num_hidden_layers):
        prefix = f"model.layers.{layer_idx}"

        if is_moe_layer(args, layer_idx):
            src_prefix = f"{prefix}.block_sparse_moe"
            dst_prefix = f"{prefix}.mlp"
            for src, dst in [("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")]:
                key = f"{src_prefix}.experts.0.{src}.weight"
                if key in weights:
                    stacked = [weights.pop(f"{src_prefix}.experts.{i}.{src}.weight")
                               for i in range(args.num_experts)]
                    weights[f"{dst_prefix}.switch_mlp.{dst}.weight"] = mx.stack(stacked)

            for name in ("gate_proj", "up_proj", "down_proj"):
                src_key = f"{src_prefix}.shared_experts.{name}.weight"
                if src_key in weights:
                    weights[f"{dst_prefix}.shared_experts.{name}.weight"] = weights.pop(src_key)

            gate_key = f"{src_prefix}.gate.weight"
            if gate_key in weights:
                weights[f"{dst_prefix}.gate.weight"] = weights.pop(gate_key)

            bias_key = f"{src_prefix}.gate.e_score_correction_bias"
            if bias_key in weights:
                weights[f"{dst_prefix}.e_score_correction_bias"] = weights.pop(bias_key)

        attn_prefix = f"{prefix}.self_attn"
        if (layer_idx + 1) in kda:
            move_kda_convs(weights, attn_prefix)
            dt_key = f"{attn_prefix}.dt_bias"
            if dt_key in weights and weights[dt_key].ndim > 1:
                weights[dt_key] = weights[dt_key].reshape(-1)

        split_kv_b_proj(weights, attn_prefix, mla_dims(args))

    return weights


def cast_predicate(path: str) -> bool:
    if "e_score_correction_bias" in path:
        return False
    if path.endswith("A_log") or path.endswith("dt_bias"):
        return False
    return True


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate"):
        return {"group_size": 64, "bits": 8}
    return True


def _order(config) -> Order:
    head = "" if tied(config, False) else " lm_head"
    return Order(f"model(embed_tokens layers*(self_attn({KDA} {MLA} o_proj) {MLP} "
                 f"input_layernorm post_attention_layernorm) norm){head}")


FAMILY = Family(
    "kimi_linear", ("kimi_linear",), sanitize, _order,
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    widths={"mlp.gate": "hidden", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size"})
