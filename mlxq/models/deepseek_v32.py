"""mlx-lm's ``models/deepseek_v32.py`` (DeepSeek-V3.2: MLA attention with a sparse
"lightning" ``indexer``, DeepSeek MoE).

Its ``Model.sanitize``, step by step: the multi-token-prediction layers (every
``model.layers.N`` with ``N >= num_hidden_layers``) are dropped; FP8 block weights
(``weight_scale_inv`` beside an E4M3 ``weight``, 128x128 blocks) are dequantized to bfloat16
by mlx-lm's ``dequant`` (``from_fp8``, times the block scale, ``astype(bfloat16)``); routed
experts are stacked into ``switch_mlp``; each ``kv_b_proj`` is split into the per-head
``embed_q`` (transposed) and ``unembed_out`` (dequantized first and quantized again with the
inferred bits and group size when the source already holds it quantized). The router
``mlp.gate`` (MoEGate) is a bare parameter, and its ``e_score_correction_bias`` keeps the
source dtype (``Model.cast_predicate``).

:mod:`mlxq.models.glm_moe_dsa` (GLM-5, whose mlx-lm model subclasses this one) reuses the
sanitize with its own ``ModelArgs`` defaults.

>>> FAMILY.model_quant("model.layers.1.mlp.gate", {}) is None, FAMILY.casts("x.e_score_correction_bias")
(True, False)
"""

from __future__ import annotations

from typing import Callable

from ..errors import FormatError
from . import mx
from ._shared import fp8_dequant
from .base import Family, Order
from .common import Args, Weights

ATTN = ("self_attn(q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm embed_q "
        "unembed_out o_proj indexer(wq_b wk k_norm weights_proj))")
MLP = ("mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj down_proj) "
       "gate(weight e_score_correction_bias) shared_experts(gate_proj up_proj down_proj))")
ORDER = Order(f"model(embed_tokens layers*({ATTN} {MLP} input_layernorm "
              "post_attention_layernorm) norm) lm_head")


def model_args(config) -> Args:
    """The ``ModelArgs`` fields the sanitize reads, with deepseek_v32's defaults."""
    return Args(config, num_hidden_layers=30, n_routed_experts=None, qk_nope_head_dim=128,
                v_head_dim=128, kv_lora_rank=512, num_attention_heads=32)


def dequant(weight, scale_inv, name):
    # mlx-lm's dequant: from_fp8 to bfloat16, pad to 128-blocks, times the block scale,
    # crop, bfloat16 — one lazy operation here, bit for bit the same
    return fp8_dequant(name, weight, scale_inv, (128, 128))


def _layer_index(k: str, part: str) -> int:
    # mlx-lm calls int() on the third component of every "*.layers.*" name
    if not part.isdigit():
        raise FormatError(f"{k}: {part!r} is not a layer index (mlx-lm's sanitize reads the "
                          "third component of a '.layers.' name as one)", key=k)
    return int(part)


def sanitize_with(args_of: Callable[[object], Args]):
    """deepseek_v32's ``Model.sanitize`` for the ``ModelArgs`` ``args_of(config)`` gives."""

    def sanitize(weights: Weights, config) -> Weights:
        args = args_of(config)
        # Remove multi-token prediction layers
        mpt_layer = args.num_hidden_layers
        new_weights = Weights()
        for k, v in weights.items():
            parts = k.split(".")
            if len(parts) >= 3 and parts[1] == "layers" and \
                    _layer_index(k, parts[2]) >= mpt_layer:
                continue
            new_weights[k] = v
        weights = new_weights

        # Dequantize
        new_weights = Weights()
        for k, v in weights.items():
            if "weight_scale_inv" in k:
                scale_inv = v
                wk = k.replace("_scale_inv", "")
                weight = weights[wk]
                weight = dequant(weight, scale_inv, wk)
                new_weights[wk] = weight
            elif k not in new_weights:
                new_weights[k] = v
        weights = new_weights

        # Stack experts
        for l in range(args.num_hidden_layers):
            prefix = f"model.layers.{l}"
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

    return sanitize


sanitize = sanitize_with(model_args)


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "deepseek_v32", ("deepseek_v32",), sanitize, ORDER,
    cast_predicate=cast_predicate,
    not_quantized=(r"\.mlp\.gate$",),
    source_formats=frozenset({"fp8"}))
