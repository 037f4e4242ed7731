"""quantize(method="mse"): error-minimising scales in MLX's own formats.

The oracles: an independent numpy statement of MLX's affine dequantization (unpack the bit
stream, ``T(T(q * scale) + bias)`` with numpy/ml_dtypes roundings), MLX's own
``mx.dequantize`` when installed, and ``method="mlx"`` (itself checked bit for bit against
MLX by test_golden.py / test_mlx_live.py) for the groups that must keep MLX's choice.
"""

from __future__ import annotations

import numpy as np
import pytest

import mlxq
from mlxq.errors import (
    InvalidArgumentError,
    OutOfRangeError,
    ShapeMismatchError,
    UnknownEnumValueError,
    UnsupportedDtypeError,
)
from support import BF16, assert_bits_equal

RNG = np.random.default_rng(20260514)
AFFINE = [(gs, bits) for gs in (32, 64, 128) for bits in (2, 3, 4, 5, 6, 8)]
FP_MODES = {"mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}


def heavy_tailed(shape, dtype, seed=0) -> np.ndarray:
    r = np.random.default_rng(seed)
    return (r.standard_t(3, shape) * 0.02).astype(dtype)


def unpack_codes(wq: np.ndarray, n: int, bits: int) -> np.ndarray:
    """Codes [rows, n] from MLX's LSB-first bit stream, written from the format's
    definition (not mlxq's unpacker)."""
    rows = np.ascontiguousarray(wq).reshape(-1, wq.shape[-1])
    stream = np.unpackbits(rows.view(np.uint8), axis=-1, bitorder="little")
    stream = stream[:, : n * bits].reshape(rows.shape[0], n, bits).astype(np.int64)
    return (stream << np.arange(bits)).sum(-1)


def numpy_affine_dequant(wq, scales, biases, gs, bits) -> np.ndarray:
    """MLX's affine dequantize: q * scale rounded to T, + bias rounded to T."""
    T = scales.dtype
    n = scales.shape[-1] * gs
    q = unpack_codes(wq, n, bits).astype(np.float32)
    s = np.repeat(scales.reshape(q.shape[0], -1).astype(np.float32), gs, axis=-1)
    b = np.repeat(biases.reshape(q.shape[0], -1).astype(np.float32), gs, axis=-1)
    prod = (q * s).astype(T).astype(np.float32)
    return (prod + b).astype(T).reshape(scales.shape[:-1] + (n,))


def group_errors(w, w_hat, gs, importance=None) -> np.ndarray:
    """Per-group weighted squared error, float64, shape [rows, groups]."""
    x = w.astype(np.float64).reshape(-1, w.shape[-1])
    d = x - w_hat.astype(np.float64).reshape(x.shape)
    imp = np.ones(w.shape[-1]) if importance is None else importance.astype(np.float64)
    imp = np.broadcast_to(imp, w.shape[:-2] + (w.shape[-2], w.shape[-1])) if imp.ndim == 1 \
        else np.repeat(imp[..., None, :], w.shape[-2], axis=-2)
    e = imp.reshape(x.shape) * d * d
    return e.reshape(x.shape[0], -1, gs).sum(-1)


def assert_never_worse(e_mse, e_mlx):
    # both are float64 sums of the same terms in another order: allow their rounding
    worse = e_mse > e_mlx * (1 + 1e-9) + 1e-300
    assert not worse.any(), (
        f"{int(worse.sum())} groups worse than MLX's choice; first: "
        f"{e_mse[worse][0]!r} > {e_mlx[worse][0]!r}"
    )


# ---- the rule: never worse than MLX's choice, group by group --------------------------


@pytest.mark.parametrize("gs,bits", AFFINE)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_affine_no_group_is_worse_than_mlx(dtype, gs, bits):
    dt = {"bfloat16": BF16, "float16": np.float16, "float32": np.float32}[dtype]
    w = heavy_tailed((24, 256), dt, seed=bits * gs)
    imp = RNG.uniform(0, 4, 256).astype(np.float32) ** 2
    for importance in (None, imp):
        mse = mlxq.quantize(w, gs, bits, method="mse", importance=importance)
        mlx = mlxq.quantize(w, gs, bits)
        e_mse = group_errors(w, numpy_affine_dequant(*mse, gs, bits), gs, importance)
        e_mlx = group_errors(w, numpy_affine_dequant(*mlx, gs, bits), gs, importance)
        assert_never_worse(e_mse, e_mlx)


def test_affine_mse_lowers_the_total_error():
    w = RNG.standard_normal((64, 1024)).astype(BF16)
    for bits, bound in ((2, 0.72), (3, 0.80), (4, 0.85)):
        e = lambda t: group_errors(w, numpy_affine_dequant(*t, 64, bits), 64).sum()
        ratio = e(mlxq.quantize(w, 64, bits, method="mse")) / e(mlxq.quantize(w, 64, bits))
        assert ratio < bound, (bits, ratio)


@pytest.mark.parametrize("mode", list(FP_MODES))
def test_fp_modes_no_group_is_worse_than_mlx(mode):
    gs, bits = FP_MODES[mode]
    w = heavy_tailed((16, 512), BF16, seed=3)
    imp = RNG.uniform(0, 2, 512).astype(np.float32)
    for importance in (None, imp):
        mse = mlxq.quantize(w, mode=mode, method="mse", importance=importance)
        mlx = mlxq.quantize(w, mode=mode)
        e_mse = group_errors(w, mlxq.dequantize(*mse, mode=mode), gs, importance)
        e_mlx = group_errors(w, mlxq.dequantize(*mlx, mode=mode), gs, importance)
        assert_never_worse(e_mse, e_mlx)
        # mxfp8's float elements are scale-invariant between a power-of-two scale and its
        # neighbours (they only clip or underflow): MLX's exponent is already the best there
        assert e_mse.sum() < e_mlx.sum() if mode != "mxfp8" else e_mse.sum() <= e_mlx.sum()


def test_importance_moves_error_toward_heavy_columns():
    w = RNG.standard_normal((128, 512)).astype(BF16)
    heavy = np.zeros(512, bool)
    heavy[RNG.choice(512, 64, replace=False)] = True
    imp = np.where(heavy, 100.0, 1.0).astype(np.float32)
    for bits in (2, 4):
        plain = mlxq.dequantize(*mlxq.quantize(w, 64, bits, method="mse"), 64, bits)
        weighted = mlxq.dequantize(
            *mlxq.quantize(w, 64, bits, method="mse", importance=imp), 64, bits)
        se = lambda d: (w.astype(np.float64) - d.astype(np.float64)) ** 2
        assert se(weighted)[:, heavy].sum() < 0.9 * se(plain)[:, heavy].sum()
        assert se(weighted)[:, ~heavy].sum() > se(plain)[:, ~heavy].sum()


# ---- the output is an ordinary MLX triple ----------------------------------------------


@pytest.mark.parametrize("mode", ["affine"] + list(FP_MODES))
def test_mlx_dequantizes_mse_output_as_mlxq_does(mode):
    mx = pytest.importorskip("mlx.core")
    from support import to_mx, to_np

    params = [(64, 4), (32, 2), (128, 8), (64, 3)] if mode == "affine" else [FP_MODES[mode]]
    for dt in (BF16, np.float16, np.float32):
        w = heavy_tailed((8, 256), dt, seed=11)
        for gs, bits in params:
            q = mlxq.quantize(w, gs, bits, mode, method="mse")
            got = to_np(mx.dequantize(*[to_mx(a) for a in q], group_size=gs, bits=bits,
                                      mode=mode))
            assert_bits_equal(got, mlxq.dequantize(*q, group_size=gs, bits=bits, mode=mode),
                              f"{mode} {gs} {bits}")


def test_affine_numpy_dequantization_agrees_with_mlxq():
    # the test's own oracle, checked on MLX's outputs as well as on the search's
    w = heavy_tailed((4, 256), BF16)
    for gs, bits in ((64, 4), (32, 3), (128, 6)):
        for method in ("mlx", "mse"):
            q = mlxq.quantize(w, gs, bits, method=method)
            assert_bits_equal(numpy_affine_dequant(*q, gs, bits), mlxq.dequantize(*q, gs, bits))


# ---- groups that keep MLX's choice ------------------------------------------------------


def test_groups_with_nan_inf_constant_or_zero_importance_keep_mlx_choice():
    w = RNG.standard_normal((6, 256)).astype(np.float32)
    w[0, 3] = np.nan
    w[1, 70] = np.inf
    w[2, 128:192] = 0.25
    imp = np.ones(256, np.float32)
    imp[192:] = 0.0
    mse = mlxq.quantize(w, 64, 4, method="mse", importance=imp)
    mlx = mlxq.quantize(w, 64, 4)
    kept = [(0, 0), (1, 1), (2, 2)] + [(r, 3) for r in range(6)]
    for a, b in zip(mse[1:], mlx[1:]):
        for r, g in kept:
            assert_bits_equal(a[r, g], b[r, g], f"row {r} group {g}")
    codes_mse, codes_mlx = unpack_codes(mse[0], 256, 4), unpack_codes(mlx[0], 256, 4)
    for r, g in kept:
        assert (codes_mse[r, g * 64:(g + 1) * 64] == codes_mlx[r, g * 64:(g + 1) * 64]).all()


# ---- reference and fast kernels agree bit for bit ---------------------------------------


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_affine_search_fast_equals_reference(kernel, dtype):
    dt = {"bfloat16": BF16, "float16": np.float16, "float32": np.float32}[dtype]
    # 37 groups per row exercises partial vector blocks; heavy columns exercise importance
    w = heavy_tailed((5, 37 * 32), dt, seed=5)
    w[1, 40] = np.nan
    w[3, :32] = 1.5
    imp = RNG.uniform(0, 3, 37 * 32).astype(np.float32)
    for gs, bits in ((32, 2), (32, 5), (32, 8)):
        for importance in (None, imp):
            want = mlxq.quantize(w, gs, bits, method="mse", importance=importance,
                                 impl="reference")
            got = mlxq.quantize(w, gs, bits, method="mse", importance=importance, impl=kernel)
            for g, x, name in zip(got, want, ("wq", "scales", "biases")):
                assert_bits_equal(g, x, f"{name} gs={gs} bits={bits}")


@pytest.mark.parametrize("mode", list(FP_MODES))
def test_fp_search_fast_equals_reference(kernel, mode):
    w = heavy_tailed((7, 192), np.float32, seed=9)
    want = mlxq.quantize(w, mode=mode, method="mse", impl="reference")
    got = mlxq.quantize(w, mode=mode, method="mse", impl=kernel)
    for g, x in zip(got, want):
        assert_bits_equal(g, x, mode)


def test_strided_input_gives_the_contiguous_result():
    w = heavy_tailed((256, 48), BF16, seed=2).T  # a transposed view, rows of 256
    want = mlxq.quantize(np.ascontiguousarray(w), 64, 3, method="mse")
    got = mlxq.quantize(w, 64, 3, method="mse")
    for g, x in zip(got, want):
        assert_bits_equal(g, x)


def test_expert_rows_of_importance_apply_per_expert():
    w = heavy_tailed((3, 16, 128), BF16, seed=4)
    imp = RNG.uniform(0, 5, (3, 128)).astype(np.float32)
    got = mlxq.quantize(w, 64, 4, method="mse", importance=imp)
    for e in range(3):
        want = mlxq.quantize(w[e], 64, 4, method="mse", importance=imp[e])
        for g, x in zip(got, want):
            assert_bits_equal(g[e], x, f"expert {e}")


def test_inputs_are_not_modified():
    w = heavy_tailed((8, 128), BF16)
    imp = RNG.uniform(0, 1, 128).astype(np.float32)
    w0, imp0 = w.copy(), imp.copy()
    mlxq.quantize(w, 64, 4, method="mse", importance=imp)
    assert_bits_equal(w, w0)
    assert_bits_equal(imp, imp0)


# ---- method="mlx" is untouched ----------------------------------------------------------


def test_method_mlx_is_the_default_quantize():
    w = heavy_tailed((4, 256), BF16)
    for a, b in zip(mlxq.quantize(w, 64, 3, method="mlx"), mlxq.quantize(w, 64, 3)):
        assert_bits_equal(a, b)


# ---- bad arguments ---------------------------------------------------------------------


def test_unknown_method_is_a_typed_error():
    with pytest.raises(UnknownEnumValueError, match="method='gptq'"):
        mlxq.quantize(np.zeros((2, 64), np.float32), method="gptq")


def test_importance_with_method_mlx_is_refused():
    with pytest.raises(InvalidArgumentError, match="importance"):
        mlxq.quantize(np.zeros((2, 64), np.float32), importance=np.ones(64))


@pytest.mark.parametrize("shape", [(63,), (2, 64), (1, 64), (64, 1)])
def test_importance_of_the_wrong_shape_is_refused(shape):
    with pytest.raises(ShapeMismatchError, match="importance has shape"):
        mlxq.quantize(np.zeros((2, 64), np.float32), method="mse", importance=np.ones(shape))


def test_expert_importance_must_match_the_expert_count():
    with pytest.raises(ShapeMismatchError, match="importance"):
        mlxq.quantize(np.zeros((3, 2, 64), np.float32), method="mse",
                      importance=np.ones((4, 64)))


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, 1e39])
def test_importance_must_be_finite_and_non_negative(bad):
    imp = np.ones(64)
    imp[5] = bad
    with pytest.raises(OutOfRangeError, match=r"importance\[5\]"):
        mlxq.quantize(np.zeros((2, 64), np.float32), method="mse", importance=imp)


def test_importance_must_be_numeric():
    with pytest.raises(UnsupportedDtypeError, match="importance"):
        mlxq.quantize(np.zeros((2, 64), np.float32), method="mse",
                      importance=np.array(["x"] * 64))


def test_search_keeps_quantize_argument_checks():
    with pytest.raises(mlxq.MlxqError):
        mlxq.quantize(np.zeros((2, 48), np.float32), 64, 4, method="mse")
    with pytest.raises(mlxq.MlxqError):
        mlxq.quantize(np.zeros((2, 64), np.float64), 64, 4, method="mse")


def test_fp_modes_accept_float64_and_global_scale():
    w = heavy_tailed((4, 64), np.float64)
    mse = mlxq.quantize(w, mode="nvfp4", global_scale=np.float32(0.5), method="mse")
    mlx = mlxq.quantize(w, mode="nvfp4", global_scale=np.float32(0.5))
    e = lambda t: group_errors(w, mlxq.dequantize(*t, mode="nvfp4",
                                                  global_scale=np.float32(0.5)), 16)
    assert_never_worse(e(mse), e(mlx))

