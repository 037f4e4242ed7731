"""mlx-lm's ``models/smollm3.py`` (a llama with NoPE layers)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from . import llama
from .base import Family


# mlx-lm's smollm3 sanitize takes the same steps as llama's; both are checked against mlx-lm
sanitize = llama.sanitize


FAMILY = Family("smollm3", ("smollm3",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=True),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
