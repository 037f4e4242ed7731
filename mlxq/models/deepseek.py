"""mlx-lm's ``models/deepseek.py`` (DeepSeek-MoE 16B and DeepSeek LLM: llama attention with
fine-grained routed experts and shared experts, the first ``first_k_dense_replace`` layers
dense).

Its ``Model.sanitize`` stacks each MoE layer's routed experts
(``mlp.experts.E.{gate,down,up}_proj``) into ``mlp.switch_mlp``; nothing else changes. The
router ``mlp.gate`` (MoEGate) is a bare parameter, not a Linear, so it is never quantized.

>>> FAMILY.quantizable("model.layers.1.mlp.gate", (4, 64))
False
"""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from ..errors import MissingKeyError
from .common import Args, Weights, stack_experts

MLP = ("mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj down_proj) gate "
       "shared_experts(gate_proj up_proj down_proj))")


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=30, n_routed_experts=None)
    if args.n_routed_experts is None and any(".mlp.experts." in k for k in weights):
        # mlx-lm fails on range(None); its model has no MoE layer without the count
        raise MissingKeyError("config.json has no 'n_routed_experts', but the checkpoint has "
                              "routed experts", key="n_routed_experts")
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])
    return weights


FAMILY = Family(
    "deepseek", ("deepseek",), sanitize,
    Order(llama_tree(f"{ATTN} {MLP} {NORMS}")),
    not_quantized=(r"\.mlp\.gate$",),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size",
            "mlp.shared_experts.gate_proj": "hidden", "mlp.shared_experts.up_proj": "hidden"})
