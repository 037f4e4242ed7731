"""mlx-lm's ``models/ernie4_5.py``; no sanitize step."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family

FAMILY = Family("ernie4_5", ("ernie4_5",),
                order=llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=False),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
