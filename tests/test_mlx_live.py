"""mlxq against the installed MLX on random inputs drawn by hypothesis, bit for bit.

Skipped when ``mlx`` is not importable. Examples are derandomized (conftest.py's "ci"
profile), so every run checks the same inputs; ``MLXQ_HYPOTHESIS_PROFILE=thorough`` draws
thousands of fresh ones. Each example is checked with the reference kernel and with the fast
kernels under every instruction set the CPU has.
"""

from __future__ import annotations

import dataclasses
import math

import ml_dtypes
import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("hypothesis")

from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mlxq  # noqa: E402
from support import (  # noqa: E402
    DTYPES,
    ISAS,
    assert_bits_equal,
    isa_supported,
    mx_dtype,
    to_mx,
    to_np,
    use_kernel,
)

PARAMS = {
    "affine": [(gs, bits) for gs in (32, 64, 128) for bits in (2, 3, 4, 5, 6, 8)],
    "mxfp4": [(32, 4)], "mxfp8": [(32, 8)], "nvfp4": [(16, 4)],
}
# one hypothesis test per mode, so a bug in one mode cannot hide another's
FLOATS = ("float16", "bfloat16", "float32", "float64")
# exponent range (powers of two) that keeps typical values finite in each dtype
EXP_RANGE = {"float16": (-26, 14), "bfloat16": (-135, 125), "float32": (-150, 125),
             "float64": (-1060, 1010)}
# MLX 0.32.4 returns garbage for dtype=float64 in these modes (see test_golden.py)
NO_F64_DEQUANT = ("mxfp8", "nvfp4")

