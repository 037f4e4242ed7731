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

from . import mx
from ._shared import NORMS, llama_tree
from ..errors import FormatError
from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=47, n_routed_experts=64, qk_nope_head_dim=192,
                v_head_dim=256, kv_lora_rank=512, num_attention_heads=20)

    def is_mpt_layer(key):
        subkeys = key.split(".")
        if len(subkeys) < 3:
            return False
        if subkeys[1] == "layers":
            if not subkeys[2].isdigit():  # mlx-lm's int() raises a bare ValueError
                raise FormatError(f"{key}: expected a layer index after 'layers.'", key=key)
            if int(subkeys[2]) >= args.num_hidden_layers:
                return True
        return False

    new_weights = Weights()
    for k, v in weights.items():
        if is_mpt_layer(k):
            continue
        else:
            new_weights[k] = v
    weights = new_weights

    # Stack experts
    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"
        # mlx-lm pairs w1/w2/w3 with the names and uses only the names
        for _, m in [("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")]:
            for k in ["weight", "scales", "biases"]:
                if f"{prefix}.mlp.experts.0.{m}.{k}" in weights:
                    to_join = [
                        weights.pop(f"{prefix}.mlp.experts.{e}.{m}.{k}")
                        for e in range(args.n_routed_experts)
                    ]
                    weights[f"{prefix}.mlp.switch_mlp.{m}.{k}"] = mx.stack(to_join)
        prefix = f"model.layers.{l}.self_attn"
        if f"{prefix}.kv_b_proj.weight" in weights:
            quantized = f"{prefix}.kv_b_proj.scales" in weights
            v = weights.pop(f"{prefix}.kv_b_proj.weight")
            head_dim = args.qk_nope_head_dim + args.v_head_dim

            if quantized:
                dims = args.kv_lora_rank
                scales = weights.pop(f"{prefix}.kv_b_proj.scales")
                biases = weights.pop(f"{prefix}.kv_b_proj.biases")
                # Try to infer bits and group size
                bits = (v.shape[-1] * 32) // dims
                group_size = dims // scales.shape[-1]
                v = mx.dequantize(v, scales, biases, bits=bits, group_size=group_size)
            num_heads = args.num_attention_heads
            v = v.reshape(num_heads, head_dim, -1)
            wk = mx.contiguous(v[:, : args.qk_nope_head_dim, :].swapaxes(-1, -2))
            wv = mx.contiguous(v[:, args.qk_nope_head_dim:, :])
            if quantized:
                wk, wk_scales, wk_biases = mx.quantize(wk, bits=bits, group_size=group_size)
                wv, wv_scales, wv_biases = mx.quantize(wv, bits=bits, group_size=group_size)
                weights[f"{prefix}.embed_q.scales"] = wk_scales
                weights[f"{prefix}.unembed_out.scales"] = wv_scales
                weights[f"{prefix}.embed_q.biases"] = wk_biases
                weights[f"{prefix}.unembed_out.biases"] = wv_biases
            weights[f"{prefix}.embed_q.weight"] = wk
            weights[f"{prefix}.unembed_out.weight"] = wv

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
