"""mlx-lm's ``models/deepseek_v3.py`` (also Kimi K2 and JoyAI-LLM-Flash, which
``MODEL_REMAPPING`` sends here).

Its ``sanitize``, step by step: compressed-tensors INT4 layers (``weight_packed``,
``weight_scale``, ``weight_shape``) become MLX affine triples (the packed words viewed as
uint32, ``biases = -8 * scale``); FP8 block weights (``weight_scale_inv``) are dequantized
to bfloat16; routed experts are stacked into ``switch_mlp``; each ``kv_b_proj`` is split
into the per-head ``embed_q`` (transposed) and ``unembed_out`` (dequantized first and
re-quantized with the same parameters when it is quantized); the multi-token-prediction
layer 61 and rotary buffers are dropped. The router ``mlp.gate`` (MoEGate) is a bare
parameter, and its ``e_score_correction_bias`` keeps the source dtype (``cast_predicate``).
"""

from __future__ import annotations

from . import mx
from .base import Family, Order
from .common import REQUIRED, Args, Weights, dequantize_fp8_weights, split_kv_b_proj, stack_experts

ATTN = ("self_attn(q_proj q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm "
        "embed_q unembed_out o_proj)")
MLP = ("mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj down_proj) "
       "gate(weight e_score_correction_bias) shared_experts(gate_proj up_proj down_proj))")


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, n_routed_experts=REQUIRED,
                qk_nope_head_dim=REQUIRED, v_head_dim=REQUIRED, kv_lora_rank=REQUIRED,
                num_attention_heads=REQUIRED)
    # Remap for int4
    new_weights = Weights()
    for k, v in weights.items():
        if k.endswith("weight_shape"):
            base = k.replace("weight_shape", "")
            new_weights[base + "weight"] = weights[base + "weight_packed"].view(mx.uint32)
            s = weights[base + "weight_scale"]
            new_weights[base + "scales"] = s
            new_weights[base + "biases"] = -8 * s
        elif not (k.endswith("weight_scale") or k.endswith("weight_packed")):
            new_weights[k] = v
    weights = new_weights

    # Dequantize fp8
    weights = dequantize_fp8_weights(weights)

    # Stack experts
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])
        split_kv_b_proj(weights, f"model.layers.{l}.self_attn", args)

    # Remove multi-token prediction layer and any unused precomputed rotary freqs
    return Weights({
        k: v for k, v in weights.items()
        if not k.startswith("model.layers.61") and "rotary_emb.inv_freq" not in k
    })


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "deepseek_v3", ("deepseek_v3", "kimi_k2", "joyai_llm_flash"), sanitize,
    Order(f"model(embed_tokens layers*({ATTN} {MLP} input_layernorm "
          "post_attention_layernorm) norm) lm_head"),
    cast_predicate=cast_predicate,
    not_quantized=(r"\.mlp\.gate$",),
    source_formats=frozenset({"fp8", "compressed-tensors"}))
