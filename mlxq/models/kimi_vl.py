"""mlx-lm's ``models/kimi_vl.py`` (Kimi-VL): the DeepSeek-V3 language model of the
vision-language checkpoint, under ``language_model.``.

Its ``sanitize`` drops every name containing ``vision_tower``, ``rotary_emb`` or
``multi_modal_projector`` and stacks each MoE layer's routed experts into ``switch_mlp``.

**Where this port differs from mlx-lm 0.32, on purpose.** mlx-lm builds the language model
with deepseek_v3's ``DeepseekV3Model``, whose attention holds the per-head ``embed_q`` and
``unembed_out`` that deepseek_v3's sanitize makes from each ``kv_b_proj``; kimi_vl's
sanitize does not make them, so mlx-lm's strict load refuses every Kimi-VL release
("Received parameters not in model: ...kv_b_proj.weight"). The model's parameters are
nonetheless fixed: mlxq splits ``kv_b_proj`` exactly as deepseek_v3's sanitize (and
kimi_k25's, on the same ``language_model.`` layout) does. Everything else is kimi_vl's
sanitize, and the folder loads in mlx-lm (whose sanitize, run again at load, leaves it as
it is).
"""

from __future__ import annotations

from ..errors import MissingKeyError
from . import deepseek_v3
from ._multimodal import nested_order, text_config
from .base import Family
from .common import Args, Weights, split_kv_b_proj, stack_experts


def text_args(config) -> Args:
    """kimi_vl's ``TextArgs`` defaults."""
    return Args(text_config(config), num_hidden_layers=30, n_routed_experts=None,
                qk_nope_head_dim=128, v_head_dim=128, kv_lora_rank=512,
                num_attention_heads=32)


def sanitize(weights: Weights, config) -> Weights:
    args = text_args(config)

    def keep(key):
        return (
            "vision_tower" not in key
            and "rotary_emb" not in key
            and "multi_modal_projector" not in key
        )

    weights = Weights({k: v for k, v in weights.items() if keep(k)})
    for l in range(args.num_hidden_layers):
        prefix = f"language_model.model.layers.{l}"
        if f"{prefix}.mlp.experts.0.gate_proj.weight" in weights and \
                args.n_routed_experts is None:
            raise MissingKeyError(f"{prefix}.mlp has experts but text_config has no "
                                  "'n_routed_experts'", key="text_config.n_routed_experts")
        # Stack experts
        stack_experts(weights, f"{prefix}.mlp", args.n_routed_experts or 0,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])
        # mlxq: the parameters of deepseek_v3's attention (see the module docstring)
        split_kv_b_proj(weights, f"{prefix}.self_attn", args)
    return weights


FAMILY = Family(
    "kimi_vl", ("kimi_vl",), sanitize,
    nested_order("language_model", deepseek_v3.FAMILY),
    cast_predicate=deepseek_v3.cast_predicate,
    not_quantized=deepseek_v3.FAMILY.not_quantized)
