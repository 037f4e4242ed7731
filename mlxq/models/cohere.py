"""mlx-lm's ``models/cohere.py`` (Command-R): tied embeddings, one norm per block (attention
and MLP in parallel), no sanitize step."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, llama_tree
from .base import Family, Order

FAMILY = Family(
    "cohere", ("cohere",),
    order=Order(llama_tree(f"{ATTN} mlp(gate_proj up_proj down_proj) input_layernorm",
                           head=False)),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
