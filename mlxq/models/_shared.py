"""Pieces of module trees and widths that several llama-shaped families share (each family
module says which it uses)."""

from __future__ import annotations

#: self_attn's projections as mlx-lm's Attention defines them
ATTN = "self_attn(q_proj k_proj v_proj o_proj)"
#: ... with Qwen3's per-head norms
ATTN_QK_NORM = "self_attn(q_proj k_proj v_proj o_proj q_norm k_norm)"
#: the gated MLP (gate, down, up: MLP.__init__'s order)
MLP = "mlp(gate_proj down_proj up_proj)"
NORMS = "input_layernorm post_attention_layernorm"


def llama_tree(layer: str, top_norm: str = "norm", head: bool = True) -> str:
    """``model(embed_tokens layers*(LAYER) NORM) lm_head`` (the tree of most decoders)."""
    return f"model(embed_tokens layers*({layer}) {top_norm})" + (" lm_head" if head else "")


ATTN_WIDTHS = {"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
               "self_attn.v_proj": "hidden", "self_attn.o_proj": "attention"}
MLP_WIDTHS = {"mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
              "mlp.down_proj": "intermediate_size"}
#: the output rows of mlx-lm's Attention's projections (its __init__: n_heads * head_dim
#: for q, n_kv_heads * head_dim for k and v, the hidden size for o)
ATTN_ROWS = {"self_attn.q_proj": "attention", "self_attn.k_proj": "kv",
             "self_attn.v_proj": "kv", "self_attn.o_proj": "hidden"}


def tied(config, default: bool) -> bool:
    """``args.tie_word_embeddings`` with mlx-lm's default for the family."""
    v = config.get("tie_word_embeddings")
    return default if v is None else bool(v)


def llama_order(layer: str, *, tie_default: bool | None = None, top_norm: str = "norm"):
    """The Order of a llama-shaped model whose ``lm_head`` exists unless the embeddings are
    tied (``tie_default`` is ModelArgs' default), or always (``None``)."""
    from .base import Order

    if tie_default is None:
        return Order(llama_tree(layer, top_norm))
    return lambda config: Order(llama_tree(layer, top_norm, head=not tied(config, tie_default)))
