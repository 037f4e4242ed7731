"""mlx-lm's ``models/mistral3.py`` (Mistral Small 3.x, Ministral 3, Mistral Large 3, and
``llava`` checkpoints such as Pixtral-12B's, which ``MODEL_REMAPPING`` sends here): the
language model of the vision-language checkpoint, which is ministral3's, mistral4's or
Llama's as ``text_config.model_type`` says.

Its ``sanitize`` drops every name containing ``vision_tower`` or
``multi_modal_projector``, takes the language model's names out of
``model.language_model.*`` (the newer layout: ``model.*``) or ``language_model.*``, runs
that language model's own sanitize on them (a tied ``lm_head`` dropped, FP8 weights
decoded, ...) and puts the result under ``language_model.``. Its ``ModelArgs`` sets
``text_config.tie_word_embeddings`` to false when absent, which ``mlx_lm.convert`` saves.

>>> FAMILY.config_as_loaded({"model_type": "llava", "text_config": {}})["text_config"]
{'tie_word_embeddings': False}
"""

from __future__ import annotations

import importlib

from ..errors import UnknownEnumValueError
from ._multimodal import graft, text_config, with_text_config
from .base import Config, Family, Order
from .common import Weights


def _post_init(text: dict) -> None:
    if "tie_word_embeddings" not in text:
        text["tie_word_embeddings"] = False


edit_config = with_text_config(_post_init)


def language_family(config: Config) -> Family:
    """The family of the language model: ministral3, mistral4, else llama."""
    name = {"ministral3": "ministral3", "mistral4": "mistral4"}.get(
        text_config(config).get("model_type"), "llama")
    try:
        return importlib.import_module(f"{__package__}.{name}").FAMILY
    except ModuleNotFoundError:
        raise UnknownEnumValueError(
            f"text_config.model_type {name!r}: mlx-lm's mistral3 builds that language model "
            "with its own module, whose conversion mlxq does not reproduce yet",
            key="text_config.model_type") from None


def sanitize(weights: Weights, config) -> Weights:
    config = edit_config(config)
    lm_weights = Weights()
    for key, value in weights.items():
        if "vision_tower" in key or "multi_modal_projector" in key:
            continue
        if key.startswith("model.language_model."):
            key = "model." + key.removeprefix("model.language_model.")
        else:
            key = key.removeprefix("language_model.")
        lm_weights[key] = value

    sanitized_lm = language_family(config).sanitize(lm_weights, text_config(config))
    return graft("language_model", sanitized_lm)


def order(config: Config) -> Order:
    cfg = text_config(edit_config(config))
    return Order(f"language_model({language_family(config).order_for(cfg).tree})")


FAMILY = Family(
    "mistral3", ("mistral3", "llava"), sanitize, order,
    # the widths every language model it may build shares (mistral4's attention is MLA)
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden"},
    edit_config=edit_config)
