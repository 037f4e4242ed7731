"""mlx-lm's ``models/deepseek_v2.py``: multi-head latent attention, routed experts stacked
into ``switch_mlp``, shared experts; the router ``mlp.gate`` is a bare parameter (MoEGate),
never quantized."""

from __future__ import annotations

from .base import Family, Order
from .common import REQUIRED, Args, Weights, stack_experts

ATTN = ("self_attn(q_proj q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa "
        "kv_a_layernorm kv_b_proj o_proj)")
MLP = ("mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj down_proj) gate "
       "shared_experts(gate_proj up_proj down_proj))")


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, n_routed_experts=REQUIRED)
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])
    return weights


FAMILY = Family(
    "deepseek_v2", ("deepseek_v2",), sanitize,
    Order(f"model(embed_tokens layers*({ATTN} {MLP} input_layernorm "
          "post_attention_layernorm) norm) lm_head"),
    not_quantized=(r"\.mlp\.gate$",))
