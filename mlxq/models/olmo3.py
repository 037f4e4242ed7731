"""mlx-lm's ``models/olmo3.py`` (OLMo 3): norms after attention and after the MLP, q/k
norms over all heads at once (``q_norm`` is ``num_attention_heads * head_dim`` wide),
sliding-window and full-attention layers. No ``sanitize``: an ``lm_head`` exists only when
the embeddings are not tied (by default they are not)."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, llama_order
from .base import Family

FAMILY = Family(
    "olmo3", ("olmo3",),
    order=llama_order(f"{ATTN_QK_NORM} {MLP} post_attention_layernorm "
                      "post_feedforward_layernorm", tie_default=False),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
