"""mlx-lm's ``models/gemma2.py``: tied embeddings, four norms per block, no sanitize step."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, llama_tree
from .base import Family, Order

FAMILY = Family(
    "gemma2", ("gemma2",),
    order=Order(llama_tree(f"{ATTN} {MLP} input_layernorm pre_feedforward_layernorm "
                           "post_feedforward_layernorm post_attention_layernorm", head=False)),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
