"""mlx-lm's ``models/mixtral.py``."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import REQUIRED, Args, Weights, stack_experts


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False, num_hidden_layers=REQUIRED,
                num_local_experts=REQUIRED)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    if "model.layers.0.block_sparse_moe.experts.0.w1.weight" not in weights:
        return weights
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.block_sparse_moe", args.num_local_experts,
                      [("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")],
                      ["weight", "scales", "biases"])
    return weights


FAMILY = Family(
    "mixtral", ("mixtral",), sanitize,
    Order(llama_tree(f"{ATTN} block_sparse_moe(gate switch_mlp(gate_proj up_proj down_proj)) "
                     f"{NORMS}")),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "block_sparse_moe.gate": "hidden",
            "block_sparse_moe.switch_mlp.gate_proj": "hidden",
            "block_sparse_moe.switch_mlp.up_proj": "hidden",
            "block_sparse_moe.switch_mlp.down_proj": "intermediate_size"})
