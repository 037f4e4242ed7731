"""llama.cpp importance matrices: read ``llama-imatrix`` output and map it to MLX layers.

``llama-imatrix -m model.gguf -f calibration.txt -o imatrix.gguf`` records, for every
matrix multiplication of the model, the sum of squared input activations per input column
(and how many rows it summed). Divided by the count, that is the importance
:func:`mlxq.quantize` takes with ``method="mse"``: the expected squared activation each
weight column is multiplied with, so the weighted squared weight error estimates the
output error. Two file layouts exist, both read here without llama.cpp:

- GGUF (the default since 2025): tensors ``<name>.in_sum2`` (float32, ggml shape
  ``[C, n_mat]``: one row per expert, 1 for dense tensors), ``<name>.counts`` (float32
  ``[1, n_mat]``) and optionally ``<name>.in_sum``; importance = in_sum2 / counts per row,
  rows with a zero count get 1 (llama-quantize's rule).
- legacy ``.dat``: int32 entry count, then per entry int32 name length, the name bytes,
  int32 ncall, int32 nval and nval float32 values (already mean squares times ncall), then
  optionally int32 chunk count and a length-prefixed dataset name; importance =
  values / ncall (values as they are when ncall is 0). Experts' values are concatenated
  (``nval = E * C``) with no record of E.

Names are llama.cpp's (``blk.0.attn_q.weight``); :meth:`Imatrix.to_mlx` maps them to MLX
layer paths (``model.layers.0.self_attn.q_proj``) with the ``gguf`` package's tensor name
map for the architecture (``pip install mlxq[imatrix]``), stacked experts
(``blk.N.ffn_up_exps.weight``) to mlx-lm's ``switch_mlp`` layers with one row per expert.
Every parser error is a :class:`mlxq.errors.FormatError` naming the file and what is wrong.

>>> import struct, tempfile, os
>>> body = struct.pack("<i", 1) + struct.pack("<i", 19) + b"blk.0.attn_q.weight"
>>> body += struct.pack("<ii", 2, 4) + struct.pack("<4f", 2.0, 4.0, 6.0, 8.0)
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "imatrix.dat")
>>> _ = open(path, "wb").write(body)
>>> read_imatrix(path)["blk.0.attn_q.weight"].importance
array([[1., 2., 3., 4.]], dtype=float32)
>>> tmp.cleanup()
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal, Union

import numpy as np

from .errors import (
    FormatError,
    MissingDependencyError,
    MlxqIOError,
    ShapeMismatchError,
    UnknownEnumValueError,
    install_hint,
)

__all__ = ["Imatrix", "ImatrixEntry", "ImportanceMap", "read_imatrix", "load_importance"]

PathLike = Union[str, "os.PathLike[str]"]

_GGUF_MAGIC = b"GGUF"
_GGUF_TYPE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGML_F32 = 0
_MAX_DEPTH = 4  # nested GGUF arrays deeper than this are not something llama.cpp writes


@dataclasses.dataclass(frozen=True)
class ImatrixEntry:
    """One llama.cpp tensor's statistics.

    Attributes:
        name: llama.cpp's tensor name, e.g. ``"blk.0.ffn_up_exps.weight"``.
        importance: float32 ``[n_mat, C]``: mean squared input activation per input column,
            one row per expert (one row for dense tensors; legacy files always give one row,
            ``E * C`` long for stacked experts).
        counts: float64 ``[n_mat]``: activation rows summed per matrix (GGUF), or the ncall
            of a legacy entry.
    """

    name: str
    importance: np.ndarray
    counts: np.ndarray


@dataclasses.dataclass(frozen=True)
class Imatrix(Mapping):
    """The entries of an importance-matrix file, by llama.cpp tensor name."""

    entries: dict[str, ImatrixEntry]
    format: Literal["gguf", "dat"]
    datasets: tuple[str, ...] = ()
    chunk_count: int | None = None

    def __getitem__(self, name: str) -> ImatrixEntry:
        return self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_mlx(
        self,
        arch: str,
        n_blocks: int,
        layers: Mapping[str, tuple[int, ...]] | Iterable[str] | None = None,
    ) -> "ImportanceMap":
        """Maps the entries to MLX layer paths with the ``gguf`` package's name map.

        Args:
            arch: llama.cpp's architecture name (``"llama"``, ``"qwen2"``, ``"qwen3moe"``,
                ...; a GGUF model's ``general.architecture``).
            n_blocks: the model's number of transformer blocks.
            layers: the model's MLX layer paths (e.g. ``model.layers.0.self_attn.q_proj``),
                ideally with their weight shapes (a mapping path -> shape). Each path is
                translated to its llama.cpp name, which is exact; with shapes, legacy
                experts' flat values are split into rows and every entry's column count is
                checked. Without ``layers`` each llama.cpp name is translated back to the
                first ``model.*`` Hugging Face name the map knows for it.

        Returns:
            An :class:`ImportanceMap`: path -> float32 ``[C]`` (dense) or ``[E, C]``
            (stacked experts, path ``...switch_mlp.<proj>``).
        """
        tmap = _tensor_name_map(arch, n_blocks)
        out: dict[str, np.ndarray] = {}
        used: set[str] = set()
        if layers is None:
            for name, entry in self.entries.items():
                path = _mlx_path_for(tmap, name)
                if path is not None:
                    out[path] = _as_layer_array(entry, None, path)
                    used.add(name)
        else:
            shapes = dict(layers) if isinstance(layers, Mapping) else dict.fromkeys(layers)
            for path, shape in shapes.items():
                base = _gguf_name_for(tmap, path)
                if base is None or base + ".weight" not in self.entries:
                    continue
                out[path] = _as_layer_array(self.entries[base + ".weight"], shape, path)
                used.add(base + ".weight")
        unmatched = tuple(sorted(set(self.entries) - used))
        return ImportanceMap(out, unmatched)


@dataclasses.dataclass(frozen=True)
class ImportanceMap(Mapping):
    """MLX layer path -> float32 importance (``[C]``, or ``[E, C]`` for stacked experts),
    ready for ``mlxq.quantize(..., method="mse", importance=...)``.

    Attributes:
        layers: the mapping itself.
        unmatched: llama.cpp names no MLX layer was found for (e.g. ``output.weight`` of a
            model with tied embeddings).
    """

    layers: dict[str, np.ndarray]
    unmatched: tuple[str, ...] = ()

    def __getitem__(self, path: str) -> np.ndarray:
        return self.layers[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)


def read_imatrix(path: PathLike) -> Imatrix:
    """Reads a llama.cpp importance matrix, GGUF or legacy ``.dat`` (told apart by the GGUF
    magic, as llama.cpp does). Raises FormatError for malformed bytes, MlxqIOError when the
    file cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise MlxqIOError(f"{os.fspath(path)}: cannot read the importance matrix: {exc}") from exc
    where = os.fspath(path)
    if data[:4] == _GGUF_MAGIC:
        return _parse_gguf(data, where)
    return _parse_dat(data, where)


