"""mlx-lm's ``models/qwen3_next.py``: hybrid gated-delta (``linear_attn``) and full
attention layers over a sparse MoE with a shared expert. Its ``sanitize`` (only for
checkpoints with experts, as mlx-lm's returns early otherwise) drops the
multi-token-prediction weights and a tied ``lm_head``, stacks the experts, moves each
``conv1d`` weight's kernel axis, and adds 1 to the 1-D norm weights (mlx-lm's RMSNorm here
multiplies by the weight itself, where the checkpoint stores ``weight - 1``)."""

from __future__ import annotations

from ._shared import NORMS, llama_order
from .base import Family
from .common import REQUIRED, Args, Weights, stack_experts


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_experts=REQUIRED, tie_word_embeddings=False)
    moe_layers = sorted(
        int(k.split(".")[2])
        for k in weights
        if k.startswith("model.layers.") and k.endswith(".mlp.experts.0.up_proj.weight")
    )
    if not moe_layers:
        return weights
    weights = Weights({key: value for key, value in weights.items() if "mtp." not in key})
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    for l in moe_layers:
        stack_experts(weights, f"model.layers.{l}.mlp", args.num_experts,
                      [(n, n) for n in ("up_proj", "down_proj", "gate_proj")])
    norm_keys = (".input_layernorm.weight", ".post_attention_layernorm.weight",
                 "model.norm.weight", ".q_norm.weight", ".k_norm.weight")
    for k, v in list(weights.items()):
        if "conv1d.weight" in k and v.shape[-1] != 1:
            weights[k] = v.moveaxis(2, 1)
        if any(k.endswith(sfx) for sfx in norm_keys):
            if v.ndim == 1:
                weights[k] = v + 1.0
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate") or path.endswith("shared_expert_gate"):
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family(
    "qwen3_next", ("qwen3_next",), sanitize,
    llama_order("linear_attn(conv1d in_proj_qkvz in_proj_ba dt_bias A_log norm out_proj) "
                "self_attn(q_proj k_proj v_proj o_proj q_norm k_norm) "
                f"{NORMS} mlp(gate switch_mlp(gate_proj up_proj down_proj) "
                "shared_expert(gate_proj down_proj up_proj) shared_expert_gate)",
                tie_default=False),
    quant_predicate=quant_predicate)
