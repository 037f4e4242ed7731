"""mlx-lm's ``models/internlm3.py``."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    # Remove unused precomputed rotary freqs
    return Weights({k: v for k, v in weights.items() if "attention.rope.inv_freq" not in k})


FAMILY = Family("internlm3", ("internlm3",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=False),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
