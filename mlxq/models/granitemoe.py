"""mlx-lm's ``models/granitemoe.py``: each layer's fused ``input_linear`` (gate and up
projections of every expert, ``[experts, 2 x inter, hidden]``) split in two on axis 1;
``output_linear`` becomes the switch down projection; the router and, as in granite,
``o_proj``/``down_proj``/``lm_head`` stay at 8 bits."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_order
from . import mx
from .base import Family
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, tie_word_embeddings=True)
    if "model.layers.0.block_sparse_moe.input_linear.weight" not in weights:
        return weights
    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}.block_sparse_moe"
        key = f"{prefix}.input_linear.weight"
        value = weights.pop(key)
        gate_proj, up_proj = mx.split(value, 2, axis=1)
        weights[key.replace("input_linear", "switch_mlp.gate_proj")] = gate_proj
        weights[key.replace("input_linear", "switch_mlp.up_proj")] = up_proj
        key = f"{prefix}.output_linear.weight"
        weights[key.replace("output_linear", "switch_mlp.down_proj")] = weights.pop(key)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if (path.endswith("block_sparse_moe.router.layer") or path.endswith("self_attn.o_proj")
            or path.endswith("mlp.down_proj") or path == "lm_head"):
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family(
    "granitemoe", ("granitemoe",), sanitize,
    llama_order(f"{ATTN} block_sparse_moe(switch_mlp(gate_proj up_proj down_proj) "
                f"router(layer)) {NORMS}", tie_default=True),
    quant_predicate=quant_predicate,
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "block_sparse_moe.router.layer": "hidden",
            "block_sparse_moe.switch_mlp.gate_proj": "hidden",
            "block_sparse_moe.switch_mlp.up_proj": "hidden",
            "block_sparse_moe.switch_mlp.down_proj": "intermediate_size"})
