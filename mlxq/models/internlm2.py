"""mlx-lm's ``models/internlm2.py`` (InternLM2, InternLM2.5): a fused ``attention.wqkv``,
``feed_forward.w1/w2/w3``, an ``output`` head unless the embeddings are tied (by default
they are not)."""

from __future__ import annotations

from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    # Remove unused precomputed rotary freqs
    return Weights({k: v for k, v in weights.items() if "attention.rope.inv_freq" not in k})


def _order(config) -> Order:
    tied = Args(config, tie_word_embeddings=False).tie_word_embeddings
    return Order("model(tok_embeddings layers*(attention(wqkv wo) feed_forward(w1 w2 w3) "
                 "attention_norm ffn_norm) norm)" + ("" if tied else " output"))


FAMILY = Family(
    "internlm2", ("internlm2",), sanitize, _order,
    widths={"attention.wqkv": "hidden", "attention.wo": "attention",
            "feed_forward.w1": "hidden", "feed_forward.w3": "hidden",
            "feed_forward.w2": "intermediate_size"})
