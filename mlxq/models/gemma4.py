"""mlx-lm's ``models/gemma4.py`` (Gemma 4, multimodal; also the encoder-free
``gemma4_unified``, which ``MODEL_REMAPPING`` sends here): the Gemma 4 language model of the
checkpoint.

Its ``sanitize`` takes ``model.`` off every name, drops the towers and embedders
(``vision_tower``, ``multi_modal_projector``, ``audio_tower``, ``embed_audio``,
``embed_vision``, ``vision_embedder``), keeps the names that had no ``model.`` as they are,
moves ``language_model.*`` to ``language_model.model.*``, then runs gemma4_text's sanitize
(with the text model's settings) on the result. Its ``quant_predicate`` is gemma4_text's.
Its ``ModelArgs`` writes into ``text_config`` (when there is one), which
``mlx_lm.convert`` saves: the top-level ``vocab_size`` (262144 when absent), and
``num_attention_heads`` / ``num_key_value_heads`` when absent (8 and 1).

>>> FAMILY.config_as_loaded({"model_type": "gemma4", "text_config": {}})["text_config"]
{'vocab_size': 262144, 'num_attention_heads': 8, 'num_key_value_heads': 1}
"""

from __future__ import annotations

import copy

from . import gemma4_text
from ._multimodal import nested_order, text_config
from .base import Config, Family
from .common import Weights


def _post_init(text: dict, vocab_size) -> None:
    text["vocab_size"] = vocab_size
    text["num_attention_heads"] = text.get("num_attention_heads", 8)
    text["num_key_value_heads"] = text.get("num_key_value_heads", 1)


def edit_config(config: Config) -> dict:
    """``ModelArgs.__post_init__``'s writes into ``text_config``; without one it fills a
    new dict, which the saved config never sees."""
    out = copy.deepcopy(dict(config))
    if out.get("text_config") is not None:
        text_config(out)  # an object, or a ParseError naming it
        _post_init(out["text_config"], out.get("vocab_size", 262144))
    return out


def text_args(config: Config) -> dict:
    """The settings ``gemma4_text.ModelArgs.from_dict`` gets."""
    text = config.get("text_config")
    if text is None:
        text = {}
        _post_init(text, config.get("vocab_size", 262144))
        return text
    return edit_config(config)["text_config"]


def sanitize(weights: Weights, config) -> Weights:
    new_weights = Weights()
    for k, v in weights.items():
        starts_w_model = k.startswith("model.")

        k = k.removeprefix("model.")
        if k.startswith(
            (
                "vision_tower",
                "multi_modal_projector",
                "audio_tower",
                "embed_audio",
                "embed_vision",
                "vision_embedder",  # gemma4_unified encoder-free vision
            )
        ):
            continue

        if not starts_w_model:
            new_weights[k] = v
            continue

        if k.startswith("language_model"):
            k = k.replace("language_model.", "language_model.model.")

        new_weights[k] = v

    return gemma4_text.sanitize(new_weights, text_args(config))


def quant_predicate(path: str, config) -> bool | dict:
    return gemma4_text.quant_predicate(path, text_args(config))


FAMILY = Family(
    "gemma4", ("gemma4", "gemma4_unified"), sanitize,
    nested_order("language_model", gemma4_text.FAMILY, text_args),
    quant_predicate=quant_predicate,
    widths=gemma4_text.WIDTHS,
    edit_config=edit_config)
