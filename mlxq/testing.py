"""Assertions for validating quantized checkpoints in test suites.

Exact comparison (the default) means the same dtype, the same shape and the same bits in
every element: floats, bfloat16 and float8 are compared by bit pattern, so ``-0.0`` differs
from ``0.0`` and a NaN equals only a NaN with the same payload — "bit-identical to MLX" in a
single call. With ``exact=False`` the values are compared numerically, like
``numpy.testing.assert_allclose``: ``|a - b| <= atol + rtol * |b|`` and/or a distance of at
most ``max_ulp`` units in the last place, NaN matching NaN.

A failure raises ``AssertionError`` whose message is a report: missing and extra names,
dtype and shape differences, and for each differing tensor how many elements differ, the
largest absolute, relative and ULP differences, and the first differing index with both
values. Comparisons walk large arrays in chunks, so memory-mapped checkpoints are compared
without being read into memory whole.

>>> import numpy as np
>>> from mlxq.testing import assert_arrays_equal
>>> assert_arrays_equal(np.float32([1, 2]), np.float32([1, 2]))
>>> assert_arrays_equal(np.float32([1, 2]), np.float32([1, 2.000001]), exact=False, max_ulp=8)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from ._dtypes import bfloat16, float8_e4m3fn, float8_e5m2
from .devicediff import DeviceExplanation, explain_device_differences

__all__ = [
    "ArrayDiff",
    "CheckpointComparison",
    "DeviceExplanation",
    "TensorComparison",
    "compare_checkpoints",
    "close",
    "exact",
    "assert_arrays_equal",
    "assert_checkpoints_equal",
    "assert_weights_equal",
    "compare_arrays",
    "mlx_device",
]

_CHUNK = 1 << 20  # elements per comparison step: bounds temporary memory to a few MB

# dtypes whose bit patterns are compared as unsigned integers of the same width
_UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_FLOATS = {np.dtype(np.float16), bfloat16, np.dtype(np.float32), np.dtype(np.float64),
           float8_e4m3fn, float8_e5m2}


@dataclasses.dataclass
class ArrayDiff:
    """How two arrays of the same shape differ (``n_diff == 0`` means they match).

    Attributes:
        n_diff: number of elements that differ under the comparison used.
        size: number of elements compared.
        max_abs: largest |a - b| over differing elements (NaN if not numeric or only NaNs).
        max_rel: largest |a - b| / |b| (inf where b is 0).
        max_ulp: largest distance in units in the last place (floats only, else None).
        first_index: index of the first differing element (C order), or None.
        first_values: the two values there, as Python scalars (``(a, b)``).
    """

    n_diff: int = 0
    size: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: int | None = None
    first_index: tuple[int, ...] | None = None
    first_values: tuple[Any, Any] | None = None

    def describe(self, name: str = "array") -> str:
        if self.n_diff == 0:
            return f"{name}: identical"
        parts = [f"{name}: {self.n_diff} of {self.size} elements differ "
                 f"({100.0 * self.n_diff / max(self.size, 1):.3g}%)",
                 f"max abs diff {self.max_abs:.6g}", f"max rel diff {self.max_rel:.6g}"]
        if self.max_ulp is not None:
            parts.append(f"max ULP diff {self.max_ulp}")
        if self.first_index is not None and self.first_values is not None:
            a, b = self.first_values
            parts.append(f"first at index {self.first_index}: {a!r} vs {b!r}")
        return "; ".join(parts)


def _ordered_ints(bits: np.ndarray, width: int) -> np.ndarray:
    """Maps float bit patterns to integers whose difference is the ULP distance
    (sign-magnitude to two's complement; +0 and -0 both map to 0)."""
    b = bits.astype(np.int64)
    sign = np.int64(1) << (width - 1)
    if width == 64:
        # int64 holds the pattern already; flip the negative half
        return np.where(b < 0, -(b & np.int64(0x7FFFFFFFFFFFFFFF)), b)
    return np.where(b & sign, -(b & (sign - 1)), b)


def _as_float64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)


