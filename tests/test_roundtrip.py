"""dequantize(quantize(w)) stays within error bounds that follow from each format.

The bounds are derived from the arithmetic in docs/formats.md, per group, from the stored
scales (so a wrong scale choice and a wrong element code are caught separately):

affine   With s the group's scale and r = (max - min) / |edge| (edge = the extreme value of
         larger magnitude, which is reconstructed exactly), an element's error is at most
         max(1/2, r/2) * |s|: 1/2 from rounding to the nearest code, up to r/2 where the far
         end of the range is clamped to the last code after q0 = rint(edge / scale) moved
         the scale. Storing s in the weight dtype (relative error u) and the two roundings of
         q * s + bias add at most u * (2 * n_bins * |s| + |result|), plus half a subnormal
         step per code unit when the stored scale is subnormal.
mxfp4/8  The E8M0 scale 2^e is the smallest power of two >= max|w| / maxval; an element w/2^e
         is rounded to the nearest E2M1 value (error <= half the gap: 1/4 below 2, 1/2 below
         4, 1 up to 6) or to E4M3 (relative 2^-4, absolute 2^-10 for subnormals).
nvfp4    The E4M3 scale is within 2^-4 (relative) of max|w| / 6 (times the global factor);
         elements as for E2M1, the scaled value may exceed 6 by the scale's rounding.

Each bound is also shown to be tight (errors reach a good part of it) and to catch a corrupted
code, so the assertions can fail.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import mlxq
from support import DTYPES

BF16 = DTYPES["bfloat16"]
# unit roundoff and smallest subnormal of each storage dtype
U = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24}
MIN_SUB = {"float16": 2.0**-24, "bfloat16": 2.0**-133, "float32": 2.0**-149}
AFFINE_CASES = [(bits, gs, dt) for bits in (2, 3, 4, 5, 6, 8) for gs in (32, 64, 128)
                for dt in ("float16", "bfloat16", "float32")]
IMPLS = ("reference", "fast")


def weights(dtype: str, shape=(12, 256), seed=0) -> np.ndarray:
    """Rows of different kinds and magnitudes, all finite in ``dtype``."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    mags = {"float16": [1e-3, 0.02, 1.0, 30.0, 500.0],
            "bfloat16": [1e-30, 1e-3, 1.0, 1e3, 1e30],
            "float32": [1e-30, 1e-3, 1.0, 1e3, 1e30],
            "float64": [1e-3, 0.02, 1.0, 30.0, 500.0]}[dtype]
    out = np.empty(shape)
    for i in range(rows):
        m = mags[i % len(mags)]
        kind = i % 4
        if kind == 0:
            out[i] = rng.standard_normal(cols) * m
        elif kind == 1:
            out[i] = rng.uniform(-1, 1, cols) * m
        elif kind == 2:  # outliers: a few large values per row
            out[i] = rng.standard_normal(cols) * m
            out[i, rng.choice(cols, 4, replace=False)] *= 40
        else:  # one-signed rows with an offset (affine bias far from 0)
            out[i] = (rng.uniform(0, 1, cols) + 3.0) * m * (1 if i % 8 < 4 else -1)
    return out.astype(DTYPES[dtype])


# ---- affine -------------------------------------------------------------------------


