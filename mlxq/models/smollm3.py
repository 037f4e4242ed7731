"""mlx-lm's ``models/smollm3.py`` (a llama with NoPE layers)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    weights = Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


FAMILY = Family("smollm3", ("smollm3",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=True),
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
