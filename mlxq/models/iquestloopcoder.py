"""mlx-lm's ``models/iquestloopcoder.py`` (IQuest-Coder-V1 Loop): llama blocks run twice,
mixed by a per-layer ``gate_projections`` module (a bare ``weight [heads, head_dim]`` and
``bias [heads]``, not a Linear). No ``sanitize``: an ``lm_head`` exists unless the
embeddings are tied (by default they are not)."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS
from .base import Family, Order
from .common import Args


def _order(config) -> Order:
    tied = Args(config, tie_word_embeddings=False).tie_word_embeddings
    return Order(f"model(embed_tokens layers*({ATTN} {MLP} {NORMS}) norm "
                 "gate_projections*(weight bias))" + ("" if tied else " lm_head"))


FAMILY = Family(
    "iquestloopcoder", ("iquestloopcoder",), order=_order,
    # LoopGateProjection holds its weight as a plain parameter: no to_quantized
    not_quantized=(r"^model\.gate_projections\.\d+$",),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS})
