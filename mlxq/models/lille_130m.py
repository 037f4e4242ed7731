"""mlx-lm's ``models/lille-130m.py`` (Lille 130M): a fused ``attention.qkv_proj`` and a norm
inside the attention and the feed-forward module; the embeddings are the output head. The
sanitize drops every ``rotary_emb`` buffer."""

from __future__ import annotations

from .base import Family, Order
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    return Weights({k: v for k, v in weights.items() if "rotary_emb" not in k})


FAMILY = Family(
    "lille-130m", ("lille-130m",), sanitize,
    Order("transformer(tok_embeddings layers*(attention(qkv_proj out_proj norm) "
          "feed_forward(norm gate_proj up_proj down_proj)) norm)"))
