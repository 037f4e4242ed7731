"""mlx-lm's ``models/lfm2-vl.py`` (LFM2-VL; mlx-lm's module name has a hyphen, as the
releases' ``model_type`` has, and mlx-lm imports it by that name): the LFM2 language model
of the vision-language checkpoint.

Its ``sanitize`` only drops the top-level ``vision_tower`` and ``multi_modal_projector``;
the language model's names must already be ``language_model.model.*`` with MLX's conv
layout (as mlx-vlm's conversions of LFM2-VL have them), since LFM2's own sanitize is not
called. The Hugging Face releases nest everything under ``model.`` (``model.language_model``,
``model.vision_tower``) with PyTorch's conv layout: mlx-lm refuses those (its strict load
finds parameters not in its model), and so does mlxq, naming the first. Its ``ModelArgs``
sets ``text_config.tie_word_embeddings`` to false, which ``mlx_lm.convert`` saves.
"""

from __future__ import annotations

from . import lfm2
from ._multimodal import drop_trees, nested_order, with_text_config
from .base import Family
from .common import Weights


def _post_init(text: dict) -> None:
    text["tie_word_embeddings"] = False


edit_config = with_text_config(_post_init)


def sanitize(weights: Weights, config) -> Weights:
    return drop_trees(weights, "vision_tower", "multi_modal_projector")


FAMILY = Family(
    "lfm2-vl", ("lfm2-vl",), sanitize,
    nested_order("language_model", lfm2.FAMILY),
    widths=lfm2.FAMILY.widths,
    edit_config=edit_config)
