"""mlx-lm's ``models/jamba.py`` (AI21 Jamba: Mamba and attention layers, dense MLPs and
MoEs alternating by ``attn_layer_*``/``expert_layer_*`` period and offset).

Its ``Model.sanitize``: each ``conv1d`` weight's kernel axis moved last; ``lm_head.weight``
dropped when the embeddings are tied; in each layer that has ``feed_forward.experts.*``,
the experts' ``gate_proj``/``down_proj``/``up_proj`` (weight, bias, scales, biases, whichever
exist) are stacked into ``switch_mlp`` — in index order, over the indices present (mlx-lm
scans ``range(len(weights))`` and skips missing ones). ``Model.quant_predicate`` keeps the
MoE ``router`` (an ``nn.Linear`` here) at 8 bits, group 64.

mlx-lm's model renormalizes the top-k router probabilities (softmax over the selected
logits) where transformers' Jamba keeps the top-k of the full softmax unnormalized, so
mlx-lm's logits differ from transformers' on MoE layers; the conversion is unaffected.

>>> FAMILY.model_quant("model.layers.1.feed_forward.router", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

from . import mx
from ._shared import tied
from .base import Family, Order
from .common import REQUIRED, Args, Weights, move_conv_axis


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, tie_word_embeddings=True)
    move_conv_axis(weights)

    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    for l in range(args.num_hidden_layers):
        base = f"model.layers.{l}.feed_forward"
        if not any(key.startswith(f"{base}.experts.") for key in weights.keys()):
            continue

        for proj in ["gate_proj", "down_proj", "up_proj"]:
            for name in ["weight", "bias", "scales", "biases"]:
                expert_tensors = [
                    weights.pop(f"{base}.experts.{e}.{proj}.{name}")
                    for e in range(len(weights))
                    if f"{base}.experts.{e}.{proj}.{name}" in weights
                ]
                if expert_tensors:
                    weights[f"{base}.switch_mlp.{proj}.{name}"] = mx.stack(expert_tensors)

    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("router"):
        return {"group_size": 64, "bits": 8}
    return True


def _order(config) -> Order:
    # JambaDecoderLayer: its mixer (self_attn or mamba, one per layer), feed_forward (a
    # JambaMLP or a sparse block: router, switch_mlp), then the two norms
    head = "" if tied(config, True) else " lm_head"
    return Order("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj) "
                 "mamba(in_proj conv1d x_proj dt_proj A_log D out_proj dt_layernorm "
                 "b_layernorm c_layernorm) feed_forward(gate_proj up_proj down_proj router "
                 "switch_mlp(gate_proj up_proj down_proj)) input_layernorm pre_ff_layernorm) "
                 f"final_layernorm){head}")


FAMILY = Family("jamba", ("jamba",), sanitize, _order, quant_predicate=quant_predicate)
