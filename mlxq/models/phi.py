"""mlx-lm's ``models/phi.py`` (Phi-1/2): ``dense`` output projection, fc1/fc2 MLP, one
norm per block and a final ``final_layernorm``; no sanitize step."""

from __future__ import annotations

from .base import Family, Order

FAMILY = Family(
    "phi", ("phi",),
    order=Order("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj dense) "
                "input_layernorm mlp(fc1 fc2)) final_layernorm) lm_head"),
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "mlp.fc1": "hidden", "mlp.fc2": "intermediate_size"})
