"""mlx-lm's ``models/gemma3_text.py``."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    # mlx-lm: without an lm_head.weight the model ties its embeddings and drops the
    # lm_head module; the weights are returned unchanged either way
    return weights


FAMILY = Family(
    "gemma3_text", ("gemma3_text",), sanitize,
    Order(llama_tree(f"{ATTN_QK_NORM} {MLP} {NORMS} pre_feedforward_layernorm "
                     "post_feedforward_layernorm")),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
