"""Model families: what mlx-lm does to the checkpoints of each, one module per family
(as mlx-lm's ``models/``), the rules they share in :mod:`mlxq.models.base`.

>>> family_for({"model_type": "mistral"}).module
'llama'
>>> "qwen3_moe" in supported_model_types()
True
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from ..errors import UnknownEnumValueError
from .base import Family, _identity

__all__ = ["Family", "FAMILIES", "families_table", "family_for", "supported_model_types"]

# Not families: the shared rules and helpers, and the opt-in generic fallback.
_NOT_FAMILIES = frozenset({"base", "common", "mx", "generic"})


def _load() -> dict[str, Family]:
    """Every module of this package is a family (one per mlx-lm ``models/<name>.py``, the
    same name) with a ``FAMILY``: adding a family is adding its module."""
    import pkgutil

    fams = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _NOT_FAMILIES:
            continue
        fam = importlib.import_module(f"{__name__}.{info.name}").FAMILY
        if fam.module != info.name:
            raise RuntimeError(f"mlxq/models/{info.name}.py declares family {fam.module!r}")
        fams[fam.module] = fam
    return fams


FAMILIES: dict[str, Family] = _load()
_BY_TYPE: dict[str, Family] = {t: f for f in FAMILIES.values() for t in f.model_types}


# mlx-lm's MODEL_ARCHITECTURE_REMAPPING: a (model_type, architecture) pair that goes to
# another module than the model_type alone (_get_classes checks it first, for each entry of
# "architectures" in turn); the module must be a family here for the pair to be supported
_ARCHITECTURE_REMAPPING = {("bailing_hybrid", "BailingMoeV3ForCausalLM"): "bailing_moe_v3"}


def supported_model_types() -> list[str]:
    """Every ``model_type`` mlxq converts as mlx-lm does, sorted."""
    return sorted(_BY_TYPE)


def family_for(config: Mapping[str, Any], *, allow_unknown: bool = False) -> Family:
    """The family of a ``config.json`` dict, by its ``model_type`` as mlx-lm's
    ``_get_classes`` routes it. A type mlx-lm does not support is refused (as mlx-lm
    refuses it), with the supported list, unless ``allow_unknown`` asks for the generic
    rules."""
    mt = config.get("model_type")
    archs = config.get("architectures") or ()
    if isinstance(archs, str):
        archs = (archs,)
    for arch in archs if isinstance(archs, (list, tuple)) else ():
        remapped = _ARCHITECTURE_REMAPPING.get((mt, arch)) if isinstance(arch, str) else None
        if remapped is not None:
            fam = FAMILIES.get(remapped)
            if fam is None and allow_unknown:
                from .generic import FAMILY

                return FAMILY
            if fam is None:
                raise UnknownEnumValueError(
                    f"model_type {mt!r} with architecture {arch!r} is mlx-lm's {remapped} "
                    "model, whose conversion mlxq does not reproduce", key="architectures")
            return fam
    fam = _BY_TYPE.get(mt) if isinstance(mt, str) else None
    if fam is not None:
        return fam
    if allow_unknown:
        from .generic import FAMILY

        return FAMILY
    raise UnknownEnumValueError(
        f"model_type {mt!r} is not one whose mlx-lm conversion mlxq reproduces; supported: "
        f"{', '.join(supported_model_types())}. --allow-unknown-architecture converts it "
        "with generic rules (no sanitize step), which may differ from what mlx-lm does, if "
        "it supports the model at all", key="model_type")


def families_table() -> str:
    """The supported-families table of docs/convert.md, from the registry (the docs quote it;
    tests/test_models.py checks they quote it exactly)."""
    rows = ["| family (mlx-lm module) | `model_type` values | own rules |",
            "| --- | --- | --- |"]
    for name in sorted(FAMILIES):
        f = FAMILIES[name]
        rules = []
        if f.sanitize is not _identity:  # its own, or another family's it shares
            rules.append("sanitize")
        if f.quant_predicate is not None:
            rules.append("quant_predicate")
        if f.cast_predicate is not None:
            rules.append("cast_predicate")
        if f.not_quantized:
            rules.append("bare-parameter router")
        rules += [f"{s} source" for s in sorted(f.source_formats)]
        types = ", ".join(f"`{t}`" for t in f.model_types)
        rows.append(f"| {name} | {types} | {', '.join(rules) or '-'} |")
    return "\n".join(rows)
