"""mlx-lm's ``models/starcoder2.py``: ``c_fc``/``c_proj`` MLP; no sanitize step."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_order
from .base import Family

FAMILY = Family(
    "starcoder2", ("starcoder2",),
    order=llama_order(f"{ATTN} mlp(c_fc c_proj) {NORMS}", tie_default=True),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.c_fc": "hidden", "mlp.c_proj": "intermediate_size"})
