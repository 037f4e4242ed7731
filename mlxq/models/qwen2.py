"""mlx-lm's ``models/qwen2.py``."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    # Remove unused precomputed rotary freqs
    return Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })


FAMILY = Family("qwen2", ("qwen2",), sanitize, Order(llama_tree(f"{ATTN} {MLP} {NORMS}")),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
