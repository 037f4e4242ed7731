"""Lazy tensors: what a family's ``sanitize`` is written against.

mlx-lm's ``Model.sanitize(weights)`` takes the checkpoint's arrays and returns the model's,
using a handful of MLX operations (stack, split, slicing, reshape, transposes, astype,
view, pad, elementwise arithmetic, dequantize). A port to mlxq is written the same way,
against :class:`Tensor` objects that only *record* those operations: nothing is read when
sanitize runs. The converter then evaluates one output at a time, from ``pread`` sources,
in blocks of rows wherever the operation allows — a stacked expert tensor is read one
expert at a time, a cast or a scale one row block at a time — so memory stays bounded by
about two source tensors, whatever the model's size.

Rows: every tensor is also seen as a matrix ``[rows, cols]``, all axes but the last
flattened (``cols = shape[-1]``; a 0-d or 1-d tensor is one row). :meth:`Tensor.rows` gives
rows ``r0:r1`` of that matrix; :meth:`Tensor.numpy` the whole array. Operations that map
output rows to input rows (slicing leading axes, stacking, concatenating, transposing
leading axes, reshapes, elementwise arithmetic, casts, dequantization) compute only what
is asked; the others (a transpose that moves the last axis, say) evaluate their inputs
whole and say so in :attr:`Tensor.streams`.

Arithmetic follows MLX, not numpy: dtype promotion is MLX's (a Python scalar takes the
array's dtype; float16 with bfloat16 gives float32; an integer array with a Python float
gives float32), a half-precision result is computed in float32 and rounded once with MLX's
own cast (:func:`mlxq.astype`), and ``astype`` between floats is MLX's, NaN patterns
included.

>>> import numpy as np
>>> a = constant(np.arange(12, dtype=np.float32).reshape(3, 4))
>>> b = stack([a, a * 2.0])          # recorded, not computed
>>> b.shape, b.rows(3, 5).tolist()
((2, 3, 4), [[0.0, 2.0, 4.0, 6.0], [8.0, 10.0, 12.0, 14.0]])
>>> split(b, 2, axis=2)[1].numpy()[1, 0].tolist()
[4.0, 6.0]
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np

from .. import _dtypes
from ..errors import FormatError, InvalidArgumentError, ShapeMismatchError
from ..tensorspec import TensorSpec

__all__ = ["Tensor", "Source", "constant", "stack", "concatenate", "split", "pad",
           "contiguous", "dequantize", "quantize", "fp8_block_dequant", "where_scalar",
           "split_cast", "cast_rows", "materialize", "row_wise", "norm", "checked"]

Scalar = Union[int, float, bool]


def _prod(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _rows_of(shape: Sequence[int]) -> int:
    return _prod(shape[:-1]) if len(shape) >= 1 else 1


def _cols_of(shape: Sequence[int]) -> int:
    return int(shape[-1]) if len(shape) >= 1 else 1


def _is_float(dt: np.dtype) -> bool:
    return dt in _dtypes.FLOAT_DTYPES


def _astype(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    """MLX's astype: exact float casts through mlxq's kernels, numpy's for the rest."""
    dt = np.dtype(dt)
    if a.dtype == dt:
        return a
    if _is_float(a.dtype) and _is_float(dt):
        from ..quant import astype

        return astype(np.ascontiguousarray(a), dt)
    if _is_float(a.dtype):  # float -> int truncates toward zero, as MLX's static_cast
        with np.errstate(invalid="ignore", over="ignore"):
            wide = a.astype(np.float64) if a.dtype == _dtypes.bfloat16 else a
            return wide.astype(dt)
    if _is_float(dt) and dt in (_dtypes.bfloat16, np.dtype(np.float16)):
        return _astype(a.astype(np.float32), dt)
    return a.astype(dt)


def _promote(a: np.dtype, b: Union[np.dtype, Scalar]) -> np.dtype:
    """MLX's result dtype of ``a op b`` (``b`` a dtype, or a Python scalar: weakly typed)."""
    if isinstance(b, (bool, np.bool_)):
        return a
    if isinstance(b, numbers.Integral):
        return np.dtype(np.int32) if a == np.dtype(np.bool_) else a
    if isinstance(b, numbers.Real):
        return a if _is_float(a) else np.dtype(np.float32)
    b = np.dtype(b)
    if a == b:
        return a
    fa, fb = _is_float(a), _is_float(b)
    if fa and fb:
        return np.dtype(np.float64) if np.dtype(np.float64) in (a, b) else np.dtype(np.float32)
    if fa:
        return a
    if fb:
        return b
    return np.promote_types(a, b)


_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
}


