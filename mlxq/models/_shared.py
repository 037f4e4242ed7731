"""Module orders and widths several llama-shaped families share (each family module says
which it uses)."""

from __future__ import annotations

ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
QK_NORM = ("self_attn.q_norm", "self_attn.k_norm")
MLP = ("mlp.gate_proj", "mlp.down_proj", "mlp.up_proj")
NORMS = ("input_layernorm", "post_attention_layernorm")

ATTN_WIDTHS = {"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
               "self_attn.v_proj": "hidden", "self_attn.o_proj": "attention"}
MLP_WIDTHS = {"mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
              "mlp.down_proj": "intermediate_size"}
