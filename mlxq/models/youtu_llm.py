"""mlx-lm's ``models/youtu_llm.py`` (Youtu-LLM): multi-head latent attention kept unsplit
(``q_a_proj`` → ``q_a_layernorm`` → ``q_b_proj``, or one ``q_proj`` without
``q_lora_rank``; ``kv_a_proj_with_mqa`` → ``kv_a_layernorm`` → ``kv_b_proj``) and a gated
MLP. The sanitize drops a tied ``lm_head`` (tied by default)."""

from __future__ import annotations

from .base import Family, Order
from .common import Args, Weights

ATTN = ("self_attn(q_proj q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm "
        "kv_b_proj o_proj)")


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


def _order(config) -> Order:
    tied = Args(config, tie_word_embeddings=True).tie_word_embeddings
    return Order(f"model(embed_tokens layers*({ATTN} mlp(gate_proj up_proj down_proj) "
                 "input_layernorm post_attention_layernorm) norm)" + ("" if tied else " lm_head"))


FAMILY = Family("youtu_llm", ("youtu_llm",), sanitize, _order,
                widths={"self_attn.q_proj": "hidden", "self_attn.q_a_proj": "hidden",
                        "self_attn.q_b_proj": "q_lora_rank",
                        "self_attn.kv_a_proj_with_mqa": "hidden",
                        "self_attn.kv_b_proj": "kv_lora_rank",
                        "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
                        "mlp.down_proj": "intermediate_size"})
