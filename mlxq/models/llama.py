"""mlx-lm's ``models/llama.py`` (also Mistral, IQuestCoder and XVERSE, which mlx-lm's
``MODEL_REMAPPING`` sends there)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_tree
from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    # Remove unused precomputed rotary freqs
    weights = Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


FAMILY = Family(
    "llama", ("llama", "mistral", "iquestcoder", "xverse"), sanitize,
    Order(llama_tree(f"{ATTN} {MLP} {NORMS}")), rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
