"""mlx-lm's ``models/gemma.py``: tied embeddings (no ``lm_head``), no sanitize step."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order

FAMILY = Family("gemma", ("gemma",), order=Order(llama_tree(f"{ATTN} {MLP} {NORMS}", head=False)),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
