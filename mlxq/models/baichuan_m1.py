"""mlx-lm's ``models/baichuan_m1.py`` (Baichuan-M1): a fused ``W_pack`` q/k/v projection
with a two-tap convolution over keys and values (``conv_k``/``conv_v``, bare parameters),
some layers with sliding-window attention and their own head counts. Its ``sanitize``
normalises the output head as Baichuan's NormHead does: each row of a dense
``lm_head.weight`` divided by its 2-norm (in float32, + 1e-7), cast back; a head already
quantized (``lm_head.scales``) is left alone."""

from __future__ import annotations

from . import mx
from ._shared import llama_order
from .base import Family
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    is_quantized = "lm_head.scales" in weights
    if not is_quantized and "lm_head.weight" in weights:
        w = weights["lm_head.weight"]
        dtype = w.dtype
        w = w.astype(mx.float32)
        norm = mx.linalg.norm(w, axis=-1, keepdims=True)
        w = (w / (norm + 1e-7)).astype(dtype)
        weights["lm_head.weight"] = w
    return weights


FAMILY = Family(
    "baichuan_m1", ("baichuan_m1",), sanitize,
    llama_order("self_attn(W_pack o_proj conv_k conv_v) mlp(gate_proj up_proj down_proj) "
                "input_layernorm post_attention_layernorm", tie_default=False))
