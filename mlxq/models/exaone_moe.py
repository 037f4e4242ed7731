"""mlx-lm's ``models/exaone_moe.py`` (LG EXAONE MoE): attention with per-head norms;
``is_moe_layer[i]`` chooses a block's MLP or MoE (``SwitchGLU`` experts under
``switch_mlp``, a DeepSeek-V3-style ``MoEGate`` router — a bare ``weight`` plus
``e_score_correction_bias``, no ``to_quantized`` — and shared experts).

``Model.sanitize`` drops the multi-token-prediction weights (``mtp.``); in each MoE block
it moves ``mlp.e_score_correction_bias`` under the router
(``mlp.gate.e_score_correction_bias``) and stacks the per-expert projections (and
``scales``/``biases``) into ``mlp.switch_mlp`` when both the first and the last expert are
present; it drops ``lm_head`` when the embeddings are tied. ``Model.cast_predicate`` keeps
the correction bias in the source dtype.

>>> FAMILY.casts("model.layers.1.mlp.gate.e_score_correction_bias")
False
"""

from __future__ import annotations

from . import mx
from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, NORMS, llama_order
from ..errors import ParseError, UnknownEnumValueError
from .base import Family
from .common import REQUIRED, Args, Weights


def is_moe_layer(config) -> list:
    """``args.is_moe_layer`` (no default in ModelArgs), which mlx-lm indexes for every
    layer: a list of booleans at least ``num_hidden_layers`` long."""
    args = Args(config, is_moe_layer=REQUIRED, num_hidden_layers=REQUIRED)
    flags = args.is_moe_layer
    if not isinstance(flags, list) or len(flags) < args.num_hidden_layers:
        raise ParseError("config.json: 'is_moe_layer' must list a flag for each of the "
                         f"{args.num_hidden_layers} layers, got {flags!r:.60}",
                         key="is_moe_layer")
    return flags


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, num_experts=REQUIRED,
                tie_word_embeddings=False, topk_method="noaux_tc")
    moe = is_moe_layer(config)
    if any(moe[: args.num_hidden_layers]) and args.topk_method != "noaux_tc":
        # MoEGate asserts it when mlx-lm builds the model
        raise UnknownEnumValueError(f"config.json: topk_method {args.topk_method!r:.40}; "
                                    "mlx-lm's exaone_moe supports only 'noaux_tc'",
                                    key="topk_method")
    new_weights = Weights({k: v for k, v in weights.items() if not k.startswith("mtp.")})
    weights = new_weights

    for l in range(args.num_hidden_layers):
        if not moe[l]:
            continue

        prefix = f"model.layers.{l}"

        bias_key = f"{prefix}.mlp.e_score_correction_bias"
        if bias_key in weights:
            weights[f"{prefix}.mlp.gate.e_score_correction_bias"] = weights.pop(bias_key)

        for m in ["gate_proj", "down_proj", "up_proj"]:
            for k in ["weight", "scales", "biases"]:
                first_key = f"{prefix}.mlp.experts.0.{m}.{k}"
                last_key = f"{prefix}.mlp.experts.{args.num_experts - 1}.{m}.{k}"
                if first_key in weights and last_key in weights:
                    to_join = [
                        weights.pop(f"{prefix}.mlp.experts.{e}.{m}.{k}")
                        for e in range(args.num_experts)
                    ]
                    weights[f"{prefix}.mlp.switch_mlp.{m}.{k}"] = mx.stack(to_join)

    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    return weights


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "exaone_moe", ("exaone_moe",), sanitize,
    # MoE defines switch_mlp, gate, shared_experts; the dense MLP gate, up, down
    llama_order(f"{ATTN_QK_NORM} mlp(gate_proj up_proj down_proj "
                "switch_mlp(gate_proj up_proj down_proj) gate(weight e_score_correction_bias) "
                f"shared_experts(gate_proj up_proj down_proj)) {NORMS}", tie_default=False),
    cast_predicate=cast_predicate, not_quantized=(r"\.mlp\.gate$",),
    # head_dim has no default in ModelArgs (the config gives it)
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS, "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size",
            "mlp.shared_experts.gate_proj": "hidden", "mlp.shared_experts.up_proj": "hidden"})
