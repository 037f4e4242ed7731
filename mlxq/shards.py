"""Which files make up a checkpoint folder, and the rule that the index is the truth.

One code path for every command that reads a folder (``convert``, ``inspect``, ``compare``,
:func:`mlxq.load_checkpoint`):

- **With** ``model.safetensors.index.json``: its ``weight_map`` names every shard and every
  tensor. Each shard it names must exist and hold exactly the tensors mapped to it; a shard
  named ``model*.safetensors`` that the index does not know (the files mlx-lm's
  ``load_model`` would read), a tensor in a shard the index maps elsewhere or not at all,
  or a tensor the index maps to a shard that does not hold it is a
  :class:`~mlxq.errors.SafetensorsError` (a ``FormatError``) naming the file and the
  tensor. Nothing is silently
  dropped: a missing shard is an error, never a smaller model.
- **Without** an index: every non-hidden file matching the caller's pattern
  (``model*.safetensors`` for conversion, as mlx-lm's ``load_model`` globs; any
  ``*.safetensors`` for :func:`mlxq.load_checkpoint`), and no tensor may appear twice.

Every shard must be a regular file (a directory or FIFO with a shard's name is refused
without blocking), and a shard, the index or a folder the index names that is a symlink
leading outside the folder is refused before it is opened (:func:`mlxq._files.confine`:
links inside the folder, and a Hugging Face cache snapshot's links into its ``blobs/``,
are followed). Shard names in the index are plain file names: mlx-lm's ``load_model``
reads ``model*.safetensors`` of the top folder only, so a shard in a subfolder is one it
would never load. Files are opened by a caller-given ``open_file`` (pread reader or memory
map), so the rules cannot differ between commands.

>>> import numpy as np, mlxq, os, tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> d = tmp.name
>>> mlxq.save_safetensors(os.path.join(d, "model.safetensors"), {"w": np.zeros(2, np.int8)})
>>> with open_shards(d, mlxq.io.SafetensorsReader) as s:
...     sorted(s.where), [os.path.basename(f) for f in s.files]
(['w'], ['model.safetensors'])
>>> tmp.cleanup()
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Generic, Iterable, Mapping, Optional, TypeVar, Union

from ._files import confine, read_json
from .errors import (
    KeyCollisionError,
    MissingKeyError,
    MlxqIOError,
    ParseError,
    SafetensorsError,
)


__all__ = ["INDEX_FILE", "MODEL_PATTERN", "Shards", "open_shards", "read_index"]

INDEX_FILE = "model.safetensors.index.json"
#: The files mlx-lm's ``load_model`` reads (``glob("model*.safetensors")``).
MODEL_PATTERN = "model*.safetensors"

PathLike = Union[str, "os.PathLike[str]"]
H = TypeVar("H")


def _names_of(handle: Any) -> Iterable[str]:
    names = getattr(handle, "names", None)
    return names if names is not None and not callable(names) else list(handle)


class Shards(Generic[H]):
    """The open shards of a folder: ``files`` (paths, sorted), ``handles`` (one per file,
    what ``open_file`` returned) and ``where`` (tensor name -> its handle). Close with
    :meth:`close` or a ``with`` block (handles without ``close`` are left alone)."""

    def __init__(self, folder: Path, index: Optional[Path]):
        self.folder = folder
        self.index = index
        self.files: list[Path] = []
        self.handles: list[H] = []
        self.where: dict[str, H] = {}
        self.file_of: dict[str, Path] = {}

    def close(self) -> None:
        for h in self.handles:
            close = getattr(h, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> "Shards[H]":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _hidden(name: str) -> bool:
    return name.startswith(".")


def read_index(folder: PathLike) -> Optional[dict[str, str]]:
    """The validated ``weight_map`` of ``folder``'s index (tensor -> shard file name), or
    None when the folder has no index. Shard names must be plain file names of the folder
    (mlx-lm reads no shard from a subfolder)."""
    d = Path(os.fspath(folder))
    path = d / INDEX_FILE
    if not os.path.lexists(path):
        return None
    try:
        index = read_json(path, within=d)
    except ParseError as e:  # the index is part of the safetensors layout
        raise SafetensorsError(str(e)) from None
    wm = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wm, dict):
        raise SafetensorsError(f"{path}: no 'weight_map' object (an index maps each tensor name "
                          "to its shard file)")
    for name, file in wm.items():
        if not isinstance(file, str) or not file:
            raise SafetensorsError(f"{path}: weight_map maps {name!r} to {file!r}, not a file name",
                              key=name)
        parts = PurePosixPath(file).parts
        if file.startswith("/") or ".." in parts or "\0" in file or "\\" in file:
            raise SafetensorsError(f"{path}: weight_map maps {name!r} to {file!r}, outside the "
                              "checkpoint folder", key=name)
        if len(parts) != 1 or file in (".", ""):
            raise SafetensorsError(f"{path}: weight_map maps {name!r} to {file!r}, a file in a "
                                   "subfolder (mlx-lm's load_model reads model*.safetensors "
                                   "of the top folder only)", key=name)
    return wm


def open_shards(folder: PathLike, open_file: Callable[[Path], H], *,
                pattern: str = MODEL_PATTERN, listing: Optional[list[str]] = None
                ) -> Shards[H]:
    """Opens every shard of ``folder`` with ``open_file`` and checks them against the index
    (see the module docstring). ``pattern`` selects the files when there is no index.
    ``listing`` names the files the folder has, when they are not (yet) on disk: a
    repository's files, read through their headers before they are downloaded.

    Raises:
        FormatError: the index and the shards disagree (naming the file and the tensor), or
            the index is malformed; SafetensorsError for a malformed shard.
        KeyCollisionError: without an index, a tensor in two files.
        MissingKeyError: no shard at all.
        MlxqIOError: a shard cannot be opened or is not a regular file.
    """
    d = Path(os.fspath(folder))
    wm = read_index(d)
    shards: Shards[H] = Shards(d, d / INDEX_FILE if wm is not None else None)
    try:
        names = sorted(listing) if listing is not None else _listing(d)
        if wm is not None:
            _open_indexed(shards, wm, open_file, names, listing is None)
        else:
            _open_globbed(shards, pattern, open_file, names, listing is None)
    except BaseException:
        shards.close()
        raise
    return shards


def _listing(d: Path) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except OSError as e:
        raise MlxqIOError(f"{d}: cannot list: {e.strerror}") from None


def _open_indexed(shards: Shards[H], wm: Mapping[str, str], open_file: Callable[[Path], H],
                  listing: list[str], on_disk: bool) -> None:
    d = shards.folder
    by_file: dict[str, list[str]] = {}
    for name, file in wm.items():
        by_file.setdefault(file, []).append(name)
    unknown = [n for n in listing if fnmatch.fnmatchcase(n, MODEL_PATTERN)
               and not _hidden(n) and n not in by_file]
    if unknown:
        raise SafetensorsError(f"{d / unknown[0]}: a shard that {INDEX_FILE} does not name "
                               "(the index must list every shard; remove the file or fix "
                               "the index)")
    for file in sorted(by_file):
        path = d / file
        if not (os.path.lexists(path) if on_disk else file in listing):
            names = sorted(by_file[file])
            shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
            raise SafetensorsError(
                f"{path}: missing, but {INDEX_FILE} maps {len(names)} "
                f"tensor{'s' if len(names) > 1 else ''} to it ({shown})", key=names[0])
        if on_disk:
            confine(path, d)
        h = open_file(path)
        shards.handles.append(h)
        shards.files.append(path)
        expected = set(by_file[file])
        held = set()
        for name in _names_of(h):
            held.add(name)
            owner = wm.get(name)
            if owner != file:
                where = f"maps it to {owner!r}" if owner else "does not list it"
                raise SafetensorsError(f"{path}: holds tensor {name!r} but {INDEX_FILE} {where}",
                                  key=name)
            shards.where[name] = h
            shards.file_of[name] = path
        missing = sorted(expected - held)
        if missing:
            raise SafetensorsError(f"{path}: does not hold tensor {missing[0]!r}, which "
                                   f"{INDEX_FILE} maps to it", key=missing[0])


def _open_globbed(shards: Shards[H], pattern: str, open_file: Callable[[Path], H],
                  listing: list[str], on_disk: bool) -> None:
    d = shards.folder
    files = [n for n in listing if fnmatch.fnmatchcase(n, pattern) and not _hidden(n)]
    if not files:
        raise MissingKeyError(f"{d}: no {pattern} files", key=pattern)
    for n in files:
        path = d / n
        if on_disk:
            confine(path, d)
        h = open_file(path)
        shards.handles.append(h)
        shards.files.append(path)
        for name in _names_of(h):
            if name in shards.where:
                raise KeyCollisionError(f"tensor {name!r} is in both {shards.file_of[name]} "
                                        f"and {path}", key=name)
            shards.where[name] = h
            shards.file_of[name] = path
