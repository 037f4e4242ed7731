"""mlx-lm's ``models/nemotron-nas.py`` (NVIDIA's Llama-Nemotron Super/Ultra, found by
neural architecture search): each block's ``block_configs`` entry makes its attention and
its MLP either the usual module, a single ``linear`` (``replace_with_linear``) or nothing
(``no_op``, which also drops the norm before it); MLP widths vary per block. The sanitize
drops a tied ``lm_head``.

mlx-lm names a replacement ``self_attn.linear`` / ``mlp.linear``; NVIDIA's checkpoints call
them ``self_attn.linear_attn`` / ``mlp.linear_mlp``, so mlx-lm (and mlxq, which follows its
strict load) refuses the releases that have such blocks (Llama-3.1-Nemotron-51B)."""

from __future__ import annotations

from ._shared import ATTN_WIDTHS
from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


def _order(config) -> Order:
    tied = Args(config, tie_word_embeddings=False).tie_word_embeddings
    return Order("model(embed_tokens layers*(input_layernorm "
                 "self_attn(q_proj k_proj v_proj o_proj linear) post_attention_layernorm "
                 "mlp(gate_proj down_proj up_proj linear)) norm)"
                 + ("" if tied else " lm_head"))


FAMILY = Family("nemotron-nas", ("nemotron-nas",), sanitize, _order,
                widths={**ATTN_WIDTHS, "self_attn.linear": "hidden",
                        "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
                        "mlp.linear": "hidden"})
