"""mlx-lm's ``models/gemma4_text.py`` (Gemma 4's language model: sliding and full
attention layers with their own head widths, per-layer inputs, key/value sharing across
the last layers, and in the MoE releases an expert block beside the MLP).

Its ``sanitize`` drops the rotary buffers and the clipping ranges of clipped linears
(``input_max``, ``input_min``, ``output_max``, ``output_min``), the key/value projections
(and key norm) of the layers that reuse an earlier layer's keys and values (from
``num_hidden_layers - num_kv_shared_layers`` on), and splits each layer's fused
``experts.gate_up_proj`` (``[experts, 2 x inter, hidden]``) into the switch layer's gate
and up halves along the second-to-last axis; ``experts.down_proj`` is taken as it is. Its
``quant_predicate`` keeps the router's projection at 8 bits.
"""

from __future__ import annotations

from . import mx
from .base import Family, Order
from .common import Args, Weights

LAYER = ("self_attn(q_proj k_proj v_proj o_proj q_norm k_norm) "
         "mlp(gate_proj down_proj up_proj) input_layernorm post_attention_layernorm "
         "pre_feedforward_layernorm post_feedforward_layernorm "
         "router(proj scale per_expert_scale) experts(switch_glu(gate_proj up_proj down_proj)) "
         "post_feedforward_layernorm_1 post_feedforward_layernorm_2 pre_feedforward_layernorm_2 "
         "per_layer_input_gate per_layer_projection post_per_layer_input_norm layer_scalar")
MODEL = (f"model(embed_tokens layers*({LAYER}) norm embed_tokens_per_layer "
         "per_layer_model_projection per_layer_projection_norm)")


def model_args(config) -> Args:
    return Args(config, num_hidden_layers=35, num_kv_shared_layers=20, tie_word_embeddings=True)


def sanitize(weights: Weights, config) -> Weights:
    args = model_args(config)
    sanitized = Weights()
    first_kv_shared = args.num_hidden_layers - args.num_kv_shared_layers
    for k, v in weights.items():
        if any(
            s in k
            for s in (
                "self_attn.rotary_emb",
                "input_max",
                "input_min",
                "output_max",
                "output_min",
            )
        ):
            continue

        # KV-shared layers reuse K/V from earlier layers — drop their projections
        if any(
            s in k
            for s in (".self_attn.k_proj", ".self_attn.v_proj", ".self_attn.k_norm")
        ):
            try:
                layer_idx = int(k.split("layers.")[1].split(".")[0])
                if layer_idx >= first_kv_shared:
                    continue
            except (IndexError, ValueError):
                pass

        if k.endswith(".experts.gate_up_proj"):
            base = k.removesuffix(".gate_up_proj")
            gate, up = map(mx.contiguous, mx.split(v, 2, axis=-2))
            sanitized[f"{base}.switch_glu.gate_proj.weight"] = gate
            sanitized[f"{base}.switch_glu.up_proj.weight"] = up
            continue

        if k.endswith(".experts.down_proj"):
            base = k.removesuffix(".down_proj")
            sanitized[f"{base}.switch_glu.down_proj.weight"] = v
            continue

        sanitized[k] = v

    return sanitized


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("router.proj"):
        return {"group_size": 64, "bits": 8}
    return True


def order(config) -> Order:
    head = "" if model_args(config).tie_word_embeddings else " lm_head"
    return Order(MODEL + head)


WIDTHS = {"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
          "self_attn.v_proj": "hidden", "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
          "router.proj": "hidden", "per_layer_input_gate": "hidden",
          "per_layer_projection": "hidden_size_per_layer_input",
          "experts.switch_glu.gate_proj": "hidden", "experts.switch_glu.up_proj": "hidden",
          "experts.switch_glu.down_proj": "moe_intermediate_size"}

FAMILY = Family(
    "gemma4_text", ("gemma4_text",), sanitize, order,
    quant_predicate=quant_predicate,
    widths=WIDTHS)
