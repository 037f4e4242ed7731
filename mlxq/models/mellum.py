"""mlx-lm's ``models/mellum.py`` (JetBrains' Mellum MoE): per-head q/k norms and a sparse
MoE block in every layer (a softmax router ``mlp.gate``, a Linear, and the experts as one
``switch_mlp``). ``Model.sanitize`` drops ``lm_head.weight`` when the embeddings are tied
and, when layer 0 holds per-expert weights (``mlp.experts.0.up_proj.weight``), stacks each
layer's experts into ``mlp.switch_mlp.{up,down,gate}_proj``. ``Model.quant_predicate``
keeps the router at 8 bits with groups of 64.

>>> FAMILY.model_quant("model.layers.1.mlp.gate", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, NORMS
from .base import Family, Order
from .common import REQUIRED, Args, Weights, stack_experts

LAYER = (f"{ATTN_QK_NORM} mlp(gate switch_mlp(gate_proj up_proj down_proj)) {NORMS}")


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=REQUIRED, num_hidden_layers=REQUIRED,
                num_experts=REQUIRED)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    if "model.layers.0.mlp.experts.0.up_proj.weight" not in weights:
        return weights
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.mlp", args.num_experts,
                      [(n, n) for n in ("up_proj", "down_proj", "gate_proj")])
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate"):
        return {"group_size": 64, "bits": 8}
    return True


def order(config) -> Order:
    """``Model.__init__``: an ``lm_head`` unless ``tie_word_embeddings`` (a required field)."""
    head = "" if Args(config, tie_word_embeddings=REQUIRED).tie_word_embeddings else " lm_head"
    return Order(f"model(embed_tokens layers*({LAYER}) norm){head}")


FAMILY = Family(
    "mellum", ("mellum",), sanitize, order, quant_predicate=quant_predicate,
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.gate": "hidden", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size"})