class Tensor:
    """A lazy tensor: a shape, a dtype and how to compute it. Mirrors the part of
    ``mx.array`` that sanitize functions use; every operation returns a new Tensor."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: Sequence[int], dtype: Any):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    # ---- what is known without computing ---------------------------------------------

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return _prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def nrows(self) -> int:
        return _rows_of(self.shape)

    @property
    def ncols(self) -> int:
        return _cols_of(self.shape)

    @property
    def spec(self) -> TensorSpec:
        return TensorSpec(self.shape, self.dtype)

    def inputs(self) -> tuple["Tensor", ...]:
        return ()

    @property
    def streams(self) -> bool:
        """Whether :meth:`rows` reads only what the rows need (recursively)."""
        return all(t.streams for t in self.inputs())

    def sources(self) -> set["Source"]:
        """The checkpoint tensors this one is computed from."""
        out: set[Source] = set()
        stack_ = [self]
        seen: set[int] = set()
        while stack_:
            t = stack_.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            if isinstance(t, Source):
                out.add(t)
            stack_.extend(t.inputs())
        return out

    # ---- computing -------------------------------------------------------------------

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of the ``[rows, cols]`` view, as a new C-contiguous array."""
        if not 0 <= r0 <= r1 <= self.nrows:
            raise InvalidArgumentError(f"rows {r0}:{r1} outside a tensor of {self.nrows} rows")
        out = self._rows(r0, r1)
        assert out.shape == (r1 - r0, self.ncols) and out.dtype == self.dtype, (
            type(self).__name__, out.shape, out.dtype, (r1 - r0, self.ncols), self.dtype)
        return out

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        return self._whole().reshape(self.nrows, self.ncols)[r0:r1].copy()

    def _whole(self) -> np.ndarray:
        """The whole array (subclasses that cannot stream compute this)."""
        return self._rows(0, self.nrows).reshape(self.shape)

    def numpy(self) -> np.ndarray:
        return self.rows(0, self.nrows).reshape(self.shape)

    # ---- mx.array's methods ------------------------------------------------------------

    def astype(self, dtype: Any) -> "Tensor":
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else _Cast(self, dtype)

    def view(self, dtype: Any) -> "Tensor":
        return _View(self, np.dtype(dtype))

    def reshape(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _Reshape(self, _infer_shape(shape, self.size))

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> "Tensor":
        s, e = _axis(start_axis, self.ndim), _axis(end_axis, self.ndim)
        return self.reshape(self.shape[:s] + (_prod(self.shape[s:e + 1]),) + self.shape[e + 1:])

    def squeeze(self, axis: Optional[int] = None) -> "Tensor":
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        a = _axis(axis, self.ndim)
        if self.shape[a] != 1:
            raise ShapeMismatchError(f"cannot squeeze axis {axis} of shape {self.shape}")
        return self.reshape(self.shape[:a] + self.shape[a + 1:])

    def expand_dims(self, axis: int) -> "Tensor":
        a = _axis(axis, self.ndim + 1)
        return self.reshape(self.shape[:a] + (1,) + self.shape[a:])

    def transpose(self, *axes: Any) -> "Tensor":
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        perm = tuple(_axis(a, self.ndim) for a in axes) if axes else tuple(
            reversed(range(self.ndim)))
        if sorted(perm) != list(range(self.ndim)):
            raise InvalidArgumentError(f"transpose axes {axes} do not permute {self.ndim} axes")
        return self if perm == tuple(range(self.ndim)) else _Permute(self, perm)

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def swapaxes(self, a: int, b: int) -> "Tensor":
        perm = list(range(self.ndim))
        a, b = _axis(a, self.ndim), _axis(b, self.ndim)
        perm[a], perm[b] = perm[b], perm[a]
        return self.transpose(perm)

    def moveaxis(self, source: int, destination: int) -> "Tensor":
        perm = list(range(self.ndim))
        s = perm.pop(_axis(source, self.ndim))
        perm.insert(_axis(destination, self.ndim), s)
        return self.transpose(perm)

    def __getitem__(self, key: Any) -> "Tensor":
        return _index(self, key)

    def split(self, indices_or_sections: Any, axis: int = 0) -> list["Tensor"]:
        return split(self, indices_or_sections, axis)

    def _binary(self, op: str, other: Any, reverse: bool = False) -> "Tensor":
        if isinstance(other, np.ndarray):
            other = constant(other)
        if not isinstance(other, (Tensor, numbers.Number)):
            return NotImplemented  # type: ignore[return-value]
        return _Binary(op, other, self) if reverse else _Binary(op, self, other)

    def __add__(self, o: Any) -> "Tensor":
        return self._binary("add", o)

    def __radd__(self, o: Any) -> "Tensor":
        return self._binary("add", o, True)

    def __sub__(self, o: Any) -> "Tensor":
        return self._binary("sub", o)

    def __rsub__(self, o: Any) -> "Tensor":
        return self._binary("sub", o, True)

    def __mul__(self, o: Any) -> "Tensor":
        return self._binary("mul", o)

    def __rmul__(self, o: Any) -> "Tensor":
        return self._binary("mul", o, True)

    def __truediv__(self, o: Any) -> "Tensor":
        return self._binary("div", o)

    def __neg__(self) -> "Tensor":
        return _Binary("mul", self, -1)

    def __repr__(self) -> str:
        return f"{type(self).__name__.lstrip('_')}({list(self.shape)}, {self.dtype})"


def _axis(a: int, ndim: int) -> int:
    if not -ndim <= a < ndim:
        raise InvalidArgumentError(f"axis {a} is out of range for {ndim} dimensions")
    return a % ndim


def _infer_shape(shape: Sequence[int], size: int) -> tuple[int, ...]:
    shape = [int(n) for n in shape]
    if shape.count(-1) > 1:
        raise InvalidArgumentError(f"reshape {shape}: only one dimension can be -1")
    if -1 in shape:
        known = _prod([n for n in shape if n != -1])
        if known == 0 or size % known:
            raise ShapeMismatchError(f"cannot reshape {size} elements into {shape}")
        shape[shape.index(-1)] = size // known
    if _prod(shape) != size:
        raise ShapeMismatchError(f"cannot reshape {size} elements into {tuple(shape)}")
    return tuple(shape)


# ---- leaves ------------------------------------------------------------------------------

class Source(Tensor):
    """A tensor of a checkpoint file, read with ``pread`` when (and as far as) needed.

    The reader fills a new array (``read_rows(name, r0, out)``), or, when it makes its
    blocks itself (a GGUF's converted in C), hands them over (``rows(name, r0, r1)``: a
    C-contiguous ``[r1 - r0, cols]`` array it will not modify), which saves a copy."""

    __slots__ = ("reader", "name", "file")

    def __init__(self, reader: Any, name: str):
        info = reader.info(name)
        super().__init__(info.shape, reader.dtype(name))
        self.reader, self.name, self.file = reader, name, reader.path

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        if r1 > r0 and self.ncols and hasattr(self.reader, "rows"):
            return self.reader.rows(self.name, r0, r1)
        out = np.empty((r1 - r0, self.ncols), self.dtype)
        if r1 > r0 and self.ncols:
            self.reader.read_rows(self.name, r0, out)
        return out

    def __repr__(self) -> str:
        return f"Source({self.name!r}, {list(self.shape)}, {self.dtype})"


class _Const(Tensor):
    __slots__ = ("value",)

    def __init__(self, value: np.ndarray):
        super().__init__(value.shape, value.dtype)
        self.value = value

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        return np.ascontiguousarray(self.value.reshape(self.nrows, self.ncols)[r0:r1])


def constant(value: Any) -> Tensor:
    """A tensor holding ``value`` (an array or a Python scalar, as ``mx.array`` makes)."""
    arr = np.asarray(value)
    if arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.float32)  # mx.array(1.5) is float32
    if arr.dtype == np.int64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.int32)
    return _Const(np.array(arr))


