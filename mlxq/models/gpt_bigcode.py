"""mlx-lm's ``models/gpt_bigcode.py`` (StarCoder, SantaCoder): GPT-2's block under
``transformer.`` with learned positions (``wpe``) and a fused ``c_attn`` holding the
queries and one key/value head (``multi_query``, the default) or ``n_head`` of them;
mlx-lm sizes it from ``multi_query`` alone, not ``num_key_value_heads``. Unlike GPT-2 the
checkpoint is already in Linear layout, and mlx-lm has no ``sanitize``: an ``lm_head``
exists only when the embeddings are not tied (by default they are)."""

from __future__ import annotations

from ._shared import tied
from .base import Family, Order

TREE = "transformer(wte wpe h*(attn(c_attn c_proj) mlp(c_fc c_proj) ln_1 ln_2) ln_f)"


def order(config) -> Order:
    return Order(TREE if tied(config, True) else f"{TREE} lm_head")


FAMILY = Family("gpt_bigcode", ("gpt_bigcode",), order=order)
