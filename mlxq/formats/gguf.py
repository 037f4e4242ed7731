"""llama.cpp's GGUF files: a strict header parser, tensors read a row block at a time, and
the block formats that MLX's layouts hold exactly.

A GGUF file is a header (magic ``GGUF``, version, tensor and metadata counts, the metadata
key/value pairs, one info record per tensor: name, ggml shape, ggml type, offset) followed
by an aligned data section. Every tensor's rows (ggml's ``ne[0]`` axis, the last axis of
the numpy shape) are runs of blocks of a fixed byte size: ``block_size`` elements in
``type_size`` bytes (``gguf.GGML_QUANT_SIZES``).

The header is untrusted input and is parsed here, not by ``gguf.GGUFReader`` (which maps
the file and trusts its counts): every count and length is checked against the bytes left
before anything is allocated, an unknown value or tensor type is an
:class:`~mlxq.errors.UnknownEnumValueError` naming the tensor (MLX's reader silently stops
at one, dropping every later tensor), and a tensor whose data lies past the end of the file
is a :class:`~mlxq.errors.FormatError`. The ``gguf`` package (an optional dependency,
``pip install 'mlxq[gguf]'``) supplies the format's own tables: the ggml types and their
block sizes, and the reference dequantizers (``gguf.quants``) for the types MLX cannot hold.

What MLX holds exactly (bit for bit what ``mx.load`` gives for the tensor):

====== ====================================== =========================================
ggml   block                                  MLX
====== ====================================== =========================================
Q4_0   f16 ``d``, 32 4-bit ``q``: (q-8)*d     affine 4-bit, group 32: scale d, bias -8*d
Q4_1   f16 ``d``, f16 ``m``, 32 4-bit ``q``   affine 4-bit, group 32: scale d, bias m
Q8_0   f16 ``d``, 32 int8 ``q``: q*d          affine 8-bit, group 32: scale d, bias -128*d
MXFP4  E8M0 ``e``, 32 E2M1 codes              mxfp4, group 32: scale e (``mx.load`` drops it)
====== ====================================== =========================================

The 4-bit codes of a ggml block are stored element ``j`` in the low nibble and element
``j + 16`` in the high nibble of byte ``j``; MLX packs elements in order, two per byte, low
nibble first, so the codes are reordered within the block (the values are not touched).

>>> import numpy as np
>>> d = np.array([0.5], np.float16).view(np.uint8)           # one Q4_0 block: d = 0.5,
>>> block = np.concatenate([d, np.arange(16, dtype=np.uint8) | 0x90])   # q_j = j, q_j+16 = 9
>>> wq, scales, biases = q4_0_to_mlx(block.reshape(1, 18))
>>> hex(int(wq[0, 0])), float(scales[0, 0]), float(biases[0, 0])
('0x76543210', 0.5, -4.0)
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Mapping, Optional, Sequence, Union

import numpy as np

from .._dtypes import bfloat16
from ..errors import (
    FormatError,
    MissingDependencyError,
    MlxqIOError,
    UnknownEnumValueError,
    UnsupportedFormatError,
)

__all__ = ["GGUF_MAGIC", "EXACT", "GgufHeader", "GgufTensor", "GgufFile", "detect",
           "read_header", "parse_header", "q4_0_to_mlx", "q4_1_to_mlx", "q8_0_to_mlx",
           "mxfp4_to_mlx", "to_mlx", "dequantize_rows", "type_name"]

if TYPE_CHECKING:
    from ..quant import Impl

PathLike = Union[str, "os.PathLike[str]"]

GGUF_MAGIC = b"GGUF"
_VERSIONS = (2, 3)
#: ggml's GGML_MAX_DIMS
_MAX_DIMS = 4
#: deepest nesting of metadata arrays accepted (llama.cpp writes one level)
_MAX_DEPTH = 4

# GGUF metadata value types: struct format of the scalars (bool is one byte)
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B",
           10: "<Q", 11: "<q", 12: "<d"}
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1",
          10: "<u8", 11: "<i8", 12: "<f8"}
_STRING, _ARRAY = 8, 9

#: ggml types read as plain numpy arrays
_PLAIN = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype(bfloat16),
          "F64": np.dtype("<f8"), "I8": np.dtype("i1"), "I16": np.dtype("<i2"),
          "I32": np.dtype("<i4"), "I64": np.dtype("<i8")}

#: ggml type name -> (bits, group size, MLX mode) of the exact MLX layout
EXACT: dict[str, tuple[int, int, str]] = {
    "Q4_0": (4, 32, "affine"), "Q4_1": (4, 32, "affine"), "Q8_0": (8, 32, "affine"),
    "MXFP4": (4, 32, "mxfp4"),
}


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise MissingDependencyError("reading GGUF files needs the gguf package: "
                                     "pip install 'mlxq[gguf]'") from None
    return gguf


def _types() -> dict[int, tuple[str, int, int]]:
    """ggml type id -> (name, block size, type size), from the gguf package's tables."""
    g = _gguf()
    return {int(t): (t.name, int(bs), int(ts)) for t, (bs, ts) in g.GGML_QUANT_SIZES.items()}


