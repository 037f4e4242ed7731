"""mlx-lm's ``models/rwkv7.py`` (RWKV-7 "Goose", flash-linear-attention's Hugging Face
layout): time mixing with token-shift mixes, low-rank ``*_lora`` projections (a list whose
middle entry is the activation), a per-head group norm, and channel mixing. Its
``sanitize`` reshapes ``k_k``, ``k_a`` and ``g_norm`` (``[hidden]`` in the checkpoint) to
``[heads, head_dim]``; its ``quant_predicate`` gives the LoRA up-projections (``lora.2``) and
the embedding 8 bits with no group size, which ``to_quantized`` fills with its own default
(64).

>>> FAMILY.model_quant("model.layers.0.attn.w_lora.lora.2", {})
{'bits': 8}
"""

from __future__ import annotations

from ._shared import tied
from .base import Family, Order
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, hidden_size=REQUIRED, head_dim=REQUIRED)
    for k in weights:
        if "k_k" in k or "k_a" in k or "g_norm" in k:
            weights[k] = weights[k].reshape(args.hidden_size // args.head_dim, args.head_dim)
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if "lora.2" in path or "embeddings" in path:
        return {"bits": 8}
    return True


def order(config) -> Order:
    head = "" if tied(config, False) else " lm_head"
    # Rwkv7Layer: pre_norm (layer 0 only), attn, ffn, attn_norm, ffn_norm; each LoRA is a
    # list (Linear, activation, Linear)
    return Order(
        "model(embeddings layers*(pre_norm attn(x_r x_w x_k x_v x_a x_g k_k k_a r_k r_proj "
        "k_proj v_proj o_proj g_norm w_lora(lora*) v_lora(lora*) a_lora(lora*) "
        f"g_lora(lora*)) ffn(key value x_k) attn_norm ffn_norm) norm){head}")


FAMILY = Family("rwkv7", ("rwkv7",), sanitize, order, quant_predicate=quant_predicate)
