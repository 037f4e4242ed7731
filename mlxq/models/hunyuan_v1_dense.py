"""mlx-lm's ``models/hunyuan_v1_dense.py``: per-head ``query_layernorm``/``key_layernorm``."""

from __future__ import annotations

from ._shared import ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


FAMILY = Family(
    "hunyuan_v1_dense", ("hunyuan_v1_dense",), sanitize,
    llama_order("self_attn(q_proj k_proj v_proj o_proj query_layernorm key_layernorm) "
                f"{MLP} {NORMS}", tie_default=False),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
