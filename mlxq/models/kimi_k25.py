"""mlx-lm's ``models/kimi_k25.py`` (Kimi K2.5): the DeepSeek-V3 language model of the
multimodal checkpoint.

Its ``sanitize`` drops the vision tower and projector (``vision_tower``, ``vision_model``,
``multi_modal_projector``, ``mm_projector``), runs deepseek_v3's sanitize on the language
model (compressed-tensors INT4 experts remapped to MLX's affine layout — the release's
``quantization_config`` sits in ``text_config`` — FP8 dequantized, experts stacked,
``kv_b_proj`` split, the multi-token-prediction layer dropped) with the text model's
settings, and keeps the result under ``language_model.``. As deepseek_v3's, the router's
``e_score_correction_bias`` keeps its dtype and the router ``mlp.gate`` is a bare
parameter.
"""

from __future__ import annotations

from . import deepseek_v3
from ._multimodal import drop_trees, graft, nested_order, subtree, text_config
from .base import Family
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    weights = drop_trees(weights, "vision_tower", "vision_model", "multi_modal_projector",
                         "mm_projector")
    lm_weights = subtree(weights, "language_model")
    lm_weights = deepseek_v3.sanitize(lm_weights, text_config(config))
    weights = drop_trees(weights, "language_model")
    weights.update(graft("language_model", lm_weights))
    return weights


FAMILY = Family(
    "kimi_k25", ("kimi_k25",), sanitize,
    nested_order("language_model", deepseek_v3.FAMILY),
    cast_predicate=deepseek_v3.cast_predicate,
    not_quantized=deepseek_v3.FAMILY.not_quantized,
    source_formats=deepseek_v3.FAMILY.source_formats)