def type_name(ggml_type: int) -> str:
    """The ggml type's name (``"Q4_K"``)."""
    t = _types().get(int(ggml_type))
    return t[0] if t else f"type {ggml_type}"


# ---- the header ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GgufTensor:
    """One tensor's info record, checked against its file.

    Attributes:
        name: llama.cpp's name (``blk.0.attn_q.weight``).
        shape: the numpy shape (ggml's ``ne`` reversed: rows are the last axis).
        ggml_type: ggml's type id; ``type`` its name (``"Q4_0"``).
        block_size, type_size: elements per block and its bytes.
        offset: absolute byte offset of the data in ``path``; ``nbytes`` its length.
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    type: str
    block_size: int
    type_size: int
    offset: int
    nbytes: int
    path: str

    @property
    def ncols(self) -> int:
        return self.shape[-1]

    @property
    def nrows(self) -> int:
        n = 1
        for d in self.shape[:-1]:
            n *= d
        return n

    @property
    def row_bytes(self) -> int:
        return self.ncols // self.block_size * self.type_size


@dataclasses.dataclass(frozen=True)
class GgufHeader:
    """A parsed GGUF header: ``version``, ``metadata`` (key -> int, float, bool, str or list),
    ``tensors`` in file order, ``alignment``, the absolute ``data_offset``, the file's
    ``size`` and the header's length in bytes (``header_bytes``, what parsing it read)."""

    version: int
    metadata: dict[str, Any]
    tensors: tuple[GgufTensor, ...]
    alignment: int
    data_offset: int
    size: int
    header_bytes: int = 0


_U64 = struct.Struct("<Q")


