"""mlx-lm's ``models/deepseek_v32.py`` (DeepSeek-V3.2: MLA attention with a sparse
"lightning" ``indexer``, DeepSeek MoE).

Its ``Model.sanitize``, step by step: the multi-token-prediction layers (every
``model.layers.N`` with ``N >= num_hidden_layers``) are dropped; FP8 block weights
(``weight_scale_inv`` beside an E4M3 ``weight``, 128x128 blocks) are dequantized to bfloat16
by mlx-lm's ``dequant`` (``from_fp8``, times the block scale, ``astype(bfloat16)``); routed
experts are stacked into ``switch_mlp``; each ``kv_b_proj`` is split into the per-head
``embed_q`` (transposed) and ``unembed_out`` (dequantized first and quantized again with the
inferred bits and group size when the source already holds it quantized). The router
``mlp.gate`` (MoEGate) is a bare parameter, and its ``e_score_correction_bias`` keeps the
source dtype (``Model.cast_predicate``).

:mod:`mlxq.models.glm_moe_dsa` (GLM-5, whose mlx-lm model subclasses this one) reuses the
sanitize with its own ``ModelArgs`` defaults.

>>> FAMILY.model_quant("model.layers.1.mlp.gate", {}) is None, FAMILY.casts("x.e_score_correction_bias")
(True, False)
"""

from __future__ import annotations

from typing import Callable

from .base import Family, Order
from .common import (Args, Weights, dequantize_fp8_weights, drop_layers_from, split_kv_b_proj,
                     stack_experts)

ATTN = ("self_attn(q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm embed_q "
        "unembed_out o_proj indexer(wq_b wk k_norm weights_proj))")
MLP = ("mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj down_proj) "
       "gate(weight e_score_correction_bias) shared_experts(gate_proj up_proj down_proj))")
ORDER = Order(f"model(embed_tokens layers*({ATTN} {MLP} input_layernorm "
              "post_attention_layernorm) norm) lm_head")


def model_args(config) -> Args:
    """The ``ModelArgs`` fields the sanitize reads, with deepseek_v32's defaults."""
    return Args(config, num_hidden_layers=30, n_routed_experts=None, qk_nope_head_dim=128,
                v_head_dim=128, kv_lora_rank=512, num_attention_heads=32)


def sanitize_with(args_of: Callable[[object], Args]):
    """deepseek_v32's ``Model.sanitize`` for the ``ModelArgs`` ``args_of(config)`` gives."""

    def sanitize(weights: Weights, config) -> Weights:
        args = args_of(config)
        # Remove multi-token prediction layers
        weights = drop_layers_from(weights, args.num_hidden_layers)

        # Dequantize
        weights = dequantize_fp8_weights(weights)

        # Stack experts
        for l in range(args.num_hidden_layers):
            # mlx-lm pairs w1/w2/w3 with the names and uses only the names
            stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                          [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                          ["weight", "scales", "biases"])
            split_kv_b_proj(weights, f"model.layers.{l}.self_attn", args)

        return weights

    return sanitize


sanitize = sanitize_with(model_args)


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "deepseek_v32", ("deepseek_v32",), sanitize, ORDER,
    cast_predicate=cast_predicate,
    not_quantized=(r"\.mlp\.gate$",),
    source_formats=frozenset({"fp8"}))