def load_importance(
    path: PathLike,
    arch: str,
    n_blocks: int,
    layers: Mapping[str, tuple[int, ...]] | Iterable[str] | None = None,
) -> ImportanceMap:
    """``read_imatrix(path).to_mlx(arch, n_blocks, layers)``."""
    return read_imatrix(path).to_mlx(arch, n_blocks, layers)


# ---- byte reading ------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, where: str):
        self.data = memoryview(data)
        self.pos = 0
        self.where = where

    def fail(self, msg: str) -> FormatError:
        return FormatError(f"{self.where}: {msg} (at byte {self.pos})")

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.left:
            raise self.fail(f"truncated: {what} needs {n} bytes, {self.left} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, what))

    def count(self, fmt: str, what: str, min_item: int) -> int:
        """A count, refused when its items could not fit in the bytes left."""
        (n,) = self.unpack(fmt, what)
        if n < 0 or n * min_item > self.left:
            raise self.fail(f"{what} {n} is impossible with {self.left} bytes left")
        return n

    def text(self, n: int, what: str) -> str:
        raw = bytes(self.take(n, what))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not UTF-8: {exc}") from None


def _check_values(r: _Reader, values: np.ndarray, what: str) -> None:
    if not np.isfinite(values).all():
        raise r.fail(f"{what} holds NaN or infinite values")
    if (values < 0).any():
        raise r.fail(f"{what} holds negative values (sums of squares cannot be)")


# ---- legacy .dat --------------------------------------------------------------------------


def _parse_dat(data: bytes, where: str) -> Imatrix:
    r = _Reader(data, where)
    n_entries = r.count("<i", "entry count", 16)
    if n_entries < 1:
        raise r.fail("no entries (not an importance matrix?)")
    entries: dict[str, ImatrixEntry] = {}
    for i in range(n_entries):
        n = r.count("<i", f"entry {i}'s name length", 1)
        if n == 0:
            raise r.fail(f"entry {i} has an empty name")
        name = r.text(n, f"entry {i}'s name").rstrip("\0")
        (ncall,) = r.unpack("<i", f"entry {name!r}'s ncall")
        nval = r.count("<i", f"entry {name!r}'s value count", 4)
        if nval < 1:
            raise r.fail(f"entry {name!r} has no values")
        if ncall < 0:
            raise r.fail(f"entry {name!r} has a negative ncall {ncall}")
        values = np.frombuffer(r.take(4 * nval, f"entry {name!r}'s values"), "<f4").copy()
        _check_values(r, values, f"entry {name!r}")
        if name in entries:
            raise r.fail(f"entry {name!r} appears twice")
        imp = values / np.float32(ncall) if ncall > 0 else values
        entries[name] = ImatrixEntry(name, imp.astype(np.float32).reshape(1, nval),
                                     np.array([float(ncall)]))
    chunk_count, datasets = None, ()
    if r.left:
        (chunk_count,) = r.unpack("<i", "chunk count")
        if r.left:
            n = r.count("<i", "dataset name length", 1)
            datasets = (r.text(n, "dataset name"),)
        if r.left:
            raise r.fail(f"{r.left} unexpected bytes after the dataset name")
    return Imatrix(entries, "dat", datasets, chunk_count)


# ---- GGUF ---------------------------------------------------------------------------------


def _gguf_value(r: _Reader, vtype: int, what: str, depth: int = 0):
    if vtype == _GGUF_STRING:
        n = r.count("<Q", f"{what}: string length", 1)
        return r.text(n, what)
    if vtype == _GGUF_ARRAY:
        if depth >= _MAX_DEPTH:
            raise r.fail(f"{what}: arrays nested deeper than {_MAX_DEPTH}")
        (etype,) = r.unpack("<I", f"{what}: array type")
        if etype != _GGUF_STRING and etype != _GGUF_ARRAY and etype not in _GGUF_TYPE_SIZES:
            raise r.fail(f"{what}: unknown array element type {etype}")
        n = r.count("<Q", f"{what}: array length", _GGUF_TYPE_SIZES.get(etype, 8))
        return [_gguf_value(r, etype, what, depth + 1) for _ in range(n)]
    size = _GGUF_TYPE_SIZES.get(vtype)
    if size is None:
        raise r.fail(f"{what}: unknown value type {vtype}")
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}[vtype]
    if vtype == 7:
        (b,) = r.unpack("<B", what)
        return bool(b)
    return r.unpack(fmt, what)[0]


