"""mlx-lm's ``models/qwen3_5_moe.py`` (Qwen3.5 MoE): qwen3_5's model and rules with sparse
MoE blocks. Its ``sanitize`` renames as qwen3_5's container does, then splits each layer's
fused ``mlp.experts.gate_up_proj`` (``[experts, 2 x inter, hidden]``, the Hub's layout) in
half on the second-to-last axis into the switch ``gate_proj`` and ``up_proj`` and renames
``mlp.experts.down_proj`` to the switch ``down_proj``, before qwen3_5's ``TextModel.sanitize``
(multi-token-prediction weights dropped, conv1d axis moved, norms + 1)."""

from __future__ import annotations

from .base import Family
from .common import Args, Weights
from .qwen3_5 import cast_predicate, container_sanitize, order, quant_predicate, text_config
from .qwen3_5 import edit_config, text_sanitize


def sanitize(weights: Weights, config) -> Weights:
    new_weights = container_sanitize(weights)
    args = Args(text_config(config), num_hidden_layers=32)

    for l in range(args.num_hidden_layers):
        prefix = f"language_model.model.layers.{l}.mlp"
        gate_up_key = f"{prefix}.experts.gate_up_proj"
        if gate_up_key in new_weights:
            gate_up = new_weights.pop(gate_up_key)
            mid = gate_up.shape[-2] // 2
            new_weights[f"{prefix}.switch_mlp.gate_proj.weight"] = gate_up[..., :mid, :]
            new_weights[f"{prefix}.switch_mlp.up_proj.weight"] = gate_up[..., mid:, :]
            new_weights[f"{prefix}.switch_mlp.down_proj.weight"] = new_weights.pop(
                f"{prefix}.experts.down_proj")

    return text_sanitize(new_weights, config)


FAMILY = Family(
    "qwen3_5_moe", ("qwen3_5_moe",), sanitize, order,
    quant_predicate=quant_predicate, cast_predicate=cast_predicate, edit_config=edit_config)
