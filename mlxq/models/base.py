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

>>> fam = Family("llama", ("llama", "mistral"))
>>> fam.quantizable("model.layers.0.self_attn.q_proj", (64, 64)), fam.quantizable("model.norm", (64,))
(True, False)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

from .._sort import natural_key
from ..errors import FormatError, MissingKeyError, ParseError

__all__ = ["Family", "Order", "Config", "Weights", "check_config_counts", "check_count",
           "config_int", "counts_bounded_by", "is_count_key"]

Config = Mapping[str, Any]
Weights = dict  # name -> mlxq.conversion.graph.Tensor
QuantPredicate = Callable[[str, Config], Union[bool, dict]]

# Parameter order inside one leaf module: nn.Linear assigns weight then bias;
# QuantizedLinear assigns weight, scales, biases, then bias.
_PARAM_ORDER = {"weight": 0, "scales": 1, "biases": 2, "global_scale": 3, "bias": 4}


# ---- counts against tensors ------------------------------------------------------------------

_COUNT_KEY = re.compile(r"(?:^|_)(?:num|n)_(?:\w+_)?(?:layers?|experts?|heads?)$")


def is_count_key(key: str) -> bool:
    """Whether a config key names a count of layers, experts or heads, which a sanitize
    may loop over (``num_hidden_layers``, ``n_layer``, ``n_routed_experts``,
    ``moe_num_experts``, ``num_key_value_heads``, ...).

    >>> [k for k in ("num_hidden_layers", "n_layer", "moe_num_experts", "hidden_size",
    ...              "num_experts_per_tok", "max_position_embeddings") if is_count_key(k)]
    ['num_hidden_layers', 'n_layer', 'moe_num_experts']
    """
    return _COUNT_KEY.search(key) is not None


class _Bound:
    """What the tensors of one sanitize call can hold (computed on first use)."""

    def __init__(self, weights: Mapping[str, Any]):
        self._weights = weights
        self._n: Optional[int] = None
        self._dim = 0

    def limits(self) -> tuple[int, int]:
        if self._n is None:
            dim = 0
            for t in self._weights.values():
                shape = tuple(getattr(t, "shape", ()) or ())
                if shape and math.prod(shape) > 0:
                    dim = max(dim, max(shape))
            self._n, self._dim = len(self._weights), dim
        return self._n, self._dim


_BOUND: contextvars.ContextVar[Optional[_Bound]] = contextvars.ContextVar("mlxq_count_bound",
                                                                           default=None)


@contextlib.contextmanager
def counts_bounded_by(weights: Mapping[str, Any]) -> Iterator[None]:
    """Inside the block, counts read by :class:`Args` and ``config_int`` must fit
    ``weights`` (see the module docstring). The planner runs every sanitize in one."""
    token = _BOUND.set(_Bound(weights))
    try:
        yield
    finally:
        _BOUND.reset(token)


def check_count(key: str, value: int) -> int:
    """``value`` (the config's ``key``, a count) if the tensors in scope can hold it (no
    bound outside :func:`counts_bounded_by`); else a FormatError naming the key. Families
    that read a count another way than :class:`Args` call it before looping."""
    bound = _BOUND.get()
    if bound is None:
        return value
    n, dim = bound.limits()
    if value > max(n, dim):
        raise FormatError(f"config.json: {key!r} is {value}, more than this checkpoint's "
                          f"tensors can hold ({n} tensor{'s' if n != 1 else ''}, none with a "
                          f"dimension above {dim})", key=key)
    return value



def check_config_counts(config: Config, weights: Mapping[str, Any]) -> None:
    """Every count of layers, experts or heads anywhere in ``config`` (nested configs
    included, such as ``text_config.num_hidden_layers``) checked by :func:`check_count`
    against ``weights``: the planner's first step, so that no family, whichever way it reads
    a count, loops over one its checkpoint cannot hold. The error names the key's path.

    >>> check_config_counts({"text_config": {"num_hidden_layers": 10**6}}, {"w": [0]})
    Traceback (most recent call last):
    ...
    mlxq.errors.FormatError: config.json: 'text_config.num_hidden_layers' is 1000000, more than this checkpoint's tensors can hold (1 tensor, none with a dimension above 0)
    """
    with counts_bounded_by(weights):
        stack: list[tuple[str, Any]] = [("", config)]
        while stack:  # iterative: the config's depth is bounded, the walk need not recurse
            prefix, c = stack.pop()
            for k, v in c.items():
                if isinstance(v, Mapping):
                    stack.append((f"{prefix}{k}.", v))
                elif (isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                      and is_count_key(k)):
                    check_count(f"{prefix}{k}", v)


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
    if key in config and is_count_key(key):
        check_count(key, v)
    return v


_Tree = tuple  # ((name, children-or-None, is_list), ...)