class _Cursor:
    """Sequential reads from a file object of known size, through a buffer of about
    :attr:`CHUNK` bytes; nothing is read or allocated for a length that the bytes left
    cannot hold. :attr:`pos` is the bytes consumed."""

    CHUNK = 1 << 20

    def __init__(self, f: BinaryIO, size: int, where: str):
        self.f, self.size, self.where = f, size, where
        self.buf, self.off, self.base = b"", 0, 0

    @property
    def pos(self) -> int:
        return self.base + self.off

    def fail(self, msg: str) -> FormatError:
        return FormatError(f"{self.where}: {msg} (at byte {self.pos})")

    @property
    def left(self) -> int:
        return self.size - self.pos

    def _fill(self, n: int, what: str) -> None:
        """At least ``n`` (<= :attr:`left`) bytes in the buffer from :attr:`off`."""
        have = len(self.buf) - self.off
        if have >= n:
            return
        want = min(max(n - have, self.CHUNK), self.size - self.base - len(self.buf))
        parts = []
        got = 0
        while got < n - have:  # (a raw file may return less than asked)
            b = self.f.read(want - got)
            if not b:
                break
            parts.append(b)
            got += len(b)
        more = b"".join(parts)
        if len(more) < n - have:
            raise self.fail(f"truncated: {what} needs {n} bytes, the file ended (it shrank "
                            "while being read?)")
        self.buf = self.buf[self.off:] + more
        self.base += self.off
        self.off = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.left:
            raise self.fail(f"truncated: {what} needs {n} bytes, {self.left} left")
        self._fill(n, what)
        b = self.buf[self.off:self.off + n]
        self.off += n
        return b

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def count(self, fmt: str, what: str, min_item: int) -> int:
        """A count, refused when that many items of at least ``min_item`` bytes cannot fit
        in the bytes left."""
        (n,) = self.unpack(fmt, what)
        if n * min_item > self.left:
            raise self.fail(f"{what} {n} is impossible with {self.left} bytes left")
        return n

    def text(self, what: str) -> str:
        n = self.count("<Q", f"{what}'s length", 1)
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.fail(f"{what} is not UTF-8: {e.reason} at byte {e.start}") from None

    def texts(self, n: int, what: str) -> list[str]:
        """``n`` strings (a vocabulary: the loop :meth:`text` would make, with the buffer
        walked in place while it holds whole items)."""
        out: list[str] = []
        unpack = _U64.unpack_from
        append = out.append
        i = 0
        while i < n:
            buf, off = self.buf, self.off
            end = len(buf)
            try:
                while i < n and off + 8 <= end:
                    (k,) = unpack(buf, off)
                    if off + 8 + k > end:
                        break
                    append(buf[off + 8:off + 8 + k].decode("utf-8"))
                    off += 8 + k
                    i += 1
            except UnicodeDecodeError as e:
                self.off = off + 8
                raise self.fail(f"{what}[{i}] is not UTF-8: {e.reason} at byte "
                                f"{e.start}") from None
            self.off = off
            if i < n:  # the next item crosses the buffer's end: read on
                if self.left < 8:
                    raise self.fail(f"truncated: {what}[{i}]'s length needs 8 bytes, "
                                    f"{self.left} left")
                self._fill(8, what)
                (k,) = unpack(self.buf, self.off)
                if k > self.left - 8:
                    raise self.fail(f"truncated: {what}[{i}] needs {k} bytes, "
                                    f"{self.left - 8} left")
                self._fill(8 + k, what)
        return out


def _value(c: _Cursor, vtype: int, what: str, depth: int = 0) -> Any:
    if vtype == _STRING:
        return c.text(what)
    if vtype == _ARRAY:
        if depth >= _MAX_DEPTH:
            raise c.fail(f"{what}: arrays nested deeper than {_MAX_DEPTH}")
        (etype,) = c.unpack("<I", f"{what}'s element type")
        if etype not in _SCALAR and etype not in (_STRING, _ARRAY):
            raise UnknownEnumValueError(f"{c.where}: {what} is an array of unknown value type "
                                        f"{etype} (known: 0-12)", key=what)
        if etype in _SCALAR:
            dt = np.dtype(_NUMPY[etype])
            n = c.count("<Q", f"{what}'s length", dt.itemsize)
            arr = np.frombuffer(c.take(n * dt.itemsize, what), dt)
            if etype == 7:
                return [bool(v) for v in arr.tolist()]
            return arr.tolist()
        n = c.count("<Q", f"{what}'s length", 8 if etype == _STRING else 12)
        if etype == _STRING:
            return c.texts(n, what)
        return [_value(c, etype, what, depth + 1) for _ in range(n)]
    fmt = _SCALAR.get(vtype)
    if fmt is None:
        raise UnknownEnumValueError(f"{c.where}: {what} has unknown value type {vtype} "
                                    "(known: 0-12)", key=what)
    (v,) = c.unpack(fmt, what)
    return bool(v) if vtype == 7 else v


