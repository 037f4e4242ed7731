"""mlx-lm's ``models/nanbeige.py`` (Nanbeige 4.x, a looped transformer: the block stack runs
``num_loops`` times with shared weights): llama blocks; the sanitize drops the rotary
buffers. An ``lm_head`` exists unless the embeddings are tied (by default they are not)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    # Remove unused precomputed rotary freqs
    return Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })


FAMILY = Family("nanbeige", ("nanbeige",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=False),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
