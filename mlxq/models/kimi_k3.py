"""mlx-lm's ``models/kimi_k3.py`` (Kimi K3: Kimi-Linear's KDA and NoPE-MLA layers with
fused ``qkv`` projections, an optional MLA output gate, block attention residuals, and a
MoE whose experts can run in a latent width between two projections; the language model
of a vision-language container).

``Model.sanitize`` strips an optional ``language_model.`` prefix, drops the vision tower and
projectors (``vision_tower``, ``vision_model``, ``multi_modal_projector``,
``mm_projector``), runs the language model's sanitize and puts every name back under
``language_model.``. That sanitize, step by step: multi-token-prediction weights
(``model.mtp``/``mtp`` prefixes, and ``model.layers.N`` with ``N >= num_hidden_layers``) are
dropped, and with tied embeddings ``lm_head.weight``; the attention-residual parameters
``{self_attention_res,mlp_res,output_attn_res}.{proj,norm}_weight`` become modules
``*_res_proj.weight`` / ``*_res_norm.weight``; in each MoE layer the routed experts
``block_sparse_moe.experts.E.{w1,w2,w3}`` are stacked into ``mlp.switch_mlp.{gate,down,up}_proj``
(compressed-tensors MXFP4 ``weight_packed`` / ``weight_scale`` stacked as MLX mxfp4
``weight`` (bytes as uint32) / ``scales``; anything else by ``weight``/``scales``/``biases``)
and the other ``block_sparse_moe.*`` modules and the router's ``e_score_correction_bias``
move to ``mlp.``; in KDA layers the ``{q,k,v}_conv1d`` kernels become ``[C, K, 1]`` and are
concatenated into ``qkv_conv.conv``, ``q/k/v_proj`` into ``qkv_proj``, multi-dimensional
``A_log`` / ``dt_bias`` are flattened and ``A_log`` cut to ``num_heads``; MLA ``kv_b_proj`` is
split into ``embed_q`` / ``unembed_out``. The router ``mlp.gate`` stays at 8 bits and the
``*_res_proj`` scalars unquantized (``quant_predicate``); ``e_score_correction_bias``,
``A_log`` and ``dt_bias`` keep the source dtype (``cast_predicate``).

A release that is compressed-tensors ``mxfp4-pack-quantized`` reaches this sanitize with its
packed layers already in MLX's mxfp4 layout (:mod:`mlxq.conversion.prequant`), which is the
``weight``/``scales`` branch's input; the result is the same bytes.

>>> FAMILY.model_quant("language_model.model.layers.2.mlp_res_proj", {})
False
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ..errors import MissingKeyError, ParseError
from . import mx
from .base import Family, Order
from .common import Args, Weights, split_kv_b_proj
from .kimi_linear import is_moe_layer, kda_layers, move_kda_convs

_VISION = ("vision_tower", "vision_model", "multi_modal_projector", "mm_projector")
_LAYER_RE = re.compile(r"model\.layers\.(\d+)\.")


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``ModelArgs.from_dict``: the ``text_config``, or the whole config when it has none."""
    text = config.get("text_config", config)
    if not isinstance(text, Mapping):
        raise ParseError("config.json: 'text_config' must be an object", key="text_config")
    return text


def text_args(config) -> Args:
    """``TextArgs`` with kimi_k3's defaults, for the fields sanitize reads."""
    return Args(text_config(config), num_hidden_layers=93, num_attention_heads=96,
                linear_attn_config=None, tie_word_embeddings=False, kv_lora_rank=None,
                qk_nope_head_dim=None, v_head_dim=None, num_experts=None,
                first_k_dense_replace=0, moe_layer_freq=1)


