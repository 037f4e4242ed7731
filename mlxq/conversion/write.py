"""Writing a conversion's output into its staging folder: every shard open at once (each
tensor's place is fixed by the plan, so parts arrive in any order of tensors, each tensor's
in order), writes on a background thread, then the index, ``config.json``, the model card
and the side files mlx-lm copies.

Shards are written through :class:`mlxq.io.SafetensorsWriter` (the bytes ``save_safetensors``
writes), with mlx-lm's ``{"format": "mlx"}`` metadata and ``make_shards``' names.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .._files import Identity, open_regular
from .._interrupt import check
from ..errors import InvalidArgumentError, MlxqIOError
from ..io import INDEX_FILE, SafetensorsWriter, shard_file_names
from ..tensorspec import TensorSpec

__all__ = ["ShardWriters", "SideFiles", "copy_side_files", "hub_model_card", "parse_size",
           "MODEL_CARD"]

# Tokenizer files carried over. mlx-lm re-saves the tokenizer with transformers'
# save_pretrained; the files it reads back are these, copied byte for byte here.
_TOKENIZER_PATTERNS = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                       "added_tokens.json", "tokenizer.model", "*.tiktoken", "tiktoken.model",
                       "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja",
                       "chat_template.json")
_COPY_PATTERNS = ("*.py", "generation_config.json")


def parse_size(text: Union[str, int]) -> int:
    """A shard size: bytes, or with a unit (``5GB``, ``500MB``, ``2GiB``, ``1.5G``). Decimal
    units as mlx-lm's ``_parse_size`` (G = 10**9); binary ones with ``i``.

    >>> parse_size("5GiB"), parse_size("2GB"), parse_size(1024)
    (5368709120, 2000000000, 1024)
    """
    if isinstance(text, int):
        n = text
    else:
        units = {"": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9,
                 "GB": 10**9, "T": 10**12, "TB": 10**12, "KIB": 1 << 10, "MIB": 1 << 20,
                 "GIB": 1 << 30, "TIB": 1 << 40}
        s = str(text).strip()
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        unit = s[i:].strip().upper()
        try:
            value = float(s[:i])
        except ValueError:
            value = -1
        if unit not in units or value < 0:
            raise InvalidArgumentError(
                f"cannot read size {text!r}; give bytes or a number with a unit such as "
                "5GB, 500MB or 2GiB")
        n = int(value * units[unit])
    if n <= 0:
        raise InvalidArgumentError(f"the shard size must be positive, got {text!r}")
    return n


class _Stopped(Exception):
    """The producer failed: the writer thread skips what is still queued."""


class _BackgroundWriter:
    """One thread that runs SafetensorsWriter.put/commit calls in submission order. The
    producer blocks while more than ``limit`` bytes wait; the first error is raised in the
    producer at its next call (or on exit), and on any error every writer it owns is
    aborted (their temporary files removed)."""

    def __init__(self, limit: int):
        import queue
        import threading

        self._q: "queue.Queue[Any]" = queue.Queue()
        self._limit = limit
        self._pending = 0
        self._cv = threading.Condition()
        self._error: BaseException | None = None
        self._writers: list[SafetensorsWriter] = []
        self._thread = threading.Thread(target=self._run, name="mlxq-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            op, writer, name, arr, offset = job
            try:
                if self._error is None:
                    if op == "put":
                        if offset is None:
                            writer.put(name, arr)
                        else:
                            writer.put_part(name, offset, arr)
                    else:
                        writer.commit()
            except BaseException as e:  # handed to the producer
                self._error = e
            finally:
                with self._cv:
                    self._pending -= arr.nbytes if arr is not None else 0
                    self._cv.notify_all()
                del arr, job

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def own(self, writer: SafetensorsWriter) -> None:
        self._writers.append(writer)

    def put(self, writer: SafetensorsWriter, name: str, arr: np.ndarray,
            offset: Optional[int] = None) -> None:
        with self._cv:
            while self._pending and self._pending + arr.nbytes > self._limit \
                    and self._error is None:
                self._cv.wait(0.1)
                check()  # a deferred signal stops the producer here, lock released
            self._check()
            self._pending += arr.nbytes
        self._q.put(("put", writer, name, arr, offset))

    def commit(self, writer: SafetensorsWriter) -> None:
        self._check()
        self._q.put(("commit", writer, None, None, None))

    def __enter__(self) -> "_BackgroundWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None and self._error is None:
            self._error = _Stopped()  # later jobs are skipped
        self._q.put(None)
        self._thread.join()
        if exc_type is not None or self._error is not None:
            for w in self._writers:
                w.abort()
        if exc_type is None:
            self._check()


class ShardWriters:
    """Every shard of the output, open at once, fed through one background thread.

    ``put(name, block)`` appends the next block of tensor ``name`` (its parts in order);
    ``finish()`` commits every shard and writes the index. On an exception inside the
    ``with`` block every shard's temporary file is removed."""

    def __init__(self, folder: Path, shards: Sequence[Sequence[tuple[str, TensorSpec, Any]]],
                 queue_bytes: int = 32 << 20):
        self.folder = folder
        self.files = shard_file_names(len(shards))
        self._bg = _BackgroundWriter(queue_bytes)
        self._where: dict[str, SafetensorsWriter] = {}
        self._offset: dict[str, int] = {}
        self.weight_map: dict[str, str] = {}
        self.writers: list[SafetensorsWriter] = []
        try:
            for shard, fname in zip(shards, self.files):
                specs = [(n, s.dtype, s.shape) for n, s, _ in shard]
                w = SafetensorsWriter(folder / fname, specs, {"format": "mlx"})
                self._bg.own(w)
                self.writers.append(w)
                for n, _, _ in shard:
                    self._where[n] = w
                    self._offset[n] = 0
                    self.weight_map[n] = fname
        except BaseException:
            self._bg.__exit__(RuntimeError, None, None)
            raise

    def put(self, name: str, block: np.ndarray) -> None:
        """Writes the next part of tensor ``name`` (the blocks concatenate to it)."""
        self._bg.put(self._where[name], name, block, self._offset[name])
        self._offset[name] += block.nbytes

    def finish(self, total_size: int, total_parameters: int) -> None:
        for w in self.writers:
            self._bg.commit(w)
        self._bg.__exit__(None, None, None)
        index = {"metadata": {"total_size": total_size, "total_parameters": total_parameters},
                 "weight_map": {k: self.weight_map[k] for k in sorted(self.weight_map)}}
        (self.folder / INDEX_FILE).write_text(json.dumps(index, indent=4), encoding="utf-8")

    def abort(self, exc_type: Any = RuntimeError) -> None:
        self._bg.__exit__(exc_type, None, None)