# ---- row mapping -------------------------------------------------------------------------

def _gather(parts: Sequence[Tensor], which: np.ndarray, rows: np.ndarray, cols: int,
            dtype: np.dtype) -> np.ndarray:
    """Output rows taken from ``parts[which[i]]`` row ``rows[i]``, reading runs of
    consecutive rows of one part at once."""
    n = len(rows)
    brk = np.flatnonzero((np.diff(which) != 0) | (np.diff(rows) != 1)) + 1 if n else []
    if n and len(brk) == 0:  # one run (a block inside one expert): no second buffer
        return parts[int(which[0])].rows(int(rows[0]), int(rows[0]) + n)
    out = np.empty((n, cols), dtype)
    if n:
        starts = np.concatenate([[0], brk])
        ends = np.concatenate([brk, [n]])
        for s, e in zip(starts.tolist(), ends.tolist()):
            p = parts[int(which[s])]
            out[s:e] = p.rows(int(rows[s]), int(rows[s]) + (e - s))
    return out


def _unravel(r0: int, r1: int, lead: Sequence[int]) -> tuple[np.ndarray, ...]:
    return np.unravel_index(np.arange(r0, r1, dtype=np.int64), tuple(lead) or (1,))


# ---- operations --------------------------------------------------------------------------

class _Cast(Tensor):
    __slots__ = ("x",)

    def __init__(self, x: Tensor, dtype: np.dtype):
        super().__init__(x.shape, dtype)
        self.x = x

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        return np.ascontiguousarray(_astype(self.x.rows(r0, r1), self.dtype))


