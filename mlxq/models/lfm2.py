"""mlx-lm's ``models/lfm2.py`` (LFM2): short-convolution and attention layers; the conv
weights are moved to MLX's ``[out, kernel, in]`` when stored ``[out, in, kernel]``."""

from __future__ import annotations

from .base import Family, Order
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    sanitized_weights = Weights()
    for name, param in weights.items():
        if "conv.weight" in name:
            if param.shape[-1] > param.shape[1]:
                param = param.transpose(0, 2, 1)
        sanitized_weights[name] = param
    return sanitized_weights


FAMILY = Family(
    "lfm2", ("lfm2",), sanitize,
    Order("model(embed_tokens layers*(self_attn(q_layernorm k_layernorm q_proj k_proj v_proj "
          "out_proj) conv(conv in_proj out_proj) feed_forward(w1 w3 w2) operator_norm "
          "ffn_norm) embedding_norm)"))