def parse_header(f: BinaryIO, size: int, where: str = "<gguf>") -> GgufHeader:
    """Parses and checks the header of a GGUF file of ``size`` bytes read from ``f``
    (positioned at its start). Raises FormatError (truncated, wrong magic or version,
    impossible counts, duplicate names, misaligned or out-of-file tensor data, rows that
    are not whole blocks), UnknownEnumValueError (a value or tensor type the ``gguf``
    package does not know), MissingDependencyError (no ``gguf`` package)."""
    types = _types()
    c = _Cursor(f, size, where)
    magic = c.take(4, "magic") if size >= 4 else c.take(4, "the magic GGUF")
    if magic != GGUF_MAGIC:
        raise FormatError(f"{where}: not a GGUF file (starts with {magic!r}, not b'GGUF')")
    (version,) = c.unpack("<I", "version")
    if version not in _VERSIONS:
        what = " (a big-endian file?)" if version > 0xFFFF else ""
        raise FormatError(f"{where}: GGUF version {version}{what}; mlxq reads versions 2 "
                          "and 3 (little-endian)")
    n_tensors = c.count("<Q", "tensor count", 8 + 4 + 8 + 4 + 8)
    n_kv = c.count("<Q", "metadata count", 8 + 4 + 1)
    metadata: dict[str, Any] = {}
    for i in range(n_kv):
        key = c.text(f"metadata key {i}")
        (vtype,) = c.unpack("<I", f"metadata {key!r}'s type")
        if key in metadata:
            raise FormatError(f"{where}: metadata key {key!r} appears twice", key=key)
        metadata[key] = _value(c, vtype, f"metadata {key!r}")
    align = metadata.get("general.alignment", 32)
    if type(align) is not int or align < 1 or align & (align - 1):
        raise FormatError(f"{where}: general.alignment {align!r} is not a power of two",
                          key="general.alignment")
    raw = []
    names: set[str] = set()
    for i in range(n_tensors):
        name = c.text(f"tensor {i}'s name")
        if name in names:
            raise FormatError(f"{where}: tensor {name!r} appears twice", key=name)
        names.add(name)
        n_dims = c.count("<I", f"tensor {name!r}'s rank", 8)
        if not 1 <= n_dims <= _MAX_DIMS:
            raise FormatError(f"{where}: tensor {name!r} has rank {n_dims} (ggml allows 1 to "
                              f"{_MAX_DIMS})", key=name)
        dims = c.unpack(f"<{n_dims}Q", f"tensor {name!r}'s shape")
        ttype, offset = c.unpack("<IQ", f"tensor {name!r}'s type and offset")
        raw.append((name, dims, ttype, offset))
    data_offset = -(-c.pos // align) * align
    if data_offset > size and n_tensors:
        raise FormatError(f"{where}: truncated: the data section would start at byte "
                          f"{data_offset}, past the end of the file ({size} bytes)")
    tensors = []
    for name, dims, ttype, offset in raw:
        t = types.get(ttype)
        if t is None:
            raise UnknownEnumValueError(
                f"{where}: tensor {name!r} has ggml type {ttype}, which the installed gguf "
                "package does not know (a newer llama.cpp type? upgrade gguf)", key=name)
        tname, bs, ts = t
        if any(d < 1 for d in dims):
            raise FormatError(f"{where}: tensor {name!r} has an empty axis ({list(dims)})",
                              key=name)
        if dims[0] % bs:
            raise FormatError(f"{where}: tensor {name!r}: rows of {dims[0]} elements are not "
                              f"whole {tname} blocks of {bs}", key=name)
        n_rows = 1
        for d in dims[1:]:
            n_rows *= d
        nbytes = dims[0] // bs * ts * n_rows
        if offset % align:
            raise FormatError(f"{where}: tensor {name!r}'s offset {offset} is not a multiple "
                              f"of the alignment {align}", key=name)
        begin = data_offset + offset
        if begin + nbytes > size:
            raise FormatError(f"{where}: tensor {name!r}'s data [{begin}, {begin + nbytes}) "
                              f"lies past the end of the file ({size} bytes): truncated?",
                              key=name)
        tensors.append(GgufTensor(name, tuple(int(d) for d in reversed(dims)), ttype, tname,
                                  bs, ts, begin, nbytes, where))
    spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in tensors)
    for (b0, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise FormatError(f"{where}: tensors {n0!r} and {n1!r} overlap in the file", key=n1)
    return GgufHeader(version, metadata, tuple(tensors), align, data_offset, size, c.pos)


def read_header(path: PathLike) -> GgufHeader:
    """The checked header of the GGUF file at ``path`` (see :func:`parse_header`)."""
    from .._files import open_regular

    p = os.fspath(path)
    fd = open_regular(p)
    try:
        size = os.fstat(fd).st_size
        with io.FileIO(fd, "rb", closefd=False) as f:  # (the parser buffers)
            return parse_header(f, size, p)
    finally:
        os.close(fd)


def detect(path: PathLike) -> bool:
    """Whether ``path`` is a regular file starting with GGUF's magic (nothing else read)."""
    try:
        with open(path, "rb") as f:
            return os.path.isfile(path) and f.read(4) == GGUF_MAGIC
    except OSError:
        return False


# ---- files and split sets -------------------------------------------------------------------

def split_paths(first: Path, header: GgufHeader) -> list[Path]:
    """The files of a split set (``-00001-of-00003.gguf`` style), from the first file's
    ``split.count``; one path for a single file."""
    count = header.metadata.get("split.count")
    if count is None:
        return [first]
    if type(count) is not int or count < 1 or count > 9999:
        raise FormatError(f"{first}: split.count {count!r} is not a count of files",
                          key="split.count")
    name = first.name
    marker = f"-00001-of-{count:05d}.gguf"
    if not name.endswith(marker):
        raise FormatError(f"{first}: split.count says {count} files, but the name does not end "
                          f"in {marker!r} (give the first file of the set)", key="split.count")
    stem = name[: -len(marker)]
    return [first.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


class GgufFile:
    """A GGUF model, one file or a split set, opened for reading row blocks.

    Attributes:
        path: the (first) file; ``files`` all of them.
        metadata: the first file's metadata (the model's).
        tensors: every tensor by name, across the set.
    """

    def __init__(self, path: PathLike):
        from .._files import open_regular

        self.path = Path(os.fspath(path))
        first = read_header(self.path)
        self.files = split_paths(self.path, first)
        self.metadata = dict(first.metadata)
        self._fds: dict[str, int] = {}
        #: bytes read from the files so far: their headers and the tensor data read
        self.bytes_read = first.header_bytes
        self._scratch = np.empty(0, np.uint8)
        self.tensors: dict[str, GgufTensor] = {}
        try:
            headers = [first] + [read_header(p) for p in self.files[1:]]
            self.bytes_read += sum(h.header_bytes for h in headers[1:])
            for i, (p, h) in enumerate(zip(self.files, headers)):
                if len(self.files) > 1:
                    no = h.metadata.get("split.no")
                    if no != i:
                        raise FormatError(f"{p}: split.no is {no!r}, expected {i} (files of "
                                          "different sets, or renamed?)", key="split.no")
                for t in h.tensors:
                    if t.name in self.tensors:
                        raise FormatError(f"{p}: tensor {t.name!r} is also in "
                                          f"{self.tensors[t.name].path}", key=t.name)
                    self.tensors[t.name] = t
                self._fds[str(p)] = open_regular(p)
            total = self.metadata.get("split.tensors.count")
            if total is not None and total != len(self.tensors):
                raise FormatError(f"{self.path}: split.tensors.count is {total!r} but the "
                                  f"{len(self.files)} files hold {len(self.tensors)} tensors",
                                  key="split.tensors.count")
        except BaseException:
            self.close()
            raise

    def read_raw(self, name: str, r0: int, r1: int, scratch: bool = False) -> np.ndarray:
        """Rows ``r0:r1`` of tensor ``name`` as their bytes: uint8 ``[r1 - r0, row_bytes]``
        (one ``pread``, counted in :attr:`bytes_read`). With ``scratch``, into a buffer the
        next scratch read reuses (for bytes converted at once; no page faults on a new
        array for every block)."""
        t = self.tensors[name]
        n = (r1 - r0) * t.row_bytes
        if scratch:
            if self._scratch.size < n:
                self._scratch = np.empty(n, np.uint8)
            out = self._scratch[:n].reshape(r1 - r0, t.row_bytes)
        else:
            out = np.empty((r1 - r0, t.row_bytes), np.uint8)
        fd = self._fds[t.path]
        view = memoryview(out).cast("B")
        off, pos = t.offset + r0 * t.row_bytes, 0
        while pos < len(view):
            try:
                got = os.preadv(fd, [view[pos:pos + (1 << 30)]], off + pos)
            except OSError as e:
                raise MlxqIOError(f"{t.path}: cannot read {name!r}: {e.strerror}") from None
            if got == 0:
                raise FormatError(f"{t.path}: the file shrank while reading {name!r}", key=name)
            pos += got
            self.bytes_read += got
        return out

    def _read_converted(self, fn: Any, name: str, r0: int, r1: int, impl: "Impl",
                        *extra: Any) -> Any:
        from ..quant import _impl_code

        t = self.tensors[name]
        try:
            *out, got = fn(t.ggml_type, self._fds[t.path], t.offset + r0 * t.row_bytes, r1 - r0,
                           t.row_bytes, _impl_code(impl), *extra)
        except (MlxqIOError, FormatError) as e:
            raise type(e)(f"{t.path}: tensor {name!r}: {e.message}", key=name) from None
        self.bytes_read += got
        return out

    def read_to_mlx(self, name: str, r0: int, r1: int, impl: "Impl" = "fast"
                    ) -> tuple[np.ndarray, ...]:
        """Rows ``r0:r1`` of a tensor of an :data:`EXACT` type as MLX's arrays (see
        :func:`to_mlx`), read and converted in one pass by C threads (src/gguf_read.c)."""
        wq, scales, biases = self._read_converted(_core_fn("gguf_read_to_mlx"), name, r0, r1,
                                                  impl)
        return (wq, scales) if biases is None else (wq, scales, biases)

    def read_dequantized(self, name: str, r0: int, r1: int, impl: "Impl" = "fast",
                         dtype: Any = np.float32) -> np.ndarray:
        """Rows ``r0:r1`` of a tensor of a block type the C module dequantizes (see
        :func:`dequantize_rows`, ``dtype`` likewise), read and converted in one pass."""
        dt, code = _dense_code(dtype)
        out = self._read_converted(_core_fn("gguf_read_dequant"), name, r0, r1, impl, code)
        return _as_dense(out[0], dt)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}
        self._scratch = np.empty(0, np.uint8)

    def __enter__(self) -> "GgufFile":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


# ---- blocks -> MLX -------------------------------------------------------------------------

def _core_fn(name: str) -> Any:
    from .. import _core

    return getattr(_core, name)


def c_dequantizes(ggml_type: int) -> bool:
    """Whether the C module dequantizes this ggml type (Q4_0..Q8_0, Q2_K..Q6_K, MXFP4)."""
    return _core_fn("gguf_block")(ggml_type)[0] > 0


#: ggml type ids of the :data:`EXACT` types (ggml.h's enum ggml_type)
_IDS = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 8, "MXFP4": 39}


