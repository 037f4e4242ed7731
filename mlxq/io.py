"""Checkpoint I/O: safetensors files and sharded checkpoint folders, with no copies.

Reading maps the file and returns read-only numpy arrays that view the mapping, so opening a
multi-GB file costs about as much as parsing its header; the mapping stays alive as long as
any array from it does. Every header is validated like the reference parser does (and a
little more strictly: see docs/io.md), so a hostile file raises
:class:`~mlxq.errors.SafetensorsError` instead of crashing or reading out of bounds.

Writing is exact and atomic: the header is the reference writer's (byte for byte the file
``safetensors.numpy.save_file`` writes), data goes from the arrays' own buffers to the
file, and the file is built under a temporary name, fsynced and renamed into place.

>>> import numpy as np, mlxq, tempfile, os
>>> tmp = tempfile.TemporaryDirectory()
>>> p = os.path.join(tmp.name, "w.safetensors")
>>> mlxq.save_safetensors(p, {"w": np.eye(2, dtype=np.float32)})
>>> mlxq.load_safetensors(p)["w"].tolist()
[[1.0, 0.0], [0.0, 1.0]]
>>> tmp.cleanup()
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Union

import numpy as np

from . import _core
from ._files import Identity, open_regular
from .errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    KeyCollisionError,
    MissingKeyError,
    MlxqIOError,
    SafetensorsError,
    UnsupportedDtypeError,
)

__all__ = [
    "DEFAULT_MAX_SHARD_SIZE",
    "INDEX_FILE",
    "MLX_METADATA",
    "SafetensorsFile",
    "SafetensorsReader",
    "SafetensorsWriter",
    "TensorInfo",
    "load_checkpoint",
    "load_safetensors",
    "open_safetensors",
    "safetensors_metadata",
    "save_checkpoint",
    "save_safetensors",
    "shard_file_names",
]

PathLike = Union[str, "os.PathLike[str]"]
Tensors = Union[Mapping[str, Any], Iterable[tuple[str, Any]]]

#: mlx-lm's shard limit (``MAX_FILE_SIZE_GB = 5``, in bytes).
DEFAULT_MAX_SHARD_SIZE = 5 << 30
#: The index file of a sharded checkpoint (written for a single shard too, as mlx-lm does).
INDEX_FILE = "model.safetensors.index.json"
#: The metadata mlx-lm writes into every shard.
MLX_METADATA: Mapping[str, str] = MappingProxyType({"format": "mlx"})

# safetensors dtype name -> numpy dtype, for every dtype numpy (with ml_dtypes) can hold
# element for element. F4, F6_E2M3 and F6_E3M2 pack elements below a byte: no numpy view.
# The ml_dtypes ones (_EXTENSION) join on first use: importing ml_dtypes takes about half a
# second, which reading a header (``mlxq inspect``) or a float32 file should not pay.
_NUMPY_OF: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
}
#: safetensors dtype name -> the ml_dtypes type that holds it
_EXTENSION: Mapping[str, str] = MappingProxyType({
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "F8_E8M0": "float8_e8m0fnu",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
})
_NAME_OF: dict[np.dtype, str] = {dt: name for name, dt in _NUMPY_OF.items()}
#: safetensors dtype name -> numpy's name of the dtype that holds it (``"BF16"`` ->
#: ``"bfloat16"``), known without importing ml_dtypes
NUMPY_DTYPE_NAMES: Mapping[str, str] = MappingProxyType(
    {**{st: dt.name for st, dt in _NUMPY_OF.items()}, **_EXTENSION})


def _add_extension_dtypes() -> None:
    if "BF16" in _NUMPY_OF:
        return
    import ml_dtypes

    extra = {st: np.dtype(getattr(ml_dtypes, attr)) for st, attr in _EXTENSION.items()}
    # one update each, the reverse map first: "BF16" in _NUMPY_OF means both are complete
    _NAME_OF.update({dt: st for st, dt in extra.items()})
    _NUMPY_OF.update(extra)


def _numpy_of(st_dtype: str) -> np.dtype | None:
    """The numpy dtype of a safetensors dtype name; None for the sub-byte ones."""
    if st_dtype in _EXTENSION:
        _add_extension_dtypes()
    return _NUMPY_OF.get(st_dtype)


def _safetensors_name(dt: np.dtype) -> str | None:
    """The safetensors name of a (native byte order) numpy dtype; None when it has none."""
    st = _NAME_OF.get(dt)
    if st is None and "BF16" not in _NUMPY_OF:
        _add_extension_dtypes()
        st = _NAME_OF.get(dt)
    return st


@dataclass(frozen=True)
class TensorInfo:
    """What a header says about one tensor, without touching its data.

    Attributes:
        dtype: the safetensors dtype name (``"BF16"``, ``"F32"``, ...).
        shape: the shape.
        data_offsets: ``(begin, end)`` byte offsets within the data section.
    """

    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.data_offsets[1] - self.data_offsets[0]


def _numpy_dtype(st_dtype: str, path: str, name: str) -> np.dtype:
    dt = _numpy_of(st_dtype)
    if dt is None:
        raise SafetensorsError(
            f"{path}: tensor {name!r} has dtype {st_dtype}, which packs elements below one "
            "byte; numpy cannot view it (mlxq reads every other safetensors dtype)",
            key=name,
        )
    return dt


class SafetensorsFile(Mapping[str, np.ndarray]):
    """A validated, memory-mapped safetensors file: a read-only mapping of name -> array.

    Opening parses and checks the header only. Each ``f[name]`` is a new read-only numpy
    array viewing the mapping (no copy); the mapping is released when this object and every
    array taken from it are gone. Names iterate in sorted (bytewise) order.

    >>> import numpy as np, mlxq, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = os.path.join(tmp.name, "x.safetensors")
    >>> mlxq.save_safetensors(p, {"a": np.arange(3, dtype=np.int8)}, metadata={"k": "v"})
    >>> f = mlxq.open_safetensors(p)
    >>> list(f), f.metadata, f.info("a").dtype, f["a"].tolist()
    (['a'], {'k': 'v'}, 'I8', [0, 1, 2])
    >>> del f; tmp.cleanup()
    """

    def __init__(self, path: PathLike):
        self._f = _core.SafetensorsFile(os.fspath(path))
        self._names: list[str] = self._f.names()
        self._nameset = frozenset(self._names)

    @property
    def path(self) -> str:
        return self._f.path

    @property
    def metadata(self) -> dict[str, str]:
        """The ``__metadata__`` map (a new dict; empty when the file has none)."""
        return self._f.metadata() or {}

    @property
    def has_metadata(self) -> bool:
        """Whether the header has a (non-null) ``__metadata__`` entry."""
        return self._f.metadata() is not None

    def info(self, name: str) -> TensorInfo:
        """The header entry of ``name``; raises MissingKeyError when absent."""
        try:
            _, dtype, shape, begin, end = self._f.info(name)
        except KeyError:
            raise MissingKeyError(f"{self.path}: no tensor named {name!r}", key=name) from None
        return TensorInfo(dtype, shape, (begin, end))

    def __getitem__(self, name: str) -> np.ndarray:
        info = self.info(name)
        return self._f.array(name, _numpy_dtype(info.dtype, self.path, name))

    def __contains__(self, name: object) -> bool:
        return name in self._nameset

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        if "_f" not in self.__dict__:  # __init__ raised
            return "SafetensorsFile(<not open>)"
        return f"SafetensorsFile({self.path!r}, {len(self)} tensors)"


class SafetensorsReader:
    """A validated safetensors file read tensor by tensor into fresh arrays, without mapping.

    :class:`SafetensorsFile` maps the whole file, which is free until pages are touched, but
    counts the whole file against an address-space limit and every touched page against the
    process's resident set. A converter that must stay within a memory bound whatever the
    model size reads each tensor with ``pread`` into its own buffer instead, and drops it
    when done. Same validation as :class:`SafetensorsFile` (header rules, then the data
    section must be exactly the size the header describes). ``within``: the source folder
    ``path`` belongs to, whose symlink rule applies (:func:`mlxq._files.confine`).
    :meth:`check_unchanged` says whether the file is still the one opened (size, times,
    inode), for a reader that must not mix old and new bytes.

    >>> import numpy as np, mlxq, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = os.path.join(tmp.name, "x.safetensors")
    >>> mlxq.save_safetensors(p, {"a": np.arange(3, dtype=np.int8)})
    >>> with SafetensorsReader(p) as r:
    ...     r.names, r.read("a").tolist()
    (['a'], [0, 1, 2])
    >>> tmp.cleanup()
    """

    def __init__(self, path: PathLike, within: PathLike | None = None):
        self.path = os.fspath(path)
        self._fd = -1
        # non-blocking: a FIFO is refused, never waited on
        self._fd = open_regular(self.path, within)
        try:
            self._identity = Identity.of(self._fd, self.path)
            self._parse()
        except BaseException:
            self.close()
            raise

    def _parse(self) -> None:
        size = os.fstat(self._fd).st_size
        head = os.pread(self._fd, 8, 0)
        if len(head) < 8:
            raise SafetensorsError(f"{self.path}: file is {size} bytes, shorter than the "
                                   "8-byte header length")
        n = int.from_bytes(head, "little")
        # the length is the file's first 8 bytes: not quoted (it may be no safetensors file)
        if n > 100_000_000:
            raise SafetensorsError(f"{self.path}: not a safetensors file (the header length "
                                   "in its first 8 bytes is over the 100 MB limit)")
        if 8 + n > size:
            raise SafetensorsError(f"{self.path}: file is truncated inside the header, or not "
                                   f"a safetensors file (it has {size} bytes, fewer than its "
                                   "first 8 say the header has)")
        header = os.pread(self._fd, n, 8)
        try:
            infos, meta, data_start, data_size = _core.st_validate(header, True)
        except SafetensorsError as e:
            raise SafetensorsError(f"{self.path}: {e}", key=getattr(e, "key", None)) from None
        if data_start + data_size != size:
            what = "truncated" if data_start + data_size > size else "longer than its tensors"
            raise SafetensorsError(
                f"{self.path}: file is {what} (header describes {data_start + data_size} "
                f"bytes, file has {size})")
        self.data_start = data_start
        self.metadata: dict[str, str] = meta or {}
        self.infos: dict[str, TensorInfo] = {
            name: TensorInfo(dt, tuple(shape), (b, e)) for name, dt, shape, b, e in infos}
        self.names = list(self.infos)

    def info(self, name: str) -> TensorInfo:
        try:
            return self.infos[name]
        except KeyError:
            raise MissingKeyError(f"{self.path}: no tensor named {name!r}", key=name) from None

    def dtype(self, name: str) -> np.dtype:
        return _numpy_dtype(self.info(name).dtype, self.path, name)

    def read(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        """The tensor as a new array, or read into ``out`` (C-contiguous, same byte size),
        e.g. one slot of a stacked buffer."""
        info = self.info(name)
        dt = self.dtype(name)
        if out is None:
            out = np.empty(info.shape, dt)
        elif not out.flags.c_contiguous or out.nbytes != info.nbytes:
            raise InvalidArgumentError(f"{self.path}: out must be C-contiguous with "
                                       f"{info.nbytes} bytes for {name!r}", key=name)
        self._pread(name, out, 0)
        return out

    def read_rows(self, name: str, start: int, out: np.ndarray) -> np.ndarray:
        """Rows ``start : start + len(out)`` of the tensor viewed as 2-D (leading dims
        flattened), read into ``out`` (C-contiguous, the tensor's dtype and row length):
        a block of a tensor without reading the rest."""
        info = self.info(name)
        cols = info.shape[-1] if info.shape else 1
        rows = info.nbytes // max(cols * self.dtype(name).itemsize, 1) if cols else 0
        if (not out.flags.c_contiguous or out.dtype != self.dtype(name) or out.ndim != 2
                or out.shape[1] != cols or start < 0 or start + out.shape[0] > rows):
            raise InvalidArgumentError(f"{self.path}: bad row block {start}+{out.shape} for "
                                       f"{name!r} {list(info.shape)}", key=name)
        self._pread(name, out, start * cols * out.dtype.itemsize)
        return out

    def _pread(self, name: str, out: np.ndarray, offset: int) -> None:
        info = self.info(name)
        view = memoryview(out.reshape(-1).view(np.uint8))
        nbytes = len(view)
        pos, off = 0, self.data_start + info.data_offsets[0] + offset
        while pos < nbytes:
            try:
                got = os.preadv(self._fd, [view[pos:pos + (1 << 30)]], off + pos)
            except OSError as e:
                raise MlxqIOError(f"{self.path}: cannot read {name!r}: {e.strerror}") from None
            if got == 0:
                raise SafetensorsError(f"{self.path}: file shrank while reading {name!r}",
                                       key=name)
            pos += got

    def check_unchanged(self) -> None:
        """Raises :class:`~mlxq.errors.SourceChangedError` if the file was modified or
        replaced since it was opened (a no-op once closed)."""
        if self._fd >= 0:
            self._identity.check(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "SafetensorsReader":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()


def open_safetensors(path: PathLike) -> SafetensorsFile:
    """Opens and validates a safetensors file without reading its data.

    Raises:
        SafetensorsError: the file is malformed (the message names the file and, when one is
            at fault, the tensor).
        MlxqIOError: the file cannot be opened or mapped.
    """
    return SafetensorsFile(path)


def load_safetensors(path: PathLike) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as read-only arrays viewing a mapping of it.

    Costs time proportional to the header, not the file: pages are read when touched.
    Tensors come in sorted name order. BF16 loads as ``ml_dtypes.bfloat16``, F8_E4M3 /
    F8_E5M2 as ``ml_dtypes.float8_e4m3fn`` / ``float8_e5m2``; see docs/io.md for all.
    Use :func:`safetensors_metadata` or :func:`open_safetensors` for ``__metadata__``.

    Raises:
        SafetensorsError: malformed file, or a tensor of a sub-byte dtype (F4, F6_*).
        MlxqIOError: the file cannot be opened.
    """
    f = SafetensorsFile(path)
    return {name: f[name] for name in f}


def safetensors_metadata(path: PathLike) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors file (empty when it has none)."""
    return SafetensorsFile(path).metadata


# ---- writing ---------------------------------------------------------------------------


def _pairs(tensors: Tensors) -> Iterator[tuple[str, Any]]:
    if isinstance(tensors, Mapping):
        yield from tensors.items()
        return
    for item in tensors:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise ArgumentTypeError(
                f"tensors must be a mapping or an iterable of (name, array) pairs, got an "
                f"item of type {type(item).__name__}"
            ) from None
        yield name, value


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise ArgumentTypeError(f"tensor names must be str, got {type(name).__name__}")
    if name == "__metadata__":
        raise InvalidArgumentError("'__metadata__' is reserved and cannot name a tensor")
    if "\0" in name:
        raise InvalidArgumentError(f"tensor name {name!r} contains U+0000")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"tensor name {name!r} is not valid Unicode") from None
    return name


def _as_array(name: str, value: Any) -> tuple[np.ndarray, str]:
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    dt = arr.dtype
    if not dt.isnative and dt.itemsize > 1:
        # Big-endian input: the file is little-endian. This converts a copy; it is rare.
        dt = dt.newbyteorder("=")
        arr = arr.astype(dt)
    st = _safetensors_name(dt)
    if st is None:
        raise UnsupportedDtypeError(
            f"tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store",
            key=name,
        )
    return arr, st


def _meta_pairs(metadata: Mapping[str, str] | None) -> list[tuple[str, str]] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise ArgumentTypeError(f"metadata must be a mapping of str to str, got {type(metadata).__name__}")
    pairs = []
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ArgumentTypeError(
                f"metadata must map str to str; got {type(k).__name__} -> {type(v).__name__} "
                f"for key {k!r}"
            )
        if "\0" in k:
            raise InvalidArgumentError(f"metadata key {k!r} contains U+0000")
        pairs.append((k, v))
    return pairs


def _collect(tensors: Tensors) -> list[tuple[str, np.ndarray, str]]:
    items: list[tuple[str, np.ndarray, str]] = []
    seen: set[str] = set()
    for name, value in _pairs(tensors):
        name = _check_name(name)
        if name in seen:
            raise KeyCollisionError(f"two tensors are named {name!r}", key=name)
        seen.add(name)
        arr, st = _as_array(name, value)
        items.append((name, arr, st))
    return items


def save_safetensors(
    path: PathLike, tensors: Tensors, metadata: Mapping[str, str] | None = None
) -> None:
    """Writes ``tensors`` to ``path`` as a safetensors file, atomically.

    ``tensors`` is a mapping or an iterable of ``(name, array)`` pairs; arrays are numpy
    arrays (or anything ``numpy.asarray`` accepts) of a dtype listed in docs/io.md, with any
    strides: contiguous arrays are written straight from their buffer, others in bounded
    chunks, never through a full copy. ``metadata`` (str -> str) becomes ``__metadata__``;
    None writes none.

    The layout is the reference writer's: tensors by descending dtype then name (each
    aligned to its element size), header padded with spaces to a multiple of 8 bytes. The
    file is written to a hidden temporary sibling, fsynced, and renamed over ``path``: an
    error or a crash never leaves a partial file under ``path``, and readers that mapped an
    older file at ``path`` keep seeing it.

    Raises:
        KeyCollisionError: two tensors share a name.
        UnsupportedDtypeError: an array's dtype has no safetensors name.
        InvalidArgumentError / ArgumentTypeError: a bad name or metadata entry.
        MlxqIOError: the file cannot be written (nothing is left behind).
    """
    items = _collect(tensors)
    _core.st_save(os.fspath(path), items, _meta_pairs(metadata))


class SafetensorsWriter:
    """A safetensors file written tensor by tensor, in any order, committed atomically.

    Every tensor's name, dtype and shape are given up front, which fixes the header and so
    each tensor's place in the file; :meth:`put` then writes one tensor at its place, so a
    producer that computes tensors one at a time (the converter) never holds more than the
    one in hand. The layout is the one :func:`save_safetensors` writes for the same tensors,
    byte for byte. Nothing appears under ``path`` before :meth:`commit`; leaving the
    ``with`` block by an exception, or :meth:`abort`, removes the temporary file.

    >>> import numpy as np, mlxq, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> p = os.path.join(tmp.name, "w.safetensors")
    >>> with SafetensorsWriter(p, [("a", np.float32, (2,)), ("b", np.uint8, (3,))]) as w:
    ...     w.put("b", np.arange(3, dtype=np.uint8))
    ...     w.put("a", np.ones(2, np.float32))
    >>> sorted(mlxq.load_safetensors(p))
    ['a', 'b']
    >>> tmp.cleanup()
    """

    def __init__(self, path: PathLike, specs: Iterable[tuple[str, Any, Iterable[int]]],
                 metadata: Mapping[str, str] | None = None):
        self.path = os.fspath(path)
        entries = []
        self._specs: dict[str, tuple[int, np.dtype, tuple[int, ...]]] = {}
        for name, dtype, shape in specs:
            name = _check_name(name)
            if name in self._specs:
                raise KeyCollisionError(f"two tensors are named {name!r}", key=name)
            dt = np.dtype(dtype)
            st = _safetensors_name(dt.newbyteorder("=") if dt.itemsize > 1 else dt)
            if st is None:
                raise UnsupportedDtypeError(
                    f"tensor {name!r} has dtype {dt}, which safetensors cannot store", key=name)
            shape = tuple(int(n) for n in shape)
            self._specs[name] = (len(entries), dt.newbyteorder("="), shape)
            entries.append((name, st, shape))
        self._w = _core.StWriter(self.path, entries, _meta_pairs(metadata))
        self._pending = set(self._specs)

    @property
    def pending(self) -> frozenset[str]:
        """Names not yet written."""
        return frozenset(self._pending)

    def put(self, name: str, array: Any) -> None:
        """Writes tensor ``name``; ``array`` must have the declared dtype and shape (a
        non-contiguous array is copied to a contiguous one first)."""
        spec = self._specs.get(name)
        if spec is None:
            raise MissingKeyError(f"{self.path}: no tensor {name!r} was declared", key=name)
        index, dt, shape = spec
        arr = np.asarray(array)
        if arr.dtype != dt or arr.shape != shape:
            raise InvalidArgumentError(
                f"{self.path}: tensor {name!r} was declared {dt} {list(shape)}, got "
                f"{arr.dtype} {list(arr.shape)}", key=name)
        self._w.put(index, np.ascontiguousarray(arr))
        self._pending.discard(name)

    def put_part(self, name: str, offset: int, array: Any) -> None:
        """Writes ``array``'s bytes (the declared dtype, any shape) at byte ``offset`` of
        tensor ``name``: a tensor made in blocks. Parts must arrive in order."""
        spec = self._specs.get(name)
        if spec is None:
            raise MissingKeyError(f"{self.path}: no tensor {name!r} was declared", key=name)
        index, dt, _ = spec
        arr = np.asarray(array)
        if arr.dtype != dt:
            raise InvalidArgumentError(
                f"{self.path}: tensor {name!r} was declared {dt}, got a part of {arr.dtype}",
                key=name)
        self._w.put(index, np.ascontiguousarray(arr), int(offset))
        if offset + arr.nbytes >= dt.itemsize * int(np.prod(spec[2], dtype=np.int64)):
            self._pending.discard(name)

    def commit(self) -> None:
        """Checks every declared tensor was written, fsyncs, renames into place."""
        self._w.commit()

    def abort(self) -> None:
        """Removes the temporary file (a no-op after commit)."""
        self._w.abort()

    def __enter__(self) -> "SafetensorsWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# ---- checkpoint folders -----------------------------------------------------------------


def shard_file_names(n: int) -> list[str]:
    """mlx-lm's shard file names for ``n`` shards: ``model.safetensors`` alone, else
    ``model-00001-of-0000N.safetensors``, ..."""
    if n == 1:
        return ["model.safetensors"]
    return [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the files themselves are synced
    finally:
        os.close(fd)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _count_parameters(sizes: Mapping[str, int], quantization: Mapping[str, Any] | None) -> int:
    """mlx-lm's get_total_parameters, from tensor names and element counts.

    Without ``quantization`` every element counts. With it (the config's "quantization"
    block), a layer ``P`` that has ``P.scales`` and ``P.weight`` and is not switched off per
    layer counts ``P.weight``'s packed uint32 elements as ``size * 32 // bits`` plus
    ``P.bias``, and nothing else of ``P`` (scales, biases, global_scale), as mlx-lm does.
    """
    if not quantization:
        return sum(sizes.values())
    bits_of: dict[str, int] = {}
    for name in sizes:
        if name.endswith(".scales") and name[: -len(".scales")] + ".weight" in sizes:
            layer = name[: -len(".scales")]
            per_layer = quantization.get(layer)
            if per_layer is False:
                continue
            if isinstance(per_layer, Mapping) and "bits" in per_layer:
                bits_of[layer] = int(per_layer["bits"])
            elif "bits" in quantization:
                bits_of[layer] = int(quantization["bits"])
            else:
                raise InvalidArgumentError(f"quantization has no 'bits' for layer {layer!r}")
    total = 0
    for name, n in sizes.items():
        layer, _, leaf = name.rpartition(".")
        if layer in bits_of:
            if leaf == "weight":
                total += n * 32 // bits_of[layer]
            elif leaf == "bias":
                total += n
        else:
            total += n
    return total


def save_checkpoint(
    path: PathLike,
    tensors: Tensors,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
    metadata: Mapping[str, str] | None = MLX_METADATA,
    *,
    total_parameters: int | None = None,
    quantization: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes a checkpoint folder in mlx-lm's exact layout; returns the index written.

    Shards follow mlx-lm's ``make_shards``: tensors are taken in the order given and a new
    shard starts before the tensor that would push the current one past ``max_shard_size``
    bytes (a tensor larger than the limit gets a shard of its own). Files are
    ``model.safetensors`` when there is one shard, else ``model-0000i-of-0000N.safetensors``,
    each with ``metadata`` (mlx-lm's ``{"format": "mlx"}`` by default), plus
    ``model.safetensors.index.json``: ``{"metadata": {"total_size", "total_parameters"},
    "weight_map": {name: file}}`` with names sorted, ``json.dump(indent=4)`` as mlx-lm.

    ``tensors`` may be a lazy iterable of ``(name, array)`` pairs: each shard is written as
    soon as it is complete, so at most one shard's arrays (plus the one that closed it) are
    referenced at a time. ``total_parameters`` defaults to a count from the tensors (see
    :func:`_count_parameters`; pass the config's ``quantization`` block for quantized
    models, or the number itself). The folder is created if needed. Each file appears
    atomically under its final name; shards are written under hidden temporary names and
    renamed once their count is known, and the index is written last. On error the
    temporary shards are removed. Stale shards from an earlier save with a different count
    are left alone.
    """
    if not isinstance(max_shard_size, int) or max_shard_size <= 0:
        raise InvalidArgumentError(f"max_shard_size must be a positive int, got {max_shard_size!r}")
    meta = _meta_pairs(metadata)
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    written: list[tuple[Path, list[str]]] = []  # temporary shard path, its tensor names
    sizes: dict[str, int] = {}
    total_size = 0
    current: list[tuple[str, np.ndarray, str]] = []
    current_size = 0

    def flush() -> None:
        nonlocal current, current_size
        tmp = d / f".mlxq-{token}-{len(written) + 1:05d}.safetensors"
        written.append((tmp, [name for name, _, _ in current]))
        _core.st_save(os.fspath(tmp), current, meta)
        current = []
        current_size = 0

    try:
        started = False
        for name, value in _pairs(tensors):
            name = _check_name(name)
            if name in sizes:
                raise KeyCollisionError(f"two tensors are named {name!r}", key=name)
            arr, st = _as_array(name, value)
            sizes[name] = int(arr.size)
            total_size += arr.nbytes
            if not started or current_size + arr.nbytes > max_shard_size:
                if started:
                    flush()
                started = True
            current.append((name, arr, st))
            current_size += arr.nbytes
            del arr, value
        if started:
            flush()
        finals = shard_file_names(len(written))
        weight_map: dict[str, str] = {}
        for (tmp, names), final in zip(written, finals):
            os.replace(tmp, d / final)
            for name in names:
                weight_map[name] = final
        written = []
        _fsync_dir(d)
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise

    index = {
        "metadata": {
            "total_size": total_size,
            "total_parameters": (
                int(total_parameters)
                if total_parameters is not None
                else _count_parameters(sizes, quantization)
            ),
        },
        "weight_map": {k: weight_map[k] for k in sorted(weight_map)},
    }
    _write_text_atomic(d / INDEX_FILE, json.dumps(index, indent=4))
    return index


def load_checkpoint(path: PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint folder, as read-only arrays viewing the mapped files.

    The files are found by :func:`mlxq.shards.open_shards`, the rule every mlxq command
    shares: with ``model.safetensors.index.json`` its ``weight_map`` is the truth (every
    shard it names must exist and hold exactly the tensors mapped to it, and no
    ``model*.safetensors`` may be left out of it); without an index, every non-hidden
    ``*.safetensors`` file is read and no name may appear twice. Tensors come in sorted
    name order. Memory stays proportional to the headers.

    Raises:
        FormatError: files that disagree with the index, or a malformed index
            (SafetensorsError, a FormatError, for a malformed file).
        MlxqIOError: the folder or a file cannot be read or is not a regular file.
        MissingKeyError: no safetensors file; KeyCollisionError: a tensor in two files.
    """
    from .shards import open_shards

    d = Path(os.fspath(path))
    if not d.is_dir():
        raise MlxqIOError(f"{d}: not a directory" if d.exists() else f"{d}: does not exist")
    shards = open_shards(d, SafetensorsFile, pattern="*.safetensors")
    out = {name: f[name] for name, f in shards.where.items()}
    return {k: out[k] for k in sorted(out)}