def parse_tree(text: str) -> _Tree:
    """A module tree in definition order: ``"a(b c) d*(e f)"`` is module ``a`` with children
    ``b`` and ``c``, then ``d``, a list of blocks (``*``: a layer index follows) each with
    children ``e`` and ``f``. Leaves are modules (their ``weight``/``bias``/... follow) or bare
    parameters.

    >>> parse_tree("model(embed layers*(attn mlp) norm) lm_head")[0][0]
    'model'
    """
    pos = 0
    tokens = re.findall(r"[\w.]+\*?|[()]", text)

    def level() -> _Tree:
        nonlocal pos
        out = []
        while pos < len(tokens) and tokens[pos] != ")":
            tok = tokens[pos]
            pos += 1
            is_list = tok.endswith("*")
            name = tok.rstrip("*")
            children = None
            if pos < len(tokens) and tokens[pos] == "(":
                pos += 1
                children = level()
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise ValueError(f"unbalanced parentheses in {text!r}")
                pos += 1
            out.append((name, children, is_list))
        return tuple(out)

    tree = level()
    if pos != len(tokens):
        raise ValueError(f"unbalanced parentheses in {text!r}")
    return tree


@dataclasses.dataclass(frozen=True)
class Order:
    """mlx-lm's parameter order for a family: the model's module tree in definition order
    (:func:`parse_tree` syntax), which is the order of ``tree_flatten(model.parameters())``.
    A name's place is found by walking the tree; inside a leaf module its parameters go
    weight, scales, biases, bias (nn.Linear, then QuantizedLinear's additions). A name the
    tree does not cover goes after everything at the level where it stops matching; with
    ``natural`` (the generic fallback) names are simply sorted naturally."""

    tree: str = ("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj) "
                 "mlp(gate_proj down_proj up_proj) input_layernorm post_attention_layernorm) "
                 "norm) lm_head")
    natural: bool = False

    @property
    def _parsed(self) -> _Tree:
        return _parse_cached(self.tree)

    @property
    def layers(self) -> str:
        """The path of the list of decoder blocks (``model.layers``)."""
        def find(tree: _Tree, prefix: str) -> Optional[str]:
            for name, children, is_list in tree:
                path = f"{prefix}{name}"
                if is_list:
                    return path
                if children:
                    got = find(children, path + ".")
                    if got:
                        return got
            return None
        return find(self._parsed, "") or "model.layers"

    def _walk(self, name: str) -> tuple[list, bool]:
        parts = name.split(".")
        key: list = []
        tree: Optional[_Tree] = self._parsed
        i = 0
        while i < len(parts):
            if tree is None:  # inside a leaf module: its parameters
                rest = ".".join(parts[i:])
                key.append((_PARAM_ORDER.get(rest, len(_PARAM_ORDER)), natural_key(rest)))
                return key, rest in _PARAM_ORDER and i == len(parts) - 1
            names = [t[0] for t in tree]
            # a child may name a dotted path ("block_sparse_moe.gate" style is not used:
            # each level is one component)
            if parts[i] not in names:
                key.append((len(tree), natural_key(".".join(parts[i:]))))
                return key, False
            r = names.index(parts[i])
            _, children, is_list = tree[r]
            key.append((r, ()))
            i += 1
            if is_list:
                if i >= len(parts) or not parts[i].isdigit():
                    key.append((len(tree), natural_key(".".join(parts[i:]))))
                    return key, False
                key.append((int(parts[i]), ()))
                i += 1
            tree = children
        return key, tree is None

    def key(self, name: str) -> tuple:
        if self.natural:
            return (0, natural_key(name))
        return tuple(self._walk(name)[0])

    def covers(self, name: str) -> bool:
        """Whether ``name`` is a parameter of the tree: a leaf module's weight, bias,
        scales, biases or global_scale, or a bare parameter the tree lists."""
        return self._walk(name)[1]


_TREES: dict[str, _Tree] = {}