class SideFiles:
    """The tokenizer files, ``*.py`` and ``generation_config.json`` of a source folder
    (mlx-lm's set), opened when the conversion is planned and copied byte for byte once
    its shards are written. Opening first means that what can refuse them does so before
    the expensive work: a symlink leading outside the folder is an
    :class:`~mlxq.errors.OutsideSourceError` (the folder's one link rule,
    :func:`mlxq._files.confine`: its target could be any file of this machine, such as
    ``/etc/hostname``, which would travel with the model), an unreadable file an
    :class:`~mlxq.errors.MlxqIOError`. Anything that is not a regular file is skipped with
    a warning. A file that changes between opening and copying is a
    :class:`~mlxq.errors.SourceChangedError`. Close with :meth:`close` (or ``with``)."""

    def __init__(self, src: Path, warn: Callable[[str], None]):
        self.files: list[tuple[str, int, Identity]] = []
        try:
            for pattern in _TOKENIZER_PATTERNS + _COPY_PATTERNS:
                for f in sorted(glob.glob(str(src / pattern))):
                    name = os.path.basename(f)
                    if name in ("config.json",) or any(n == name for n, _, _ in self.files):
                        continue
                    try:
                        fd = open_regular(f, within=src)
                    except MlxqIOError as e:
                        if "not a regular file" not in str(e):
                            raise
                        warn(f"{e}: not copied")
                        continue
                    self.files.append((name, fd, Identity.of(fd, f)))
        except BaseException:
            self.close()
            raise

    def copy(self, tmp: Path) -> list[str]:
        """Copies every file into ``tmp``; returns their names."""
        for name, fd, ident in self.files:
            with open(tmp / name, "xb") as out:
                pos = 0
                while True:
                    try:
                        b = os.pread(fd, 1 << 20, pos)
                    except OSError as e:
                        raise MlxqIOError(f"{ident.path}: cannot read: {e.strerror}") from None
                    if not b:
                        break
                    out.write(b)
                    pos += len(b)
            ident.check(fd)
        return [name for name, _, _ in self.files]

    def close(self) -> None:
        for _, fd, _ in self.files:
            os.close(fd)
        self.files = []

    def __enter__(self) -> "SideFiles":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def copy_side_files(src: Path, tmp: Path, warn: Callable[[str], None]) -> list[str]:
    """:class:`SideFiles` of ``src`` opened and copied into ``tmp`` at once."""
    with SideFiles(src, warn) as files:
        return files.copy(tmp)


# mlx-lm's create_model_card for a local source: huggingface_hub's template card with
# library_name mlx, the text-generation pipeline tag and the mlx tag, and an empty body.
MODEL_CARD = """---
language: en
library_name: mlx
pipeline_tag: text-generation
tags:
- mlx
---
"""




def hub_model_card(readme: Optional[Path], repo_id: str,
                   warn: Optional[Callable[[str], None]] = None) -> str:
    """mlx-lm's ``create_model_card`` for a Hub source: the repository's card (its front
    matter kept), library ``mlx``, the text-generation pipeline tag, the ``mlx`` tag,
    ``base_model: ORG/NAME``, and an empty body. (mlx-lm fails on a repository without a
    card; mlxq starts from the template card then.) A card whose YAML front matter does not
    parse, or holds values of the wrong kind (``tags: 5``), is replaced by the template card
    and ``warn`` hears why (without quoting the card: the YAML parser's message does).

    >>> print(hub_model_card(None, "org/name"))
    ---
    language: en
    base_model: org/name
    library_name: mlx
    pipeline_tag: text-generation
    tags:
    - mlx
    ---
    <BLANKLINE>
    """
    from huggingface_hub import ModelCard, ModelCardData

    def template() -> Any:
        return ModelCard.from_template(ModelCardData(language="en"))

    def finish(card: Any) -> str:
        card.data.library_name = "mlx"
        card.data.pipeline_tag = "text-generation"
        if card.data.tags is None:
            card.data.tags = ["mlx"]
        elif "mlx" not in card.data.tags:
            card.data.tags += ["mlx"]
        card.data.base_model = repo_id
        card.text = ""
        return str(card)

    if readme is None:
        return finish(template())
    try:
        card = ModelCard.load(readme)
        if card.data.tags is not None and not isinstance(card.data.tags, list):
            raise TypeError("tags is not a list")
        return finish(card)
    except Exception as e:  # yaml.YAMLError, ValueError, TypeError: whatever the card holds
        if warn is not None:
            warn(f"{repo_id}: the model card's metadata (README.md's YAML front matter) "
                 f"cannot be read ({type(e).__name__}); the card is written without it")
        return finish(template())
