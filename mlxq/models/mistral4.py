"""mlx-lm's ``models/mistral4.py`` (Mistral Small 4's text model: DeepSeek-V3-style MLA
with Llama-4 attention scaling, MoE with a softmax router and shared experts, the first
``first_k_dense_replace`` layers dense).

Its ``Model.sanitize``, step by step:

- compressed-tensors INT4 layers (``weight_packed``, ``weight_scale``, ``weight_shape``)
  become MLX affine triples (deepseek_v3's remap);
- FP8 weights are dequantized to bfloat16 — every ``X_scale_inv`` scales ``X`` (the fused
  experts' scales are ``experts.gate_up_proj_scale_inv``, hence the suffix match), a scale
  that broadcasts over its weight (one per tensor, ``[E, 1, 1]`` one per expert) by
  ``from_fp8(X) * scale``, any other by deepseek_v3's 128x128 blocks; static
  ``activation_scale`` tensors are dropped;
- the fused experts (``mlp.experts.gate_up_proj`` ``[E, 2 * inter, hidden]``,
  ``mlp.experts.down_proj``) are split into ``mlp.switch_mlp.{gate,up,down}_proj``, and
  per-expert checkpoints (``mlp.experts.E.*``) stacked;
- each ``kv_b_proj`` is split into ``embed_q`` / ``unembed_out``
  (:func:`mlxq.models.common.split_kv_b_proj`);
- rotary ``inv_freq`` buffers are dropped.

The router ``mlp.gate`` is an ``nn.Linear`` here (quantized like any other).

>>> FAMILY.quantizable("model.layers.1.mlp.gate", (4, 64))
True
"""

from __future__ import annotations

from ..errors import FormatError, UnsupportedFormatError
from . import mx
from .base import Family, Order
from .common import REQUIRED, Args, Weights, fp8_dequant, split_kv_b_proj, stack_experts

ATTN = ("self_attn(q_proj q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm "
        "embed_q unembed_out o_proj)")
MLP = ("mlp(gate_proj up_proj down_proj switch_mlp(gate_proj up_proj down_proj) gate "
       "shared_experts(gate_proj up_proj down_proj))")


def _broadcasts(scale_shape, weight_shape) -> bool:
    if len(scale_shape) > len(weight_shape):
        return False
    pad = (1,) * (len(weight_shape) - len(scale_shape)) + tuple(scale_shape)
    return all(s in (1, w) for s, w in zip(pad, weight_shape))


def dequant(weight, scale_inv, name: str):
    """mlx-lm's mistral4 ``dequant``: ``from_fp8(weight, bfloat16) * scale_inv`` rounded to
    bfloat16 for a scale that broadcasts (per tensor, per row, per column, per expert),
    else deepseek_v3's 128x128 block dequantization. A broadcast scale is a block scale
    whose blocks span its broadcast axes, so both go through one lazy, row-streamed
    kernel: a 3-D weight ``[E, R, C]`` with one scale per expert (or per tensor) is
    computed as the ``[E * R, C]`` matrix with ``[E, 1]`` scales in ``R x C`` blocks."""
    if not _broadcasts(scale_inv.shape, weight.shape):
        return fp8_dequant(weight, scale_inv, name)
    shape = tuple(weight.shape)
    pad = (1,) * (len(shape) - scale_inv.ndim) + tuple(scale_inv.shape)
    if len(shape) == 2:
        block = tuple(d if s == 1 else 1 for s, d in zip(pad, shape))
        return fp8_dequant(weight, scale_inv.reshape(*pad), name, block)
    if len(shape) == 3 and pad[1:] == (1, 1):
        e, r, c = shape
        flat = fp8_dequant(weight.reshape(e * r, c), scale_inv.reshape(pad[0], 1), name, (r, c))
        return flat.reshape(shape)
    raise UnsupportedFormatError(
        f"{name}: an FP8 scale of shape {list(scale_inv.shape)} over a weight of shape "
        f"{list(shape)} (mlxq dequantizes one scale per tensor, row, column or expert)",
        key=name)


def model_args(config) -> Args:
    return Args(config, num_hidden_layers=REQUIRED, n_routed_experts=REQUIRED,
                qk_nope_head_dim=REQUIRED, v_head_dim=REQUIRED, kv_lora_rank=REQUIRED,
                num_attention_heads=REQUIRED)


def sanitize(weights: Weights, config) -> Weights:
    args = model_args(config)

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
    new_weights = Weights()
    for k, v in weights.items():
        # Static activation scales have no consumer here.
        if k.endswith("activation_scale"):
            continue
        # Expert scales are named "experts.down_proj_scale_inv", so match the suffix
        if k.endswith("_scale_inv"):
            wk = k.replace("_scale_inv", "")
            new_weights[wk] = dequant(weights[wk], v, wk)
        elif k not in new_weights:
            new_weights[k] = v
    weights = new_weights

    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"

        # Handle fused gate_up_proj format (Mistral4NaiveMoe)
        gup_key = f"{prefix}.mlp.experts.gate_up_proj"
        if gup_key in weights:
            gate_up = weights.pop(gup_key)
            if gate_up.ndim < 2 or gate_up.shape[1] % 2:
                raise FormatError(f"{gup_key} has shape {list(gate_up.shape)}: mlx-lm splits "
                                  "its axis 1 into two halves", key=gup_key)
            gate, up = mx.split(gate_up, 2, axis=1)
            weights[f"{prefix}.mlp.switch_mlp.gate_proj.weight"] = gate
            weights[f"{prefix}.mlp.switch_mlp.up_proj.weight"] = up
        down_key = f"{prefix}.mlp.experts.down_proj"
        if down_key in weights:
            weights[f"{prefix}.mlp.switch_mlp.down_proj.weight"] = weights.pop(down_key)

        stack_experts(weights, f"{prefix}.mlp", args.n_routed_experts,
                      [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                      ["weight", "scales", "biases"])

        # Absorb kv_b_proj into embed_q / unembed_out.
        split_kv_b_proj(weights, f"{prefix}.self_attn", args)

    return Weights({k: v for k, v in weights.items() if "rotary_emb.inv_freq" not in k})


def _order(config) -> Order:
    from ._shared import tied

    head = "" if tied(config, False) else " lm_head"
    return Order(f"model(embed_tokens layers*({ATTN} {MLP} input_layernorm "
                 f"post_attention_layernorm) norm){head}")


FAMILY = Family(
    "mistral4", ("mistral4",), sanitize, _order,
    source_formats=frozenset({"fp8", "fp8-scaled", "compressed-tensors"}),
    widths={"mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size", "mlp.gate": "hidden",
            "mlp.switch_mlp.gate_proj": "hidden", "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size",
            "self_attn.q_a_proj": "hidden", "self_attn.kv_a_proj_with_mqa": "hidden"})
