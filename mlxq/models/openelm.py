"""mlx-lm's ``models/openelm.py`` (Apple OpenELM): per-layer head counts and MLP widths, a
fused ``attn.qkv_proj`` with ``q_norm``/``k_norm``, a fused GLU ``ffn.proj_1``; the
embeddings are the output head unless ``share_input_output_layers`` is off. No
``sanitize``."""

from __future__ import annotations

from .base import Family, Order
from .common import Args


def _order(config) -> Order:
    shared = Args(config, share_input_output_layers=True).share_input_output_layers
    return Order("transformer(token_embeddings layers*(attn(qkv_proj out_proj q_norm k_norm) "
                 "ffn(proj_1 proj_2) ffn_norm attn_norm) norm)"
                 + ("" if shared else " lm_head"))


FAMILY = Family("openelm", ("openelm",), order=_order)