def _rows_arg(rows: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if rows is None else np.ascontiguousarray(rows, np.int64)


def to_mlx(raw: np.ndarray, type_: str, rows: Optional[np.ndarray] = None,
           impl: "Impl" = "fast") -> tuple[np.ndarray, ...]:
    """Rows of an :data:`EXACT` type (uint8 ``[n, row_bytes]``) as MLX's arrays: ``(wq,
    scales, biases)``, or ``(wq, scales)`` for MXFP4 (src/mlxq_gguf.h). With ``rows``
    (int64), output row ``i`` is made from ``raw[rows[i]]``, in the same pass.

    Raises FormatError for an MXFP4 block whose exponent is 255 (NaN in MLX's E8M0, 2^127
    in ggml's: no exact MLX layout)."""
    from .. import _core
    from ..quant import _impl_code

    out = _core.gguf_to_mlx(_IDS[type_], np.ascontiguousarray(raw, np.uint8), _rows_arg(rows),
                            _impl_code(impl))
    return out if out[2] is not None else out[:2]


def q4_0_to_mlx(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q4_0 rows (uint8 ``[rows, nb * 18]``) -> MLX affine 4-bit group 32: ``(wq uint32
    [rows, nb * 4], scales float16 [rows, nb], biases float16 [rows, nb])`` with scale ``d``
    and bias ``-8 * d`` (MLX's ``extract_q4_0_data``)."""
    return to_mlx(raw, "Q4_0")  # type: ignore[return-value]


def q4_1_to_mlx(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q4_1 rows (``nb * 20`` bytes) -> MLX affine 4-bit group 32, scale ``d``, bias ``m``
    (MLX's ``extract_q4_1_data``)."""
    return to_mlx(raw, "Q4_1")  # type: ignore[return-value]


def q8_0_to_mlx(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q8_0 rows (``nb * 34`` bytes) -> MLX affine 8-bit group 32: codes ``q + 128`` (the
    sign bit flipped), scale ``d``, bias ``-128 * d`` (MLX's ``extract_q8_0_data``)."""
    return to_mlx(raw, "Q8_0")  # type: ignore[return-value]


def mxfp4_to_mlx(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MXFP4 rows (``nb * 17`` bytes: E8M0 exponent, 16 bytes of E2M1 codes) -> MLX mxfp4
    group 32: ``(wq uint32 [rows, nb * 4], scales uint8 [rows, nb])``. ggml's value is
    ``kvalues[q] * 2^(e - 128)`` with kvalues the E2M1 values doubled, i.e. E2M1(q) *
    2^(e - 127): MLX's with the same code and exponent."""
    return to_mlx(raw, "MXFP4")  # type: ignore[return-value]


def exact_in_mlx(t: GgufTensor, raw: Optional[np.ndarray] = None) -> bool:
    """Whether the tensor's type has an exact MLX layout (MXFP4 blocks with exponent 255,
    NaN in MLX but 2^127 in ggml, have none; pass the rows to check them)."""
    if t.type not in EXACT:
        return False
    if t.type == "MXFP4" and raw is not None:
        return not (raw.reshape(raw.shape[0], -1, 17)[..., 0] == 255).any()
    return True


def plain_dtype(type_: str) -> Optional[np.dtype]:
    """The numpy dtype of an unquantized ggml type (None for block formats)."""
    return _PLAIN.get(type_)


def _dense_code(dtype: Any) -> tuple[np.dtype, int]:
    from .._dtypes import code_of

    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float16), np.dtype(bfloat16)):
        raise UnsupportedFormatError(f"dequantized GGUF rows are float32, float16 or "
                                     f"bfloat16, not {dt}")
    return dt, code_of(dt, "dtype")


def _as_dense(out: np.ndarray, dt: np.dtype) -> np.ndarray:
    return out if out.dtype == dt else out.view(dt)


def dequantize_rows(raw: np.ndarray, t: GgufTensor, rows: Optional[np.ndarray] = None,
                    impl: "Impl" = "fast", dtype: Any = np.float32) -> np.ndarray:
    """Rows of any ggml type as float32 ``[n, ncols]`` (output row ``i`` from ``raw[rows[i]]``
    when ``rows`` is given): plain types converted; Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K
    and MXFP4 in C (src/mlxq_gguf.h), bit for bit what the ``gguf`` package's reference
    dequantizers give; the other block types through those (``gguf.quants.dequantize``).
    ``dtype`` float16 or bfloat16: those values rounded as MLX's ``astype`` rounds them (in
    the same pass, for the types done in C)."""
    dt, code = _dense_code(dtype)
    plain = _PLAIN.get(t.type)
    if plain is not None:
        a = raw.view(plain) if rows is None else raw.view(plain)[rows]
        return _cast(a.astype(np.float32), dt)
    from .. import _core
    from ..quant import _impl_code

    kind, _, _ = _core.gguf_block(t.ggml_type)
    if kind:
        return _as_dense(_core.gguf_dequant(t.ggml_type, np.ascontiguousarray(raw, np.uint8),
                                            _rows_arg(rows), _impl_code(impl), code), dt)
    return _cast(_gguf_dequantize(raw, t, rows), dt)


def _cast(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    if dt == np.dtype(np.float32):
        return a
    from ..quant import astype

    return astype(np.ascontiguousarray(a), dt)


def _gguf_dequantize(raw: np.ndarray, t: GgufTensor, rows: Optional[np.ndarray]
                     ) -> np.ndarray:
    g = _gguf()
    if rows is not None:
        raw = raw[rows]
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            out = g.quants.dequantize(raw, g.GGMLQuantizationType(t.ggml_type))
    except NotImplementedError:
        raise UnknownEnumValueError(f"{t.path}: tensor {t.name!r} is {t.type}, which the "
                                    "installed gguf package cannot dequantize", key=t.name)
    return np.ascontiguousarray(out, np.float32).reshape(raw.shape[0], t.ncols)


def metadata_text(metadata: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``key=value`` of the keys present (for messages)."""
    return ", ".join(f"{k}={metadata[k]!r}" for k in keys if k in metadata)
