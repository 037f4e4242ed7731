"""mlx-lm's ``models/seed_oss.py``."""

from __future__ import annotations

from ._shared import ATTN, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


FAMILY = Family("seed_oss", ("seed_oss",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=True),
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
