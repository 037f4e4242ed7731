"""mlx-lm's ``models/qwen2_moe.py``: routed experts stacked into ``switch_mlp``, a shared
expert and its sigmoid gate."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import REQUIRED, Args, Weights, stack_experts


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, num_experts=REQUIRED)
    if "model.layers.0.mlp.experts.0.up_proj.weight" not in weights:
        return weights
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.mlp", args.num_experts,
                      [(n, n) for n in ("up_proj", "down_proj", "gate_proj")],
                      ["weight", "scales", "biases"])
    return weights


FAMILY = Family(
    "qwen2_moe", ("qwen2_moe",), sanitize,
    Order(llama_tree(f"{ATTN} mlp(gate switch_mlp(gate_proj up_proj down_proj) "
                     f"shared_expert(gate_proj down_proj up_proj) shared_expert_gate) {NORMS}")),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.gate": "hidden", "mlp.shared_expert_gate": "hidden",
            "mlp.switch_mlp.gate_proj": "hidden", "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size"})
