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

__all__ = ["Architecture", "ExpertStack", "GENERIC", "SanitizePlan", "architecture_for"]

# Parameter order inside one module: nn.Linear assigns weight then bias; QuantizedLinear
# assigns weight, scales, biases, then bias.
_PARAM_ORDER = {"weight": 0, "scales": 1, "biases": 2, "bias": 3}

_NUM_RE = re.compile(r"(\d+)")


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
            n = int(config.get(ex.count_key, 0) or 0)
            pat = re.compile(
                rf"^(.*\.{re.escape(ex.block)})\.{re.escape(ex.experts)}\.0\.([^.]+)\.([^.]+)$")
            for k in sorted(copy, key=natural_key):
                m = pat.match(k)
                if not m:
                    continue
                prefix, src, param = m.groups()
                names = dict(ex.projections)
                if src not in names or param not in ex.params:
                    continue
                sources = [f"{prefix}.{ex.experts}.{e}.{src}.{param}" for e in range(n)]
                if not all(s in copy for s in sources):
                    continue  # mlx-lm would fail on a missing expert; leave it to the loader
                out = f"{prefix}.{ex.switch}.{names[src]}.{param}"
                stack[out] = sources
                for s in sources:
                    del copy[s]
        return SanitizePlan(copy, stack, dropped)

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

LLAMA = Architecture(
    name="llama",
    model_types=("llama", "mistral"),
    layer_order=_ATTN + _MLP + _NORMS,
    drop_substrings=("self_attn.rotary_emb.inv_freq",),
)
QWEN2 = Architecture(
    name="qwen2",
    model_types=("qwen2",),
    layer_order=_ATTN + _MLP + _NORMS,
    drop_substrings=("self_attn.rotary_emb.inv_freq",),
)
QWEN3 = Architecture(
    name="qwen3",
    model_types=("qwen3",),
    layer_order=_ATTN + ("self_attn.q_norm", "self_attn.k_norm") + _MLP + _NORMS,
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