def _parse_cached(text: str) -> _Tree:
    t = _TREES.get(text)
    if t is None:
        t = _TREES[text] = parse_tree(text)
    return t


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
    #: the module tree, or a function of the config giving it (an ``lm_head`` that exists
    #: only when the embeddings are not tied, say)
    order: Union[Order, Callable[[Config], Order]] = Order()
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
    #: module (inside a block) -> its output rows, in the same terms plus "kv" (key/value
    #: heads x head_dim); used to verify every layer's shape before anything is written
    rows: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: whether every parameter the model can have is covered by ``order`` (then a tensor
    #: it does not cover is refused, as mlx-lm's strict load_weights would)
    complete: bool = True
    #: the generic fallback for model types mlx-lm does not know (opt-in)
    generic: bool = False
    #: pre-quantized source formats the family's own sanitize undoes, as mlx-lm's does
    #: ("fp8": block E4M3 with 128x128 scales; "compressed-tensors": INT4 pack-quantized),
    #: or whose layers its model holds as they are ("bitnet": packed ternary BitLinear);
    #: for the others mlxq undoes them before sanitize (mlxq.conversion.prequant)
    source_formats: frozenset = frozenset()
    #: regex (searched in the layer path) -> why: modules whose ``to_quantized`` fails in
    #: mlx-lm's ``nn.quantize`` (afm7's FusedLinear); quantizing one is refused, as
    #: mlx_lm.convert fails on it
    unquantizable: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: ``(model_type, architecture)`` pairs mlx-lm's ``MODEL_ARCHITECTURE_REMAPPING`` sends
    #: here whatever family the ``model_type`` alone names
    architectures: tuple[tuple[str, str], ...] = ()
    #: what ``ModelArgs.from_dict(config)`` writes into the config dict itself, which
    #: ``mlx_lm.convert`` saves afterwards (a multimodal container's ``__post_init__``
    #: sets keys of ``config["text_config"]``, the same dict object): ``config -> a new
    #: config`` (the argument is left as it is)
    edit_config: Optional[Callable[[Config], dict]] = None
    #: why ``dequantize`` is refused for this family's checkpoints, when mlx-lm's
    #: ``dequantize_model`` cannot undo their quantization (None: it can)
    no_dequantize: Optional[str] = None

    @property
    def name(self) -> str:
        return self.module

    @property
    def python_module(self) -> str:
        """The name of mlxq's module for this family: mlx-lm's module name with ``-`` spelt
        ``_``. mlx-lm imports its modules by name (``importlib``), so a few have hyphens
        (``lille-130m``, ``nemotron-nas``, ``lfm2-vl``) that a Python module name cannot
        have; ``module`` keeps mlx-lm's spelling (the name ``_get_classes`` routes to).

        >>> Family("nemotron-nas", ("nemotron-nas",)).python_module
        'nemotron_nas'
        """
        return self.module.replace("-", "_")

    def config_as_loaded(self, config: Config) -> dict:
        """The config as mlx-lm holds it once its model is built (see ``edit_config``)."""
        return self.edit_config(config) if self.edit_config is not None else dict(config)

    def order_for(self, config: Config) -> Order:
        """The parameter order of mlx-lm's model for this config."""
        return self.order(config) if callable(self.order) else self.order

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

    def unquantizable_reason(self, path: str) -> Optional[str]:
        """Why mlx-lm cannot quantize the module at ``path`` (None: it can)."""
        return next((why for p, why in self.unquantizable.items() if re.search(p, path)), None)

    def casts(self, name: str) -> bool:
        """Whether ``--dtype`` applies to parameter ``name`` (``cast_predicate``)."""
        return self.cast_predicate is None or bool(self.cast_predicate(name))

    def model_quant(self, path: str, config: Config) -> Union[bool, dict, None]:
        """What the model's own ``quant_predicate`` says of ``path`` (None: it has none)."""
        if self.quant_predicate is None:
            return None
        return self.quant_predicate(path, config)

    def check_parameters(self, names: Iterable[str], config: Config) -> None:
        """Refuses an output that is not a parameter of mlx-lm's model for this family and
        config: ``load_weights(strict=True)`` would reject the folder for it."""
        if self.generic or not self.complete:
            return
        order = self.order_for(config)
        for name in names:
            if not order.covers(name):
                raise FormatError(f"{name} is not a parameter of mlx-lm's {self.module} model "
                                  "(mlx_lm.load would refuse the folder for it)", key=name)

    def in_features(self, path: str, config: Config) -> Optional[int]:
        """The input width of mlx-lm's module at ``path`` for this config, where the family
        says (None when unknown); the token embedding and output head read the hidden size
        in every family."""
        leaf = path.rpartition(".")[2]
        if leaf in ("embed_tokens", "lm_head"):
            return self._dimension("hidden", config)
        return self._dimension(self._rule(self.widths, path, config), config)

    def out_features(self, path: str, config: Config) -> Optional[int]:
        """The output rows of mlx-lm's module at ``path`` for this config, where the family
        says (:attr:`rows`; None when unknown)."""
        return self._dimension(self._rule(self.rows, path, config), config)

    def _rule(self, rules: Mapping[str, str], path: str, config: Config) -> Optional[str]:
        if not rules:
            return None
        head, sep, rest = path.partition(self.order_for(config).layers + ".")
        return rules.get(rest.partition(".")[2]) if sep and not head else None

    @staticmethod
    def _dimension(rule: Optional[str], config: Config) -> Optional[int]:
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
        if rule in ("attention", "kv"):
            heads = num("num_attention_heads")
            if heads is None or hidden is None:
                return None
            hd = num("head_dim") or hidden // heads
            if rule == "kv":  # mlx-lm's ModelArgs: n_kv_heads defaults to n_heads
                kv = cfg.get("num_key_value_heads")
                heads = heads if kv is None else num("num_key_value_heads")
                if heads is None:
                    return None
            return hd * heads
        return num(rule)
