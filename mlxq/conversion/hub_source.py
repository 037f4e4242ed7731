"""A source checkpoint on the Hugging Face Hub, converted with bounded disk.

:class:`HubCheckpoint` is a :class:`~mlxq.conversion.source.SourceCheckpoint` whose shards
are not on disk yet: the small files (config, tokenizer, index, model card) are fetched,
every shard's safetensors header is read with ranged requests, and the checkpoint is
checked by the same index rule as a local folder (:func:`mlxq.shards.open_shards`) and
planned from those headers. Its tensors read their rows only once their shard has been
downloaded; :func:`run_scheduled` downloads the shards in the order
:func:`mlxq.hub.download_order` chooses — so that outputs complete early — computes every
unit whose sources are all present, and deletes a shard as soon as no pending unit needs
it. Peak disk is the output plus a few source shards (``--disk-budget`` caps those).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .._interrupt import check
from ..errors import InvariantViolationError, MissingKeyError, SafetensorsError
from ..io import SafetensorsReader, _numpy_dtype
from ..shards import open_shards
from . import graph
from .hfconfig import load_config
from .source import SourceCheckpoint

__all__ = ["HubCheckpoint", "run_scheduled"]

log = logging.getLogger("mlxq")


class _PendingReader:
    """A shard known by its header only, until it is downloaded: then its rows are read
    with pread, after checking the file's header is the one planned from."""

    def __init__(self, ckpt: "HubCheckpoint", filename: str, header: Any):
        self.ckpt, self.filename, self.header = ckpt, filename, header
        self.path = f"{ckpt.hub.repo_id}/{filename}"
        self.infos = dict(header.tensors)
        self.names = list(self.infos)
        self._reader: Optional[SafetensorsReader] = None

    def info(self, name: str) -> Any:
        return self.infos[name]

    def dtype(self, name: str) -> np.dtype:
        return _numpy_dtype(self.infos[name].dtype, self.path, name)

    def attach(self, local: Path) -> None:
        r = SafetensorsReader(local)
        if r.infos != self.infos:
            r.close()
            raise SafetensorsError(f"{self.path}: the downloaded file's header is not the one "
                                   "read from the Hub before (the file changed?)")
        self._reader = r

    def read_rows(self, name: str, start: int, out: np.ndarray) -> np.ndarray:
        if self._reader is None:
            raise InvariantViolationError(f"{self.path}: read before it was downloaded")
        return self._reader.read_rows(name, start, out)

    def check_unchanged(self) -> None:
        if self._reader is not None:
            self._reader.check_unchanged()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class HubCheckpoint(SourceCheckpoint):
    """``repo_id`` at ``revision`` (default: the main branch), its small files fetched into
    ``small_dir`` and its shards to be downloaded into ``shard_dir`` (or, with ``keep``,
    into huggingface_hub's cache, where they stay)."""

    #: the shards are downloaded while converting: nothing can be read while planning
    remote = True

    def __init__(self, repo_id: str, revision: Optional[str], small_dir: Path, shard_dir: Path,
                 *, keep: bool = False, token: Any = None):
        from ..hub import HubSource

        self.hub = HubSource(repo_id, revision, staging_dir=shard_dir, token=token, cache=keep)
        if "config.json" not in self.hub.files:
            raise MissingKeyError(
                f"{repo_id}@{self.hub.commit[:12]}: no config.json in the repository; a "
                "Hugging Face checkpoint has one next to its weights", key="config.json")
        files = self.hub.fetch_small_files(small_dir)
        self.folder = Path(files["config.json"]).parent
        self.repo_id = repo_id
        self.config = load_config(self.folder)
        headers = self.hub.safetensors_headers()
        self._readers = {f: _PendingReader(self, f, h) for f, h in headers.items()}
        self.sizes = {f: h.size for f, h in headers.items()}
        self._shards = open_shards(self.folder, lambda p: self._readers[p.name],
                                   listing=sorted(set(self.hub.files) | set(files)))
        try:
            self.tensors = {name: graph.Source(r, name) for name, r in self._shards.where.items()}
            self.notes: list[str] = []
            self.external = self._detect_external()
        except BaseException:
            self.close()
            raise

    def file_of_source(self, src: graph.Source) -> str:
        return src.reader.filename

    def model_card(self) -> Optional[Path]:
        card = self.folder / "README.md"
        return card if card.is_file() else None

    def check_unchanged(self) -> None:
        for r in self._readers.values():
            r.check_unchanged()

    def close(self) -> None:
        for r in getattr(self, "_readers", {}).values():
            r.close()


def run_scheduled(plan: Any, ckpt: HubCheckpoint, run_unit: Callable[[str], None],
                  budget: Optional[int],
                  status: Optional[Callable[..., None]] = None) -> Any:
    """Downloads ``ckpt``'s shards as :func:`mlxq.hub.download_order` schedules them for
    ``plan``'s units (in write order) and runs each unit (``run_unit(key)``) as soon as its
    sources are on disk; deletes each shard when no pending unit needs it. ``status(text,
    force=...)`` hears what is being downloaded (``"downloading shard 3/12 42%"``; ``force``
    as a shard starts and ends, the moments a bar should show) and when the downloads are
    done. Returns the schedule."""
    from ..hub import download_order

    keys: list[str] = []
    seen: set[str] = set()
    for _, _, key in plan.outputs:
        if key not in seen:
            seen.add(key)
            keys.append(key)
    needs = [{ckpt.file_of_source(s) for t in plan.units[k].tensors() for s in t.sources()}
             for k in keys]
    schedule = download_order(needs, ckpt.sizes, budget, output_names=keys)
    for i in schedule.ready_at_start:
        run_unit(keys[i])
    total = len(schedule.steps)
    for n, step in enumerate(schedule.steps, 1):
        log.info("%s: downloading %s (%d of %d shards)", ckpt.repo_id, step.download, n, total)
        size = max(ckpt.sizes[step.download], 1)

        def on_bytes(done: int, n: int = n, size: int = size) -> None:
            # every 10 MiB chunk is a safe point: Ctrl-C need not wait for a 5 GB shard
            # (the client removes its partial file as the exception passes)
            check()
            if status is not None:
                status(f"downloading shard {n}/{total} {min(done * 100 // size, 100)}%",
                       force=done <= 0 or done >= size)

        on_bytes(0)
        local = ckpt.hub.download(step.download, on_bytes=on_bytes)
        ckpt._readers[step.download].attach(local)
        for i in step.ready:
            run_unit(keys[i])
        for f in step.delete:
            ckpt._readers[f].check_unchanged()  # after its last read, before it goes
            ckpt._readers[f].close()
            ckpt.hub.delete(f)
    if status is not None:
        status(f"{total}/{total} shards downloaded", force=True)
    return schedule
