"""What mlx-lm's multimodal containers do to a checkpoint, written once: they keep the
language model of a vision (and audio) model, under ``language_model.``, and drop the
towers.

mlx-lm writes these steps on the nested dict ``tree_unflatten(weights)`` gives:
``weights.pop("vision_tower", None)`` drops every name under ``vision_tower.``,
``weights["language_model"]`` is the names under ``language_model.`` (a ``KeyError``
when there are none), ``tree_flatten`` joins them again. The helpers below do the same on
the flat dict of lazy tensors, with a typed error naming what is missing.

>>> w = {"vision_tower.a.weight": 1, "language_model.model.norm.weight": 2}
>>> sorted(drop_trees(w, "vision_tower"))
['language_model.model.norm.weight']
>>> subtree(w, "language_model")
{'model.norm.weight': 2}
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Union

from ..errors import FormatError, MissingKeyError, ParseError
from .base import Config, Family, Order
from .common import Weights

__all__ = ["drop_trees", "graft", "nested_order", "subtree", "text_config", "with_text_config"]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def drop_trees(weights: Mapping[str, Any], *names: str) -> Weights:
    """``tree_unflatten``, ``weights.pop(name, None)`` for each of ``names`` (dotted: a
    subtree of a subtree), ``tree_flatten``: every tensor under one of them is dropped."""
    return Weights({k: v for k, v in weights.items() if not any(_under(k, n) for n in names)})


def subtree(weights: Mapping[str, Any], name: str) -> Weights:
    """``dict(tree_flatten(tree_unflatten(weights)[name]))``: the tensors under ``name.``,
    without it; a FormatError naming ``name`` when there are none (mlx-lm's KeyError)."""
    prefix = name + "."
    out = Weights({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    if not out:
        raise FormatError(f"the checkpoint has no tensor under {prefix!r}: mlx-lm's sanitize "
                          "for this model takes its language model from there", key=name)
    return out


def graft(name: str, weights: Mapping[str, Any]) -> Weights:
    """``weights`` under ``name.`` (``tree_unflatten`` then ``{name: ...}``)."""
    return Weights({f"{name}.{k}": v for k, v in weights.items()})


def text_config(config: Config) -> Mapping[str, Any]:
    """``config["text_config"]``, which the container's ``ModelArgs`` requires (a
    MissingKeyError without it, a ParseError when it is not an object)."""
    tc = config.get("text_config")
    if tc is None:
        raise MissingKeyError("config.json has no 'text_config', which mlx-lm's model for "
                              f"model_type {config.get('model_type')!r} needs",
                              key="text_config")
    if not isinstance(tc, Mapping):
        raise ParseError(f"config.json: 'text_config' must be an object, got {tc!r:.60}",
                         key="text_config")
    return tc


def with_text_config(edit: Callable[[dict], None]) -> Callable[[Config], dict]:
    """A ``Family.edit_config``: a deep copy of the config whose ``text_config`` dict
    ``edit`` changes in place, as the container's ``ModelArgs.__post_init__`` does."""
    def edit_config(config: Config) -> dict:
        text_config(config)
        out = copy.deepcopy(dict(config))
        edit(out["text_config"])
        return out
    return edit_config


OrderLike = Union[Order, Callable[[Config], Order]]


def nested_order(prefix: str, inner: Union[Family, OrderLike],
                 inner_config: Callable[[Config], Config] = text_config) -> Callable[[Config], Order]:
    """The order of a container whose language model (``inner``: a family, or its order)
    sits under ``prefix`` (dotted for several levels); the inner order is chosen with
    ``inner_config(config)`` (the ``text_config`` by default)."""
    def order(config: Config) -> Order:
        cfg = inner_config(config)
        if isinstance(inner, Family):
            o = inner.order_for(cfg)
        else:
            o = inner(cfg) if callable(inner) else inner
        tree = o.tree
        for part in reversed(prefix.split(".")):
            tree = f"{part}({tree})"
        return Order(tree)
    return order
