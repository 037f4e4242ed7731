"""mlx-lm's ``models/bailing_moe_v3.py`` (Ling 2.5 / Ring 2.5, ``BailingMoeV3ForCausalLM``:
Kimi Delta Attention layers with a gated MLA layer closing each group of
``layer_group_size``, a sigmoid-routed MoE with a shared expert). The Hub's config says
``model_type`` "bailing_hybrid"; mlx-lm's ``MODEL_ARCHITECTURE_REMAPPING`` sends that type
with this architecture here (other "bailing_hybrid" checkpoints go to its bailing_hybrid
module).

Its ``Model.sanitize``, step by step: with tied embeddings ``lm_head.weight`` is dropped;
multi-token-prediction layers (``model.layers.N`` with ``N >= num_hidden_layers``) are
dropped; from ``first_k_dense_replace`` on, each layer's routed experts
(``mlp.experts.E.{gate,up,down}_proj.weight``) are stacked into ``mlp.switch_mlp``; each MLA
``attention.kv_b_proj`` is split into the per-head ``embed_q`` (transposed) and
``unembed_out`` (a quantized one is refused, as mlx-lm refuses it); the KDA layers' PyTorch
conv kernels (``*_conv1d.weight`` ``[C, 1, K]``) become MLX's ``[C, K, 1]``.

Its ``quant_predicate`` leaves the embeddings, the output head and the MLA's low-rank
projections (``q_a_proj``, ``q_b_proj``, ``kv_a_proj_with_mqa``, ``embed_q``,
``unembed_out``) and ``b_proj`` in full precision, and quantizes ``q_proj`` and ``g_proj``
only in KDA layers. The router ``mlp.gate`` (BailingGate) is a bare parameter.

>>> FAMILY.model_quant("model.layers.1.attention.g_proj", {"num_hidden_layers": 2,
...                                                         "layer_group_size": 2})
False
"""

from __future__ import annotations

from ..errors import UnsupportedFormatError
from . import mx
from ._shared import tied
from .base import Family, Order
from .common import Args, Weights, move_conv_axis

KDA = ("q_proj k_proj v_proj q_conv1d k_conv1d v_conv1d A_log f_proj dt_bias b_proj "
       "q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm embed_q unembed_out "
       "g_proj o_norm o_proj dense")
MLP = ("mlp(gate_proj up_proj down_proj gate(weight expert_bias) "
       "switch_mlp(gate_proj up_proj down_proj) shared_experts(gate_proj up_proj down_proj))")


def model_args(config) -> Args:
    """``ModelArgs`` with bailing_moe_v3's defaults, for the fields sanitize and the
    predicate read."""
    return Args(config, num_hidden_layers=24, num_attention_heads=16, num_experts=128,
                first_k_dense_replace=1, layer_group_size=4, qk_nope_head_dim=128,
                v_head_dim=128, tie_word_embeddings=False)


def _is_kda_layer(layer_index: int, layer_group_size: int, num_hidden_layers: int) -> bool:
    return not ((layer_index + 1) % layer_group_size == 0
                or layer_index >= num_hidden_layers // layer_group_size * layer_group_size)


def _is_mtp_weight(key: str, num_hidden_layers: int) -> bool:
    prefix = "model.layers."
    if not key.startswith(prefix):
        return False
    layer_index = key[len(prefix):].split(".", 1)[0]
    return layer_index.isdigit() and int(layer_index) >= num_hidden_layers


def sanitize(weights: Weights, config) -> Weights:
    args = model_args(config)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    weights = Weights({key: value for key, value in weights.items()
                       if not _is_mtp_weight(key, args.num_hidden_layers)})
    for layer_index in range(args.num_hidden_layers):
        layer_prefix = f"model.layers.{layer_index}"
        if layer_index >= args.first_k_dense_replace:
            mlp_prefix = f"{layer_prefix}.mlp"
            for projection in ("gate_proj", "up_proj", "down_proj"):
                expert_prefix = f"{mlp_prefix}.experts.0.{projection}"
                if f"{expert_prefix}.weight" not in weights:
                    continue
                expert_weights = [weights.pop(f"{mlp_prefix}.experts.{expert}.{projection}.weight")
                                  for expert in range(args.num_experts)]
                weights[f"{mlp_prefix}.switch_mlp.{projection}.weight"] = mx.stack(
                    expert_weights)

        attention_prefix = f"{layer_prefix}.attention"
        kv_b_key = f"{attention_prefix}.kv_b_proj.weight"
        if kv_b_key not in weights:
            continue
        num_heads = args.num_attention_heads
        head_dim = args.qk_nope_head_dim + args.v_head_dim
        if f"{attention_prefix}.kv_b_proj.scales" in weights:
            raise UnsupportedFormatError(
                f"{attention_prefix}.kv_b_proj is quantized: mlx-lm's bailing_moe_v3 sanitize "
                "does not support quantized Bailing V3 kv_b_proj weights", key=kv_b_key)
        value = weights.pop(kv_b_key)
        value = value.reshape(num_heads, head_dim, -1)
        wk = mx.contiguous(value[:, : args.qk_nope_head_dim, :].swapaxes(-1, -2))
        wv = mx.contiguous(value[:, args.qk_nope_head_dim:, :])
        weights[f"{attention_prefix}.embed_q.weight"] = wk
        weights[f"{attention_prefix}.unembed_out.weight"] = wv

    move_conv_axis(weights, "_conv1d.weight")
    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if path in ("model.word_embeddings", "lm_head"):
        return False
    if path.endswith(("attention.q_a_proj", "attention.q_b_proj",
                      "attention.kv_a_proj_with_mqa", "attention.embed_q",
                      "attention.unembed_out", "attention.b_proj")):
        return False
    if path.endswith(("attention.q_proj", "attention.g_proj")):
        args = model_args(config)
        layer_index = int(path.split(".")[2])
        return _is_kda_layer(layer_index, args.layer_group_size, args.num_hidden_layers)
    return True


def _order(config) -> Order:
    head = "" if tied(config, False) else " lm_head"
    return Order(f"model(word_embeddings layers*(attention({KDA}) {MLP} input_layernorm "
                 f"post_attention_layernorm) norm){head}")


FAMILY = Family(
    "bailing_moe_v3", ("bailing_moe_v3",), sanitize, _order,
    quant_predicate=quant_predicate,
    not_quantized=(r"\.mlp\.gate$", r"_conv1d$"),
    architectures=(("bailing_hybrid", "BailingMoeV3ForCausalLM"),),
    widths={"mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size"})
