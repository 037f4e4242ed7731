"""mlx-lm's ``models/olmo2.py``: norms after attention and after the MLP."""

from __future__ import annotations

from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, llama_order
from .base import Family
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    # Remove unused precomputed rotary freqs
    return Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })


FAMILY = Family(
    "olmo2", ("olmo2",), sanitize,
    llama_order(f"{ATTN_QK_NORM} {MLP} post_attention_layernorm post_feedforward_layernorm",
                tie_default=True),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
