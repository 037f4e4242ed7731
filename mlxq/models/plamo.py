"""mlx-lm's ``models/plamo.py`` (PLaMo-13B): the blocks sit one level down
(``model.layers.layers.N``), each with one ``norm`` before a parallel attention and MLP;
keys and values are shared by ``n_shared_head`` query heads; always an ``lm_head``. No
``sanitize``."""

from __future__ import annotations

from ._shared import ATTN
from .base import Family, Order

FAMILY = Family(
    "plamo", ("plamo",),
    order=Order(f"model(embed_tokens layers(layers*({ATTN} "
                "mlp(gate_proj up_proj down_proj) norm)) norm) lm_head"),
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.o_proj": "hidden",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size"})
