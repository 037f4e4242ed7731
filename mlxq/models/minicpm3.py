"""mlx-lm's ``models/minicpm3.py`` (MiniCPM3): multi-head latent attention with low-rank
query and key/value projections (``q_a_proj`` → ``q_a_layernorm`` → ``q_b_proj``,
``kv_a_proj_with_mqa`` → ``kv_a_layernorm`` → ``kv_b_proj``) kept unsplit, scaled
embeddings and residuals. No ``sanitize``: an ``lm_head`` exists only when the embeddings
are not tied (by default they are not)."""

from __future__ import annotations

from ._shared import MLP_WIDTHS, NORMS, llama_order
from .base import Family

ATTN = ("self_attn(q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm "
        "kv_b_proj o_proj)")

FAMILY = Family(
    "minicpm3", ("minicpm3",),
    order=llama_order(f"{ATTN} mlp(gate_proj up_proj down_proj) {NORMS}", tie_default=False),
    # o_proj reads num_attention_heads * (hidden_size // num_attention_heads) whatever the
    # config's head_dim: left unchecked
    widths={"self_attn.q_a_proj": "hidden", "self_attn.q_b_proj": "q_lora_rank",
            "self_attn.kv_a_proj_with_mqa": "hidden", "self_attn.kv_b_proj": "kv_lora_rank",
            **MLP_WIDTHS})
