"""mlx-lm's ``models/phi3.py``: fused ``qkv_proj`` and ``gate_up_proj``; no sanitize step,
so an ``lm_head`` exists only when the embeddings are not tied."""

from __future__ import annotations

from ._shared import NORMS, llama_order
from .base import Family

FAMILY = Family(
    "phi3", ("phi3",),
    order=llama_order(f"self_attn(qkv_proj o_proj) mlp(gate_up_proj down_proj) {NORMS}",
                      tie_default=False),
    widths={"self_attn.qkv_proj": "hidden", "self_attn.o_proj": "attention",
            "mlp.gate_up_proj": "hidden", "mlp.down_proj": "intermediate_size"})
