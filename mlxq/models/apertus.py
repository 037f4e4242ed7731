"""mlx-lm's ``models/apertus.py`` (Swiss AI's Apertus): per-head q/k norms, an MLP of
``up_proj`` and ``down_proj`` around a learned xIELU activation whose ``alpha_p``,
``alpha_n``, ``beta`` and ``eps`` are parameters of ``mlp.act_fn``.

``Model.sanitize`` squeezes ``alpha_p`` and ``alpha_n`` (transformers stores them with
shape ``[1]``; mlx-lm's ``XieLU`` holds scalars) and drops ``lm_head.weight`` when the
embeddings are tied; the model has an ``lm_head`` only when they are not.

>>> from mlxq.conversion import graph
>>> import numpy as np
>>> w = {"model.layers.0.mlp.act_fn.alpha_p": graph.constant(np.ones(1, np.float32))}
>>> FAMILY.sanitize(w, {"tie_word_embeddings": False})["model.layers.0.mlp.act_fn.alpha_p"].shape
()
"""

from __future__ import annotations

from ._shared import ATTN_QK_NORM
from .base import Family, Order
from .common import REQUIRED, Args, Weights

LAYER = (f"{ATTN_QK_NORM} mlp(up_proj down_proj act_fn(alpha_p alpha_n beta eps)) "
         "attention_layernorm feedforward_layernorm")


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=REQUIRED)
    for k, v in weights.items():
        if k.endswith("alpha_p") or k.endswith("alpha_n"):
            weights[k] = v.squeeze()
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


def order(config) -> Order:
    """``Model.__init__``: an ``lm_head`` unless ``tie_word_embeddings`` (a required field)."""
    head = "" if Args(config, tie_word_embeddings=REQUIRED).tie_word_embeddings else " lm_head"
    return Order(f"model(embed_tokens layers*({LAYER}) norm){head}")


FAMILY = Family(
    "apertus", ("apertus",), sanitize, order,
    # ApertusAttention's head_dim is hidden_size // num_attention_heads whatever the config
    # says, so o_proj's width is not the generic "attention" rule's: left unchecked
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size"})