class _View(Tensor):
    """``mx.array.view``: the same bytes as another dtype (the last axis rescaled)."""

    __slots__ = ("x",)

    def __init__(self, x: Tensor, dtype: np.dtype):
        if x.ndim == 0 or (x.shape[-1] * x.dtype.itemsize) % dtype.itemsize:
            raise ShapeMismatchError(f"cannot view {x} as {dtype}: the last axis's bytes do "
                                     "not divide")
        shape = x.shape[:-1] + (x.shape[-1] * x.dtype.itemsize // dtype.itemsize,)
        super().__init__(shape, dtype)
        self.x = x

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        return np.ascontiguousarray(self.x.rows(r0, r1)).view(self.dtype)


class _Reshape(Tensor):
    """Elements in order: output rows map to a contiguous range of input rows."""

    __slots__ = ("x",)

    def __init__(self, x: Tensor, shape: tuple[int, ...]):
        super().__init__(shape, x.dtype)
        self.x = x

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        cn, co = self.ncols, self.x.ncols
        if cn == co:
            return self.x.rows(r0, r1)
        e0, e1 = r0 * cn, r1 * cn
        if e1 == e0:
            return np.empty((0, cn), self.dtype)
        i0, i1 = e0 // co, -(-e1 // co)
        flat = self.x.rows(i0, i1).reshape(-1)
        return np.ascontiguousarray(flat[e0 - i0 * co: e1 - i0 * co].reshape(r1 - r0, cn))


class _Permute(Tensor):
    """A transpose. Streams when the last axis stays last (rows are then a permutation of
    the input's rows). Otherwise, when leading axes stay in place (an expert tensor
    ``[E, in, out]`` swapped into ``[E, out, in]``), it evaluates one leading block — one
    expert — at a time, keeping the last one for the next row block; only a permutation
    that moves the first axis evaluates the input whole."""

    __slots__ = ("x", "perm", "_memo")

    def __init__(self, x: Tensor, perm: tuple[int, ...]):
        super().__init__(tuple(x.shape[p] for p in perm), x.dtype)
        self.x, self.perm = x, perm
        self._memo: Optional[tuple[int, np.ndarray]] = None

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    @property
    def streams(self) -> bool:
        return self.perm[-1] == self.ndim - 1 and self.x.streams

    def _fixed(self) -> int:
        """How many leading axes the permutation leaves in place."""
        k = 0
        while k < self.ndim and self.perm[k] == k:
            k += 1
        return k

    def _block(self, b: int, k: int) -> np.ndarray:
        """Leading block ``b`` (over the ``k`` fixed axes) transposed, as output rows."""
        memo = self._memo
        if memo is not None and memo[0] == b:
            return memo[1]
        inner_in = _prod(self.x.shape[k:-1])
        sub = self.x.rows(b * inner_in, (b + 1) * inner_in).reshape(self.x.shape[k:])
        out = np.ascontiguousarray(sub.transpose(tuple(p - k for p in self.perm[k:])))
        out = out.reshape(-1, self.ncols)
        self._memo = (b, out)
        return out

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        k = self._fixed()
        if self.perm[-1] != self.ndim - 1 and k > 0:
            inner = _prod(self.shape[k:-1])
            b0, b1 = r0 // inner, -(-r1 // inner)
            parts = [self._block(b, k)[max(r0 - b * inner, 0):min(r1 - b * inner, inner)]
                     for b in range(b0, b1)]
            return np.ascontiguousarray(np.concatenate(parts) if len(parts) != 1 else parts[0])
        if self.perm[-1] != self.ndim - 1:
            return np.ascontiguousarray(
                self.x.numpy().transpose(self.perm).reshape(self.nrows, self.ncols)[r0:r1])
        idx = _unravel(r0, r1, self.shape[:-1])
        src = [None] * (self.ndim - 1)
        for out_axis, in_axis in enumerate(self.perm[:-1]):
            src[in_axis] = idx[out_axis]
        rows = np.ravel_multi_index(tuple(src), self.x.shape[:-1]) if self.ndim > 1 else \
            np.zeros(r1 - r0, np.int64)
        return _gather([self.x], np.zeros(len(rows), np.int64), rows, self.ncols, self.dtype)


class _Slice(Tensor):
    """Basic indexing: slices (any step) and integers on leading axes, a slice on the last.
    An integer on the last axis evaluates the input whole."""

    __slots__ = ("x", "key", "last")

    def __init__(self, x: Tensor, key: tuple, shape: tuple[int, ...]):
        super().__init__(shape, x.dtype)
        self.x, self.key = x, key  # one slice or int per input axis

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    @property
    def streams(self) -> bool:
        return (self.x.ndim == 0 or not isinstance(self.key[-1], int)) and self.x.streams

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        x = self.x
        if x.ndim == 0:
            return x.rows(0, 1)
        if isinstance(self.key[-1], int):
            return np.ascontiguousarray(x.numpy()[self.key].reshape(self.nrows, self.ncols)[r0:r1])
        # leading axes of the output: one per input leading axis indexed by a slice
        kept = [a for a, k in enumerate(self.key[:-1]) if isinstance(k, slice)]
        lead_out = tuple(len(range(*self.key[a].indices(x.shape[a]))) for a in kept)
        idx = _unravel(r0, r1, lead_out)
        src = []
        j = 0
        for a, k in enumerate(self.key[:-1]):
            if isinstance(k, int):
                src.append(np.full(r1 - r0, k, np.int64))
            else:
                start, _, step = k.indices(x.shape[a])
                src.append(start + step * idx[j])
                j += 1
        rows = np.ravel_multi_index(tuple(src), x.shape[:-1]) if x.ndim > 1 else \
            np.zeros(r1 - r0, np.int64)
        last = self.key[-1]
        if last == slice(None):
            return _gather([x], np.zeros(len(rows), np.int64), rows, self.ncols, self.dtype)
        full = _gather([x], np.zeros(len(rows), np.int64), rows, x.ncols, self.dtype)
        return np.ascontiguousarray(full[:, last])


def _index(x: Tensor, key: Any) -> Tensor:
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key):
        raise InvalidArgumentError("indexing with None (new axes) is not supported; use "
                                   "expand_dims")
    if key.count(Ellipsis) > 1:
        raise InvalidArgumentError("an index can hold one ellipsis")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        fill = x.ndim - (len(key) - 1)
        key = key[:i] + (slice(None),) * fill + key[i + 1:]
    if len(key) > x.ndim:
        raise InvalidArgumentError(f"too many indices ({len(key)}) for {x}")
    key = key + (slice(None),) * (x.ndim - len(key))
    norm: list = []
    shape: list[int] = []
    for a, k in enumerate(key):
        n = x.shape[a]
        if isinstance(k, slice):
            if k.step is not None and k.step <= 0:
                raise InvalidArgumentError("slices with a non-positive step are not supported")
            norm.append(k)
            shape.append(len(range(*k.indices(n))))
        elif isinstance(k, numbers.Integral):
            k = int(k)
            if not -n <= k < n:
                raise InvalidArgumentError(f"index {k} out of range for axis {a} of {x}")
            norm.append(k % n)
        else:
            raise InvalidArgumentError(f"unsupported index {k!r}: use ints and slices")
    if all(k == slice(None) for k in norm):
        return x
    return _Slice(x, tuple(norm), tuple(shape))


