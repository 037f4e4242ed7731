"""mlx-lm's ``models/glm4_moe.py`` (GLM-4.5/4.6): routed experts stacked into
``switch_mlp``, the multi-token-prediction layer (index ``num_hidden_layers``) dropped; the
router ``mlp.gate`` is a bare parameter whose ``e_score_correction_bias`` keeps the source
dtype."""

from __future__ import annotations

from ._shared import ATTN_ROWS, ATTN_WIDTHS, NORMS
from .base import Family, Order
from .common import REQUIRED, Args, Weights, stack_experts


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, n_routed_experts=REQUIRED)
    mpt_layer = args.num_hidden_layers
    # Stack experts
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])
    # Remove multi-token prediction layer
    return Weights({
        k: v for k, v in weights.items() if not k.startswith(f"model.layers.{mpt_layer}")
    })


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "glm4_moe", ("glm4_moe",), sanitize,
    Order("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj q_norm k_norm) "
          "mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj down_proj) "
          "gate(weight e_score_correction_bias) shared_experts(gate_proj up_proj down_proj)) "
          f"{NORMS}) norm) lm_head"),
    cast_predicate=cast_predicate, not_quantized=(r"\.mlp\.gate$",), rows=ATTN_ROWS,
    widths=ATTN_WIDTHS)
