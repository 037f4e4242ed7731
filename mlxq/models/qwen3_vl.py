"""mlx-lm's ``models/qwen3_vl.py`` (Qwen3-VL, dense): the Qwen3 language model of the
vision-language checkpoint, kept as qwen2_vl's sanitize keeps Qwen2's (the vision tower
dropped, the newer ``model.language_model`` layout unnested, every name under
``language_model.``; Qwen3's own sanitize is not called)."""

from __future__ import annotations

from . import qwen3
from ._multimodal import nested_order
from .base import Family
from .common import Weights
from .qwen2_vl import language_model_sanitize, text_args


def sanitize(weights: Weights, config) -> Weights:
    text_args(config)
    return language_model_sanitize(weights, config)


FAMILY = Family(
    "qwen3_vl", ("qwen3_vl",), sanitize,
    nested_order("language_model", qwen3.FAMILY, text_args),
    widths=qwen3.FAMILY.widths)