class _Join(Tensor):
    """stack (a new axis) or concatenate (an existing one) of several tensors."""

    __slots__ = ("parts", "axis", "new_axis")

    def __init__(self, parts: Sequence[Tensor], axis: int, new_axis: bool):
        if not parts:
            raise InvalidArgumentError("nothing to join")
        first = parts[0]
        for p in parts[1:]:
            if p.dtype != first.dtype:
                raise ShapeMismatchError(f"cannot join {first} with {p}: dtypes differ")
        if new_axis:
            for p in parts[1:]:
                if p.shape != first.shape:
                    raise ShapeMismatchError(f"cannot stack {first} with {p}")
            a = _axis(axis, first.ndim + 1)
            shape = first.shape[:a] + (len(parts),) + first.shape[a:]
        else:
            a = _axis(axis, first.ndim)
            for p in parts[1:]:
                if p.ndim != first.ndim or any(p.shape[i] != first.shape[i]
                                               for i in range(first.ndim) if i != a):
                    raise ShapeMismatchError(f"cannot concatenate {first} with {p} on axis {a}")
            shape = first.shape[:a] + (sum(p.shape[a] for p in parts),) + first.shape[a + 1:]
        super().__init__(shape, first.dtype)
        self.parts, self.axis, self.new_axis = tuple(parts), a, new_axis

    def inputs(self) -> tuple[Tensor, ...]:
        return self.parts

    def _last_axis(self) -> bool:
        return self.axis == self.ndim - 1

    @property
    def streams(self) -> bool:
        return (not (self.new_axis and self._last_axis())) and all(p.streams for p in self.parts)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        if self._last_axis():
            if self.new_axis:  # elements interleave: evaluate whole
                return np.ascontiguousarray(np.stack([p.numpy() for p in self.parts], -1)
                                            .reshape(self.nrows, self.ncols)[r0:r1])
            return np.ascontiguousarray(np.concatenate([p.rows(r0, r1) for p in self.parts], 1))
        idx = list(_unravel(r0, r1, self.shape[:-1]))
        a = self.axis
        pos = idx[a]
        if self.new_axis:
            which = pos
            del idx[a]
            lead = self.parts[0].shape[:-1]
        else:
            bounds = np.cumsum([0] + [p.shape[a] for p in self.parts])
            which = np.searchsorted(bounds, pos, side="right") - 1
            idx[a] = pos - bounds[which]
            lead = None
        if lead is not None:
            rows = np.ravel_multi_index(tuple(idx), lead) if len(lead) else np.zeros(
                r1 - r0, np.int64)
        else:
            rows = np.empty(r1 - r0, np.int64)
            for w in np.unique(which):
                m = which == w
                rows[m] = np.ravel_multi_index(tuple(i[m] for i in idx),
                                               self.parts[int(w)].shape[:-1])
        return _gather(self.parts, which, rows, self.ncols, self.dtype)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """``mx.stack``."""
    return _Join(list(tensors), axis, True)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """``mx.concatenate``."""
    tensors = list(tensors)
    return tensors[0] if len(tensors) == 1 else _Join(tensors, axis, False)


