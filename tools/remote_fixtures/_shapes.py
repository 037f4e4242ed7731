"""Shape helpers the fam-dense descriptions share: the tensors of a llama-shaped decoder under
a publisher's names (which each description states)."""

from __future__ import annotations

from typing import Any

BF16 = "bfloat16"


def llama_block(prefix: str, hidden: int, heads: int, kv_heads: int, head_dim: int,
                inter: int, *, qkv_bias: bool = False) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{prefix}.self_attn.{q,k,v,o}_proj``, ``{prefix}.mlp.{gate,up,down}_proj`` and the two
    norms of a llama block (q/k/v biases with ``qkv_bias``)."""
    t: dict[str, Any] = {
        f"{prefix}.self_attn.q_proj.weight": ((heads * head_dim, hidden), BF16),
        f"{prefix}.self_attn.k_proj.weight": ((kv_heads * head_dim, hidden), BF16),
        f"{prefix}.self_attn.v_proj.weight": ((kv_heads * head_dim, hidden), BF16),
        f"{prefix}.self_attn.o_proj.weight": ((hidden, heads * head_dim), BF16),
        f"{prefix}.mlp.gate_proj.weight": ((inter, hidden), BF16),
        f"{prefix}.mlp.up_proj.weight": ((inter, hidden), BF16),
        f"{prefix}.mlp.down_proj.weight": ((hidden, inter), BF16),
        f"{prefix}.input_layernorm.weight": ((hidden,), BF16),
        f"{prefix}.post_attention_layernorm.weight": ((hidden,), BF16),
    }
    if qkv_bias:
        for p in ("q", "k", "v"):
            rows = t[f"{prefix}.self_attn.{p}_proj.weight"][0][0]
            t[f"{prefix}.self_attn.{p}_proj.bias"] = ((rows,), BF16)
    return t


def llama(config: dict, *, qkv_bias: bool = False, head: bool = True
          ) -> dict[str, tuple[tuple[int, ...], str]]:
    """A whole llama-shaped checkpoint (``model.embed_tokens``, ``model.layers.N``,
    ``model.norm``, and ``lm_head`` with ``head``) from the usual config keys."""
    h, v = config["hidden_size"], config["vocab_size"]
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads") or heads
    hd = config.get("head_dim") or h // heads
    t = {"model.embed_tokens.weight": ((v, h), BF16), "model.norm.weight": ((h,), BF16)}
    for i in range(config["num_hidden_layers"]):
        t.update(llama_block(f"model.layers.{i}", h, heads, kv, hd, config["intermediate_size"],
                             qkv_bias=qkv_bias))
    if head:
        t["lm_head.weight"] = ((v, h), BF16)
    return t
