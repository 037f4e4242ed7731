"""mlx-lm's ``models/qwen2_vl.py`` (Qwen2-VL, and Qwen2.5-VL, which ``MODEL_REMAPPING``
sends here): the Qwen2 language model of the vision-language checkpoint.

Its ``sanitize`` drops the vision tower (``visual``, or ``vision_tower``); in the newer
layout, where both towers sit under a top-level ``model`` (``model.language_model``,
``model.visual``), ``model`` becomes the language model alone; every name then goes under
``language_model.``. Qwen2's own sanitize is not called: an ``lm_head.weight`` stays,
whatever ``tie_word_embeddings`` says. The config may be flat (the Qwen2-VL releases; the
text settings are then the config itself) or nest them in ``text_config``.

>>> FAMILY.order_for({"model_type": "qwen2_vl", "tie_word_embeddings": False}).layers
'language_model.model.layers'
"""

from __future__ import annotations

from . import qwen2
from ._multimodal import drop_trees, nested_order, text_config
from .base import Config, Family
from .common import Weights


def text_args(config: Config) -> Config:
    """``ModelArgs.from_dict``: without a ``text_config`` the config itself is one."""
    return text_config(config) if "text_config" in config else config


def language_model_sanitize(weights: Weights, config) -> Weights:
    """The steps qwen2_vl's and qwen3_vl's sanitize share."""
    weights = drop_trees(weights, "visual", "vision_tower")
    # Newer HF checkpoints nest both towers under a top-level "model".
    if any(k.startswith("model.language_model.") for k in weights):
        weights = Weights({
            ("model." + k.removeprefix("model.language_model.")
             if k.startswith("model.") else k): v
            for k, v in weights.items()
            if not k.startswith("model.") or k.startswith("model.language_model.")
        })

    sanitized = Weights()
    for key, value in weights.items():
        if not key.startswith("language_model."):
            key = "language_model." + key
        sanitized[key] = value
    return sanitized


def sanitize(weights: Weights, config) -> Weights:
    text_args(config)
    return language_model_sanitize(weights, config)


FAMILY = Family(
    "qwen2_vl", ("qwen2_vl", "qwen2_5_vl"), sanitize,
    nested_order("language_model", qwen2.FAMILY, text_args),
    widths=qwen2.FAMILY.widths)