def _language_sanitize(weights: Weights, config) -> Weights:
    args = text_args(config)
    if args.linear_attn_config is None:
        raise MissingKeyError("config.json has no 'linear_attn_config', which mlx-lm's "
                              "kimi_k3 model needs", key="linear_attn_config")
    kda = kda_layers(args)
    weights = Weights({k: v for k, v in weights.items()
                       if not k.startswith(("model.mtp", "mtp"))})
    weights = Weights({k: v for k, v in weights.items()
                       if not (m := _LAYER_RE.match(k))
                       or int(m.group(1)) < args.num_hidden_layers})

    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    res_renames = []
    for src in ("self_attention_res", "mlp_res", "output_attn_res"):
        res_renames.append((f"{src}.proj_weight", f"{src}_proj.weight"))
        res_renames.append((f"{src}.norm_weight", f"{src}_norm.weight"))
    for k in list(weights):
        for pat, dst in res_renames:
            if k.endswith(pat):
                weights[k[: -len(pat)] + dst] = weights.pop(k)
                break

    for layer_idx in range(args.num_hidden_layers):
        lp = f"model.layers.{layer_idx}"

        if (args.num_experts or 0) > 0 and is_moe_layer(args, layer_idx):
            src_prefix = f"{lp}.block_sparse_moe"
            dst_prefix = f"{lp}.mlp"
            for src, dst in [("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")]:
                if f"{src_prefix}.experts.0.{src}.weight_packed" in weights:
                    packed = mx.stack([weights.pop(f"{src_prefix}.experts.{i}.{src}.weight_packed")
                                       for i in range(args.num_experts)])
                    scales = mx.stack([weights.pop(f"{src_prefix}.experts.{i}.{src}.weight_scale")
                                       for i in range(args.num_experts)])
                    weights[f"{dst_prefix}.switch_mlp.{dst}.weight"] = packed.view(mx.uint32)
                    weights[f"{dst_prefix}.switch_mlp.{dst}.scales"] = scales
                else:
                    for suffix in ("weight", "scales", "biases"):
                        if f"{src_prefix}.experts.0.{src}.{suffix}" in weights:
                            weights[f"{dst_prefix}.switch_mlp.{dst}.{suffix}"] = mx.stack(
                                [weights.pop(f"{src_prefix}.experts.{i}.{src}.{suffix}")
                                 for i in range(args.num_experts)])

            for name in ("shared_experts.gate_proj", "shared_experts.up_proj",
                         "shared_experts.down_proj", "routed_expert_down_proj",
                         "routed_expert_up_proj", "routed_expert_norm", "gate",
                         "switch_mlp.gate_proj", "switch_mlp.up_proj", "switch_mlp.down_proj"):
                for suffix in ("weight", "scales", "biases"):
                    src_key = f"{src_prefix}.{name}.{suffix}"
                    if src_key in weights:
                        weights[f"{dst_prefix}.{name}.{suffix}"] = weights.pop(src_key)

            for bias_key in (f"{src_prefix}.gate.e_score_correction_bias",
                             f"{src_prefix}.e_score_correction_bias"):
                if bias_key in weights:
                    weights[f"{dst_prefix}.e_score_correction_bias"] = weights.pop(bias_key)

        ap = f"{lp}.self_attn"
        if (layer_idx + 1) in kda:
            move_kda_convs(weights, ap)
            for name in ("dt_bias", "A_log"):
                key = f"{ap}.{name}"
                if key in weights and weights[key].ndim > 1:
                    weights[key] = weights[key].reshape(-1)
            a_log_key = f"{ap}.A_log"
            num_heads = args.linear_attn_config["num_heads"]
            if a_log_key in weights and weights[a_log_key].shape[0] > num_heads:
                weights[a_log_key] = weights[a_log_key][:num_heads]

            if f"{ap}.qkv_proj.weight" not in weights:
                for suffix in ("weight", "scales", "biases"):
                    parts = [f"{ap}.{p}_proj.{suffix}" for p in "qkv"]
                    if all(p in weights for p in parts):
                        weights[f"{ap}.qkv_proj.{suffix}"] = mx.concatenate(
                            [weights.pop(p) for p in parts], axis=0)
            conv_parts = [f"{ap}.{p}_conv.conv.weight" for p in "qkv"]
            if f"{ap}.qkv_conv.conv.weight" not in weights and all(
                    p in weights for p in conv_parts):
                weights[f"{ap}.qkv_conv.conv.weight"] = mx.concatenate(
                    [weights.pop(p) for p in conv_parts], axis=0)

        split_kv_b_proj(weights, ap, args)

    return weights


def sanitize(weights: Weights, config) -> Weights:
    prefix = "language_model."
    weights = Weights({k[len(prefix):] if k.startswith(prefix) else k: v
                       for k, v in weights.items() if not k.startswith(_VISION)})
    weights = _language_sanitize(weights, config)
    return Weights({f"{prefix}{k}": v for k, v in weights.items()})


def cast_predicate(path: str) -> bool:
    if "e_score_correction_bias" in path:
        return False
    if path.endswith("A_log") or path.endswith("dt_bias"):
        return False
    return True


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate"):
        return {"group_size": 64, "bits": 8}
    if path.endswith("res_proj"):
        return False
    return True


def _order(config) -> Order:
    text = text_config(config)
    lac = text.get("linear_attn_config")
    full_rank = isinstance(lac, Mapping) and bool(lac.get("use_full_rank_gate"))
    # KDA's full-rank gate comes before A_log, MLA's output gate after o_proj: one tree holds
    # one of them where it belongs
    kda_gate = "g_proj " if full_rank and not text.get("mla_use_output_gate") else ""
    mla_gate = "" if kda_gate else " g_proj"
    attn = (f"self_attn(qkv_proj qkv_conv(conv) f_a_proj f_b_proj b_proj {kda_gate}g_a_proj "
            "g_b_proj A_log dt_bias o_norm q_a_proj q_a_layernorm q_b_proj q_proj "
            f"kv_a_proj_with_mqa kv_a_layernorm embed_q unembed_out o_proj{mla_gate})")
    mlp = ("mlp(gate_proj up_proj down_proj gate switch_mlp(gate_proj up_proj down_proj) "
           "e_score_correction_bias routed_expert_down_proj routed_expert_up_proj "
           "routed_expert_norm shared_experts(gate_proj up_proj down_proj))")
    layer = (f"{attn} {mlp} input_layernorm post_attention_layernorm self_attention_res_proj "
             "self_attention_res_norm mlp_res_proj mlp_res_norm")
    tie = text.get("tie_word_embeddings")
    head = "" if tie else " lm_head"
    return Order(f"language_model(model(embed_tokens layers*({layer}) norm "
                 f"output_attn_res_proj output_attn_res_norm){head})")


FAMILY = Family(
    "kimi_k3", ("kimi_k3",), sanitize, _order,
    quant_predicate=quant_predicate, cast_predicate=cast_predicate)
