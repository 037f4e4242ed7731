"""mlx-lm's ``models/ernie4_5_moe.py`` (Baidu ERNIE 4.5 MoE): llama-shaped attention; a
block is a MoE (router ``gate``, ``SwitchGLU`` experts, optional shared experts) when
``(layer + 1) % moe_layer_interval == 0`` between ``moe_layer_start_index`` and
``moe_layer_end_index``, else a dense MLP.

``Model.sanitize`` drops the multi-token-prediction weights (``mtp_block.``,
``mtp_linear_proj.``, ``mtp_hidden_norm.``, ``mtp_emb_norm.``) and every
``e_score_correction_bias`` (the checkpoint's ``moe_statics``: mlx-lm's router selects
experts without it), then stacks each MoE block's per-expert projections into
``mlp.switch_mlp``. Only ``.weight`` tensors are stacked (a pre-quantized checkpoint's
expert ``scales``/``biases`` are left, and mlx-lm's load refuses them). No quant or cast
predicate.

>>> sorted(sanitize({"model.layers.1.mlp.moe_statics.e_score_correction_bias": None,
...                  "model.norm.weight": None},
...                 {"num_hidden_layers": 2, "moe_num_experts": 4}))
['model.norm.weight']
"""

from __future__ import annotations

from . import mx
from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, moe_num_experts=REQUIRED)
    remove_patterns = [
        "mtp_block.",
        "mtp_linear_proj.",
        "mtp_hidden_norm.",
        "mtp_emb_norm.",
        "e_score_correction_bias",
    ]

    weights = Weights({
        key: value
        for key, value in weights.items()
        if not any(pattern in key for pattern in remove_patterns)
    })

    # Stack experts
    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"
        for m in ["gate_proj", "down_proj", "up_proj"]:
            if f"{prefix}.mlp.experts.0.{m}.weight" in weights:
                to_join = [
                    weights.pop(f"{prefix}.mlp.experts.{e}.{m}.weight")
                    for e in range(args.moe_num_experts)
                ]
                weights[f"{prefix}.mlp.switch_mlp.{m}.weight"] = mx.stack(to_join)

    return weights


def order(config) -> Order:
    # tie_word_embeddings has no default in ModelArgs: mlx-lm cannot build the model
    # without it
    tied = Args(config, tie_word_embeddings=REQUIRED).tie_word_embeddings
    # Ernie4_5_MoeMLP defines gate, switch_mlp, shared_experts; a dense block has the MLP
    return Order(llama_tree(f"{ATTN} mlp(gate_proj down_proj up_proj gate "
                            "switch_mlp(gate_proj up_proj down_proj) "
                            f"shared_experts(gate_proj down_proj up_proj)) {NORMS}",
                            head=not tied))


FAMILY = Family(
    "ernie4_5_moe", ("ernie4_5_moe",), sanitize, order,
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS, "mlp.gate": "hidden",
            "mlp.switch_mlp.gate_proj": "hidden", "mlp.switch_mlp.up_proj": "hidden",
            "mlp.shared_experts.gate_proj": "hidden", "mlp.shared_experts.up_proj": "hidden"})
