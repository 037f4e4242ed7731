"""Helpers shared by the golden-vector generator (tools/gen_golden.py) and the tests.

Three concerns live here, all about comparing bits rather than values:

- dtypes by name and the unsigned integer type that holds each one's bit pattern, so arrays
  can be stored and compared as raw bits (NaN payloads and the sign of zero survive);
- ``assert_bits_equal``: dtype, shape and every byte equal, or an AssertionError naming the
  first differing index with both values and bit patterns;
- conversions between numpy and MLX arrays that keep bfloat16 bits intact, and ``synth``, a
  platform-independent pseudo-random input generator for the golden "hash" cases.

The golden file layout is described in tools/gen_golden.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from typing import Any

import ml_dtypes
import numpy as np

BF16 = np.dtype(ml_dtypes.bfloat16)

DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype(np.float16),
    "bfloat16": BF16,
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64),
}

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}

# MLXQ_GOLDEN_DIR points the tests at another set (e.g. one just written by
# `python tools/gen_golden.py --out DIR` with a newer MLX).
GOLDEN_DIR = os.environ.get("MLXQ_GOLDEN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "golden")
GOLDEN_MODES = ("affine", "mxfp4", "mxfp8", "nvfp4")
REGENERATE_HINT = "regenerate them with `python tools/gen_golden.py` (needs mlx installed)"


def dtype_name(dt: np.dtype) -> str:
    dt = np.dtype(dt)
    for name, d in DTYPES.items():
        if d == dt:
            return name
    raise KeyError(f"no name for dtype {dt}")


def as_bits(a: np.ndarray) -> np.ndarray:
    """``a`` viewed as unsigned integers of the same width (a contiguous copy if needed)."""
    a = np.ascontiguousarray(a)
    return a.view(_UINT[a.dtype.itemsize])


def from_bits(bits: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
    """Inverse of :func:`as_bits`."""
    dt = DTYPES[dtype] if isinstance(dtype, str) else np.dtype(dtype)
    return np.ascontiguousarray(bits).view(dt)


def _fmt(value: Any, bits: Any, dt: np.dtype) -> str:
    width = dt.itemsize * 2
    if dt.kind in "ui":
        return f"{int(value)} (0x{int(bits):0{width}x})"
    return f"{float(value)!r} (0x{int(bits):0{width}x})"


def assert_bits_equal(got: np.ndarray, want: np.ndarray, what: str = "array") -> None:
    """Asserts ``got`` and ``want`` have the same dtype, shape and bytes.

    The failure message gives the number of differing elements and, for the first one in C
    order, its index, both values and both bit patterns.
    """
    got = np.asarray(got)
    want = np.asarray(want)
    if got.dtype != want.dtype:
        raise AssertionError(f"{what}: dtype {got.dtype}, expected {want.dtype}")
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape}")
    gb, wb = as_bits(got), as_bits(want)
    diff = gb != wb
    if not diff.any():
        return
    flat = int(np.flatnonzero(diff.reshape(-1))[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, got.shape))
    g, w = got[idx], want[idx]
    raise AssertionError(
        f"{what}: {int(diff.sum())} of {got.size} elements differ; first at index {idx}: "
        f"got {_fmt(g, gb[idx], got.dtype)}, expected {_fmt(w, wb[idx], want.dtype)}"
    )


def sha256(a: np.ndarray) -> str:
    """Digest of an array's dtype, shape and bytes (C order)."""
    h = hashlib.sha256()
    h.update(json.dumps([dtype_name(a.dtype), list(a.shape)]).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ---- deterministic inputs for the large "hash" cases ------------------------------------

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return x ^ (x >> np.uint64(31))


def synth(shape: tuple[int, ...], dtype: str, seed: int, spread: int = 8) -> np.ndarray:
    """A pseudo-random array that is the same on every platform and numpy version.

    Integer hashing only, then exact float64 arithmetic (a 53-bit fraction times a power of
    two), then one cast to ``dtype``: values are uniform in (-1, 1) times 2**k with k in
    [-spread, spread] chosen per group of 16 elements, with about one element in 97 replaced
    by zero. Used by the golden "hash" cases, which store only digests of MLX's outputs.
    """
    n = int(np.prod(shape))
    idx = np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x100000001B3)
    h = _splitmix64(idx)
    frac = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53  # exact: 53-bit integer
    val = frac * 2.0 - 1.0
    grp = _splitmix64(idx // np.uint64(16) + np.uint64(seed) * np.uint64(7919))
    k = (grp % np.uint64(2 * spread + 1)).astype(np.int64) - spread
    val = np.ldexp(val, k)
    val[(h % np.uint64(97)) == 0] = 0.0
    with np.errstate(over="ignore"):
        return val.reshape(shape).astype(DTYPES[dtype])


# ---- MLX interop ------------------------------------------------------------------------


def to_mx(a: np.ndarray):
    """numpy -> mlx.core.array, keeping bfloat16 bits (numpy has no native bfloat16)."""
    import mlx.core as mx

    a = np.ascontiguousarray(a)
    if a.dtype == BF16:
        return mx.array(a.view(np.uint16)).view(mx.bfloat16)
    return mx.array(a)


def to_np(x) -> np.ndarray:
    """mlx.core.array -> numpy, keeping bfloat16 bits."""
    import mlx.core as mx

    if x.dtype == mx.bfloat16:
        return np.array(x.view(mx.uint16)).view(BF16)
    return np.array(x)


def mx_dtype(name: str | None):
    import mlx.core as mx

    return None if name is None else getattr(mx, name)


# ---- kernel configurations ---------------------------------------------------------------

ISAS = ("scalar", "avx2", "avx512")

# (impl, isa cap, threads): the reference kernel once, the fast kernels under every
# instruction set and with one and two threads.
KERNEL_CONFIGS = [("reference", None, None)] + [
    ("fast", isa, threads) for isa in ISAS for threads in (1, 2)
]


def config_id(cfg: tuple) -> str:
    impl, isa, threads = cfg
    return impl if isa is None else f"{impl}-{isa}-t{threads}"


def isa_supported(isa: str) -> bool:
    from mlxq import _core

    return ISAS.index(isa) <= ISAS.index(_core.isa()[1])


def supported_configs() -> list[tuple]:
    return [c for c in KERNEL_CONFIGS if c[1] is None or isa_supported(c[1])]


@contextlib.contextmanager
def use_kernel(impl: str, isa: str | None = None, threads: int | None = None):
    """Caps the ISA and sets the thread count (when given), restoring both afterwards;
    yields the ``impl`` argument to pass to mlxq."""
    import mlxq
    from mlxq import _core

    prev_isa = _core.set_isa(isa) if isa is not None else None
    prev_threads = mlxq.get_num_threads()
    try:
        if threads is not None:
            mlxq.set_num_threads(threads)
        yield impl
    finally:
        if prev_isa is not None:
            _core.set_isa(prev_isa)
        mlxq.set_num_threads(prev_threads)


def mlx_lm_convert(src, dst, **flags) -> None:
    """``mlx_lm.convert(src, dst, **flags)`` in this process (sparing an interpreter
    start-up), its printing swallowed; skips the test when mlx-lm is not importable."""
    import pytest

    mlx_lm = pytest.importorskip("mlx_lm")
    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(str(src), str(dst), **flags)


def assert_same_folder(a, b, *, check_index: bool = False) -> None:
    """Two converted folders hold the same tensors (names, dtypes, shapes, bytes) and
    byte-identical ``config.json`` files; with ``check_index`` the same shard index too."""
    from mlxq.testing import assert_checkpoints_equal

    assert_checkpoints_equal(a, b, check_config=True, check_index=check_index)
    with open(os.path.join(a, "config.json"), "rb") as fa, \
            open(os.path.join(b, "config.json"), "rb") as fb:
        assert fa.read() == fb.read()