def split(x: Tensor, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """``mx.split``: ``n`` equal parts, or parts between the given indices."""
    a = _axis(axis, x.ndim)
    n = x.shape[a]
    if isinstance(indices_or_sections, numbers.Integral):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ShapeMismatchError(f"cannot split axis {axis} of {x} into {k} equal parts")
        cuts = [n // k * i for i in range(1, k)]
    else:
        cuts = [int(i) for i in indices_or_sections]
    edges = [0] + cuts + [n]
    out = []
    for s, e in zip(edges[:-1], edges[1:]):
        key = [slice(None)] * x.ndim
        key[a] = slice(s, max(s, e))
        out.append(x[tuple(key)])
    return out


def contiguous(x: Tensor) -> Tensor:
    """``mx.contiguous``: a no-op here (every evaluation returns contiguous arrays)."""
    return x


class _Binary(Tensor):
    """Elementwise ``a op b`` with broadcasting and MLX's promotion. An operand of the
    output's shape streams row by row; a broadcast one is evaluated whole (it is small)."""

    __slots__ = ("op", "a", "b")

    def __init__(self, op: str, a: Union[Tensor, Scalar], b: Union[Tensor, Scalar]):
        ta = a if isinstance(a, Tensor) else None
        tb = b if isinstance(b, Tensor) else None
        if ta is None and tb is None:  # pragma: no cover - Tensor methods always pass one
            raise InvalidArgumentError("no tensor operand")
        if ta is not None and tb is not None:
            dtype = _promote(ta.dtype, tb.dtype)
            shape = np.broadcast_shapes(ta.shape, tb.shape)
        else:
            t, s = (ta, b) if ta is not None else (tb, a)
            dtype, shape = _promote(t.dtype, s), t.shape
        super().__init__(shape, dtype)
        self.op, self.a, self.b = op, a, b

    def inputs(self) -> tuple[Tensor, ...]:
        return tuple(t for t in (self.a, self.b) if isinstance(t, Tensor))

    def _operand(self, t: Union[Tensor, Scalar], r0: int, r1: int,
                 compute: np.dtype) -> np.ndarray:
        if not isinstance(t, Tensor):
            # a Python scalar takes the result dtype first, as MLX's weak scalars do
            return _astype(np.asarray(t, dtype=np.float64 if isinstance(t, float) else None)
                           .astype(self.dtype) if not _is_float(self.dtype) else
                           _astype(np.asarray(t, np.float64), self.dtype), compute)
        if t.shape == self.shape:
            return _astype(_astype(t.rows(r0, r1), self.dtype), compute)
        if t.shape[:-1] == self.shape[:-1] and t.shape[-1] == 1:
            # one value per row (a per-row norm, say): row-aligned, read with the rows
            return _astype(_astype(t.rows(r0, r1), self.dtype), compute)
        # broadcast: pick, for each output row, the operand's row
        full = t.numpy()
        shape = (1,) * (self.ndim - t.ndim) + t.shape
        full = full.reshape(shape)
        idx = _unravel(r0, r1, self.shape[:-1])
        src = tuple(np.zeros_like(i) if shape[k] == 1 else i for k, i in enumerate(idx))
        lead = shape[:-1]
        rows_ = np.ravel_multi_index(src, lead) if lead else np.zeros(r1 - r0, np.int64)
        picked = full.reshape(_prod(lead), shape[-1] if shape else 1)[rows_]
        return _astype(_astype(picked, self.dtype), compute)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        half = self.dtype in (_dtypes.bfloat16, np.dtype(np.float16))
        compute = np.dtype(np.float32) if half else self.dtype
        a = self._operand(self.a, r0, r1, compute)
        b = self._operand(self.b, r0, r1, compute)
        with np.errstate(all="ignore"):
            out = _OPS[self.op](a, b)
        out = np.broadcast_to(out, (r1 - r0, self.ncols))
        return np.ascontiguousarray(_astype(out.astype(compute, copy=False), self.dtype))


class _RowNorm(Tensor):
    """``mx.linalg.norm(x, axis=-1, keepdims=True)`` of a float32 tensor, row by row."""

    __slots__ = ("x",)

    def __init__(self, x: Tensor):
        super().__init__(x.shape[:-1] + (1,), x.dtype)
        self.x = x

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        sq = np.square(self.x.rows(r0, r1))
        # MLX's CPU reduction of a contiguous row is one float32 accumulator from 0, the
        # elements added in order (contiguous_reduce; one SIMD lane where MLX has no
        # Accelerate, as on Linux): not numpy's pairwise sum, but its accumulate, which
        # adds in order
        if sq.shape[1] == 0:
            return np.zeros((r1 - r0, 1), np.float32)
        acc = np.add.accumulate(sq, axis=1, dtype=np.float32)[:, -1]
        return np.sqrt(acc).reshape(r1 - r0, 1)


class _ColumnNorm(Tensor):
    """``mx.linalg.norm(x, axis=0, keepdims=True)`` of a 2-D float32 tensor: one row,
    computed once (reading ``x`` in row blocks) and kept, as every row block of a
    division by it asks for it again."""

    __slots__ = ("x", "_value")

    def __init__(self, x: Tensor):
        super().__init__((1, x.shape[1]), x.dtype)
        self.x = x
        self._value: Optional[np.ndarray] = None

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    @property
    def streams(self) -> bool:
        return False

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        if self._value is None:
            # MLX's CPU strided reduction: each column's float32 accumulator starts at 0
            # and takes the rows in order (strided_reduce)
            acc = np.zeros(self.shape[1], np.float32)
            for block in materialize(self.x):
                sq = np.square(block)
                for row in sq:
                    acc += row
            self._value = np.sqrt(acc).reshape(1, -1)
        return self._value[r0:r1].copy()


def norm(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """``mx.linalg.norm(x, axis=axis, keepdims=keepdims)`` (the 2-norm, ``sqrt(sum(
    square(x)))``) of a float32 tensor over its last axis, or over axis 0 of a 2-D one,
    with MLX's CPU summation order (bit for bit)."""
    if x.dtype != np.dtype(np.float32):
        raise InvalidArgumentError(f"norm of {x}: only float32 is supported (sanitize casts "
                                   "to float32 first)")
    if x.ndim == 0:
        raise InvalidArgumentError(f"norm of a 0-d tensor {x}")
    ax = _axis(axis, x.ndim)
    if ax == x.ndim - 1:
        out: Tensor = _RowNorm(x)
        return out if keepdims else out.reshape(x.shape[:-1])
    if ax == 0 and x.ndim == 2:
        out = _ColumnNorm(x)
        return out if keepdims else out.reshape(x.shape[1])
    raise InvalidArgumentError(f"norm of {x} over axis {axis}: only the last axis, or axis 0 "
                               "of a 2-D tensor")


class _Checked(Tensor):
    """``x``, whose values a sanitize requires of the checkpoint: each row block read is
    checked, and a block that fails stops the conversion with a FormatError."""

    __slots__ = ("x", "ok", "message", "key")

    def __init__(self, x: Tensor, ok: Callable[[np.ndarray], bool], message: str, key: str):
        super().__init__(x.shape, x.dtype)
        self.x, self.ok, self.message, self.key = x, ok, message, key

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        rows = self.x.rows(r0, r1)
        if not self.ok(rows):
            raise FormatError(f"{self.key}: {self.message}", key=self.key)
        return rows


def checked(x: Tensor, ok: Callable[[np.ndarray], bool], message: str, key: str) -> Tensor:
    """``x`` as it is, its values checked by ``ok`` when they are read (a data-dependent
    refusal of mlx-lm's sanitize, such as prism_hadamard_qwen35's sign vectors)."""
    return _Checked(x, ok, message, key)


class _Pad(Tensor):
    __slots__ = ("x", "widths", "value")

    def __init__(self, x: Tensor, widths: list[tuple[int, int]], value: Scalar):
        super().__init__(tuple(n + a + b for n, (a, b) in zip(x.shape, widths)), x.dtype)
        self.x, self.widths, self.value = x, widths, value

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    @property
    def streams(self) -> bool:
        return all(w == (0, 0) for w in self.widths[:-1]) and self.x.streams

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        fill = _astype(np.asarray(self.value, np.float64 if _is_float(self.dtype) else None),
                       self.dtype)
        if all(w == (0, 0) for w in self.widths[:-1]):
            a, b = self.widths[-1]
            out = np.empty((r1 - r0, self.ncols), self.dtype)
            out[:] = fill
            out[:, a:a + self.x.ncols] = self.x.rows(r0, r1)
            return out
        full = np.empty(self.shape, self.dtype)
        full[...] = fill
        full[tuple(slice(a, a + n) for (a, _), n in zip(self.widths, self.x.shape))] = \
            self.x.numpy()
        return np.ascontiguousarray(full.reshape(self.nrows, self.ncols)[r0:r1])


def pad(x: Tensor, pad_width: Any, constant_values: Scalar = 0) -> Tensor:
    """``mx.pad`` with a constant (an int, a ``(before, after)`` pair, or one per axis)."""
    if isinstance(pad_width, numbers.Integral):
        widths = [(int(pad_width), int(pad_width))] * x.ndim
    else:
        pw = list(pad_width)
        if len(pw) == 2 and all(isinstance(v, numbers.Integral) for v in pw):
            widths = [(int(pw[0]), int(pw[1]))] * x.ndim
        else:
            widths = [(int(a), int(b)) for a, b in pw]
    if len(widths) != x.ndim or any(a < 0 or b < 0 for a, b in widths):
        raise InvalidArgumentError(f"bad pad widths {pad_width!r} for {x}")
    return x if all(w == (0, 0) for w in widths) else _Pad(x, widths, constant_values)


def where_scalar(cond: Callable[[np.ndarray], np.ndarray], x: Tensor, value: Scalar) -> Tensor:
    """Elements of ``x`` where ``cond(x)`` is false, ``value`` where it is true (row-wise)."""
    return _Map(x, lambda a: np.where(cond(a), np.asarray(value).astype(a.dtype), a), x.dtype)


class _Map(Tensor):
    """A row-wise function (the same on any row block as on the whole)."""

    __slots__ = ("x", "fn")

    def __init__(self, x: Tensor, fn: Callable[[np.ndarray], np.ndarray], dtype: np.dtype,
                 cols: Optional[int] = None):
        super().__init__(x.shape[:-1] + ((cols if cols is not None else x.ncols),), dtype)
        self.x, self.fn = x, fn

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.x,)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        return np.ascontiguousarray(self.fn(self.x.rows(r0, r1)), self.dtype)


class _RowWise(Tensor):
    """``fn(*inputs)`` computed row block by row block: each input is either row-aligned
    with the output (its rows ``r0:r1`` are passed) or small and passed whole."""

    __slots__ = ("parts", "whole", "fn")

    def __init__(self, fn: Callable[..., np.ndarray], parts: Sequence[Tensor],
                 whole: Sequence[bool], shape: Sequence[int], dtype: Any):
        super().__init__(shape, dtype)
        self.fn, self.parts, self.whole = fn, tuple(parts), tuple(whole)
        for p, w in zip(self.parts, self.whole):
            if not w and p.nrows != self.nrows:
                raise ShapeMismatchError(f"{p} is not row-aligned with {self}")

    def inputs(self) -> tuple[Tensor, ...]:
        return self.parts

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        args = [p.numpy() if w else p.rows(r0, r1) for p, w in zip(self.parts, self.whole)]
        out = self.fn(*args)
        return np.ascontiguousarray(np.asarray(out, self.dtype).reshape(r1 - r0, self.ncols))


def row_wise(fn: Callable[..., np.ndarray], parts: Sequence[Tensor], shape: Sequence[int],
             dtype: Any, whole: Optional[Sequence[bool]] = None) -> Tensor:
    """A lazy ``fn(*parts)`` evaluated per row block (``whole[i]``: pass ``parts[i]``
    entire, for a small operand such as a per-tensor scale)."""
    return _RowWise(fn, parts, whole or [False] * len(parts), shape, np.dtype(dtype))


class _Dequantize(Tensor):
    """``mx.dequantize``: row by row from the packed weight and its scales and biases."""

    __slots__ = ("wq", "scales", "biases", "gscale", "gs", "bits", "mode", "device")

    def __init__(self, wq: Tensor, scales: Tensor, biases: Optional[Tensor], gs: int, bits: int,
                 mode: str, dtype: Optional[np.dtype], global_scale: Optional[Tensor]):
        from .._device import Device, default_device
        from ..quant import QuantMode

        mode_ = QuantMode.parse(mode)
        # the device in effect where the graph is built (mlxq.convert's), as MLX's ops take
        # the default device when they are created
        self.device = default_device()
        if dtype is None:
            if mode_ is QuantMode.AFFINE:
                dtype = _promote(scales.dtype, biases.dtype) if biases is not None else \
                    scales.dtype
            else:
                dtype = _dtypes.bfloat16
        if global_scale is not None and self.device is Device.CPU:
            # the CPU graph's float32 global scale promotes the product (Metal's
            # fp_dequantize writes the asked dtype)
            dtype = np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)
        cols = scales.shape[-1] * gs
        super().__init__(wq.shape[:-1] + (cols,), dtype)
        self.wq, self.scales, self.biases, self.gscale = wq, scales, biases, global_scale
        self.gs, self.bits, self.mode = gs, bits, mode_.value

    def inputs(self) -> tuple[Tensor, ...]:
        return tuple(t for t in (self.wq, self.scales, self.biases, self.gscale) if t is not None)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        from ..quant import dequantize as dq

        g = None
        if self.gscale is not None:
            g = float(np.asarray(self.gscale.numpy(), np.float32).reshape(-1)[0])
        b = self.biases.rows(r0, r1) if self.biases is not None else None
        dtype = self.dtype if self.gscale is None or self.device.value == "gpu" else None
        return dq(self.wq.rows(r0, r1), self.scales.rows(r0, r1), b, group_size=self.gs,
                  bits=self.bits, mode=self.mode, global_scale=g, dtype=dtype,
                  device=self.device)


def dequantize(wq: Tensor, scales: Tensor, biases: Optional[Tensor] = None,
               group_size: int = 64, bits: int = 4, mode: str = "affine",
               dtype: Any = None, global_scale: Optional[Tensor] = None) -> Tensor:
    """``mx.dequantize`` (MLX's output dtype rule)."""
    return _Dequantize(wq, scales, biases, group_size, bits, mode,
                       None if dtype is None else np.dtype(dtype), global_scale)


class _Quantized(Tensor):
    """One of the three outputs of ``mx.quantize`` (the others share the computation of
    the last row block)."""

    __slots__ = ("node", "which")

    def __init__(self, node: "_QuantizeNode", which: int, shape: tuple[int, ...], dtype: Any):
        super().__init__(shape, dtype)
        self.node, self.which = node, which

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.node.x,)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        return np.ascontiguousarray(self.node.rows(r0, r1)[self.which])


