"""mlx-lm's ``models/granite.py``: its ``quant_predicate`` keeps ``o_proj``, ``down_proj``
and ``lm_head`` at 8 bits (their small block absmax underflows low-bit fp scales)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if (path.endswith("self_attn.o_proj") or path.endswith("mlp.down_proj")
            or path == "lm_head"):
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family("granite", ("granite",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=True),
                quant_predicate=quant_predicate, rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
