"""mlx-lm's ``models/nanochat.py`` (Karpathy's nanochat): the GPT of nanochat's own
``gpt.py`` under its names (``transformer.wte``, ``transformer.h.N.attn.c_q/c_k/c_v/c_proj``,
``mlp.c_fc/c_proj``) with weightless RMS norms and an untied ``lm_head``. No ``sanitize``:
the layout transformers' ``NanoChatForCausalLM`` saves (``model.layers.N.self_attn...``)
is not this model's, and mlx-lm refuses it."""

from __future__ import annotations

from .base import Family, Order

FAMILY = Family(
    "nanochat", ("nanochat",),
    order=Order("transformer(wte h*(attn(c_q c_k c_v c_proj) mlp(c_fc c_proj))) lm_head"),
    widths={"attn.c_q": "hidden", "attn.c_k": "hidden", "attn.c_v": "hidden",
            "attn.c_proj": "hidden", "mlp.c_fc": "hidden",
            "mlp.c_proj": "intermediate_size"})
