#!/usr/bin/env python3
"""What mlx-lm's model class for a checkpoint looks like, for writing (or checking) a family
module in mlxq/models/: the parameter order as top-level modules and per-layer sub-paths,
which ``.weight`` modules have ``to_quantized`` where the generic rule guesses otherwise,
and what ``sanitize`` renames, drops or adds. Needs mlx and mlx-lm (the test extra).

    python tools/family_facts.py tests/fixtures/hf/llama [more folders]
"""

from __future__ import annotations

import glob
import json
import re
import sys
from pathlib import Path


_LEAVES = {"weight", "bias", "scales", "biases", "global_scale"}


def order_tree(params: list[str]) -> str:
    """The module tree (mlxq.models.base.parse_tree syntax) of parameter names in
    tree_flatten order: children merged in an order consistent with every instance (each
    decoder block lists its children in definition order; blocks of different kinds are
    merged topologically)."""
    # sequences of children seen under each node path (list indices replaced by "*")
    seqs: dict[str, list[list[str]]] = {}
    lists: set[str] = set()
    leaves_under: set[str] = set()
    for k in params:
        parts = k.split(".")
        node, inst = "", ""
        i = 0
        while i < len(parts):
            c = parts[i]
            if i + 1 < len(parts) and parts[i + 1].isdigit():
                lists.add(f"{node}{c}")
                seqs.setdefault(inst, []).append([c]) if False else None
            child_path = f"{node}{c}"
            key = inst  # the concrete instance path of the parent
            seqs.setdefault(node, [])
            seqs[node].append((key, c))  # type: ignore[arg-type]
            node = child_path + "."
            inst = inst + c + "."
            i += 1
            if child_path in lists and i < len(parts) and parts[i].isdigit():
                inst = inst + parts[i] + "."
                i += 1
                node = child_path + "*."
        leaves_under.add(node)
    # merge: for each node, the order of first appearance per instance, then topological
    order: dict[str, list[str]] = {}
    for node, pairs in seqs.items():
        per_inst: dict[str, list[str]] = {}
        for inst, c in pairs:
            lst = per_inst.setdefault(inst, [])
            if c not in lst:
                lst.append(c)
        merged: list[str] = []
        for lst in per_inst.values():
            for j, c in enumerate(lst):
                if c in merged:
                    continue
                # insert before the first already-merged child that follows it here
                after = [x for x in lst[j + 1:] if x in merged]
                pos = merged.index(after[0]) if after else len(merged)
                merged.insert(pos, c)
        order[node] = merged

    def render(node: str) -> str:
        out = []
        kids_here = order.get(node, [])
        for c in kids_here:
            if c in _LEAVES and set(kids_here) <= _LEAVES:
                continue
            path = f"{node}{c}"
            star = path in lists
            sub = path + ("*." if star else ".")
            kids = order.get(sub, [])
            # a leaf module's weight/bias/... are implicit in the tree syntax
            inner = render(sub) if kids and not set(kids) <= _LEAVES else ""
            if c in _LEAVES and not star:
                out.append(c)
                continue
            out.append(f"{c}{'*' if star else ''}" + (f"({inner})" if inner else ""))
        return " ".join(out)
    return render("")


def facts(folder: Path) -> None:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm.utils import _get_classes, load_config

    from mlxq.models import family_for

    config = load_config(folder)
    model_class, args_class = _get_classes(config)
    model = model_class(args_class.from_dict(config))
    weights = {}
    for f in sorted(glob.glob(str(folder / "model*.safetensors"))):
        weights.update(mx.load(f))
    names_in = set(weights)
    if hasattr(model, "sanitize"):
        weights = model.sanitize(weights)
    params = [k for k, _ in tree_flatten(model.parameters())]
    print(f"== {folder.name}: model_type {config.get('model_type')}, mlx-lm module "
          f"{model_class.__module__}")
    top: list[str] = []
    layer: list[str] = []
    container = None
    for k in params:
        m = re.match(r"^(.*?)\.(\d+)\.(.*)$", k)
        if m and container in (None, m.group(1)):
            container = m.group(1)
            if container not in top:
                top.append(container)
            sub = m.group(3).rpartition(".")[0] or m.group(3)
            if sub not in layer:
                layer.append(sub)
        else:
            mod = k.rpartition(".")[0]
            if mod not in top:
                top.append(mod)
    print("  tree:", order_tree(params))
    try:
        fam = family_for(config)
        print("  mlxq family:", fam.module)
    except Exception as e:  # noqa: BLE001 - a dev tool: say why
        fam = None
        print("  mlxq family: none:", e)
    from mlxq.predicates import linear_like
    from mlxq.tensorspec import TensorSpec
    import numpy as np

    for path, mod in model.named_modules():
        w = mod.get("weight") if isinstance(mod, nn.Module) else None
        if w is None or not hasattr(w, "shape") or not path:
            continue
        guess = linear_like(path, TensorSpec(tuple(w.shape), np.dtype(np.float32)))
        has = hasattr(mod, "to_quantized")
        if guess != has:
            print(f"  quantizable differs: {path} {type(mod).__name__} {tuple(w.shape)} "
                  f"to_quantized={has}")
    out = set(weights)
    print("  sanitize drops:", sorted(names_in - out)[:12], "..." if len(names_in - out) > 12 else "")
    print("  sanitize adds:", sorted(out - names_in)[:12], "..." if len(out - names_in) > 12 else "")
    missing = sorted(set(params) - out)
    extra = sorted(out - set(params))
    if missing or extra:
        print("  after sanitize, model params missing:", missing[:8], "extra:", extra[:8])
    for attr in ("quant_predicate", "cast_predicate"):
        if hasattr(model, attr):
            print(f"  has {attr}")
    print("  config keys:", json.dumps(sorted(config))[:300])


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        facts(Path(arg))
