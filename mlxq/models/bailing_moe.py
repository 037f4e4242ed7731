"""mlx-lm's ``models/bailing_moe.py`` (inclusionAI's Ling / Ring MoE models, Bailing-MoE v1
and v2): a fused ``query_key_value`` attention with optional q/k norms, dense first layers
(``first_k_dense_replace``) and sparse ones whose router is ``mlp.gate.gate_proj`` with an
optional ``expert_bias``.

Its ``sanitize``: a redundant ``lm_head.weight`` goes when the embeddings are tied; with
``norm_head`` the output head is divided by its column norms (``mx.linalg.norm`` over the
vocabulary axis, in float32, + 1e-7, cast back); in each sparse layer the experts are
stacked into ``switch_mlp`` and the router ``mlp.gate.weight``/``.bias`` become
``mlp.gate.gate_proj``'s. ``quant_predicate`` keeps the router at 8 bits;
``cast_predicate`` keeps ``expert_bias`` in the source dtype (bailing_moe_linear shares all
three)."""

from __future__ import annotations

from typing import Callable

from . import mx
from ._shared import tied
from .base import Family, Order
from .common import REQUIRED, Args, Weights, stack_experts

#: the sparse block's modules: BailingMoeSparseMoeBlock (switch_mlp, gate, shared_experts)
#: after the dense MLP's (gate, down, up)
MLP = ("mlp(gate_proj down_proj up_proj switch_mlp(gate_proj up_proj down_proj) "
       "gate(gate_proj expert_bias) shared_experts(gate_proj down_proj up_proj))")


def bailing_order(layer: str) -> Callable[..., Order]:
    """The Bailing models' tree: ``model(word_embeddings layers*(LAYER) norm)`` and an
    ``lm_head`` unless the embeddings are tied (ModelArgs' default: not)."""
    def order(config) -> Order:
        head = "" if tied(config, False) else " lm_head"
        return Order(f"model(word_embeddings layers*({layer}) norm){head}")
    return order


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False, norm_head=False,
                num_hidden_layers=REQUIRED, first_k_dense_replace=REQUIRED,
                num_experts=REQUIRED)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    if args.norm_head:
        w = weights["lm_head.weight"]
        dtype = w.dtype
        weight_norm = mx.linalg.norm(w.astype(mx.float32), axis=0, keepdims=True) + 1e-7
        weights["lm_head.weight"] = (w / weight_norm).astype(dtype)

    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"

        if l >= args.first_k_dense_replace:
            stack_experts(weights, f"{prefix}.mlp", args.num_experts,
                          [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                          ["weight", "scales", "biases"])

            if f"{prefix}.mlp.gate.weight" in weights:
                gate_weight = weights.pop(f"{prefix}.mlp.gate.weight")
                weights[f"{prefix}.mlp.gate.gate_proj.weight"] = gate_weight

            if f"{prefix}.mlp.gate.bias" in weights:
                gate_bias = weights.pop(f"{prefix}.mlp.gate.bias")
                weights[f"{prefix}.mlp.gate.gate_proj.bias"] = gate_bias

    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate.gate_proj"):
        return {"group_size": 64, "bits": 8}
    return True


def cast_predicate(k: str) -> bool:
    return "expert_bias" not in k


FAMILY = Family(
    "bailing_moe", ("bailing_moe",), sanitize,
    # BailingMoeAttention defines key_layernorm before query_layernorm
    bailing_order(f"attention(query_key_value dense key_layernorm query_layernorm) {MLP} "
                  "input_layernorm post_attention_layernorm"),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate)