def _parse_gguf(data: bytes, where: str) -> Imatrix:
    r = _Reader(data, where)
    r.take(4, "magic")
    (version,) = r.unpack("<I", "version")
    if version not in (2, 3):
        raise r.fail(f"unsupported GGUF version {version} (expected 2 or 3, little-endian)")
    n_tensors = r.count("<Q", "tensor count", 24)
    n_kv = r.count("<Q", "metadata count", 12)
    kv: dict[str, object] = {}
    for i in range(n_kv):
        klen = r.count("<Q", f"metadata key {i}'s length", 1)
        key = r.text(klen, f"metadata key {i}")
        (vtype,) = r.unpack("<I", f"metadata {key!r}'s type")
        kv[key] = _gguf_value(r, vtype, f"metadata {key!r}")
    infos = []
    for i in range(n_tensors):
        nlen = r.count("<Q", f"tensor {i}'s name length", 1)
        name = r.text(nlen, f"tensor {i}'s name")
        (n_dims,) = r.unpack("<I", f"tensor {name!r}'s rank")
        if not 1 <= n_dims <= 4:
            raise r.fail(f"tensor {name!r} has rank {n_dims} (ggml allows 1 to 4)")
        dims = r.unpack(f"<{n_dims}Q", f"tensor {name!r}'s shape")
        (ttype, offset) = r.unpack("<IQ", f"tensor {name!r}'s type and offset")
        infos.append((name, dims, ttype, offset))
    align = kv.get("general.alignment", 32)
    if not isinstance(align, int) or isinstance(align, bool) or align < 1 or align & (align - 1):
        raise r.fail(f"general.alignment {align!r} is not a power of two")
    start = (r.pos + align - 1) // align * align
    tensors: dict[str, np.ndarray] = {}
    for name, dims, ttype, offset in infos:
        if name in tensors:
            raise FormatError(f"{where}: tensor {name!r} appears twice")
        n = 1
        for d in dims:
            n *= d
        if not name.endswith((".in_sum2", ".counts", ".in_sum")):
            continue  # llama.cpp ignores other tensors too
        if ttype != _GGML_F32:
            raise FormatError(f"{where}: tensor {name!r} has ggml type {ttype}, not F32")
        begin, end = start + offset, start + offset + 4 * n
        if offset % align or end > len(data):
            raise FormatError(f"{where}: tensor {name!r}'s data [{begin}, {end}) lies outside "
                              f"the file ({len(data)} bytes) or is misaligned")
        shape = tuple(int(d) for d in reversed(dims))  # ggml lists the fastest axis first
        tensors[name] = np.frombuffer(data, "<f4", n, begin).reshape(shape).astype(np.float32)
    entries: dict[str, ImatrixEntry] = {}
    for tname in sorted(tensors):
        if not tname.endswith(".in_sum2"):
            continue
        base = tname[: -len(".in_sum2")]
        sums, counts = tensors[tname], tensors.get(base + ".counts")
        if counts is None:
            raise FormatError(f"{where}: {base!r} has in_sum2 but no counts")
        sums2 = sums.reshape(-1, sums.shape[-1]) if sums.ndim > 1 else sums.reshape(1, -1)
        counts1 = counts.reshape(-1)
        if counts1.size != sums2.shape[0] or counts1.size == 0:
            raise FormatError(f"{where}: {base!r}: {counts1.size} counts for "
                              f"{sums2.shape[0]} rows of in_sum2")
        if base + ".in_sum" in tensors and tensors[base + ".in_sum"].size != sums.size:
            raise FormatError(f"{where}: {base!r}: in_sum and in_sum2 differ in size")
        _check_values(_Reader(data, where), sums2, f"{base!r} in_sum2")
        _check_values(_Reader(data, where), counts1, f"{base!r} counts")
        with np.errstate(divide="ignore", invalid="ignore"):
            imp = np.where(counts1[:, None] > 0, sums2 / counts1[:, None], np.float32(1.0))
        entries[base] = ImatrixEntry(base, imp.astype(np.float32), counts1.astype(np.float64))
    for tname in tensors:
        if tname.endswith(".counts") and tname[: -len(".counts")] not in entries:
            raise FormatError(f"{where}: {tname!r} has no matching in_sum2")
    datasets = kv.get("imatrix.datasets", ())
    chunks = kv.get("imatrix.chunk_count")
    return Imatrix(
        entries, "gguf",
        tuple(str(d) for d in datasets) if isinstance(datasets, list) else (),
        chunks if isinstance(chunks, int) and not isinstance(chunks, bool) else None,
    )


