"""Old import paths of modules that moved, kept working for one release with a warning.

The source-format modules (AutoAWQ, GPTQ, compressed-tensors, FP8, gpt-oss MXFP4 and their
detector) moved from the package top into :mod:`mlxq.formats`. ``import mlxq.awq``,
``from mlxq.fp8 import X`` and ``mlxq.external`` still work, give the very module object of
the new path (so state and monkeypatches are shared), and raise a ``DeprecationWarning``
naming the new path.

The old paths are served by a finder on ``sys.meta_path`` rather than by stub files at the
old paths: a stub file would keep ``mlxq/awq.py`` in the tree, and git could no longer see
the move as a rename, so edits made elsewhere to the old files would not follow them.

>>> MOVED["mlxq.gptq"]
'mlxq.formats.gptq'
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Optional, Sequence

#: old module name -> new module name (removed in the release after next)
MOVED: dict[str, str] = {
    f"mlxq.{name}": f"mlxq.formats.{name}"
    for name in ("awq", "gptq", "compressed_tensors", "fp8", "mxfp4_checkpoint", "external")
}


class _AliasLoader:
    """Loads an old name as the module of its new name (replacing the placeholder module
    in ``sys.modules``, which the import system then returns)."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return None  # the default placeholder; exec_module swaps it out

    def exec_module(self, module: ModuleType) -> None:
        # stacklevel 2 is the importing line: the import system's own frames are skipped
        warnings.warn(f"{module.__name__} moved to {self.new}; import it from there "
                      f"({module.__name__} goes away in a later release)",
                      DeprecationWarning, stacklevel=2)
        sys.modules[module.__name__] = importlib.import_module(self.new)


class _MovedFinder:
    """A ``sys.meta_path`` finder answering only for the names in :data:`MOVED`."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once), ahead of the path-based finders: an old
    name is always the new module, even where a stale copy of the old file is importable
    (an editable install of an older checkout, a leftover ``.pyc``)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
