"""mlx-lm's ``models/qwen3.py``."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=REQUIRED)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


FAMILY = Family("qwen3", ("qwen3",), sanitize, Order(llama_tree(f"{ATTN_QK_NORM} {MLP} {NORMS}")),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
