"""mlx-lm's ``models/pixtral.py`` (Pixtral checkpoints labelled ``pixtral``, as mlx-vlm's
Pixtral-12B conversions are): the Llama-shaped language model of the llava-style
checkpoint.

Its ``sanitize`` only drops the vision tower and the multimodal projector: the names stay
``language_model.model.*`` and ``language_model.lm_head`` (Llama's own sanitize is not
called). Its ``ModelArgs`` writes into ``text_config``, which ``mlx_lm.convert`` saves:
``tie_word_embeddings`` is always set to false (the ``lm_head`` is always a parameter) and
``num_attention_heads`` defaults to 32.
"""

from __future__ import annotations

from . import llama
from ._multimodal import drop_trees, nested_order, with_text_config
from .base import Family
from .common import Weights


def _post_init(text: dict) -> None:
    text["tie_word_embeddings"] = False
    text["num_attention_heads"] = text.get("num_attention_heads", 32)


edit_config = with_text_config(_post_init)


def sanitize(weights: Weights, config) -> Weights:
    return drop_trees(weights, "vision_tower", "multi_modal_projector")


FAMILY = Family(
    "pixtral", ("pixtral",), sanitize,
    nested_order("language_model", llama.FAMILY),
    widths=llama.FAMILY.widths,
    edit_config=edit_config)
