"""mlx-lm's ``models/olmoe.py``."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_WIDTHS, NORMS, llama_order
from .base import Family
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
    "olmoe", ("olmoe",), sanitize,
    llama_order(f"{ATTN_QK_NORM} mlp(gate switch_mlp(gate_proj up_proj down_proj)) {NORMS}",
                tie_default=True),
    widths={**ATTN_WIDTHS, "mlp.gate": "hidden", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "intermediate_size"})
