"""mlx-lm's ``models/glm_moe_dsa.py`` (GLM-5: DeepSeek-V3.2's sparse attention and MoE).
mlx-lm's ``Model`` subclasses deepseek_v32's, so its ``sanitize`` is that one — multi-token
prediction layers dropped, FP8 block weights dequantized to bfloat16, experts stacked into
``switch_mlp``, ``kv_b_proj`` split into ``embed_q``/``unembed_out`` (see
:mod:`mlxq.models.deepseek_v32`) — with GLM's ``ModelArgs``, whose fields have no defaults.

>>> FAMILY.order_for({}).layers
'model.layers'
"""

from __future__ import annotations

from . import deepseek_v32
from .base import Family
from .common import REQUIRED, Args


def model_args(config) -> Args:
    """glm_moe_dsa's ``ModelArgs``: every field the sanitize reads is required."""
    return Args(config, num_hidden_layers=REQUIRED, n_routed_experts=REQUIRED,
                qk_nope_head_dim=REQUIRED, v_head_dim=REQUIRED, kv_lora_rank=REQUIRED,
                num_attention_heads=REQUIRED)


sanitize = deepseek_v32.sanitize_with(model_args)

FAMILY = Family(
    "glm_moe_dsa", ("glm_moe_dsa",), sanitize, deepseek_v32.ORDER,
    cast_predicate=deepseek_v32.cast_predicate,
    not_quantized=(r"\.mlp\.gate$",),
    source_formats=frozenset({"fp8"}))