# ---- names ---------------------------------------------------------------------------------


def _tensor_name_map(arch: str, n_blocks: int):
    try:
        import gguf
    except ImportError:
        raise MissingDependencyError(
            "mapping llama.cpp tensor names to MLX layers needs the gguf package: "
            + install_hint("imatrix", "gguf")
        ) from None
    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in by_name:
        known = ", ".join(sorted(by_name)[:12])
        raise UnknownEnumValueError(
            f"arch={arch!r} is not an architecture the gguf package knows "
            f"(e.g. {known}, ...: a GGUF model's general.architecture)"
        )
    return gguf.get_tensor_name_map(by_name[arch], int(n_blocks))


_EXPERT_PROJ = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}


def _gguf_name_for(tmap, path: str) -> str | None:
    """llama.cpp's base name (no ``.weight``) for an MLX layer path."""
    cands = [path]
    if ".switch_mlp." in path:
        stacked = path.replace(".switch_mlp.", ".experts.")
        head, _, proj = stacked.rpartition(".")
        cands += [stacked] + ([f"{head}.{_EXPERT_PROJ[proj]}"] if proj in _EXPERT_PROJ else [])
    for c in cands:
        name = tmap.get_name(c)
        if name is not None:
            return name
    return None


def _mlx_path_for(tmap, name: str) -> str | None:
    """An MLX path for llama.cpp's ``name``: the first ``model.``/``lm_head`` Hugging Face
    name the map lists for it (stacked experts as mlx-lm's switch_mlp)."""
    base = name[: -len(".weight")] if name.endswith(".weight") else name
    hf = [k for k, (_, n) in tmap.mapping.items() if n == base and k != base]
    pick = next((k for k in hf if k.startswith(("model.", "lm_head"))), hf[0] if hf else None)
    if pick is not None and base.endswith("_exps"):
        pick = pick.replace(".experts.", ".switch_mlp.")
    return pick


def _as_layer_array(entry: ImatrixEntry, shape, path: str) -> np.ndarray:
    imp = entry.importance
    stacked = entry.name.split(".")[-2].endswith("_exps") if "." in entry.name else False
    if shape is None:
        if stacked and imp.shape[0] == 1 and entry.counts.size == 1 and imp.size > 0:
            raise ShapeMismatchError(
                f"{entry.name}: a legacy .dat file does not record the expert count; pass "
                f"layers={{path: weight shape}} to split its values per expert", layer=path)
        return imp[0] if imp.shape[0] == 1 and not stacked else imp
    shape = tuple(int(d) for d in shape)
    cols = shape[-1]
    if len(shape) >= 3:
        experts = int(np.prod(shape[:-2]))
        if imp.size != experts * cols:
            raise ShapeMismatchError(
                f"{entry.name} holds {imp.size} values, not {experts} experts x {cols} "
                f"columns", layer=path)
        return imp.reshape(shape[:-2] + (cols,))
    if imp.size != cols:
        raise ShapeMismatchError(
            f"{entry.name} holds {imp.size} values for a weight of {cols} columns", layer=path)
    return imp.reshape(cols)
