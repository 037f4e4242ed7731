"""What mlx-lm does to a checkpoint of each model family, without MLX.

For the families mlxq converts exactly like ``mlx_lm.convert`` (llama, mistral, qwen2, qwen3,
mixtral, qwen3_moe) an :class:`Architecture` records:

- ``sanitize``: mlx-lm's ``Model.sanitize`` as a plan: which checkpoint keys are dropped
  (precomputed rotary frequencies, a tied ``lm_head``) and which per-expert tensors are
  stacked into one ``[experts, out, in]`` switch-layer tensor, in which order;
- ``order_key``: the order of mlx-lm's ``tree_flatten(model.parameters())``, i.e. module
  attribute order, which decides where ``make_shards`` cuts 5 GiB shards;
- ``quant_predicate``: the model's own ``quant_predicate`` when it has one (qwen3_moe keeps
  its router at 8 bits), and ``cast_predicate`` (none of these families has one).

Other model types get :data:`GENERIC`: no sanitize step, natural-sort order, and the
``linear_like`` rule for what to quantize — the converter warns that the output may differ
from mlx-lm's for them.

>>> arch = architecture_for({"model_type": "mistral"})
>>> arch.name
'llama'
>>> sorted(["lm_head.weight", "model.norm.weight", "model.embed_tokens.weight"], key=arch.order_key)
['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import FormatError

__all__ = ["Architecture", "ExpertStack", "GENERIC", "SanitizePlan", "architecture_for"]

# Parameter order inside one module: nn.Linear assigns weight then bias; QuantizedLinear
# assigns weight, scales, biases, then bias.
_PARAM_ORDER = {"weight": 0, "scales": 1, "biases": 2, "bias": 3}

# What a module may hold: nn.Linear/Embedding's weight and bias; a quantized layer's scales,
# biases and (nvfp4) global_scale.
_PARAM_LEAVES = frozenset({"weight", "bias", "scales", "biases", "global_scale"})

_NUM_RE = re.compile(r"(\d+)")


def config_int(config: Mapping[str, Any], key: str, default: int | None = None) -> int:
    """An integer setting of ``config.json`` (ParseError naming the key when it is of
    another type or negative; MissingKeyError when absent and no default is given)."""
    from .errors import MissingKeyError, ParseError

    v = config.get(key, default)
    if v is None:
        if default is None:
            raise MissingKeyError(f"config.json has no {key!r}", key=key)
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ParseError(f"config.json: {key!r} must be a non-negative integer, got "
                         f"{v!r:.60}", key=key)
    return v


def natural_key(name: str) -> tuple:
    """Sort key treating digit runs as numbers: layers.2 before layers.10."""
    return tuple(int(t) if t.isdigit() else t for t in _NUM_RE.split(name))


@dataclasses.dataclass(frozen=True)
class ExpertStack:
    """mlx-lm's sanitize stacking of per-expert weights into switch layers: for every layer
    ``L`` and projection, ``{prefix}.{experts}.{e}.{src}.{param}`` for e in range(E) become
    ``{prefix}.{switch}.{dst}.{param}``."""

    block: str                      # e.g. "block_sparse_moe" (mixtral), "mlp" (qwen3_moe)
    experts: str                    # "experts"
    switch: str                     # "switch_mlp"
    projections: tuple[tuple[str, str], ...]  # (source name, switch name)
    count_key: str                  # config key holding the number of experts
    params: tuple[str, ...]         # which params are stacked


@dataclasses.dataclass(frozen=True)
class SanitizePlan:
    """The output of sanitize, as instructions: ``copy`` maps output name -> source key;
    ``stack`` maps output name -> the source keys stacked along a new first axis."""

    copy: dict[str, str]
    stack: dict[str, list[str]]
    dropped: list[str]

    def output_names(self) -> list[str]:
        return list(self.copy) + list(self.stack)


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str
    model_types: tuple[str, ...]
    top_order: tuple[str, ...] = ("model.embed_tokens", "model.layers", "model.norm", "lm_head")
    layer_order: tuple[str, ...] = ()
    drop_substrings: tuple[str, ...] = ()
    experts: ExpertStack | None = None
    router_override: Mapping[str, Any] | None = None  # qwen3_moe's quant_predicate
    exact: bool = True  # False: no mlx-lm model knowledge (the generic fallback)
    # input width of each layer module (the path inside model.layers.N), as the name of
    # the config dimension it equals: "hidden", "attention" (heads x head_dim) or a key
    widths: Mapping[str, str] = dataclasses.field(default_factory=dict)

    # ---- sanitize ------------------------------------------------------------------------

    def sanitize(self, keys: Iterable[str], config: Mapping[str, Any]) -> SanitizePlan:
        """mlx-lm's ``Model.sanitize`` for these keys, as a plan (no tensor is touched)."""
        keys = list(keys)
        dropped = [k for k in keys if any(s in k for s in self.drop_substrings)]
        if config.get("tie_word_embeddings", False) and "lm_head.weight" in keys:
            dropped.append("lm_head.weight")
        drop = set(dropped)
        copy = {k: k for k in keys if k not in drop}
        stack: dict[str, list[str]] = {}
        ex = self.experts
        if ex is not None:
            n = config_int(config, ex.count_key, 0)
            pat = re.compile(
                rf"^(.*\.{re.escape(ex.block)})\.{re.escape(ex.experts)}\.(\d+)\.([^.]+)\.([^.]+)$")
            names = dict(ex.projections)
            groups: dict[tuple[str, str, str], list[str]] = {}
            for k in sorted(copy, key=natural_key):
                m = pat.match(k)
                if m and m.group(3) in names and m.group(4) in ex.params:
                    groups.setdefault((m.group(1), m.group(3), m.group(4)), []).append(k)
            for (prefix, src, param), found in groups.items():
                # mlx-lm's sanitize stacks experts 0..n-1 of each projection and pops them;
                # a missing one is a KeyError there, a surplus one an unexpected parameter
                sources = [f"{prefix}.{ex.experts}.{e}.{src}.{param}" for e in range(n)]
                missing = [t for t in sources if t not in copy]
                if missing:
                    raise FormatError(f"{missing[0]} is missing: {ex.count_key}={n} experts are "
                                      f"stacked into {prefix}.{ex.switch}.{names[src]}.{param}",
                                      key=missing[0])
                extra = sorted(set(found) - set(sources), key=natural_key)
                if extra:
                    raise FormatError(f"{extra[0]} is beyond the {n} experts config.json's "
                                      f"{ex.count_key} declares", key=extra[0])
                stack[f"{prefix}.{ex.switch}.{names[src]}.{param}"] = sources
                for t in sources:
                    del copy[t]
        return SanitizePlan(copy, stack, dropped)

    # ---- parameter names -------------------------------------------------------------------

    def check_parameters(self, names: Iterable[str], config: Mapping[str, Any]) -> None:
        """Refuses an output tensor that is not a parameter of mlx-lm's model for this
        family: ``load_weights(strict=True)`` would reject the folder ("unexpected
        parameters"), so writing it would give a checkpoint mlx-lm cannot load. The
        generic fallback knows no model and checks nothing."""
        if not self.exact:
            return
        layers = config_int(config, "num_hidden_layers", -1)
        for name in names:
            module, _, leaf = name.rpartition(".")
            ok = leaf in _PARAM_LEAVES and (
                module in self.top_order or self._layer_module(module, layers))
            if not ok:
                raise FormatError(f"{name} is not a parameter of mlx-lm's {self.name} model "
                                  "(mlx_lm.load would refuse the folder for it)", key=name)

    def _layer_module(self, module: str, layers: int) -> bool:
        head, sep, rest = module.partition("model.layers.")
        if head or not sep:
            return False
        idx, _, sub = rest.partition(".")
        return idx.isdigit() and (layers < 0 or int(idx) < layers) and sub in self.layer_order

    # ---- module widths ---------------------------------------------------------------------

    def in_features(self, path: str, config: Mapping[str, Any]) -> int | None:
        """The input width mlx-lm's module at ``path`` has for this config, where the
        family says (None when unknown). The token embedding and the output head read the
        hidden size in every family."""
        if path.rpartition(".")[2] in ("embed_tokens", "lm_head"):
            rule: str | None = "hidden"
        else:
            head, sep, rest = path.partition("model.layers.")
            rule = self.widths.get(rest.partition(".")[2]) if sep and not head else None
        if rule is None:
            return None
        cfg = config.get("text_config") if "hidden_size" not in config else config
        if not isinstance(cfg, Mapping):
            return None
        hidden = cfg.get("hidden_size")
        if not isinstance(hidden, int) or isinstance(hidden, bool):
            return None
        if rule == "hidden":
            return hidden
        if rule == "attention":
            heads = cfg.get("num_attention_heads")
            if not isinstance(heads, int) or isinstance(heads, bool) or heads <= 0:
                return None
            hd = cfg.get("head_dim") or hidden // heads
            return hd * heads if isinstance(hd, int) else None
        v = cfg.get(rule)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    # ---- parameter order -------------------------------------------------------------------

    def order_key(self, name: str) -> tuple:
        """Position of ``name`` in mlx-lm's ``tree_flatten(model.parameters())``."""
        if not self.exact:
            return (0, natural_key(name))
        module, _, param = name.rpartition(".")
        p = _PARAM_ORDER.get(param, len(_PARAM_ORDER))
        for i, top in enumerate(self.top_order):
            if module == top:
                return (i, -1, -1, p, name)
            if top == "model.layers" and module.startswith("model.layers."):
                rest = module[len("model.layers."):]
                idx, _, sub = rest.partition(".")
                if idx.isdigit():
                    return (i, int(idx), self._layer_rank(sub), p, name)
        return (len(self.top_order), -1, -1, p, name)

    def _layer_rank(self, sub: str) -> int:
        for r, path in enumerate(self.layer_order):
            if sub == path or sub.startswith(path + "."):
                return r
        return len(self.layer_order)

    # ---- quantization --------------------------------------------------------------------

    def model_quant_override(self, path: str) -> Mapping[str, Any] | None:
        """What the model's own ``quant_predicate`` returns for ``path`` when it is a dict
        (mlx-lm records it verbatim as the layer's config entry), else None."""
        if self.router_override is not None and path.endswith(".mlp.gate"):
            return dict(self.router_override)
        return None


_ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
_MLP = ("mlp.gate_proj", "mlp.down_proj", "mlp.up_proj")
_NORMS = ("input_layernorm", "post_attention_layernorm")

_ATTN_WIDTHS = {"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
                "self_attn.v_proj": "hidden", "self_attn.o_proj": "attention"}
_MLP_WIDTHS = {"mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
               "mlp.down_proj": "intermediate_size"}

LLAMA = Architecture(
    name="llama",
    model_types=("llama", "mistral"),
    layer_order=_ATTN + _MLP + _NORMS,
    widths={**_ATTN_WIDTHS, **_MLP_WIDTHS},
    drop_substrings=("self_attn.rotary_emb.inv_freq",),
)
QWEN2 = Architecture(
    name="qwen2",
    model_types=("qwen2",),
    layer_order=_ATTN + _MLP + _NORMS,
    widths={**_ATTN_WIDTHS, **_MLP_WIDTHS},
    drop_substrings=("self_attn.rotary_emb.inv_freq",),
)
QWEN3 = Architecture(
    name="qwen3",
    model_types=("qwen3",),
    layer_order=_ATTN + ("self_attn.q_norm", "self_attn.k_norm") + _MLP + _NORMS,
    widths={**_ATTN_WIDTHS, **_MLP_WIDTHS},
)
MIXTRAL = Architecture(
    name="mixtral",
    model_types=("mixtral",),
    layer_order=_ATTN + ("block_sparse_moe.gate", "block_sparse_moe.switch_mlp.gate_proj",
                         "block_sparse_moe.switch_mlp.up_proj",
                         "block_sparse_moe.switch_mlp.down_proj") + _NORMS,
    experts=ExpertStack("block_sparse_moe", "experts", "switch_mlp",
                        (("w1", "gate_proj"), ("w2", "down_proj"), ("w3", "up_proj")),
                        "num_local_experts", ("weight", "scales", "biases")),
    widths={**_ATTN_WIDTHS, "block_sparse_moe.gate": "hidden",
            "block_sparse_moe.switch_mlp.gate_proj": "hidden",
            "block_sparse_moe.switch_mlp.up_proj": "hidden",
            "block_sparse_moe.switch_mlp.down_proj": "intermediate_size"},
)
QWEN3_MOE = Architecture(
    name="qwen3_moe",
    model_types=("qwen3_moe",),
    layer_order=_ATTN + ("self_attn.q_norm", "self_attn.k_norm") + _NORMS
    + ("mlp.gate", "mlp.switch_mlp.gate_proj", "mlp.switch_mlp.up_proj",
       "mlp.switch_mlp.down_proj", "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj"),
    experts=ExpertStack("mlp", "experts", "switch_mlp",
                        (("up_proj", "up_proj"), ("down_proj", "down_proj"),
                         ("gate_proj", "gate_proj")),
                        "num_experts", ("weight",)),
    router_override={"group_size": 64, "bits": 8},
    widths={**_ATTN_WIDTHS, **_MLP_WIDTHS, "mlp.gate": "hidden",
            "mlp.switch_mlp.gate_proj": "hidden", "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size"},
)

GENERIC = Architecture(name="generic", model_types=(), exact=False)

_KNOWN: Sequence[Architecture] = (LLAMA, QWEN2, QWEN3, MIXTRAL, QWEN3_MOE)


def architecture_for(config: Mapping[str, Any]) -> Architecture:
    """The family for a ``config.json`` dict (by ``model_type``), or :data:`GENERIC`."""
    mt = config.get("model_type")
    for arch in _KNOWN:
        if mt in arch.model_types:
            return arch
    return GENERIC


def known_model_types() -> list[str]:
    return sorted(t for a in _KNOWN for t in a.model_types)


QuantPredicate = Callable[[str, Any], Any]