class _QuantizeNode:
    def __init__(self, x: Tensor, gs: int, bits: int, mode: str):
        from .._device import default_device

        self.x, self.gs, self.bits, self.mode = x, gs, bits, mode
        self.device = default_device()  # as _Dequantize: the device where it is built
        self._last: Optional[tuple[int, int, tuple]] = None

    def rows(self, r0: int, r1: int) -> tuple:
        if self._last is None or self._last[:2] != (r0, r1):
            from ..quant import quantize as q

            parts = q(self.x.rows(r0, r1), group_size=self.gs, bits=self.bits, mode=self.mode,
                      device=self.device)
            self._last = (r0, r1, parts)
        return self._last[2]


def quantize(x: Tensor, group_size: Optional[int] = None, bits: Optional[int] = None,
             mode: str = "affine") -> tuple[Tensor, ...]:
    """``mx.quantize``: ``(wq, scales, biases)`` (affine) or ``(wq, scales)``."""
    from ..quant import check_params, default_params

    dgs, dbits = default_params(mode)
    gs, bits = group_size or dgs, bits or dbits
    check_params(mode, gs, bits)
    if x.ncols % gs:
        raise ShapeMismatchError(f"the last axis of {x} does not divide into groups of {gs}")
    node = _QuantizeNode(x, gs, bits, mode)
    lead = x.shape[:-1]
    sdt = x.dtype if mode == "affine" else np.dtype(np.uint8)
    outs = [_Quantized(node, 0, lead + (x.ncols * bits // 32,), np.uint32),
            _Quantized(node, 1, lead + (x.ncols // gs,), sdt)]
    if mode == "affine":
        outs.append(_Quantized(node, 2, lead + (x.ncols // gs,), sdt))
    return tuple(outs)


class _Fp8Block(Tensor):
    """mlx-lm's ``dequant`` of a block-scaled E4M3 weight (deepseek_v3's ``sanitize``), in
    row blocks through mlxq's kernel."""

    __slots__ = ("w", "scale", "block")

    def __init__(self, w: Tensor, scale: Tensor, block: tuple[int, int], dtype: np.dtype):
        if w.ndim != 2 or scale.ndim != 2:
            raise ShapeMismatchError(f"an fp8 block weight is 2-D with 2-D scales, got {w} "
                                     f"and {scale}")
        want = (-(-w.shape[0] // block[0]), -(-w.shape[1] // block[1]))
        if scale.shape != want:
            raise ShapeMismatchError(f"scales {list(scale.shape)} do not give one scale per "
                                     f"{block[0]}x{block[1]} block of {list(w.shape)} (want "
                                     f"{list(want)})")
        super().__init__(w.shape, dtype)
        self.w, self.scale, self.block = w, scale, block

    def inputs(self) -> tuple[Tensor, ...]:
        return (self.w, self.scale)

    def _rows(self, r0: int, r1: int) -> np.ndarray:
        from .. import _core
        from .._dtypes import code_of
        from ..formats.fp8 import _codes

        b0 = self.block[0]
        s0, s1 = r0 // b0, -(-r1 // b0)
        w, w_code = _codes(self.w.rows(r0, r1))
        s = self.scale.rows(s0, s1)
        # the kernel places rows by their index in the block rows it is given: row r0 is
        # r0 - s0 * b0 rows into block row s0
        offset = r0 - s0 * b0
        return _core.fp8_block_dequant(w, w_code, offset, offset + (r1 - r0), s,
                                       code_of(s.dtype, "scale_inv"), b0, self.block[1],
                                       self.dtype, code_of(self.dtype, "dtype"), None, 0)


def fp8_block_dequant(weight: Tensor, scale_inv: Tensor, block: Sequence[int] = (128, 128),
                      dtype: Any = None) -> Tensor:
    """mlx-lm's ``dequant(weight, scale_inv)`` of deepseek_v3 ``sanitize`` (and minimax,
    deepseek_v32, mimo_v2_flash): ``from_fp8`` to bfloat16, times the block's scale (the
    product in float32 for a float32 scale), cast to ``dtype`` (default bfloat16)."""
    dt = _dtypes.bfloat16 if dtype is None else np.dtype(dtype)
    return _Fp8Block(weight, scale_inv, (int(block[0]), int(block[1])), dt)


def split_cast(t: Tensor) -> tuple[Tensor, Optional[np.dtype]]:
    """``(x, dtype)`` when ``t`` is ``x.astype(dtype)``, else ``(t, None)``."""
    if isinstance(t, _Cast):
        return t.x, t.dtype
    return t, None


def cast_rows(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``rows`` cast to ``dtype`` as ``astype`` casts (MLX's float casts)."""
    return _astype(rows, np.dtype(dtype))


def materialize(t: Tensor, block_bytes: int = 16 << 20) -> Iterable[np.ndarray]:
    """``t``'s rows in consecutive blocks of about ``block_bytes`` (at least one row)."""
    step = max(1, block_bytes // max(t.ncols * t.dtype.itemsize, 1))
    for r0 in range(0, t.nrows, step):
        yield t.rows(r0, min(t.nrows, r0 + step))

