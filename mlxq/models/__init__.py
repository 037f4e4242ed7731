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
    same name, a hyphen spelt ``_``: :attr:`Family.python_module`) with a ``FAMILY``:
    adding a family is adding its module."""
    import pkgutil

    fams = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _NOT_FAMILIES:
            continue
        fam = importlib.import_module(f"{__name__}.{info.name}").FAMILY
        if fam.python_module != info.name:
            raise RuntimeError(f"mlxq/models/{info.name}.py declares family {fam.module!r}")
        fams[fam.module] = fam
    return fams


FAMILIES: dict[str, Family] = _load()
_BY_TYPE: dict[str, Family] = {t: f for f in FAMILIES.values() for t in f.model_types}
_BY_ARCHITECTURE: dict[tuple[str, str], Family] = {
    pair: f for f in FAMILIES.values() for pair in f.architectures}


def supported_model_types() -> list[str]:
    """Every ``model_type`` mlxq converts as mlx-lm does, sorted."""
    return sorted(_BY_TYPE)


def family_for(config: Mapping[str, Any], *, allow_unknown: bool = False) -> Family:
    """The family of a ``config.json`` dict, by its ``model_type`` (and, for the pairs of
    ``MODEL_ARCHITECTURE_REMAPPING``, its ``architectures``) as mlx-lm's ``_get_classes``
    routes it. A type mlx-lm does not support is refused (as mlx-lm
    refuses it), with the supported list, unless ``allow_unknown`` asks for the generic
    rules."""
    mt = config.get("model_type")
    # _get_classes: a (model_type, architecture) pair of MODEL_ARCHITECTURE_REMAPPING wins
    archs = config.get("architectures") or ()
    if isinstance(archs, str):
        archs = (archs,)
    if isinstance(mt, str) and isinstance(archs, (list, tuple)):
        for arch in archs:
            fam = _BY_ARCHITECTURE.get((mt, arch)) if isinstance(arch, str) else None
            if fam is not None:
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
        if f.unquantizable:
            rules.append("-q refused (mlx-lm's fails)")
        rules += [f"{s} source" for s in sorted(f.source_formats)]
        types = ", ".join([f"`{t}`" for t in f.model_types] +
                          [f"`{t}` with `{a}`" for t, a in f.architectures])
        rows.append(f"| {name} | {types} | {', '.join(rules) or '-'} |")
    return "\n".join(rows)
