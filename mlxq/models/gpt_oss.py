"""mlx-lm's ``models/gpt_oss.py``: the experts' fused, interleaved gate/up projection split
into ``gate_proj`` (even rows) and ``up_proj`` (odd rows), biases likewise; the router stays
at 8 bits (``quant_predicate``).

mlx-lm's ``sanitize`` handles the MXFP4 release (``*_blocks``/``*_scales``, already
``[experts, out, in]``; mlxq's MXFP4 transform produces those names first). The Hub's bf16
layout, which transformers saves (``experts.gate_up_proj`` ``[experts, hidden, 2 x inter]``,
``experts.down_proj`` ``[experts, inter, hidden]``, with the output axis last, as the model
computes ``x @ W``), mlx-lm renames without transposing and then fails to load; mlxq
converts it: the interleave is on the last axis there, and each weight is transposed into
``[experts, out, in]``. The result is what the MXFP4 path gives for the same weights."""

from __future__ import annotations

from . import mx
from .base import Family, Order
from .common import Weights


def _bf16_layout(weights: Weights) -> Weights:
    new_weights = Weights()
    for k, v in weights.items():
        if k.endswith("experts.gate_up_proj"):
            new_weights[k.replace("gate_up_proj", "gate_proj.weight")] = mx.contiguous(
                v[..., ::2].swapaxes(-1, -2))
            new_weights[k.replace("gate_up_proj", "up_proj.weight")] = mx.contiguous(
                v[..., 1::2].swapaxes(-1, -2))
        elif k.endswith("experts.gate_up_proj_bias"):
            new_weights[k.replace("gate_up_proj_bias", "gate_proj.bias")] = v[..., ::2]
            new_weights[k.replace("gate_up_proj_bias", "up_proj.bias")] = v[..., 1::2]
        elif k.endswith("experts.down_proj"):
            new_weights[k + ".weight"] = mx.contiguous(v.swapaxes(-1, -2))
        elif k.endswith("experts.down_proj_bias"):
            new_weights[k.replace("down_proj_bias", "down_proj.bias")] = v
        else:
            new_weights[k] = v
    return new_weights


def sanitize(weights: Weights, config) -> Weights:
    if any("gate_proj.weight" in k for k in weights.keys()):
        return weights  # already sanitized
    if any(k.endswith("experts.gate_up_proj") for k in weights):
        return _bf16_layout(weights)
    new_weights = Weights()
    for k, v in weights.items():
        if "gate_up_proj" in k and "bias" not in k:
            if "_blocks" in k:
                v = v.view(mx.uint32).flatten(-2)
                k = k.replace("_blocks", ".weight")
            if "_scales" in k:
                k = k.replace("_scales", ".scales")
            new_weights[k.replace("gate_up_proj", "gate_proj")] = mx.contiguous(v[..., ::2, :])
            new_weights[k.replace("gate_up_proj", "up_proj")] = mx.contiguous(v[..., 1::2, :])
        elif "down_proj" in k and "bias" not in k:
            if "_blocks" in k:
                v = v.view(mx.uint32).flatten(-2)
                k = k.replace("_blocks", ".weight")
            if "_scales" in k:
                k = k.replace("_scales", ".scales")
            new_weights[k] = v
        elif "gate_up_proj_bias" in k:
            new_weights[k.replace("gate_up_proj_bias", "gate_proj.bias")] = mx.contiguous(
                v[..., ::2])
            new_weights[k.replace("gate_up_proj_bias", "up_proj.bias")] = mx.contiguous(
                v[..., 1::2])
        elif "down_proj_bias" in k:
            new_weights[k.replace("down_proj_bias", "down_proj.bias")] = v
        else:
            new_weights[k] = v
    return new_weights


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("router"):
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family(
    "gpt_oss", ("gpt_oss",), sanitize,
    Order("model(embed_tokens norm layers*(self_attn(sinks q_proj k_proj v_proj o_proj) "
          "mlp(experts(gate_proj up_proj down_proj) router) input_layernorm "
          "post_attention_layernorm)) lm_head"),
    quant_predicate=quant_predicate)
