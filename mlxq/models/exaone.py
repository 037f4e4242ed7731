"""mlx-lm's ``models/exaone.py`` (EXAONE 3.x): GPT-style names (``transformer.wte``,
``transformer.h.N``, ``ln_1``/``ln_2``, ``ln_f``) over a llama-like block whose attention
sits one level down (``attn.attention.q_proj ... out_proj``) and whose gated MLP is
``c_fc_0`` (gate), ``c_fc_1`` (up) and ``c_proj``. No ``sanitize``: an ``lm_head`` exists only
when the embeddings are not tied (``tie_word_embeddings`` defaults to true)."""

from __future__ import annotations

from ._shared import tied
from .base import Family, Order

LAYER = "ln_1 attn(attention(q_proj k_proj v_proj out_proj)) ln_2 mlp(c_fc_0 c_fc_1 c_proj)"


def order(config) -> Order:
    head = "" if tied(config, True) else " lm_head"
    return Order(f"transformer(wte h*({LAYER}) ln_f){head}")


FAMILY = Family(
    "exaone", ("exaone",), order=order,
    widths={"attn.attention.q_proj": "hidden", "attn.attention.k_proj": "hidden",
            "attn.attention.v_proj": "hidden", "attn.attention.out_proj": "attention",
            "mlp.c_fc_0": "hidden", "mlp.c_fc_1": "hidden",
            "mlp.c_proj": "intermediate_size"})
