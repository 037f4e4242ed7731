"""mlx-lm's ``models/minicpm.py`` (MiniCPM 1/2): llama blocks with scaled embeddings and
residuals. The sanitize gives the model an ``lm_head`` copied from the embeddings when the
checkpoint has none (MiniCPM-2B shares them and saves no head)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    if "lm_head.weight" not in weights:
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
    return weights


FAMILY = Family("minicpm", ("minicpm",), sanitize,
                llama_order(f"{ATTN} mlp(gate_proj up_proj down_proj) {NORMS}",
                            tie_default=False),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
