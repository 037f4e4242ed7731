"""Helpers family ports share: mlx-lm's ``ModelArgs`` defaults over a config, a weights
dict whose missing keys are typed errors, and the sanitize steps many families repeat.

>>> args = Args({"num_hidden_layers": 2}, tie_word_embeddings=True, num_hidden_layers=REQUIRED)
>>> args.tie_word_embeddings, args.num_hidden_layers
(True, 2)
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable, Mapping, Sequence

from ..errors import FormatError, MissingKeyError, ParseError
from . import mx

__all__ = ["Args", "REQUIRED", "Weights", "drop", "stack_experts"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: a ``ModelArgs`` field without a default: the config must have it
REQUIRED: Any = _Required()


class Args:
    """``ModelArgs.from_dict(config)`` for the fields a sanitize reads: the config's value,
    else the default mlx-lm's dataclass gives (``REQUIRED``: none). A value of another type
    than its default's (an int field given ``"3"``) is a ParseError naming the key."""

    def __init__(self, config: Mapping[str, Any], **defaults: Any):
        self._config = config
        self._defaults = defaults

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        d = self._defaults.get(key, REQUIRED)
        if key not in self._config:
            if d is REQUIRED:
                raise MissingKeyError(f"config.json has no {key!r}, which mlx-lm's model "
                                      "needs", key=key)
            return d
        v = self._config[key]
        want_int = (isinstance(d, numbers.Integral) and not isinstance(d, bool)) or (
            d is REQUIRED and key.startswith(("num_", "n_")))
        if v is None:
            # from_dict passes a null through, as None; for an integer field that is no
            # count at all: say so (mlx-lm fails later, on arithmetic with None)
            if want_int:
                raise ParseError(f"config.json: {key!r} is null; mlx-lm needs a non-negative "
                                 "integer", key=key)
            return None
        if want_int and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0):
            raise ParseError(f"config.json: {key!r} must be a non-negative integer, got "
                             f"{v!r:.60}", key=key)
        return v


class Weights(dict):
    """The dict a sanitize port works on: ``weights[k]`` and ``weights.pop(k)`` of a
    missing tensor raise a FormatError naming it (mlx-lm raises a bare KeyError)."""

    def __missing__(self, key: str) -> Any:
        raise FormatError(f"{key} is missing: mlx-lm's sanitize for this model needs it",
                          key=key)

    _no_default = object()

    def pop(self, key: str, default: Any = _no_default) -> Any:  # type: ignore[override]
        if key in self:
            return super().pop(key)
        if default is self._no_default:
            self.__missing__(key)
        return default


def drop(weights: Mapping[str, Any], *substrings: str) -> "Weights":
    """The weights whose names contain none of ``substrings`` (rotary ``inv_freq`` buffers,
    multi-token-prediction heads, ...)."""
    return Weights({k: v for k, v in weights.items() if not any(s in k for s in substrings)})


def stack_experts(weights: "Weights", prefix: str, experts: int,
                  names: Sequence[tuple[str, str]], params: Iterable[str] = ("weight",),
                  src: str = "experts", dst: str = "switch_mlp") -> None:
    """The loop mixtral/deepseek/qwen-moe sanitize functions share: for each projection
    ``(n, m)`` and parameter ``k`` present for expert 0, pop
    ``{prefix}.{src}.{e}.{n}.{k}`` for every expert and stack them into
    ``{prefix}.{dst}.{m}.{k}``."""
    for n, m in names:
        for k in params:
            if f"{prefix}.{src}.0.{n}.{k}" in weights:
                to_join = [weights.pop(f"{prefix}.{src}.{e}.{n}.{k}") for e in range(experts)]
                weights[f"{prefix}.{dst}.{m}.{k}"] = mx.stack(to_join)
