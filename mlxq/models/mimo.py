"""mlx-lm's ``models/mimo.py`` (Xiaomi MiMo-7B): Qwen2 blocks; the sanitize drops the
multi-token-prediction layers (``model.mtp_layers.*``), the rotary buffers and a tied
``lm_head``."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return Weights({
        k: v
        for k, v in weights.items()
        if "self_attn.rotary_emb.inv_freq" not in k
        and not k.startswith("model.mtp_layers.")
    })


FAMILY = Family("mimo", ("mimo",), sanitize,
                llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=False),
                rows=ATTN_ROWS,
                widths={**ATTN_WIDTHS, **MLP_WIDTHS})
