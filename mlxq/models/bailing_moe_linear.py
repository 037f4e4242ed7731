"""mlx-lm's ``models/bailing_moe_linear.py`` (Ring-linear 2.0: bailing_moe's MoE with
lightning linear attention): every ``layer_group_size``-th layer (and the tail after the
last whole group) is softmax attention, the others linear attention with an output gate
(``g_proj``) and a grouped RMS norm (``g_norm``). Its ``sanitize``, ``quant_predicate`` and
``cast_predicate`` are bailing_moe's, line for line."""

from __future__ import annotations

from .bailing_moe import MLP, bailing_order, cast_predicate, quant_predicate, sanitize
from .base import Family

FAMILY = Family(
    "bailing_moe_linear", ("bailing_moe_linear",), sanitize,
    # Attention: query_key_value, dense, key_layernorm, query_layernorm; LinearAttention adds
    # g_proj and g_norm after dense
    bailing_order("attention(query_key_value dense g_proj g_norm key_layernorm "
                  f"query_layernorm) {MLP} input_layernorm post_attention_layernorm"),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate)
