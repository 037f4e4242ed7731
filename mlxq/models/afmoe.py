"""mlx-lm's ``models/afmoe.py`` (Arcee's AFMoE): gated attention (a ``gate_proj`` beside
the q/k/v projections), the first ``num_dense_layers`` blocks with a dense MLP and the rest
with a routed MoE (``router.gate``, a bare ``expert_bias``, ``SwitchGLU`` experts under
``experts`` and a shared expert), four norms per block.

``Model.sanitize`` drops the rotary ``inv_freq`` buffers, drops ``lm_head`` when the
embeddings are tied, and stacks each MoE block's per-expert projections (and their
``scales``/``biases`` when the source is quantized) into ``mlp.experts.<proj>`` — the
switch layer keeps the name ``experts``, not ``switch_mlp``. ``Model.quant_predicate`` keeps
the router at 8 bits (group 64); ``Model.cast_predicate`` keeps ``expert_bias`` in the
source dtype.

>>> FAMILY.model_quant("model.layers.1.mlp.router.gate", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

from . import mx
from ._shared import NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False, num_hidden_layers=32, num_dense_layers=2,
                num_experts=128)
    # Remove unused precomputed rotary freqs
    weights = Weights({k: v for k, v in weights.items() if "rotary_emb.inv_freq" not in k})

    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    # Stack experts weights for SwitchGLU
    for l in range(args.num_hidden_layers):
        if l < args.num_dense_layers:
            continue
        prefix = f"model.layers.{l}"
        for n in ["up_proj", "down_proj", "gate_proj"]:
            for k in ["weight", "scales", "biases"]:
                if f"{prefix}.mlp.experts.0.{n}.{k}" in weights:
                    to_join = [
                        weights.pop(f"{prefix}.mlp.experts.{e}.{n}.{k}")
                        for e in range(args.num_experts)
                    ]
                    weights[f"{prefix}.mlp.experts.{n}.{k}"] = mx.stack(to_join)
    return weights


def cast_predicate(k: str) -> bool:
    return "expert_bias" not in k


def quant_predicate(path: str, config) -> bool | dict:
    if "router.gate" in path:
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family(
    "afmoe", ("afmoe",), sanitize,
    # DecoderLayer: self_attn, mlp (MLP or AfmoeMoE), then its four norms; AfmoeMoE defines
    # router, expert_bias, experts, shared_experts in that order
    llama_order("self_attn(q_proj k_proj v_proj o_proj q_norm k_norm gate_proj) "
                "mlp(gate_proj down_proj up_proj router(gate) expert_bias "
                "experts(gate_proj up_proj down_proj) shared_experts(gate_proj down_proj "
                f"up_proj)) {NORMS} pre_mlp_layernorm post_mlp_layernorm",
                tie_default=False),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    # head_dim defaults to 64 in mlx-lm's ModelArgs (not hidden / heads), so o_proj's width
    # is left to the shape check of mlx-lm's load
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.gate_proj": "hidden",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size", "mlp.router.gate": "hidden",
            "mlp.experts.gate_proj": "hidden", "mlp.experts.up_proj": "hidden",
            "mlp.experts.down_proj": "moe_intermediate_size",
            "mlp.shared_experts.gate_proj": "hidden", "mlp.shared_experts.up_proj": "hidden"})
