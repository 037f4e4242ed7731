"""mlx-lm's ``models/qwen3_5.py`` (Qwen3.5, dense; its MoE sibling ``qwen3_5_moe`` builds on
it): qwen3_next's hybrid of gated-delta (``linear_attn``, with separate ``in_proj_qkv``,
``in_proj_z``, ``in_proj_b``, ``in_proj_a``) and gated full attention layers, inside
mlx-lm's multimodal container: the text model is ``language_model``.

``Model.sanitize`` drops the vision tower (``vision_tower*``, ``model.visual*``), renames
``model.language_model.*`` to ``language_model.model.*`` and prefixes every other name with
``language_model.``; then ``TextModel.sanitize`` drops the multi-token-prediction weights
(``mtp.``), pops ``lm_head.weight`` when the embeddings are tied (that bare name, which the
prefixing has already renamed: mlx-lm keeps a prefixed one), moves each ``conv1d`` kernel
axis last and, only for a checkpoint whose conv1d still has the PyTorch layout, adds 1 to
the 1-D norm weights (the checkpoint stores ``weight - 1``). The config is the Hub's
``text_config`` (or the flat config itself). ``quant_predicate`` exists only with experts
(routers at 8 bits); ``cast_predicate`` keeps ``A_log`` in the source dtype.
``TextModelArgs`` renames ``rope_parameters.rope_type`` to ``type`` in the config it reads,
which is the one mlx-lm saves.

>>> FAMILY.model_quant("language_model.model.layers.0.mlp.gate", {"text_config": {}}) is None
True
>>> FAMILY.casts("language_model.model.layers.0.linear_attn.A_log")
False
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ParseError
from .base import Family, Order
from .common import Args, Weights

#: DecoderLayer: the mixer (GatedDeltaNet or qwen3_next's attention), the two norms, then
#: the MLP (qwen3_next's dense MLP or its sparse MoE block)
LAYER = ("linear_attn(conv1d in_proj_qkv in_proj_z in_proj_b in_proj_a dt_bias A_log norm "
         "out_proj) self_attn(q_proj k_proj v_proj o_proj q_norm k_norm) "
         "input_layernorm post_attention_layernorm "
         "mlp(gate_proj down_proj up_proj gate switch_mlp(gate_proj up_proj down_proj) "
         "shared_expert(gate_proj down_proj up_proj) shared_expert_gate)")


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``ModelArgs.from_dict``: the ``text_config`` when there is one, else the config
    itself (a flat text-only config)."""
    if "text_config" not in config:
        return config
    text = config["text_config"]
    if not isinstance(text, Mapping):
        raise ParseError(f"config.json: 'text_config' must be an object, got {text!r:.60}",
                         key="text_config")
    return text


def text_args(config: Mapping[str, Any]) -> Args:
    """``TextModelArgs`` for the fields sanitize and the predicates read."""
    return Args(text_config(config), tie_word_embeddings=False, num_experts=0)


def container_sanitize(weights: Weights) -> Weights:
    """``Model.sanitize``'s renaming (qwen3_5 and qwen3_5_moe): the vision tower dropped,
    the text weights moved under ``language_model.``."""
    sanitized = Weights()
    for key, value in weights.items():
        if key.startswith("vision_tower") or key.startswith("model.visual"):
            continue
        if key.startswith("model.language_model"):
            key = key.replace("model.language_model", "language_model.model")
        elif key.startswith("language_model."):
            pass
        else:
            key = "language_model." + key
        sanitized[key] = value
    return sanitized


def text_sanitize(weights: Weights, config) -> Weights:
    """``TextModel.sanitize``."""
    args = text_args(config)
    has_unsanitized_conv1d = any(
        "conv1d.weight" in k and v.shape[-1] != 1 for k, v in weights.items())
    weights = Weights({k: v for k, v in weights.items() if "mtp." not in k})

    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    norm_keys = (".input_layernorm.weight", ".post_attention_layernorm.weight",
                 "model.norm.weight", ".q_norm.weight", ".k_norm.weight")
    for k, v in list(weights.items()):
        if "conv1d.weight" in k and v.shape[-1] != 1:
            weights[k] = v.moveaxis(2, 1)
        if has_unsanitized_conv1d and any(k.endswith(sfx) for sfx in norm_keys):
            if v.ndim == 1:
                weights[k] = v + 1.0
    return weights


def sanitize(weights: Weights, config) -> Weights:
    return text_sanitize(container_sanitize(weights), config)


def quant_predicate(path: str, config) -> bool | dict | None:
    if text_args(config).num_experts <= 0:
        return None  # TextModel.quant_predicate is None without experts

    if path.endswith("mlp.gate") or path.endswith("shared_expert_gate"):
        return {"group_size": 64, "bits": 8}
    return True


def cast_predicate(path: str) -> bool:
    return not path.endswith("A_log")


def edit_config(config) -> dict:
    """``TextModelArgs.__post_init__`` renames ``rope_parameters.rope_type`` to ``type``
    in the config's own dict, so mlx-lm saves it renamed."""
    config = dict(config)
    nested = "text_config" in config
    text = dict(text_config(config))
    rope = text.get("rope_parameters")
    if isinstance(rope, Mapping) and rope and "type" not in rope and "rope_type" in rope:
        rope = dict(rope)
        rope["type"] = rope.pop("rope_type")
        text["rope_parameters"] = rope
    if nested:
        config["text_config"] = text
        return config
    return text


def order(config) -> Order:
    head = "" if text_args(config).tie_word_embeddings else " lm_head"
    return Order(f"language_model(model(embed_tokens layers*({LAYER}) norm){head})")


FAMILY = Family(
    "qwen3_5", ("qwen3_5",), sanitize, order,
    quant_predicate=quant_predicate, cast_predicate=cast_predicate, edit_config=edit_config)
