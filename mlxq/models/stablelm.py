"""mlx-lm's ``models/stablelm.py``: always an ``lm_head``; no sanitize step. (Its per-head
``q_layernorm``/``k_layernorm``, with ``qk_layernorm``, are lists of norms.)"""

from __future__ import annotations

from ._shared import ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order

FAMILY = Family(
    "stablelm", ("stablelm",),
    order=Order(llama_tree("self_attn(q_proj k_proj v_proj o_proj q_layernorm(norms*) "
                           f"k_layernorm(norms*)) {MLP} {NORMS}")),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
