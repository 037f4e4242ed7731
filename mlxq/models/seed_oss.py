"""mlx-lm's ``models/seed_oss.py``."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from . import granite
from .base import Family


# mlx-lm's seed_oss sanitize takes the same steps as granite's; both are checked against mlx-lm
sanitize = granite.sanitize


FAMILY = Family("seed_oss", ("seed_oss",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=True),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
