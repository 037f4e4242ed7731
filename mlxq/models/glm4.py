"""mlx-lm's ``models/glm4.py``: fused ``gate_up_proj`` and four norms per block; no sanitize
step and always an ``lm_head``."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_tree
from .base import Family, Order

FAMILY = Family(
    "glm4", ("glm4",),
    order=Order(llama_tree(f"{ATTN} mlp(gate_up_proj down_proj) {NORMS} "
                           "post_self_attn_layernorm post_mlp_layernorm")),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.gate_up_proj": "hidden", "mlp.down_proj": "intermediate_size"})
