"""mlx-lm's ``models/glm4_moe_lite.py`` (GLM-4.7-Flash): DeepSeek-V3's multi-head latent
attention (``kv_b_proj`` split into the per-head ``embed_q`` and ``unembed_out``
MultiLinears) with GLM's MoE: ``SwitchGLU`` experts under ``switch_mlp``, a bare
``MoEGate`` router (``weight`` and ``e_score_correction_bias``) and shared experts; the
first ``first_k_dense_replace`` blocks (and those off ``moe_layer_freq``) are dense.

``Model.sanitize`` drops the multi-token-prediction layers (any ``*.layers.<i>.`` with
``i >= num_hidden_layers``), stacks each block's per-expert projections (with
``scales``/``biases``) into ``mlp.switch_mlp``, and splits each ``kv_b_proj`` into
``embed_q`` (the key half, transposed) and ``unembed_out`` (the value half) — dequantized
first and re-quantized with the inferred bits and group size when the source is
MLX-quantized. The model always has an ``lm_head`` (``tie_word_embeddings`` is not read).
``Model.cast_predicate`` keeps the correction bias in the source dtype.

>>> FAMILY.order_for({"tie_word_embeddings": True}).covers("lm_head.weight")
True
"""

from __future__ import annotations

from ._shared import NORMS, llama_tree
from .base import Family, Order
from .common import Args, Weights, drop_layers_from, split_kv_b_proj, stack_experts


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=47, n_routed_experts=64, qk_nope_head_dim=192,
                v_head_dim=256, kv_lora_rank=512, num_attention_heads=20)

    weights = drop_layers_from(weights, args.num_hidden_layers)

    # Stack experts
    for l in range(args.num_hidden_layers):
        # mlx-lm pairs w1/w2/w3 with the names and uses only the names
        stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])
        split_kv_b_proj(weights, f"model.layers.{l}.self_attn", args)

    return weights


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "glm4_moe_lite", ("glm4_moe_lite",), sanitize,
    # q_proj exists instead of q_a_proj/q_a_layernorm/q_b_proj when q_lora_rank is null
    Order(llama_tree("self_attn(q_proj q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa "
                     "kv_a_layernorm embed_q unembed_out o_proj) mlp(gate_proj up_proj "
                     "down_proj switch_mlp(gate_proj up_proj down_proj) "
                     "gate(weight e_score_correction_bias) "
                     f"shared_experts(gate_proj up_proj down_proj)) {NORMS}")),
    cast_predicate=cast_predicate, not_quantized=(r"\.mlp\.gate$",),
    widths={"self_attn.q_proj": "hidden", "self_attn.q_a_proj": "hidden",
            "self_attn.q_b_proj": "q_lora_rank", "self_attn.kv_a_proj_with_mqa": "hidden",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size",
            "mlp.shared_experts.gate_proj": "hidden", "mlp.shared_experts.up_proj": "hidden"})
