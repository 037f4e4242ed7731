"""mlx-lm's ``models/phimoe.py`` (Phi-3.5-MoE, Phi-mini-MoE): mixtral's block layout
(``block_sparse_moe`` with a router ``gate`` and ``SwitchGLU`` experts) with biased
attention projections, LayerNorms, and an ``lm_head`` that always exists and has a bias.

``Model.sanitize`` (when layer 0 has per-expert ``w1``) stacks each layer's experts'
``w1``/``w2``/``w3`` (with ``scales``/``biases``) into ``block_sparse_moe.switch_mlp`` as
``gate_proj``/``down_proj``/``up_proj``. No quant or cast predicate.

>>> FAMILY.order_for({}).covers("lm_head.bias")
True
"""

from __future__ import annotations

from . import mx
from ._shared import ATTN, NORMS, llama_tree
from ..errors import ParseError
from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=32, num_local_experts=16, num_experts_per_tok=2)
    if args.num_experts_per_tok > args.num_local_experts:
        # PhiMoESparseMoeBlock raises this when mlx-lm builds the model
        raise ParseError(f"config.json: num_experts_per_tok ({args.num_experts_per_tok}) is "
                         f"larger than num_local_experts ({args.num_local_experts})",
                         key="num_experts_per_tok")
    if "model.layers.0.block_sparse_moe.experts.0.w1.weight" not in weights:
        return weights
    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"
        for n, m in [("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")]:
            for k in ["weight", "scales", "biases"]:
                if f"{prefix}.block_sparse_moe.experts.0.{n}.{k}" in weights:
                    to_join = [
                        weights.pop(f"{prefix}.block_sparse_moe.experts.{e}.{n}.{k}")
                        for e in range(args.num_local_experts)
                    ]
                    weights[f"{prefix}.block_sparse_moe.switch_mlp.{m}.{k}"] = \
                        mx.stack(to_join)

    return weights


FAMILY = Family(
    "phimoe", ("phimoe",), sanitize,
    Order(llama_tree(f"{ATTN} block_sparse_moe(gate switch_mlp(gate_proj up_proj down_proj)) "
                     f"{NORMS}")),
    # head_dim is hidden_size // num_attention_heads (a head_dim key is not read)
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "block_sparse_moe.gate": "hidden",
            "block_sparse_moe.switch_mlp.gate_proj": "hidden",
            "block_sparse_moe.switch_mlp.up_proj": "hidden",
            "block_sparse_moe.switch_mlp.down_proj": "intermediate_size"})
