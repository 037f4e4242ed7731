"""mlx-lm's ``models/phi3small.py`` (Phi-3-small): a fused ``query_key_value`` and
``dense`` with biases, a GEGELU MLP (``up_proj`` of twice the width), layer norms with
biases, ``final_layernorm``; the embeddings are the output head. The sanitize drops the
rotary buffers."""

from __future__ import annotations

from .base import Family, Order
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    # Remove unused precomputed rotary freqs
    return Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })


FAMILY = Family(
    "phi3small", ("phi3small",), sanitize,
    Order("model(embed_tokens layers*(self_attn(query_key_value dense) mlp(up_proj down_proj) "
          "input_layernorm post_attention_layernorm) final_layernorm)"),
    widths={"self_attn.query_key_value": "hidden", "self_attn.dense": "hidden",
            "mlp.up_proj": "hidden", "mlp.down_proj": "ff_intermediate_size"})