FP4_TIES = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, 0.0]
E4M3 = np.arange(0, 0x7F, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
E4M3_TIES = list((E4M3[:-1] + E4M3[1:]) / 2) + [448.0]

NV_GLOBAL_SCALES = [1.0, 2688.0, 0.0, -1.0, float("inf"), float("nan"), 1e-45, 1e-38, 1e-30,
                    3.4028234663852886e38, 1e30]


def configs() -> list[tuple[str, str | None]]:
    return [("reference", None)] + [("fast", isa) for isa in ISAS if isa_supported(isa)]


@dataclasses.dataclass
class Problem:
    mode: str
    group_size: int
    bits: int
    w: np.ndarray
    global_scale: np.float32 | None
    request: str

    def kwargs(self) -> dict:
        return dict(group_size=self.group_size, bits=self.bits, mode=self.mode)


def _specials(dt: np.dtype) -> list[float]:
    fi = ml_dtypes.finfo(dt)
    big, tiny = float(fi.max), float(fi.smallest_subnormal)
    return [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, big, -big, tiny, -tiny,
            float(fi.smallest_normal)]


@st.composite
def problems(draw, mode: str) -> Problem:
    gs, bits = draw(st.sampled_from(PARAMS[mode]))
    dtype = draw(st.sampled_from(FLOATS[:3] if mode == "affine" else FLOATS))
    dt = DTYPES[dtype]
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    rows = draw(st.integers(1, 5))
    groups = draw(st.integers(1, 4))
    if mode == "nvfp4" and groups % 2:
        groups += 1  # MLX's nvfp4 needs a multiple of 32 elements
    shape = tuple(batch) + (rows, groups * gs)
    n = math.prod(shape)
    lo, hi = EXP_RANGE[dtype]
    exp = draw(st.integers(lo, hi))
    kind = draw(st.sampled_from(["normal", "uniform", "heavy", "grid", "ties", "per_group"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "normal":
        v = rng.standard_normal(n)
    elif kind == "uniform":
        v = rng.uniform(-1, 1, n)
    elif kind == "heavy":
        v = rng.standard_normal(n) * np.exp(rng.standard_normal(n) * 3)
    elif kind == "grid":
        v = rng.integers(-16, 17, n) * 0.25
    elif kind == "ties":
        ties = FP4_TIES if bits == 4 else E4M3_TIES if mode == "mxfp8" else \
            [k + 0.5 for k in range(2**bits)]
        v = rng.choice(ties, n) * rng.choice([-1.0, 1.0], n)
    else:
        v = rng.standard_normal(n) * np.exp2(np.repeat(rng.integers(-12, 13, n // gs), gs))
    with np.errstate(over="ignore", invalid="ignore"):
        w = (v * 2.0**exp).astype(dt).reshape(shape)
    spots = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(_specials(dt))),
                          max_size=4))
    flat = w.reshape(-1)
    for i, x in spots:
        flat[i] = x
    gscale = None
    if mode == "nvfp4":
        choice = draw(st.one_of(
            st.none(), st.sampled_from(NV_GLOBAL_SCALES),
            st.floats(float(np.float32(1e-20)), float(np.float32(1e20)), width=32), st.just("amax")))
        if choice == "amax":
            with np.errstate(invalid="ignore"):
                choice = float(np.nanmax(np.abs(w.astype(np.float64))))
        with np.errstate(over="ignore"):  # a float64 maximum may overflow float32: inf
            gscale = None if choice is None else np.float32(choice)
    reqs = ["default", "float16", "bfloat16", "float32"]
    if mode not in NO_F64_DEQUANT:
        reqs.append("float64")
    request = draw(st.sampled_from(reqs))
    return Problem(mode, gs, bits, w, gscale, request)


def _mx_gscale(g):
    return {} if g is None else {"global_scale": mx.array(np.float32(g))}


@pytest.mark.parametrize("mode", list(PARAMS))
@given(data=st.data())
def test_quantize_and_dequantize_match_live_mlx(mode: str, data):
    p = data.draw(problems(mode), label="problem")
    note(f"{p.mode} gs={p.group_size} bits={p.bits} dtype={p.w.dtype} shape={p.w.shape} "
         f"global_scale={p.global_scale!r} dequantize dtype={p.request}")
    want = [to_np(a) for a in mx.quantize(to_mx(p.w), **p.kwargs(), **_mx_gscale(p.global_scale))]
    dq = mx.dequantize(*[to_mx(a) for a in want], **p.kwargs(), **_mx_gscale(p.global_scale),
                       dtype=mx_dtype(None if p.request == "default" else p.request))
    want_deq = to_np(dq)
    for impl, isa in configs():
        with use_kernel(impl, isa):
            got = mlxq.quantize(p.w, **p.kwargs(), global_scale=p.global_scale, impl=impl)
            assert len(got) == len(want)
            for name, g, m in zip(("wq", "scales", "biases"), got, want):
                assert_bits_equal(g, m, f"{impl}/{isa} {name}")
            deq = mlxq.dequantize(*got, **p.kwargs(), global_scale=p.global_scale,
                                  dtype=None if p.request == "default" else p.request,
                                  impl=impl)
            assert_bits_equal(deq, want_deq, f"{impl}/{isa} dequantize(dtype={p.request})")


@st.composite
def dequant_problems(draw, mode: str):
    """Arbitrary codes and scales (not only what quantize produces)."""
    gs, bits = draw(st.sampled_from(PARAMS[mode]))
    rows = draw(st.integers(1, 4))
    groups = draw(st.integers(1, 4))
    if mode == "nvfp4" and groups % 2:
        groups += 1
    batch = draw(st.lists(st.integers(1, 2), max_size=1))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lead = tuple(batch) + (rows,)
    wq = rng.integers(0, 2**32, lead + (groups * gs * bits // 32,), dtype=np.uint64)
    wq = wq.astype(np.uint32)
    gscale = None
    if mode == "affine":
        sdt = draw(st.sampled_from(FLOATS[:3]))
        bdt = draw(st.one_of(st.just(sdt), st.sampled_from(FLOATS[:3])))  # same dtype: 2/3
        exp = draw(st.integers(-20, 10))
        specials = _specials(DTYPES["float16"])
        sc = rng.standard_normal(lead + (groups,)) * 2.0**exp
        bi = rng.standard_normal(lead + (groups,))
        for a in (sc, bi):
            hit = rng.random(a.shape) < draw(st.sampled_from([0.0, 0.2]))
            a[hit] = rng.choice(specials, int(hit.sum()))
        with np.errstate(over="ignore"):
            inputs = [wq, sc.astype(DTYPES[sdt]), bi.astype(DTYPES[bdt])]
    else:
        sc = rng.integers(0, 256, lead + (groups,), dtype=np.uint16).astype(np.uint8)
        if mode != "nvfp4":
            # keep most bytes near 127 (ordinary scales), with some anywhere
            near = rng.integers(100, 150, sc.shape).astype(np.uint8)
            sc = np.where(rng.random(sc.shape) < 0.7, near, sc)
        # sprinkle the extreme bytes: E8M0 0x00/0xFF, E4M3 NaN 0x7F/0xFF, 0x7E, 0x80
        hit = rng.random(sc.shape) < 0.15
        sc[hit] = rng.choice(np.array([0x00, 0xFF, 0x7F, 0x7E, 0x80, 0xFE], np.uint8),
                             int(hit.sum()))
        inputs = [wq, sc]
        if mode == "nvfp4":
            choice = draw(st.one_of(st.none(), st.sampled_from(NV_GLOBAL_SCALES),
                                    st.floats(float(np.float32(1e-20)), float(np.float32(1e20)), width=32)))
            gscale = None if choice is None else np.float32(choice)
    reqs = ["default", "float16", "bfloat16", "float32"]
    if mode not in NO_F64_DEQUANT:
        reqs.append("float64")
    return mode, gs, bits, inputs, gscale, draw(st.sampled_from(reqs))


@pytest.mark.parametrize("mode", list(PARAMS))
@given(data=st.data())
def test_dequantize_of_arbitrary_codes_matches_live_mlx(mode: str, data):
    mode, gs, bits, inputs, gscale, request = data.draw(dequant_problems(mode), label="problem")
    note(f"{mode} gs={gs} bits={bits} inputs={[(a.dtype, a.shape) for a in inputs]} "
         f"global_scale={gscale!r} dtype={request}")
    kw = dict(group_size=gs, bits=bits, mode=mode)
    dtype = None if request == "default" else request
    want = to_np(mx.dequantize(*[to_mx(a) for a in inputs], **kw, **_mx_gscale(gscale),
                               dtype=mx_dtype(dtype)))
    for impl, isa in configs():
        with use_kernel(impl, isa):
            got = mlxq.dequantize(*inputs, **kw, global_scale=gscale, dtype=dtype, impl=impl)
            assert_bits_equal(got, want, f"{impl}/{isa} dequantize(dtype={request})")


@pytest.mark.parametrize("mode, gs, bits", [("affine", 64, 4), ("affine", 128, 3),
                                            ("mxfp4", 32, 4), ("mxfp8", 32, 8),
                                            ("nvfp4", 16, 4)])
def test_threaded_matrix_matches_live_mlx(mode, gs, bits):
    """A matrix big enough for the pool to split into many tasks, with two threads."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((4, 96, 1024)) * np.exp(rng.standard_normal((4, 96, 1)))).astype(
        DTYPES["bfloat16"])
    kw = dict(group_size=gs, bits=bits, mode=mode)
    want = [to_np(a) for a in mx.quantize(to_mx(w), **kw)]
    want_deq = to_np(mx.dequantize(*[to_mx(a) for a in want], **kw))
    for impl, isa in configs():
        with use_kernel(impl, isa, threads=2):
            got = mlxq.quantize(w, **kw, impl=impl)
            for name, g, m in zip(("wq", "scales", "biases"), got, want):
                assert_bits_equal(g, m, f"{impl}/{isa} {name}")
            assert_bits_equal(mlxq.dequantize(*got, **kw, impl=impl), want_deq,
                              f"{impl}/{isa} dequantize")
