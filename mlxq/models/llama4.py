"""mlx-lm's ``models/llama4.py`` (Llama 4 Scout and Maverick): the text model of the
multimodal checkpoint, MoE layers (one routed expert per token, a shared expert)
interleaved with dense ones.

Its ``sanitize`` drops every name containing ``vision_model`` or ``multi_modal_projector``
and turns each MoE layer's fused experts — stored ``[experts, hidden, 2 x inter]`` and
``[experts, inter, hidden]``, the output axis last — into the switch layers: the gate and
up halves of ``gate_up_proj`` split along the last axis, each weight transposed into
``[experts, out, in]`` (one expert at a time). The router is an ``nn.Linear`` and is
quantized like any other layer (the model has no ``quant_predicate``).
"""

from __future__ import annotations

from . import mx
from ._multimodal import text_config
from .base import Family, Order
from .common import REQUIRED, Args, Weights

FEED_FORWARD = ("feed_forward(experts(gate_proj up_proj down_proj) router "
                "shared_expert(gate_proj down_proj up_proj) gate_proj down_proj up_proj)")


def sanitize(weights: Weights, config) -> Weights:
    text = Args(text_config(config), num_hidden_layers=REQUIRED)

    def to_remove(k):
        return "vision_model" in k or "multi_modal_projector" in k

    # Remove vision weights
    weights = Weights({k: v for k, v in weights.items() if not to_remove(k)})

    # Rename expert weights for SwitchGLU
    for l in range(text.num_hidden_layers):
        prefix = f"language_model.model.layers.{l}.feed_forward.experts"
        if f"{prefix}.gate_up_proj" in weights:
            v = weights.pop(f"{prefix}.gate_up_proj")
            gate_k = f"{prefix}.gate_proj.weight"
            up_k = f"{prefix}.up_proj.weight"
            gate_proj, up_proj = mx.split(v, 2, axis=-1)
            weights[gate_k] = mx.swapaxes(gate_proj, 1, 2)
            weights[up_k] = mx.swapaxes(up_proj, 1, 2)
        if f"{prefix}.down_proj" in weights:
            down_proj = weights.pop(f"{prefix}.down_proj")
            weights[f"{prefix}.down_proj.weight"] = mx.swapaxes(down_proj, 1, 2)
    return weights


FAMILY = Family(
    "llama4", ("llama4",), sanitize,
    Order("language_model(model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj) "
          f"{FEED_FORWARD} input_layernorm post_attention_layernorm) norm) lm_head)"),
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.o_proj": "attention",
            "feed_forward.router": "hidden", "feed_forward.gate_proj": "hidden",
            "feed_forward.up_proj": "hidden", "feed_forward.down_proj": "intermediate_size_mlp",
            "feed_forward.shared_expert.gate_proj": "hidden",
            "feed_forward.shared_expert.up_proj": "hidden",
            "feed_forward.shared_expert.down_proj": "intermediate_size",
            "feed_forward.experts.gate_proj": "hidden", "feed_forward.experts.up_proj": "hidden",
            "feed_forward.experts.down_proj": "intermediate_size"})
