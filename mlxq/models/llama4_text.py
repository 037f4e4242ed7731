"""mlx-lm's ``models/llama4_text.py`` (MobileLLM-R1: dense Llama 4 layers, per-layer RoPE,
weightless QK norms). The model has no ``sanitize``: the checkpoint's names are its
parameters. Its output head is ``output`` (not ``lm_head``), present only when the
embeddings are not tied; a Hugging Face checkpoint with an ``lm_head.weight`` (an untied
one, or Llama 4's MoE text layers) is refused, as mlx-lm's strict load refuses it.
"""

from __future__ import annotations

from ..errors import MissingKeyError
from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, tied
from .base import Family, Order


def order(config) -> Order:
    if "tie_word_embeddings" not in config:  # a ModelArgs field without a default
        raise MissingKeyError("config.json has no 'tie_word_embeddings', which mlx-lm's "
                              "llama4_text model needs", key="tie_word_embeddings")
    head = "" if tied(config, True) else " output"
    return Order(f"model(embed_tokens layers*({ATTN} feed_forward(gate_proj up_proj "
                 f"down_proj) {NORMS}) norm){head}")


FAMILY = Family(
    "llama4_text", ("llama4_text",), order=order,
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "feed_forward.gate_proj": "hidden", "feed_forward.up_proj": "hidden",
            "feed_forward.down_proj": "intermediate_size_mlp"})
