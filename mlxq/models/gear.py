"""mlx-lm's ``models/gear.py`` (Gear): Gemma-style blocks (``1 + weight`` RMS norms, four per
layer, q/k norms) whose mixer is full attention, sliding attention or a local
``conv_mixer`` (depthwise ``key_conv``/``value_conv`` over the k/v projections), chosen by
``layer_types``. Its ``sanitize`` drops rotary ``inv_freq`` and ``embed_scale`` buffers and
a tied ``lm_head.weight``, and turns a PyTorch ``Conv1d`` kernel ``[channels, 1, width]``
of ``key_conv``/``value_conv`` into MLX's ``[channels, width, 1]``."""

from __future__ import annotations

from ._shared import tied
from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    sanitized_weights = Weights()
    for name, param in weights.items():
        if "rotary_emb.inv_freq" in name or name.endswith("embed_scale"):
            continue
        if args.tie_word_embeddings and name == "lm_head.weight":
            continue
        if name.endswith(("key_conv.weight", "value_conv.weight")):
            if len(param.shape) == 3 and param.shape[1] == 1:
                param = param.transpose(0, 2, 1)
        sanitized_weights[name] = param
    return sanitized_weights


def order(config) -> Order:
    head = "" if tied(config, True) else " lm_head"
    return Order("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj q_norm "
                 "k_norm) local_mixer(key_conv value_conv q_proj k_proj v_proj o_proj q_norm "
                 "k_norm) mlp(gate_proj up_proj down_proj) input_layernorm "
                 "post_attention_layernorm pre_feedforward_layernorm "
                 "post_feedforward_layernorm) norm)" + head)


FAMILY = Family("gear", ("gear",), sanitize, order)
