"""The live oracle's versions. MLX and mlx-lm define what is correct, and the golden vectors
and the notes on their quirks (rounding, NaN bit patterns, layouts) were made with the
versions pinned in pyproject.toml's ``test`` extra. With another version installed, the live
comparisons are skipped, saying which versions and why, rather than failing on a difference
that may be the oracle's own change: :func:`guard` makes ``import mlx`` / ``import mlx_lm``
raise ModuleNotFoundError with that reason, so every ``pytest.importorskip`` skips with it, while the
golden-vector checks (no MLX needed) still run."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from typing import Mapping, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: distribution name -> the top-level modules it provides
MODULES = {"mlx": ("mlx",), "mlx-lm": ("mlx_lm",)}


def pinned(pyproject: Optional[str] = None) -> dict[str, str]:
    """The exact versions (``dist==X``) of MLX and mlx-lm in the ``test`` extra."""
    with open(pyproject or os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    extra = re.search(r"^test = \[(.*?)^\]", text, re.S | re.M)
    found = {}
    for dist in MODULES:
        m = re.search(rf'"{re.escape(dist)}(?:\[[^\]]*\])?==([^"]+)"', extra.group(1)) \
            if extra else None
        if m:
            found[dist] = m.group(1)
    return found


def installed() -> dict[str, str]:
    out = {}
    for dist in MODULES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def mismatch(pins: Mapping[str, str], have: Mapping[str, str]) -> Optional[str]:
    """Why the live checks cannot run, or None when every installed oracle is the pinned
    version (an oracle that is not installed is importorskip's own business)."""
    wrong = [f"{d} {have[d]} is installed, the tests pin {d}=={pins[d]}" for d in pins
             if d in have and have[d] != pins[d]]
    if not wrong:
        return None
    return ("live-oracle check skipped: " + "; ".join(wrong) + " (the golden vectors and "
            "quirk notes were made with the pinned versions; another version may round or "
            "lay out differently). Install the test extra: pip install -e '.[test]'")


class Refuse:
    """A meta-path finder that makes MLX and mlx-lm unimportable, with a reason."""

    def __init__(self, reason: str):
        self.reason = reason
        self.names = tuple(m for mods in MODULES.values() for m in mods)

    def find_spec(self, name, path=None, target=None):
        if name in self.names or name.startswith(tuple(n + "." for n in self.names)):
            # ModuleNotFoundError: what pytest.importorskip turns into a skip (a plain
            # ImportError is meant to propagate there)
            raise ModuleNotFoundError(self.reason, name=name)
        return None


def guard() -> Optional[str]:
    """Installs :class:`Refuse` when the installed versions are not the pinned ones; returns
    the reason (None when the oracle may run)."""
    reason = mismatch(pinned(), installed())
    if reason is not None:
        for name in [n for n in sys.modules if n.split(".")[0] in ("mlx", "mlx_lm")]:
            del sys.modules[name]
        sys.meta_path.insert(0, Refuse(reason))
    return reason
