"""mlx-lm's ``models/nemotron.py`` (Nemotron-4 / Minitron): LayerNorm1P norms with a bias
(``weight + 1`` at run time, the stored weight unchanged), a squared-ReLU MLP of
``up_proj`` and ``down_proj`` (defined down first), partial rotary embeddings. No
``sanitize``: an ``lm_head`` exists only when the embeddings are not tied (by default they
are not)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, NORMS, llama_order
from .base import Family

FAMILY = Family(
    "nemotron", ("nemotron",),
    order=llama_order(f"{ATTN} mlp(down_proj up_proj) {NORMS}", tie_default=False),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.up_proj": MLP_WIDTHS["mlp.up_proj"],
            "mlp.down_proj": MLP_WIDTHS["mlp.down_proj"]})
