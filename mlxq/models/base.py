"""What a model family declares, and the rules mlx-lm applies to every family, written once.

A family module (``mlxq/models/<name>.py``, one per mlx-lm ``models/<name>.py``) builds one
:class:`Family`: the ``model_type`` values mlx-lm routes to it, its ``sanitize`` written
against lazy tensors (:mod:`mlxq.conversion.graph`) so that it reads like mlx-lm's
``Model.sanitize``, its parameter order, its ``quant_predicate`` and ``cast_predicate`` when
mlx-lm's model has them, and the few facts about module classes that a weight name cannot
tell (a ``.weight`` that is a bare parameter or a convolution, so never quantized).

The generic rules every family shares (``quantize_model``, ``nn.quantize``,
``convert``'s ``set_dtype``):

- **quantize**: only modules with ``to_quantized`` are quantized — ``nn.Linear``,
  ``nn.Embedding``, the switch (expert) layers — seen here as a floating ``P.weight`` of
  rank 2 or 3 that is not a norm, not a convolution, and not one of the family's bare
  parameters (:meth:`Family.quantizable`); its last axis must divide by the *global*
  group size; then the model's ``quant_predicate`` (or the recipe) decides, and a dict it
  returns goes to ``to_quantized`` verbatim (no ``mode`` means affine);
- **cast**: every floating parameter takes ``--dtype`` unless the family's
  ``cast_predicate`` keeps it (:meth:`Family.casts`);
- **order**: ``tree_flatten(model.parameters())``, i.e. module definition order
  (:class:`Order`), which decides where 5 GiB shards are cut and the order of per-layer
  entries in the config.

>>> fam = Family("llama", ("llama", "mistral"), order=Order(layer=("self_attn.q_proj",)))
>>> fam.quantizable("model.layers.0.self_attn.q_proj", (64, 64)), fam.quantizable("model.norm", (64,))
(True, False)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from .._sort import natural_key
from ..errors import FormatError, MissingKeyError, ParseError

__all__ = ["Family", "Order", "Config", "Weights", "config_int"]

Config = Mapping[str, Any]
Weights = dict  # name -> mlxq.conversion.graph.Tensor
QuantPredicate = Callable[[str, Config], Union[bool, dict]]

# Parameter order inside one leaf module: nn.Linear assigns weight then bias;
# QuantizedLinear assigns weight, scales, biases, then bias.
_PARAM_ORDER = {"weight": 0, "scales": 1, "biases": 2, "global_scale": 3, "bias": 4}


def config_int(config: Config, key: str, default: Optional[int] = None) -> int:
    """An integer setting of ``config.json``: ParseError naming the key for another type or
    a negative value, MissingKeyError when absent without a default."""
    v = config.get(key, default)
    if v is None:
        if default is None:
            raise MissingKeyError(f"config.json has no {key!r}", key=key)
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ParseError(f"config.json: {key!r} must be a non-negative integer, got "
                         f"{v!r:.60}", key=key)
    return v


@dataclasses.dataclass(frozen=True)
class Order:
    """mlx-lm's parameter order for a family: ``top`` lists the top-level modules in
    definition order, one of which, ``layers``, is the list of decoder blocks; ``layer``
    lists the modules (or bare parameters) inside a block in definition order. A name is
    placed by the first entry it equals or lies under; names no entry covers go last, in
    natural order (the generic fallback orders everything that way)."""

    top: tuple[str, ...] = ("model.embed_tokens", "model.layers", "model.norm", "lm_head")
    layers: str = "model.layers"
    layer: tuple[str, ...] = ()
    natural: bool = False  # no knowledge: natural sort of the names

    def key(self, name: str) -> tuple:
        if self.natural:
            return (0, natural_key(name))
        module, _, param = name.rpartition(".")
        p = _PARAM_ORDER.get(param, len(_PARAM_ORDER))
        for i, top in enumerate(self.top):
            if top == self.layers and module.startswith(top + "."):
                idx, _, sub = module[len(top) + 1:].partition(".")
                if idx.isdigit():
                    return (i, int(idx), self._rank(sub, param), p, name)
            elif module == top or name == top or module.startswith(top + "."):
                return (i, -1, self._rank_top(top, module), p, name)
        return (len(self.top), -1, -1, p, natural_key(name))

    def _rank(self, sub: str, param: str) -> int:
        full = f"{sub}.{param}" if sub else param
        for r, path in enumerate(self.layer):
            if sub == path or full == path or sub.startswith(path + "."):
                return r
        return len(self.layer)

    @staticmethod
    def _rank_top(top: str, module: str) -> int:
        return 0 if module == top else 1

    def covers(self, name: str) -> bool:
        """Whether ``name`` is a parameter this order knows (an entry covers it)."""
        module, _, param = name.rpartition(".")
        for top in self.top:
            if top == self.layers and module.startswith(top + "."):
                idx, _, sub = module[len(top) + 1:].partition(".")
                return idx.isdigit() and self._rank(sub, param) < len(self.layer)
            if module == top or name == top or module.startswith(top + "."):
                return True
        return False


def _identity(weights: Weights, config: Config) -> Weights:
    return weights


@dataclasses.dataclass(frozen=True)
class Family:
    """One mlx-lm model family (see the module docstring)."""

    #: mlx-lm's module, ``mlx_lm/models/<module>.py``
    module: str
    #: the config ``model_type`` values mlx-lm routes to it (``MODEL_REMAPPING`` included)
    model_types: tuple[str, ...]
    #: ``Model.sanitize`` over lazy tensors: ``sanitize(weights, config) -> weights``
    sanitize: Callable[[Weights, Config], Weights] = _identity
    order: Order = Order()
    #: ``Model.quant_predicate(path, module)`` as ``(path, config) -> bool | dict``
    quant_predicate: Optional[QuantPredicate] = None
    #: ``Model.cast_predicate(name)``: False keeps the source dtype
    cast_predicate: Optional[Callable[[str], bool]] = None
    #: regexes (searched in the layer path) of ``.weight`` parameters whose module has no
    #: ``to_quantized`` although the name looks like a Linear: bare parameters (a MoE
    #: router's ``gate`` in deepseek-style blocks), convolutions, ...
    not_quantized: tuple[str, ...] = ()
    #: module (inside a block) -> its input width as a config dimension: "hidden",
    #: "attention" (heads x head_dim) or a config key; used to verify stored layers
    widths: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: whether every parameter the model can have is covered by ``order`` (then a tensor
    #: it does not cover is refused, as mlx-lm's strict load_weights would)
    complete: bool = True
    #: the generic fallback for model types mlx-lm does not know (opt-in)
    generic: bool = False

    @property
    def name(self) -> str:
        return self.module

    # ---- the generic rules --------------------------------------------------------------

    def quantizable(self, path: str, shape: Sequence[int], dtype: Any = None) -> bool:
        """Whether mlx-lm's model has a module with ``to_quantized`` at ``path`` whose
        weight has this shape (Linear, Embedding, switch layers)."""
        from ..predicates import linear_like
        from ..tensorspec import TensorSpec
        import numpy as np

        spec = TensorSpec(tuple(shape), np.dtype(dtype) if dtype is not None else
                          np.dtype(np.float32))
        if not linear_like(path, spec):
            return False
        return not any(re.search(p, path) for p in self.not_quantized)

    def casts(self, name: str) -> bool:
        """Whether ``--dtype`` applies to parameter ``name`` (``cast_predicate``)."""
        return self.cast_predicate is None or bool(self.cast_predicate(name))

    def model_quant(self, path: str, config: Config) -> Union[bool, dict, None]:
        """What the model's own ``quant_predicate`` says of ``path`` (None: it has none)."""
        if self.quant_predicate is None:
            return None
        return self.quant_predicate(path, config)

    def check_parameters(self, names: Iterable[str]) -> None:
        """Refuses an output that is not a parameter of mlx-lm's model for this family:
        ``load_weights(strict=True)`` would reject the folder for it."""
        if self.generic or not self.complete:
            return
        for name in names:
            if not self.order.covers(name):
                raise FormatError(f"{name} is not a parameter of mlx-lm's {self.module} model "
                                  "(mlx_lm.load would refuse the folder for it)", key=name)

    def in_features(self, path: str, config: Config) -> Optional[int]:
        """The input width of mlx-lm's module at ``path`` for this config, where the family
        says (None when unknown); the token embedding and output head read the hidden size
        in every family."""
        leaf = path.rpartition(".")[2]
        if leaf in ("embed_tokens", "lm_head"):
            rule: Optional[str] = "hidden"
        else:
            head, sep, rest = path.partition(self.order.layers + ".")
            rule = self.widths.get(rest.partition(".")[2]) if sep and not head else None
        if rule is None:
            return None
        cfg = config if "hidden_size" in config else config.get("text_config")
        if not isinstance(cfg, Mapping):
            return None

        def num(key: str) -> Optional[int]:
            v = cfg.get(key)
            return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None

        hidden = num("hidden_size")
        if rule == "hidden":
            return hidden
        if rule == "attention":
            heads = num("num_attention_heads")
            if heads is None or hidden is None:
                return None
            hd = num("head_dim") or hidden // heads
            return hd * heads
        return num(rule)
