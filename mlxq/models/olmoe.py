"""mlx-lm's ``models/olmoe.py``."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_order
from . import qwen2_moe
from .base import Family


# mlx-lm's olmoe sanitize takes the same steps as qwen2_moe's; both are checked against mlx-lm
sanitize = qwen2_moe.sanitize


FAMILY = Family(
    "olmoe", ("olmoe",), sanitize,
    llama_order(f"{ATTN_QK_NORM} mlp(gate switch_mlp(gate_proj up_proj down_proj)) {NORMS}",
                tie_default=True),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.gate": "hidden", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "intermediate_size"})
