"""mlx-lm's ``models/olmo_hybrid.py`` (OLMo Hybrid): gated-delta layers (``linear_attn``
with one depthwise convolution per q/k/v projection, pre-norm) interleaved with
full-attention layers (whole-width q/k norms, post-norm: ``post_attention_layernorm`` and
``post_feedforward_layernorm``). Its ``sanitize`` pops ``lm_head.weight`` when the
embeddings are tied and moves the kernel axis of every 3-D ``conv1d`` weight last."""

from __future__ import annotations

from ._shared import llama_order
from .base import Family
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=REQUIRED)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    sanitized = Weights()
    for k, v in weights.items():
        if "conv1d.weight" in k and v.ndim == 3 and v.shape[-1] != 1:
            v = v.moveaxis(2, 1)
        sanitized[k] = v
    return sanitized


FAMILY = Family(
    "olmo_hybrid", ("olmo_hybrid",), sanitize,
    # LinearAttentionDecoderLayer: linear_attn, mlp, input_layernorm,
    # post_attention_layernorm; FullAttentionDecoderLayer: self_attn, mlp,
    # post_attention_layernorm, post_feedforward_layernorm
    llama_order("linear_attn(q_proj k_proj v_proj a_proj b_proj g_proj o_proj q_conv1d "
                "k_conv1d v_conv1d A_log dt_bias o_norm) "
                "self_attn(q_proj k_proj v_proj o_proj q_norm k_norm) "
                "mlp(gate_proj up_proj down_proj) input_layernorm post_attention_layernorm "
                "post_feedforward_layernorm", tie_default=False))
