"""mlx-lm's ``models/lfm2_moe.py`` (Liquid's LFM2-MoE): LFM2's short-convolution and
attention layers, a dense ``feed_forward`` in the first ``num_dense_layers`` blocks and a
sparse one after (router ``gate``, ``SwitchGLU`` experts under ``switch_mlp``, a bare
``expert_bias`` when ``use_expert_bias``); the output head is always the tied embedding.

``Model.sanitize`` moves each ``conv.weight`` stored ``[out, in, kernel]`` to MLX's
``[out, kernel, in]`` (when its last axis is the longer), renames the checkpoint's
``w1``/``w2``/``w3`` to ``gate_proj``/``down_proj``/``up_proj``, and stacks each sparse
block's per-expert ``.weight`` tensors into ``feed_forward.switch_mlp``.
``Model.quant_predicate`` keeps the router at 8 bits (group 64);
``Model.cast_predicate`` keeps ``expert_bias`` in the source dtype.

>>> FAMILY.model_quant("model.layers.1.feed_forward.gate", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

from . import mx
from .base import Family, Order
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, num_experts=REQUIRED)
    sanitized_weights = Weights()
    for name, param in weights.items():
        if "conv.weight" in name:
            if param.shape[-1] > param.shape[1]:
                param = param.transpose(0, 2, 1)
        replacements = {
            "w1.weight": "gate_proj.weight",
            "w2.weight": "down_proj.weight",
            "w3.weight": "up_proj.weight",
        }
        for old, new in replacements.items():
            if old in name:
                name = name.replace(old, new)
        sanitized_weights[name] = param

    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"
        # Only sanitize MoE layer weights
        for n in ["gate_proj", "down_proj", "up_proj"]:
            if f"{prefix}.feed_forward.experts.0.{n}.weight" in sanitized_weights:
                to_join = [
                    sanitized_weights.pop(f"{prefix}.feed_forward.experts.{e}.{n}.weight")
                    for e in range(args.num_experts)
                ]
                sanitized_weights[f"{prefix}.feed_forward.switch_mlp.{n}.weight"] = \
                    mx.stack(to_join)
    return sanitized_weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("feed_forward.gate"):
        return {"group_size": 64, "bits": 8}
    return True


def cast_predicate(k: str) -> bool:
    return "expert_bias" not in k


FAMILY = Family(
    "lfm2_moe", ("lfm2_moe",), sanitize,
    # a block has self_attn or conv; Lfm2MoeSparseMoeBlock defines gate, switch_mlp,
    # expert_bias; no lm_head (Model.__call__ uses embed_tokens.as_linear)
    Order("model(embed_tokens layers*(self_attn(q_layernorm k_layernorm q_proj k_proj "
          "v_proj out_proj) conv(conv in_proj out_proj) feed_forward(gate_proj up_proj "
          "down_proj gate switch_mlp(gate_proj up_proj down_proj) expert_bias) "
          "operator_norm ffn_norm) embedding_norm)"),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "conv.in_proj": "hidden", "conv.out_proj": "hidden",
            "feed_forward.gate_proj": "hidden", "feed_forward.up_proj": "hidden",
            "feed_forward.down_proj": "intermediate_size", "feed_forward.gate": "hidden",
            "feed_forward.switch_mlp.gate_proj": "hidden",
            "feed_forward.switch_mlp.up_proj": "hidden",
            "feed_forward.switch_mlp.down_proj": "moe_intermediate_size"})
