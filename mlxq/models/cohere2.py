"""mlx-lm's ``models/cohere2.py`` (Command R7B, Command A): one LayerNorm per block with
attention and the MLP in parallel, sliding-window layers. No ``sanitize``; the output head
is always the tied embedding (the model has no ``lm_head``, so a checkpoint with one is
refused, as mlx-lm's strict load refuses it)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, llama_tree
from .base import Family, Order

FAMILY = Family(
    "cohere2", ("cohere2",),
    order=Order(llama_tree(f"{ATTN} mlp(gate_proj up_proj down_proj) input_layernorm",
                           head=False)),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
