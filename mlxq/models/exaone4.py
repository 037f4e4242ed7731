"""mlx-lm's ``models/exaone4.py``: norms after attention and MLP; no sanitize step."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, llama_order
from .base import Family

FAMILY = Family(
    "exaone4", ("exaone4",),
    order=llama_order(f"{ATTN_QK_NORM} {MLP} post_attention_layernorm "
                      "post_feedforward_layernorm", tie_default=False),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
