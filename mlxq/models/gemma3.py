"""mlx-lm's ``models/gemma3.py`` (Gemma 3, multimodal): the Gemma 3 text model of the
vision-language checkpoint.

Its ``sanitize`` drops the vision tower and the multimodal projector and runs gemma3_text's
sanitize on the language model (whose weights it leaves as they are). Its ``ModelArgs``
writes into the config's ``text_config``, which ``mlx_lm.convert`` then saves: the
top-level ``vocab_size`` (262208 when absent), and ``num_attention_heads`` /
``num_key_value_heads`` when absent (8 and 4).

>>> FAMILY.config_as_loaded({"model_type": "gemma3", "text_config": {}})["text_config"]
{'vocab_size': 262208, 'num_attention_heads': 8, 'num_key_value_heads': 4}
"""

from __future__ import annotations

from . import gemma3_text
from ._multimodal import drop_trees, graft, nested_order, subtree, text_config, with_text_config
from .base import Family
from .common import Weights


def edit_config(config) -> dict:
    """``ModelArgs.__post_init__``'s writes into ``text_config``."""
    vocab_size = config.get("vocab_size", 262208)

    def post_init(text: dict) -> None:
        text["vocab_size"] = vocab_size
        text["num_attention_heads"] = text.get("num_attention_heads", 8)
        text["num_key_value_heads"] = text.get("num_key_value_heads", 4)
    return with_text_config(post_init)(config)


def sanitize(weights: Weights, config) -> Weights:
    config = edit_config(config)
    weights = drop_trees(weights, "vision_tower", "multi_modal_projector")
    lm_weights = subtree(weights, "language_model")
    lm_weights = gemma3_text.sanitize(lm_weights, text_config(config))
    weights = drop_trees(weights, "language_model")
    weights.update(graft("language_model", lm_weights))
    return weights


FAMILY = Family(
    "gemma3", ("gemma3",), sanitize,
    nested_order("language_model", gemma3_text.FAMILY),
    widths=gemma3_text.FAMILY.widths,
    edit_config=edit_config)