def affine_error_bound(w: np.ndarray, scales: np.ndarray, biases: np.ndarray, bits: int,
                       deq: np.ndarray, dtype: str) -> np.ndarray:
    """Per-element bound on |deq - w| (float64), shaped like w."""
    gs = w.shape[-1] // scales.shape[-1]
    n = 2**bits - 1
    g = w.astype(np.float64).reshape(w.shape[:-1] + (-1, gs))
    w_max, w_min = g.max(-1), g.min(-1)
    edge = np.where(np.abs(w_min) > np.abs(w_max), w_min, w_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(edge != 0, (w_max - w_min) / np.abs(edge), 2.0)
    u, tiny = U[dtype], MIN_SUB[dtype]
    s = np.abs(scales.astype(np.float64)) * (1 + u) + tiny  # the float32 scale, bounded
    # storing the scale costs u relative, or half a subnormal step absolute, per code unit
    per_group = s * (np.maximum(0.5, r / 2) + 2.0**-20) + n * (2 * u * s + tiny) + 4 * tiny
    bound = np.repeat(per_group, gs, axis=-1).reshape(w.shape)
    return bound + u * np.abs(deq.astype(np.float64))


def affine_violations(w, q, bits, deq, dtype):
    wq, scales, biases = q
    err = np.abs(deq.astype(np.float64) - w.astype(np.float64))
    bound = affine_error_bound(w, scales, biases, bits, deq, dtype)
    return err, bound, err > bound


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bits, gs, dtype", AFFINE_CASES)
def test_affine_error_is_within_half_a_step_plus_rounding(bits, gs, dtype, impl):
    w = weights(dtype, seed=bits * 1000 + gs)
    q = mlxq.quantize(w, gs, bits, impl=impl)
    deq = mlxq.dequantize(*q, gs, bits, impl=impl)
    assert deq.dtype == w.dtype
    err, bound, bad = affine_violations(w, q, bits, deq, dtype)
    if bad.any():
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        pytest.fail(f"|error| {err[i]:.6g} > bound {bound[i]:.6g} at {i} (w={w[i]!r}, "
                    f"deq={deq[i]!r}); {int(bad.sum())} elements")
    # the bound is not vacuous: some element comes close to it
    assert (err / bound).max() > 0.3


@pytest.mark.parametrize("bits", (2, 4, 8))
def test_affine_bound_catches_a_corrupted_code(bits):
    w = weights("float32", seed=5)
    wq, scales, biases = mlxq.quantize(w, 64, bits)
    bad_wq = wq.copy()
    bad_wq[3, 0] ^= np.uint32(1 << (bits - 1))  # the top bit of element 0 of row 3
    deq = mlxq.dequantize(bad_wq, scales, biases, 64, bits)
    _, _, bad = affine_violations(w, (bad_wq, scales, biases), bits, deq, "float32")
    assert bad[3, 0] and bad.sum() == 1


def test_affine_bound_catches_a_wrong_scale():
    w = weights("float32", seed=6)
    wq, scales, biases = mlxq.quantize(w, 64, 4)
    scales2 = scales * np.float32(1.1)
    deq = mlxq.dequantize(wq, scales2, biases, 64, 4)
    _, _, bad = affine_violations(w, (wq, scales, biases), 4, deq, "float32")
    assert bad.any()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bits", (2, 3, 4, 5, 6, 8))
def test_affine_values_on_the_grid_come_back_exactly(bits, impl):
    """Codes 0..n_bins times a power-of-two step plus an offset are reconstructed exactly
    (the extremes fix scale and bias exactly)."""
    n = 2**bits - 1
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, n + 1, (6, 128))
    codes[:, 0::64], codes[:, 1::64] = 0, n  # every group spans the whole range
    w = (codes * 2.0**-3).astype(np.float32)
    deq = mlxq.dequantize(*mlxq.quantize(w, 64, bits, impl=impl), 64, bits, impl=impl)
    np.testing.assert_array_equal(deq, w)


@pytest.mark.parametrize("dtype", ("float16", "bfloat16", "float32"))
def test_affine_constant_and_zero_groups_are_exact(dtype):
    w = np.zeros((3, 64), DTYPES[dtype])
    w[1] = 0.7
    w[2] = -1.3
    deq = mlxq.dequantize(*mlxq.quantize(w, 64, 4), 64, 4)
    np.testing.assert_array_equal(deq.view(np.uint8), w.view(np.uint8))


# ---- mxfp4 / mxfp8 / nvfp4 -----------------------------------------------------------

E2M1_HALF_GAP = [(2.0, 0.25), (4.0, 0.5), (6.0, 1.0)]


def fp4_element_bound(x: np.ndarray) -> np.ndarray:
    """Largest error of rounding |x| (in units of the scale) to the nearest E2M1 value."""
    a = np.abs(x)
    b = np.where(a <= 2.0, 0.25, np.where(a <= 4.0, 0.5, 1.0))
    return np.where(a > 6.0, a - 6.0 + 0.0, b)