def _chunk_diff(a: np.ndarray, b: np.ndarray, exact: bool, rtol: float | None,
                atol: float | None, max_ulp: int | None) -> np.ndarray:
    """Boolean mask of differing elements of two flat chunks."""
    dt = a.dtype
    if exact:
        if dt.kind == "b" or dt.itemsize not in _UINT_OF_SIZE:
            return a != b
        u = _UINT_OF_SIZE[dt.itemsize]
        return a.view(u) != b.view(u)
    if dt not in _FLOATS and dt.kind not in "iub":
        return a != b
    x, y = _as_float64(a), _as_float64(b)
    with np.errstate(invalid="ignore", over="ignore"):
        both_nan = np.isnan(x) & np.isnan(y)
        same = (x == y) | both_nan
        ok = same.copy()
        if rtol is not None or atol is not None:
            tol = (atol or 0.0) + (rtol or 0.0) * np.abs(y)
            ok |= np.abs(x - y) <= tol
        if max_ulp is not None and dt in _FLOATS:
            width = dt.itemsize * 8
            u = _UINT_OF_SIZE[dt.itemsize]
            d = np.abs(_ordered_ints(a.view(u), width) - _ordered_ints(b.view(u), width))
            ok |= (d <= max_ulp) & ~np.isnan(x) & ~np.isnan(y)
    return ~ok


