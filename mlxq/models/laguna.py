"""mlx-lm's ``models/laguna.py`` (Poolside's Laguna): attention with per-head norms, a
per-head softplus output gate (``g_proj``) and a head count per layer; blocks whose
``mlp_layer_types`` entry is ``"sparse"`` have a MoE — a ``MoEGate`` router holding a Linear
``proj`` and a bare ``e_score_correction_bias``, ``SwitchGLU`` experts under
``switch_mlp``, and one ``shared_expert`` — the others a dense MLP.

``Model.sanitize`` strips the ``language_model.`` prefix of repacked checkpoints (when any
name has it), drops ``lm_head`` when the embeddings are tied, and for every layer renames
the original layout's bare router ``mlp.gate.weight`` to ``mlp.gate.proj.weight`` and its
``mlp.experts.e_score_correction_bias`` to ``mlp.gate.e_score_correction_bias``, then stacks
the per-expert projections (with ``scales``/``biases``) into ``mlp.switch_mlp``.
``Model.quant_predicate`` keeps the router ``mlp.gate.proj`` at 8 bits (group 64);
``Model.cast_predicate`` keeps the correction bias in the source dtype.

>>> FAMILY.model_quant("model.layers.1.mlp.gate.proj", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

from . import mx
from ._shared import NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False, num_hidden_layers=40, num_experts=256)
    # Repacked checkpoints wrap every tensor in a `language_model.` prefix.
    if any(k.startswith("language_model.") for k in weights):
        prefix = "language_model."
        weights = Weights({
            (k[len(prefix):] if k.startswith(prefix) else k): v
            for k, v in weights.items()
        })

    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}.mlp"

        # The original layout has a bare router and the bias under `experts.`.
        gate_weight = weights.pop(f"{prefix}.gate.weight", None)
        if gate_weight is not None:
            weights[f"{prefix}.gate.proj.weight"] = gate_weight
        bias = weights.pop(f"{prefix}.experts.e_score_correction_bias", None)
        if bias is not None:
            weights[f"{prefix}.gate.e_score_correction_bias"] = bias

        # It also stores experts individually; stack them for SwitchGLU.
        for proj in ("gate_proj", "up_proj", "down_proj"):
            for suffix in ("weight", "scales", "biases"):
                if f"{prefix}.experts.0.{proj}.{suffix}" not in weights:
                    continue
                weights[f"{prefix}.switch_mlp.{proj}.{suffix}"] = mx.stack(
                    [
                        weights.pop(f"{prefix}.experts.{e}.{proj}.{suffix}")
                        for e in range(args.num_experts)
                    ]
                )
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    # Routing is discrete, so mlx-lm keeps the router more precise than the rest.
    if path.endswith("mlp.gate.proj"):
        return {"group_size": 64, "bits": 8}
    return True


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "laguna", ("laguna",), sanitize,
    # MoE defines gate, switch_mlp, shared_expert; the dense MLP gate, down, up
    llama_order("self_attn(q_proj k_proj v_proj o_proj q_norm k_norm g_proj) "
                "mlp(gate_proj down_proj up_proj "
                "gate(proj e_score_correction_bias) switch_mlp(gate_proj up_proj down_proj) "
                f"shared_expert(gate_proj down_proj up_proj)) {NORMS}", tie_default=False),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    # o_proj's width is the layer's own head count (num_attention_heads_per_layer) x
    # head_dim, so it is left to the shape check of mlx-lm's load
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.g_proj": "hidden",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size", "mlp.gate.proj": "hidden",
            "mlp.switch_mlp.gate_proj": "hidden", "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size",
            "mlp.shared_expert.gate_proj": "hidden", "mlp.shared_expert.up_proj": "hidden",
            "mlp.shared_expert.down_proj": "shared_expert_intermediate_size"})
