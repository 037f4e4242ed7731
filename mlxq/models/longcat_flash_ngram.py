"""mlx-lm's ``models/longcat_flash_ngram.py`` (LongCat-Flash-Lite: LongCat-Flash's decoder
behind an n-gram embedding, whose hashed tables ``embedders.i`` and their ``post_projs.i``
add to the word embedding).

Its ``Model.sanitize`` is LongCat-Flash's (:mod:`mlxq.models.longcat_flash`: experts
stacked, ``kv_b_proj`` split, ``model.mtp`` dropped), after which the checkpoint's
``model.embed_tokens.weight`` becomes ``model.ngram_embeddings.word_embeddings.weight``.
The ``quant_predicate`` and ``cast_predicate`` are LongCat-Flash's.

>>> FAMILY.order_for({}).key("model.ngram_embeddings.post_projs.0.weight") < \\
...     FAMILY.order_for({}).key("model.layers.0.mlp.router.classifier.weight")
True
"""

from __future__ import annotations

from . import longcat_flash
from .base import Family, Order
from .common import Weights

_sanitize = longcat_flash.sanitize_with(longcat_flash.model_args)


def sanitize(weights: Weights, config) -> Weights:
    weights = _sanitize(weights, config)
    if "model.embed_tokens.weight" in weights:
        weights["model.ngram_embeddings.word_embeddings.weight"] = weights.pop(
            "model.embed_tokens.weight")
    return weights


FAMILY = Family(
    "longcat_flash_ngram", ("longcat_flash_ngram",), sanitize,
    Order("model(ngram_embeddings(word_embeddings embedders* post_projs*) "
          f"layers*({longcat_flash.LAYER}) norm) lm_head"),
    quant_predicate=longcat_flash.quant_predicate,
    cast_predicate=longcat_flash.cast_predicate,
    widths=longcat_flash.FAMILY.widths)
