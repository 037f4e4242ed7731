"""mlx-lm's ``models/mimo_v2_flash.py`` (Xiaomi MiMo-V2-Flash: hybrid sliding-window /
full attention with sink biases, DeepSeek-style MoE).

Its ``Model.sanitize``: FP8 block weights (``weight_scale_inv`` beside an E4M3 ``weight``)
are dequantized to bfloat16 by its ``dequant`` (``from_fp8``, padded to 128-blocks, times
the block scale, cropped, ``astype(bfloat16)``); routed experts are stacked into
``switch_mlp``; the multi-token-prediction weights (``model.mtp.*``) are dropped. The router
``mlp.gate`` (MoEGate) is a bare parameter and its ``e_score_correction_bias`` keeps the
source dtype (``Model.cast_predicate``).

>>> FAMILY.casts("model.layers.1.mlp.gate.e_score_correction_bias")
False
"""

from __future__ import annotations

from .base import Family, Order
from .common import REQUIRED, Args, Weights, dequantize_fp8_weights, fp8_dequant, stack_experts

BLOCK = 128


def dequant(weight, scale_inv, name):
    # mlx-lm's dequant pads the weight to the blocks the scales describe (bs * scale rows,
    # bs * scale columns), multiplies and crops: scales beyond ceil(m / 128) x ceil(n / 128)
    # only ever multiply padding, so the result is the one of the ceil-shaped scales, which
    # is what the lazy operation takes; fewer scales than blocks make mx.pad fail in mlx-lm
    # and the operation refuse the shapes here
    if weight.ndim == 2 and scale_inv.ndim == 2:
        rows, cols = -(-weight.shape[0] // BLOCK), -(-weight.shape[1] // BLOCK)
        if scale_inv.shape[0] >= rows and scale_inv.shape[1] >= cols and \
                tuple(scale_inv.shape) != (rows, cols):
            scale_inv = scale_inv[:rows, :cols]
    return fp8_dequant(weight, scale_inv, name, (BLOCK, BLOCK))


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, n_routed_experts=REQUIRED)
    # Dequantize fp8
    weights = dequantize_fp8_weights(weights, dequant)

    # Stack experts
    for l in range(args.num_hidden_layers):
        stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])

    # Remove multi-token prediction layer
    return Weights({k: v for k, v in weights.items() if not k.startswith("model.mtp")})


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "mimo_v2_flash", ("mimo_v2_flash",), sanitize,
    Order("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj "
          "attention_sink_bias) mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj "
          "down_proj) gate(weight e_score_correction_bias) shared_experts(gate_proj up_proj "
          "down_proj)) input_layernorm post_attention_layernorm) norm) lm_head"),
    cast_predicate=cast_predicate,
    not_quantized=(r"\.mlp\.gate$",),
    source_formats=frozenset({"fp8"}))
