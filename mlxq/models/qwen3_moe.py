"""mlx-lm's ``models/qwen3_moe.py``."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import REQUIRED, Args, Weights, stack_experts


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=REQUIRED, num_experts=REQUIRED)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    moe_layers = sorted(
        int(k.split(".")[2])
        for k in weights
        if k.startswith("model.layers.") and k.endswith(".mlp.experts.0.up_proj.weight")
    )
    for l in moe_layers:
        stack_experts(weights, f"model.layers.{l}.mlp", args.num_experts,
                      [(n, n) for n in ("up_proj", "down_proj", "gate_proj")])
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate"):
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family(
    "qwen3_moe", ("qwen3_moe",), sanitize,
    # Qwen3MoeDecoderLayer defines its norms before the mlp; a dense layer (mlp_only_layers)
    # has the gated MLP where a sparse one has the router and the switch layers
    Order(llama_tree(f"{ATTN_QK_NORM} {NORMS} mlp(gate switch_mlp(gate_proj up_proj "
                     "down_proj) gate_proj down_proj up_proj)")),
    quant_predicate=quant_predicate,
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS, "mlp.gate": "hidden",
            "mlp.switch_mlp.gate_proj": "hidden", "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size"})
