"""mlx-lm's ``models/qwen.py`` (Qwen 1): GPT-2-style names (``transformer.wte``,
``transformer.h.N.attn.c_attn`` with a bias, ``mlp.w1/w2/c_proj``, ``ln_1``/``ln_2``/
``ln_f``) and an ``lm_head``. No ``sanitize``."""

from __future__ import annotations

from .base import Family, Order

FAMILY = Family(
    "qwen", ("qwen",),
    order=Order("transformer(wte h*(ln_1 attn(c_attn c_proj) ln_2 mlp(w1 w2 c_proj)) ln_f) "
                "lm_head"),
    widths={"attn.c_attn": "hidden", "attn.c_proj": "hidden", "mlp.w1": "hidden",
            "mlp.w2": "hidden"})