def fp8_element_bound(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return np.where(a > 448.0, a - 448.0, np.maximum(a * 2.0**-4, 2.0**-10))


def group_view(a: np.ndarray, gs: int) -> np.ndarray:
    return a.astype(np.float64).reshape(a.shape[:-1] + (-1, gs))


def fp_check(mode: str, w: np.ndarray, q, deq: np.ndarray, gscale=None):
    """Returns (scale_ok per group, element err, element bound)."""
    wq, sbytes = q
    gs = {"mxfp4": 32, "mxfp8": 32, "nvfp4": 16}[mode]
    dt = "float32" if w.dtype == np.float64 else str(w.dtype)
    u = U.get(dt, 2.0**-24)
    g = group_view(w, gs)
    amax = np.abs(g).max(-1)
    if mode == "nvfp4":
        enc = 1.0 if gscale is None else 2688.0 / float(np.float32(gscale))
        dec = sbytes.view(ml_dtypes.float8_e4m3fn).astype(np.float64)
        unit = dec / enc  # what one E2M1 unit is worth
        target = amax / 6.0 * enc
        scale_ok = np.abs(dec - target) <= target * (2.0**-4 + 4 * u) + 2.0**-10
    else:
        maxval = 6.0 if mode == "mxfp4" else 448.0
        unit = np.exp2(sbytes.astype(np.float64) - 127.0)
        target = amax / maxval
        # the smallest power of two >= target (up to the rounding of target in the dtype)
        scale_ok = (unit >= target * (1 - 2 * u)) & ((target == 0) | (unit < 2 * target * (1 + 2 * u)))
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero scale: no bound (NaN)
        x = g / unit[..., None]
        elem = fp8_element_bound(x) if mode == "mxfp8" else fp4_element_bound(x)
        bound = (elem + np.abs(x) * 2 * u + 1e-12) * unit[..., None]
    err = np.abs(group_view(deq, gs) - g)
    return scale_ok, err, bound


FP_CASES = [(m, dt) for m in ("mxfp4", "mxfp8", "nvfp4")
            for dt in ("float16", "bfloat16", "float32", "float64")]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode, dtype", FP_CASES)
def test_fp_error_is_within_the_element_format(mode, dtype, impl):
    w = weights(dtype if mode != "nvfp4" else "float16" if dtype == "float16" else "float64",
                seed=len(mode) * 7 + len(dtype)).astype(DTYPES[dtype])
    if mode == "nvfp4":  # keep max|w| / 6 inside E4M3's normal range without a global scale
        w = (w.astype(np.float64) / np.abs(w.astype(np.float64)).max(-1, keepdims=True)
             * 50.0).astype(DTYPES[dtype])
    q = mlxq.quantize(w, mode=mode, impl=impl)
    deq = mlxq.dequantize(*q, mode=mode, dtype="float64", impl=impl)
    scale_ok, err, bound = fp_check(mode, w, q, deq)
    assert scale_ok.all(), np.argwhere(~scale_ok)[:3]
    bad = err > bound
    if bad.any():
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        pytest.fail(f"|error| {err[i]:.6g} > bound {bound[i]:.6g} at group index {i}")
    assert (err / bound).max() > 0.3


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", ("float16", "bfloat16", "float32", "float64"))
def test_nvfp4_with_global_scale_spans_many_magnitudes(dtype, impl):
    """global_scale = max|w| maps every group's scale into E4M3's range, whatever the
    tensor's magnitude."""
    for mag in ((1e-4, 1.0, 1e4) if dtype != "float16" else (1e-2, 1.0, 100.0)):
        w = (weights("float64", seed=3) / 40 * mag).astype(DTYPES[dtype])
        amax = np.float32(np.abs(w.astype(np.float64)).max())
        q = mlxq.quantize(w, mode="nvfp4", global_scale=amax, impl=impl)
        deq = mlxq.dequantize(*q, mode="nvfp4", global_scale=amax, dtype="float64", impl=impl)
        scale_ok, err, bound = fp_check("nvfp4", w, q, deq, gscale=amax)
        # groups far below the tensor's maximum can land in E4M3's subnormals: the scale
        # check only holds for normal scales
        target = np.abs(group_view(w, 16)).max(-1) / 6 * (2688 / float(amax))
        assert scale_ok[target >= 2.0**-6].all()
        bound = bound * (1 + 2.0**-20) + 1e-300
        normal = np.repeat(target >= 2.0**-6, 16, axis=-1).reshape(err.shape)
        assert normal.mean() > 0.5  # most groups are checked
        assert not (normal & (err > bound)).any(), mag


@pytest.mark.parametrize("mode", ("mxfp4", "mxfp8", "nvfp4"))
def test_fp_bound_catches_a_corrupted_code(mode):
    w = weights("float32", seed=9)
    if mode == "nvfp4":
        w = w / np.abs(w).max(-1, keepdims=True) * 50.0
    wq, sc = mlxq.quantize(w, mode=mode)
    gs = 16 if mode == "nvfp4" else 32
    j = int(np.argmax(np.abs(w[2, :gs])))  # the group's largest element
    bad = wq.copy()
    sign_bit = 7 if mode == "mxfp8" else 3
    per_word = 4 if mode == "mxfp8" else 8
    width = 8 if mode == "mxfp8" else 4
    bad[2, j // per_word] ^= np.uint32(1 << ((j % per_word) * width + sign_bit))
    deq = mlxq.dequantize(bad, sc, mode=mode, dtype="float64")
    _, err, bound = fp_check(mode, w, (bad, sc), deq)
    assert err[2, 0, j] > bound[2, 0, j]


def test_fp_bound_catches_a_scale_one_step_too_small():
    w = weights("float32", seed=10)
    wq, sc = mlxq.quantize(w, mode="mxfp4")
    scale_ok, _, _ = fp_check("mxfp4", w, (wq, sc - np.uint8(1)), np.zeros_like(w, np.float64))
    assert not scale_ok.any()


@pytest.mark.parametrize("mode", ("mxfp4", "mxfp8"))
@pytest.mark.parametrize("dtype", ("float16", "bfloat16", "float32", "float64"))
def test_fp_format_values_come_back_exactly(mode, dtype):
    """Every E2M1 (E4M3) value times a power of two survives a round trip unchanged."""
    if mode == "mxfp4":
        vals = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6] * 4, np.float64)
    else:
        vals = np.arange(0, 0x7F, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(
            np.float64)[-32:]
    vals = vals * np.where(np.arange(32) % 3 == 0, -1, 1)
    w = np.stack([vals * 2.0**k for k in (-6, 0, 5)]).astype(DTYPES[dtype])
    deq = mlxq.dequantize(*mlxq.quantize(w, mode=mode), mode=mode, dtype=dtype)
    np.testing.assert_array_equal(deq, w)
