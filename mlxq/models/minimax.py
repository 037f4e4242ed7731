"""mlx-lm's ``models/minimax.py`` (MiniMax-M2; the Hub's ``model_type`` "minimax_m2" is
routed here by ``MODEL_REMAPPING``): FP8 block weights dequantized to bfloat16, experts
``w1/w2/w3`` stacked into ``switch_mlp`` as gate/down/up; the router stays at 8 bits and
its ``e_score_correction_bias`` in the source dtype."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_order
from .base import Family
from .common import REQUIRED, Args, Weights, dequantize_fp8_weights, stack_experts


def sanitize(weights: Weights, config) -> Weights:
    """Dequantize FP8 weights and restructure MoE experts."""
    args = Args(config, num_hidden_layers=REQUIRED, num_local_experts=REQUIRED)
    # Dequantize
    weights = dequantize_fp8_weights(weights)

    # Step 2: Handle MoE expert weights restructuring
    if "model.layers.0.block_sparse_moe.experts.0.w1.weight" not in weights:
        return weights
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.block_sparse_moe", args.num_local_experts,
                      [("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")])
    return weights


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("block_sparse_moe.gate"):
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family(
    "minimax", ("minimax", "minimax_m2"), sanitize,
    llama_order(f"{ATTN_QK_NORM} block_sparse_moe(gate switch_mlp(gate_proj up_proj "
                f"down_proj) e_score_correction_bias) {NORMS}", tie_default=False),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    source_formats=frozenset({"fp8"}),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "block_sparse_moe.gate": "hidden",
            "block_sparse_moe.switch_mlp.gate_proj": "hidden",
            "block_sparse_moe.switch_mlp.up_proj": "hidden",
            "block_sparse_moe.switch_mlp.down_proj": "intermediate_size"})
