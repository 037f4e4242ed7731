"""mlx-lm's ``models/Klear.py`` (Kwai-Klear's Klear MoE; its checkpoints say
``"model_type": "Klear"``, capitalised, which is the module mlx-lm imports): qwen3-style
attention with per-head norms, sparse blocks whose routed experts (a SwitchGLU named
``experts``) and shared experts are mixed by a learned 2-way ``coefficient``, with a float32
``expert_bias``. Its ``sanitize`` stacks each sparse layer's experts into ``experts``
itself; ``quant_predicate`` keeps the router ``mlp.gate`` at 8 bits; ``cast_predicate``
keeps ``expert_bias``."""

from __future__ import annotations

from . import mx
from ._shared import llama_order
from .base import Family
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_experts=REQUIRED)
    moe_layers = sorted(
        int(k.split(".")[2])
        for k in weights
        if k.startswith("model.layers.") and k.endswith(".mlp.experts.0.gate_proj.weight")
    )
    for l in moe_layers:
        prefix = f"model.layers.{l}.mlp.experts"
        for name in ["gate_proj", "up_proj", "down_proj"]:
            stacked = [weights.pop(f"{prefix}.{e}.{name}.weight")
                       for e in range(args.num_experts)]
            weights[f"{prefix}.{name}.weight"] = mx.stack(stacked)

    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate"):
        return {"group_size": 64, "bits": 8}
    return True


def cast_predicate(k: str) -> bool:
    return "expert_bias" not in k


FAMILY = Family(
    "Klear", ("Klear",), sanitize,
    # KlearMLP: gate, down, up; KlearSparseMoeBlock: gate, experts, shared_experts,
    # coefficient, expert_bias. The model always has its own lm_head
    llama_order("self_attn(q_proj k_proj v_proj o_proj q_norm k_norm) mlp(gate_proj "
                "down_proj up_proj gate experts(gate_proj up_proj down_proj) "
                "shared_experts(gate_proj down_proj up_proj) coefficient expert_bias) "
                "input_layernorm post_attention_layernorm"),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate)
