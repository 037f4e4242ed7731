"""Per-layer input statistics of a calibration run, and their file.

The file is safetensors (readable anywhere), holding for each linear layer, by its MLX
layer path (``model.layers.0.self_attn.q_proj``):

- ``<path>.in_sum2``: float64 ``[C]``, the sum over calibration tokens of each input
  column's square; ``<path>.count``: int64 ``[1]``, the tokens summed (importance =
  in_sum2 / count, the mean square llama.cpp's importance matrices hold);
- ``hessian.<k>``: float32 ``[C, C]``, X^T X of an input (layers fed the same input, such
  as q/k/v projections, share one), named by the metadata.

Metadata: ``format`` = ``mlxq-calibration``, ``version`` = ``1``, ``tokens``, ``text``
(what was read), ``hessians`` (JSON: layer path -> hessian key).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterator, Mapping, Optional

import numpy as np

from ..errors import FormatError, MissingKeyError

__all__ = ["FORMAT", "LayerStatistics", "Statistics", "is_statistics_file", "load_statistics",
           "save_statistics"]

FORMAT = "mlxq-calibration"


@dataclasses.dataclass
class LayerStatistics:
    """One linear layer's input statistics."""

    in_sum2: np.ndarray           # float64 [C]
    count: int                    # tokens summed
    hessian_key: Optional[str]    # key into Statistics.hessian, or None (not collected)

    @property
    def importance(self) -> np.ndarray:
        """The mean square of each input column (float32), as ``importance=`` takes it."""
        return (self.in_sum2 / max(self.count, 1)).astype(np.float32)


class Statistics(Mapping[str, LayerStatistics]):
    """Layer path -> :class:`LayerStatistics`, with the Hessians read on demand
    (:meth:`hessian`), so a conversion holds one at a time.

    Statistics from :func:`~mlxq.calibration.collect_statistics` keep their Hessians in a
    temporary folder: :meth:`close` (or leaving ``with stats:``) removes it, after which
    :meth:`hessian` raises; ``close`` is that removal (None: nothing to release)."""

    def __init__(self, layers: dict[str, LayerStatistics], hessians: Mapping[str, object],
                 tokens: int, text: str = "", *, close: Optional[Callable[[], None]] = None):
        self.layers = layers
        self._hessians = hessians       # key -> array or a zero-argument loader
        self.tokens = tokens
        self.text = text
        self._close = close

    def close(self) -> None:
        """Releases what holds the Hessians (a no-op when nothing does, or again)."""
        if self._close is not None:
            self._close()

    def __enter__(self) -> "Statistics":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __getitem__(self, path: str) -> LayerStatistics:
        return self.layers[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def hessian(self, path: str) -> Optional[np.ndarray]:
        """X^T X of the layer's input (float32 [C, C]), or None when not collected."""
        key = self.layers[path].hessian_key
        if key is None:
            return None
        h = self._hessians[key]
        return np.asarray(h() if callable(h) else h)

    def hessian_keys(self) -> list[str]:
        return list(self._hessians)

    def importance(self) -> dict[str, np.ndarray]:
        """Layer path -> mean square per input column."""
        return {p: s.importance for p, s in self.layers.items()}


def save_statistics(stats: Statistics, path: "os.PathLike[str] | str") -> None:
    """Writes ``stats`` to ``path`` (safetensors, atomically), one Hessian in memory at a
    time."""
    from ..io import SafetensorsWriter

    specs = []
    for p, s in stats.layers.items():
        specs.append((f"{p}.in_sum2", np.float64, s.in_sum2.shape))
        specs.append((f"{p}.count", np.int64, (1,)))
    keys = stats.hessian_keys()
    shapes = {}
    for k in keys:
        p = next(p for p, s in stats.layers.items() if s.hessian_key == k)
        c = stats.layers[p].in_sum2.shape[0]
        shapes[k] = (c, c)
        specs.append((f"hessian.{k}", np.float32, (c, c)))
    meta = {"format": FORMAT, "version": "1", "tokens": str(stats.tokens),
            "text": stats.text,
            "hessians": json.dumps({p: s.hessian_key for p, s in stats.layers.items()
                                    if s.hessian_key is not None})}
    with SafetensorsWriter(path, specs, meta) as w:
        for p, s in stats.layers.items():
            w.put(f"{p}.in_sum2", np.asarray(s.in_sum2, np.float64))
            w.put(f"{p}.count", np.array([s.count], np.int64))
        for k in keys:
            p = next(p for p, s in stats.layers.items() if s.hessian_key == k)
            w.put(f"hessian.{k}", np.asarray(stats.hessian(p), np.float32))


def is_statistics_file(path: "os.PathLike[str] | str") -> bool:
    """True when ``path`` is a safetensors file written by :func:`save_statistics`."""
    from ..io import safetensors_metadata

    try:
        with open(path, "rb") as f:
            head = f.read(9)
        if len(head) < 9 or head[8:9] != b"{":
            return False
        return safetensors_metadata(path).get("format") == FORMAT
    except Exception:
        return False


def load_statistics(path: "os.PathLike[str] | str") -> Statistics:
    """Reads a file :func:`save_statistics` wrote; Hessians are read when asked for.

    Raises FormatError when the file is not one (or its entries disagree), MissingKeyError
    when an entry is missing."""
    from ..io import open_safetensors, safetensors_metadata

    where = os.fspath(path)
    meta = safetensors_metadata(where)
    if meta.get("format") != FORMAT:
        raise FormatError(f"{where} is not an mlxq calibration statistics file (its "
                          f"metadata format is {meta.get('format')!r}, not {FORMAT!r})")
    try:
        hmap = json.loads(meta.get("hessians", "{}"))
        tokens = int(meta.get("tokens", "0"))
    except (ValueError, TypeError) as e:
        raise FormatError(f"{where}: unreadable metadata: {e}") from None
    if not isinstance(hmap, dict):
        raise FormatError(f"{where}: metadata 'hessians' must be a JSON object")
    f = open_safetensors(where)
    layers: dict[str, LayerStatistics] = {}
    for name in f:
        if not name.endswith(".in_sum2"):
            continue
        p = name[: -len(".in_sum2")]
        if f"{p}.count" not in f:
            raise MissingKeyError(f"{where}: {p}.count is missing", key=f"{p}.count")
        s2 = np.asarray(f[name], np.float64)
        cnt = np.asarray(f[f"{p}.count"])
        if s2.ndim != 1 or cnt.size != 1 or not np.all(np.isfinite(s2)) or np.any(s2 < 0) \
                or int(cnt.reshape(-1)[0]) < 0:
            raise FormatError(f"{where}: {p}'s statistics are malformed (in_sum2 must be a "
                              "finite, non-negative vector, count one non-negative integer)",
                              layer=None, key=name)
        key = hmap.get(p)
        if key is not None and f"hessian.{key}" not in f:
            raise MissingKeyError(f"{where}: hessian.{key} (of {p}) is missing",
                                  key=f"hessian.{key}")
        if key is not None and tuple(f.info(f"hessian.{key}").shape) != (s2.size, s2.size):
            raise FormatError(f"{where}: hessian.{key} does not match {p}'s {s2.size} "
                              "input columns", key=f"hessian.{key}")
        layers[p] = LayerStatistics(s2, int(cnt.reshape(-1)[0]), key)
    hessians = {k: (lambda k=k: np.asarray(f[f"hessian.{k}"], np.float32))
                for k in set(hmap.values())}
    return Statistics(layers, hessians, tokens, meta.get("text", ""))