def compare_arrays(a: np.ndarray, b: np.ndarray, *, exact: bool = True,
                   rtol: float | None = None, atol: float | None = None,
                   max_ulp: int | None = None) -> ArrayDiff:
    """Compares two arrays of the same dtype and shape element by element, in chunks.

    Raises ValueError if dtypes or shapes differ (the assert_* helpers report those
    themselves before calling this).

    >>> compare_arrays(np.float32([1, 2, 3]), np.float32([1, 2, 4])).n_diff
    1
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ValueError(f"cannot compare {a.dtype}{list(a.shape)} with {b.dtype}{list(b.shape)}")
    if not exact and rtol is None and atol is None and max_ulp is None:
        rtol, atol = 1e-7, 0.0  # numpy.testing.assert_allclose's default
    res = ArrayDiff(size=int(a.size))
    fa, fb = a.reshape(-1), b.reshape(-1)  # views for contiguous (and mmap) arrays
    numeric = a.dtype in _FLOATS or a.dtype.kind in "iu"
    is_float = a.dtype in _FLOATS
    for start in range(0, fa.size, _CHUNK):
        ca, cb = fa[start:start + _CHUNK], fb[start:start + _CHUNK]
        mask = _chunk_diff(ca, cb, exact, rtol, atol, max_ulp)
        n = int(np.count_nonzero(mask))
        if n == 0:
            continue
        idx = np.flatnonzero(mask)
        if res.first_index is None:
            i = int(idx[0])
            res.first_index = tuple(int(v) for v in np.unravel_index(start + i, a.shape))
            res.first_values = (ca[i].item() if ca.dtype not in (bfloat16, float8_e4m3fn, float8_e5m2)
                                else float(ca[i]),
                                cb[i].item() if cb.dtype not in (bfloat16, float8_e4m3fn, float8_e5m2)
                                else float(cb[i]))
        res.n_diff += n
        if numeric:
            x = _as_float64(ca[idx])
            y = _as_float64(cb[idx])
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                d = np.abs(x - y)
                finite = ~np.isnan(d)
                if finite.any():
                    res.max_abs = max(res.max_abs, float(d[finite].max()))
                    rel = d[finite] / np.abs(y[finite])
                    rel = np.where(np.isnan(rel), 0.0, rel)
                    res.max_rel = max(res.max_rel, float(rel.max()))
                elif res.max_abs == 0.0:
                    res.max_abs = res.max_rel = math.nan
            if is_float:
                u = _UINT_OF_SIZE[a.dtype.itemsize]
                width = a.dtype.itemsize * 8
                ulp = np.abs(_ordered_ints(ca[idx].view(u), width)
                             - _ordered_ints(cb[idx].view(u), width))
                m = int(ulp.max())
                res.max_ulp = m if res.max_ulp is None else max(res.max_ulp, m)
        else:
            res.max_abs = res.max_rel = math.nan
    return res


def _header(a: np.ndarray, b: np.ndarray, name: str) -> str | None:
    if a.dtype != b.dtype:
        return f"{name}: dtype {a.dtype} != {b.dtype}"
    if a.shape != b.shape:
        return f"{name}: shape {list(a.shape)} != {list(b.shape)}"
    return None


def assert_arrays_equal(a: np.ndarray, b: np.ndarray, *, exact: bool = True,
                        rtol: float | None = None, atol: float | None = None,
                        max_ulp: int | None = None, name: str = "array") -> None:
    """Asserts two arrays are equal: bit for bit when ``exact`` (the default), else within
    ``rtol``/``atol`` (numpy's allclose rule) or ``max_ulp``.

    Raises:
        AssertionError: with a report of how they differ.

    >>> assert_arrays_equal(np.float32([0.0]), np.float32([-0.0]))
    Traceback (most recent call last):
    ...
    AssertionError: array: 1 of 1 elements differ (100%); max abs diff 0; max rel diff 0; max ULP diff 0; first at index (0,): 0.0 vs -0.0
    """
    a = np.asarray(a)
    b = np.asarray(b)
    head = _header(a, b, name)
    if head:
        raise AssertionError(head)
    diff = compare_arrays(a, b, exact=exact, rtol=rtol, atol=atol, max_ulp=max_ulp)
    if diff.n_diff:
        raise AssertionError(diff.describe(name))


def _report_maps(a: Mapping[str, Any], b: Mapping[str, Any], names: Iterable[str] | None,
                 exact: bool, rtol: float | None, atol: float | None,
                 max_ulp: int | None, label_a: str, label_b: str) -> list[str]:
    lines: list[str] = []
    keys_a, keys_b = set(a), set(b)
    missing = sorted(keys_a - keys_b)
    extra = sorted(keys_b - keys_a)
    if missing:
        lines.append(f"only in {label_a} ({len(missing)}): " + ", ".join(missing))
    if extra:
        lines.append(f"only in {label_b} ({len(extra)}): " + ", ".join(extra))
    common = sorted(keys_a & keys_b) if names is None else [n for n in names if n in keys_a and n in keys_b]
    for k in common:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        head = _header(x, y, k)
        if head:
            lines.append(head)
            continue
        d = compare_arrays(x, y, exact=exact, rtol=rtol, atol=atol, max_ulp=max_ulp)
        if d.n_diff:
            lines.append(d.describe(k))
    return lines


def assert_weights_equal(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], *,
                         exact: bool = True, rtol: float | None = None,
                         atol: float | None = None, max_ulp: int | None = None) -> None:
    """Asserts two name -> array mappings hold the same names and equal arrays.

    Every difference is reported, not just the first.

    >>> w = {"a.weight": np.zeros(3, np.float32)}
    >>> assert_weights_equal(w, {"a.weight": np.zeros(3, np.float32)})
    """
    lines = _report_maps(a, b, None, exact, rtol, atol, max_ulp, "a", "b")
    if lines:
        raise AssertionError(f"weight maps differ ({_problems(len(lines))}):\n  "
                             + "\n  ".join(lines))


def _load_json(path: str) -> Any:
    from ._files import read_json  # ParseError / MlxqIOError naming the file

    # a checkpoint's JSON obeys its folder's symlink rule, like every file of the folder
    return read_json(path, within=os.path.dirname(path) or ".")


def _problems(n: int) -> str:
    return "1 problem" if n == 1 else f"{n} problems"


#: Whether a checkpoint comparison also compares ``config.json``, by default: the same for
#: :func:`assert_checkpoints_equal`, :func:`compare_checkpoints` and ``mlxq compare`` (a
#: folder mlx_lm.load reads is its tensors *and* its config).
CHECK_CONFIG = True


def assert_checkpoints_equal(dir_a: str | os.PathLike, dir_b: str | os.PathLike, *,
                             exact: bool = True, rtol: float | None = None,
                             atol: float | None = None, max_ulp: int | None = None,
                             check_config: bool = CHECK_CONFIG,
                             check_index: bool = False) -> None:
    """Asserts two checkpoint folders hold the same tensors and ``config.json`` content
    (``check_config=False`` skips it) and, with ``check_index``, the same
    ``model.safetensors.index.json``.

    Tensors are memory-mapped and compared one at a time in chunks, so folders larger than
    memory can be compared. ``config.json`` is compared as parsed JSON (key order and
    formatting ignored); the index, when asked, including its shard assignment.
    """
    from .io import load_checkpoint

    dir_a, dir_b = os.fspath(dir_a), os.fspath(dir_b)
    lines = _report_maps(load_checkpoint(dir_a), load_checkpoint(dir_b), None, exact, rtol,
                         atol, max_ulp, dir_a, dir_b)
    files = (["config.json"] if check_config else []) + (
        ["model.safetensors.index.json"] if check_index else [])
    for fname in files:
        pa, pb = os.path.join(dir_a, fname), os.path.join(dir_b, fname)
        if os.path.exists(pa) != os.path.exists(pb):
            lines.append(f"{fname}: present in only one folder")
        elif os.path.exists(pa):
            ja, jb = _load_json(pa), _load_json(pb)
            if ja != jb:
                lines.append(f"{fname}: differs: " + _json_diff(ja, jb))
    if lines:
        msg = f"checkpoints differ ({_problems(len(lines))}):\n  " + "\n  ".join(lines)
        if exact:
            why = _devices(dir_a, dir_b, load_checkpoint(dir_a), load_checkpoint(dir_b),
                           lines)
            if why is not None and why.only_rounding:
                msg += "\n" + why.describe(dir_a, dir_b)
        raise AssertionError(msg)


@dataclasses.dataclass
class TensorComparison:
    """One row of :func:`compare_checkpoints`: a tensor name and how the two sides differ.

    ``status`` is ``"identical"``, ``"differs"`` (same dtype and shape, values differ under
    the rule; ``diff`` has the figures), ``"dtype"``, ``"shape"``, ``"only in A"`` or
    ``"only in B"``.
    """

    name: str
    status: str
    dtype_a: str | None = None
    dtype_b: str | None = None
    shape_a: tuple[int, ...] | None = None
    shape_b: tuple[int, ...] | None = None
    diff: ArrayDiff | None = None

    @property
    def matches(self) -> bool:
        return self.status == "identical"

    def describe(self) -> str:
        if self.status == "identical":
            return "identical"
        if self.status == "differs" and self.diff is not None:
            return self.diff.describe(self.name).split(": ", 1)[1]
        if self.status == "dtype":
            return f"dtype {self.dtype_a} != {self.dtype_b}"
        if self.status == "shape":
            return f"shape {list(self.shape_a or ())} != {list(self.shape_b or ())}"
        return self.status


@dataclasses.dataclass
class CheckpointComparison:
    """What :func:`compare_checkpoints` found; ``matches`` is the verdict. ``devices``:
    for two folders that differ exactly, whether the differences are the ones MLX's CPU
    and GPU quantizations make and which side matches which device (:mod:`mlxq.devicediff`);
    None when not examined."""

    a: str
    b: str
    rule: str
    tensors: list[TensorComparison]
    files: dict[str, str]  # "config.json" / index -> how they differ (absent when equal)
    devices: Optional[DeviceExplanation] = None

    @property
    def matches(self) -> bool:
        return all(t.matches for t in self.tensors) and not self.files

    @property
    def differing(self) -> list[TensorComparison]:
        return [t for t in self.tensors if not t.matches]

    def table(self, *, all_rows: bool = True) -> str:
        rows = self.tensors if all_rows else self.differing
        if not rows:
            return ""
        w = max(len(t.name) for t in rows)
        out = []
        for t in rows:
            dt = t.dtype_a or t.dtype_b or ""
            shape = list(t.shape_a if t.shape_a is not None else (t.shape_b or ()))
            out.append(f"{t.name:<{w}}  {dt:<9} {str(shape):<18} {t.describe()}")
        return "\n".join(out)

    def summary(self) -> str:
        n = len(self.tensors)
        bad = self.differing
        head = (f"{self.a} vs {self.b} ({self.rule}): "
                + ("identical" if self.matches else "DIFFER"))
        counts = {}
        for t in bad:
            counts[t.status] = counts.get(t.status, 0) + 1
        detail = f"{n - len(bad)} of {n} tensors match"
        if counts:
            detail += " (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")"
        lines = [head, "  " + detail]
        for f, d in self.files.items():
            lines.append(f"  {f}: {d}")
        if self.devices is not None and self.devices.groups:
            lines.append("  " + self.devices.describe("A", "B"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``mlxq compare --json``)."""
        def row(t: TensorComparison) -> dict[str, Any]:
            d: dict[str, Any] = {"name": t.name, "status": t.status,
                                 "dtype": [t.dtype_a, t.dtype_b],
                                 "shape": [list(t.shape_a) if t.shape_a is not None else None,
                                           list(t.shape_b) if t.shape_b is not None else None]}
            if t.diff is not None and t.diff.n_diff:
                f = t.diff
                d.update(n_diff=f.n_diff, size=f.size, max_abs=_json_num(f.max_abs),
                         max_rel=_json_num(f.max_rel), max_ulp=f.max_ulp,
                         first_index=list(f.first_index) if f.first_index else None,
                         first_values=[_json_num(v) for v in f.first_values]
                         if f.first_values else None)
            return d
        out = {"a": self.a, "b": self.b, "rule": self.rule, "matches": self.matches,
               "tensors": [row(t) for t in self.tensors], "files": dict(self.files)}
        if self.devices is not None:
            d = self.devices
            out["devices"] = {"only_rounding": d.only_rounding, "sides": d.sides,
                              "groups": d.groups, "explained": d.explained,
                              "a_gpu": d.a_gpu, "b_gpu": d.b_gpu,
                              "unexplained_tensors": d.unexplained_tensors,
                              "description": d.describe("A", "B")}
        return out


def _json_num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _open_side(path: str) -> Mapping[str, np.ndarray]:
    from .io import load_checkpoint, load_safetensors

    if os.path.isfile(path):
        return load_safetensors(path)
    return load_checkpoint(path)


def compare_checkpoints(a: str | os.PathLike, b: str | os.PathLike, *, exact: bool = True,
                        rtol: float | None = None, atol: float | None = None,
                        max_ulp: int | None = None, check_config: bool = CHECK_CONFIG,
                        check_index: bool = False) -> CheckpointComparison:
    """Compares two checkpoint folders (or two ``.safetensors`` files) tensor by tensor.

    Both sides are memory-mapped; one pair of tensors is compared at a time, in chunks, so
    checkpoints larger than memory compare fine. Exact (bit patterns) by default; with
    ``exact=False`` the ``rtol``/``atol``/``max_ulp`` rule of :func:`compare_arrays`.
    Two folders' ``config.json`` are compared too (as parsed JSON; ``check_config=False``
    skips it), and with ``check_index`` their ``model.safetensors.index.json``; a lone
    ``.safetensors`` file has neither of its own, so for files only the tensors count.

    >>> import tempfile, os, numpy as np, mlxq
    >>> tmp = tempfile.TemporaryDirectory()
    >>> a, b = os.path.join(tmp.name, "a.safetensors"), os.path.join(tmp.name, "b.safetensors")
    >>> mlxq.save_safetensors(a, {"w": np.zeros(4, np.float32)})
    >>> mlxq.save_safetensors(b, {"w": np.float32([0, 0, 1, 0])})
    >>> r = compare_checkpoints(a, b)
    >>> r.matches, r.tensors[0].diff.n_diff, r.tensors[0].diff.first_index
    (False, 1, (2,))
    >>> del r; tmp.cleanup()
    """
    a, b = os.fspath(a), os.fspath(b)
    ma, mb = _open_side(a), _open_side(b)
    rows: list[TensorComparison] = []
    from ._sort import natural_key

    for name in sorted(set(ma) | set(mb), key=natural_key):
        if name not in mb:
            x = ma[name]
            rows.append(TensorComparison(name, "only in A", str(x.dtype), None, x.shape))
            continue
        if name not in ma:
            y = mb[name]
            rows.append(TensorComparison(name, "only in B", None, str(y.dtype), None, y.shape))
            continue
        x, y = ma[name], mb[name]
        row = TensorComparison(name, "identical", str(x.dtype), str(y.dtype), x.shape, y.shape)
        if x.dtype != y.dtype:
            row.status = "dtype"
        elif x.shape != y.shape:
            row.status = "shape"
        else:
            row.diff = compare_arrays(x, y, exact=exact, rtol=rtol, atol=atol, max_ulp=max_ulp)
            if row.diff.n_diff:
                row.status = "differs"
        rows.append(row)
        del x, y
    files: dict[str, str] = {}
    names = (["config.json"] if check_config else []) + (
        ["model.safetensors.index.json"] if check_index else [])
    if not (os.path.isdir(a) and os.path.isdir(b)):
        names = []  # a lone file has no config or index of its own
    for fname in names:
        pa, pb = os.path.join(a, fname), os.path.join(b, fname)
        if os.path.exists(pa) != os.path.exists(pb):
            files[fname] = "present in only " + ("A" if os.path.exists(pa) else "B")
        elif os.path.exists(pa):
            ja, jb = _load_json(pa), _load_json(pb)
            if ja != jb:
                files[fname] = "differs: " + _json_diff(ja, jb)
    devices = None
    differing = [r.name for r in rows if r.status == "differs"]
    if exact and differing and os.path.isdir(a) and os.path.isdir(b):
        devices = explain_device_differences(
            ma, mb, differing + [r.name for r in rows if r.status not in ("identical",
                                                                           "differs")],
            os.path.join(a, "config.json"), os.path.join(b, "config.json"))
    if exact:
        rule = "exact (bit patterns)"
    else:
        parts = [f"{k}={v}" for k, v in (("rtol", rtol), ("atol", atol), ("max_ulp", max_ulp))
                 if v is not None]
        rule = "within " + (", ".join(parts) if parts else "rtol=1e-07")
    return CheckpointComparison(a, b, rule, rows, files, devices)


def _json_diff(a: Any, b: Any, path: str = "") -> str:
    """The first difference between two parsed JSON values, as a readable path."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                return f"{p} only in the second"
            if k not in b:
                return f"{p} only in the first"
            if a[k] != b[k]:
                return _json_diff(a[k], b[k], p)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _json_diff(x, y, f"{path}[{i}]")
    return f"{path or '<root>'}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"


def _devices(dir_a: str, dir_b: str, ma: Mapping[str, Any], mb: Mapping[str, Any],
             lines: list[str]) -> Optional[DeviceExplanation]:
    """The device explanation for assert_checkpoints_equal's differing tensors (its report
    lines begin with the tensor name)."""
    names = [ln.split(":", 1)[0] for ln in lines]
    differing = [n for n in names if n in ma and n in mb]
    if not differing or len(differing) != len(names):
        return None
    return explain_device_differences(ma, mb, differing, os.path.join(dir_a, "config.json"),
                                      os.path.join(dir_b, "config.json"))


def mlx_device() -> str:
    """The device the installed MLX quantizes on by default (``"gpu"`` on Apple silicon,
    ``"cpu"`` with ``mlx[cpu]``): the ``device`` to give :func:`mlxq.convert` /
    :func:`mlxq.quantize` before comparing their results with ``mlx_lm.convert`` or
    ``mx.quantize`` run in this process. Raises ImportError without MLX.

    The pytest plugin's ``mlx_device`` fixture returns it, skipping the test without MLX.
    """
    import mlx.core as mx

    return "gpu" if mx.default_device() == mx.gpu else "cpu"


class _Expected:
    """What ``exact(x)`` / ``close(x)`` return: compares equal to a value that matches ``x``
    under the rule, so ``assert actual == exact(expected)`` works for arrays and weight maps
    (numpy defers to this class because of ``__array_ufunc__ = None``). The pytest plugin
    turns a failed comparison into the same report the assert_* helpers raise."""

    __array_ufunc__ = None
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, expected: Any, exact: bool, rtol: float | None, atol: float | None,
                 max_ulp: int | None):
        self.expected = expected
        self.exact = exact
        self.rtol, self.atol, self.max_ulp = rtol, atol, max_ulp

    def report(self, actual: Any) -> list[str]:
        """The differences between ``actual`` and the expected value (empty when equal)."""
        kw = dict(exact=self.exact, rtol=self.rtol, atol=self.atol, max_ulp=self.max_ulp)
        if isinstance(self.expected, Mapping):
            if not isinstance(actual, Mapping):
                return [f"expected a mapping, got {type(actual).__name__}"]
            return _report_maps(actual, self.expected, None, label_a="actual",
                                label_b="expected", **kw)
        a, b = np.asarray(actual), np.asarray(self.expected)
        head = _header(a, b, "array")
        if head:
            return [head]
        d = compare_arrays(a, b, **kw)
        return [d.describe("array")] if d.n_diff else []

    def __eq__(self, actual: object) -> bool:
        return not self.report(actual)

    def __ne__(self, actual: object) -> bool:
        return not self.__eq__(actual)

    def __repr__(self) -> str:
        rule = "exact" if self.exact else "close"
        return f"{rule}(<{type(self.expected).__name__}>)"


def exact(expected: Any) -> Any:
    """``assert actual == exact(expected)``: bit-identical arrays or weight maps.

    >>> np.float32([1, 2]) == exact(np.float32([1, 2]))
    True
    """
    return _Expected(expected, True, None, None, None)


def close(expected: Any, *, rtol: float | None = None, atol: float | None = None,
          max_ulp: int | None = None) -> Any:
    """``assert actual == close(expected, rtol=..., atol=..., max_ulp=...)``: numeric match."""
    return _Expected(expected, False, rtol, atol, max_ulp)
