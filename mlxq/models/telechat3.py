"""mlx-lm's ``models/telechat3.py`` (TeleChat3): llama blocks; no ``sanitize``, so an
``lm_head`` exists unless the embeddings are tied (by default they are not)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family

FAMILY = Family("telechat3", ("telechat3",),
                order=llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=False),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
