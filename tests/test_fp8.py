"""FP8 (E4M3) checkpoint dequantization: mlxq.formats.fp8 against mlx-lm's `dequant`, run live.

The oracles, all executed by MLX:
- the families' own `sanitize` (deepseek_v3, deepseek_v32, minimax, mimo_v2_flash) on a
  `P.weight` / `P.weight_scale_inv` pair: 128x128 blocks, bfloat16 output;
- the same graph with another block size or output dtype (`mlx_graph` below: mlx-lm's
  `dequant` with its two constants made parameters);
- mistral4's `sanitize`, which applies per-tensor / per-expert scales by broadcasting, and an
  independent numpy formula (ml_dtypes' exact E4M3 -> float32, times the scale) for
  per-channel scales.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mlxq
from mlxq import errors
from mlxq.formats.fp8 import Fp8Config, dequantize_fp8_block, dequantize_fp8_scaled
from support import BF16, assert_bits_equal, to_mx, to_np

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_lm")

E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
F16, F32 = np.dtype(np.float16), np.dtype(np.float32)
FAMILIES = ("deepseek_v3", "deepseek_v32", "minimax", "mimo_v2_flash")
_FAKE_MODEL = SimpleNamespace(args=SimpleNamespace(num_hidden_layers=0, n_routed_experts=0))


def sanitize_dequant(family: str, weight: np.ndarray, scale_inv: np.ndarray) -> np.ndarray:
    """`family`'s Model.sanitize on one block-scaled weight (MLX loads E4M3 as uint8)."""
    model = importlib.import_module(f"mlx_lm.models.{family}").Model
    out = model.sanitize(_FAKE_MODEL, {"p.weight": mx.array(weight.view(np.uint8)),
                                       "p.weight_scale_inv": to_mx(scale_inv)})
    return to_np(out["p.weight"])


def mlx_graph(weight: np.ndarray, scale_inv: np.ndarray, block=(128, 128), dtype="bfloat16"):
    """mlx-lm's `dequant` with the block size and the final dtype as parameters."""
    b0, b1 = block
    w = mx.from_fp8(mx.array(weight.view(np.uint8)), dtype=mx.bfloat16)
    m, n = w.shape
    pb, ps = (-m) % b0, (-n) % b1
    w = mx.pad(w, ((0, pb), (0, ps))).reshape(((m + pb) // b0, b0, (n + ps) // b1, b1))
    w = (w * to_mx(scale_inv)[:, None, :, None]).reshape(m + pb, n + ps)
    return to_np(w[:m, :n].astype(getattr(mx, dtype)))


def all_codes(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Random E4M3 bytes with every one of the 256 codes in every 128x128 block."""
    w = np.random.default_rng(seed).integers(0, 256, (rows, cols), dtype=np.uint8)
    for r in range(0, rows, 128):
        for c in range(0, cols, 128):
            blk = w[r:r + 128, c:c + 128].reshape(-1)
            k = min(256, blk.size)
            blk[:k] = np.arange(k, dtype=np.uint8)
            w[r:r + 128, c:c + 128] = blk.reshape(w[r:r + 128, c:c + 128].shape)
    return w


def special_scales(shape, dtype, seed=1) -> np.ndarray:
    """Scales over many binades plus inf, -inf, NaNs (quiet, signalling, negative), zero,
    -0 and the smallest subnormal, in `dtype`."""
    rng = np.random.default_rng(seed)
    s = (rng.standard_normal(shape) * 2.0 ** rng.integers(-30, 30, shape)).astype(np.float32)
    flat = s.reshape(-1)
    specials = np.array([0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC12345,
                         0x00000000, 0x80000000, 0x00000001, 0x7F7FFFFF], np.uint32)
    k = min(flat.size, specials.size)
    flat[:k] = specials[:k].view(np.float32)
    if dtype == F32:
        return s
    if dtype == BF16:  # raw truncation keeps the NaN payloads and the subnormal
        return (s.view(np.uint32) >> 16).astype(np.uint16).view(BF16)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return s.astype(dtype)


# ---- block scales: mlx-lm's own dequant -------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_block_dequant_equals_the_families_sanitize_for_all_256_codes(family):
    w = all_codes(300, 257)
    s = special_scales((3, 3), F32)
    assert_bits_equal(dequantize_fp8_block(w, s), sanitize_dequant(family, w, s))


@pytest.mark.parametrize("sdt", [F32, BF16, F16], ids=str)
def test_block_dequant_equals_mlx_lm_for_every_scale_dtype(sdt):
    # a bfloat16 scale keeps the product in bfloat16; float16 and float32 promote to float32
    w = all_codes(256, 384, seed=2)
    s = special_scales((2, 3), sdt, seed=3)
    assert_bits_equal(dequantize_fp8_block(w, s), sanitize_dequant("deepseek_v3", w, s))


def test_block_dequant_equals_mlx_lm_with_non_finite_zero_and_subnormal_scales():
    w = all_codes(128 * 3, 128 * 3, seed=4)
    s = special_scales((3, 3), F32, seed=5)  # all nine specials, one per block
    assert_bits_equal(dequantize_fp8_block(w, s), sanitize_dequant("deepseek_v3", w, s))


def test_nan_codes_become_bfloat16s_positive_nan():
    # MLX's from_fp8 makes 0x7F and 0xFF the bfloat16 NaN 0x7FC0 (sign dropped)
    w = np.array([[0x7F, 0xFF, 0x38, 0xB8]], np.uint8)
    got = dequantize_fp8_block(w, np.ones((1, 1), np.float32))
    want = sanitize_dequant("deepseek_v3", w, np.ones((1, 1), np.float32))
    assert_bits_equal(got, want)
    assert [hex(x) for x in got.view(np.uint16)[0]] == ["0x7fc0", "0x7fc0", "0x3f80", "0xbf80"]


def test_float8_e4m3fn_and_uint8_weights_are_the_same_bytes():
    w = all_codes(130, 140, seed=6)
    s = special_scales((2, 2), F32, seed=7)
    assert_bits_equal(dequantize_fp8_block(w.view(E4M3), s), dequantize_fp8_block(w, s))


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16"])
@pytest.mark.parametrize("sdt", [F32, BF16], ids=str)
def test_other_output_dtypes_are_the_same_graph_with_another_astype(dtype, sdt):
    w = all_codes(200, 260, seed=8)
    s = special_scales((2, 3), sdt, seed=9)
    assert_bits_equal(dequantize_fp8_block(w, s, dtype=dtype), mlx_graph(w, s, dtype=dtype))


def test_block_sizes_other_than_128_follow_the_same_graph():
    w = all_codes(90, 70, seed=10)
    for block in [(1, 1), (1, 64), (7, 13), (64, 32), (90, 70), (200, 200)]:
        s = special_scales((-(-90 // block[0]), -(-70 // block[1])), F32, seed=block[0])
        assert_bits_equal(dequantize_fp8_block(w, s, block), mlx_graph(w, s, block), str(block))


def test_fast_kernels_equal_mlx_under_every_isa_and_thread_count(kernel):
    w = all_codes(140, 300, seed=11)  # 300 columns: a partial vector at each row's end
    for sdt, flip in [(F32, False), (F32, True), (BF16, False), (BF16, True), (F16, False)]:
        s = special_scales((2, 3), sdt, seed=12)
        s = np.ascontiguousarray(s[::-1, ::-1]) if flip else s  # specials in the last block
        want = sanitize_dequant("deepseek_v3", w, s)
        assert_bits_equal(dequantize_fp8_block(w, s, impl=kernel), want, f"{kernel} {sdt}")
        for dtype in ("float16", "float32"):
            assert_bits_equal(dequantize_fp8_block(w, s, dtype=dtype, impl=kernel),
                              mlx_graph(w, s, dtype=dtype), f"{kernel} {sdt} {dtype}")


def test_strided_weights_give_the_same_result(kernel):
    w = all_codes(300, 260, seed=13)
    s = special_scales((3, 3), F32, seed=14)
    for view in (np.asfortranarray(w)[:, :257], w[::-1, ::-2]):  # not C-contiguous
        sv = s[:, :-(-view.shape[1] // 128)]
        want = sanitize_dequant("deepseek_v3", np.ascontiguousarray(view), sv)
        assert_bits_equal(dequantize_fp8_block(view, sv, impl=kernel), want)
        assert_bits_equal(dequantize_fp8_scaled(view, sv[:1, :1], impl=kernel),
                          numpy_scaled(np.ascontiguousarray(view), sv[:1, :1], BF16))


# ---- row slices ---------------------------------------------------------------------------


def test_row_slices_equal_the_rows_of_the_whole_result(kernel):
    w = all_codes(333, 200, seed=15)
    s = special_scales((3, 2), F32, seed=16)
    whole = dequantize_fp8_block(w, s, impl=kernel)
    for r0, r1 in [(0, 333), (0, 1), (127, 129), (128, 256), (5, 300), (332, 333), (40, 40)]:
        assert_bits_equal(dequantize_fp8_block(w, s, rows=(r0, r1), impl=kernel),
                          whole[r0:r1], f"rows {r0}:{r1}")


def test_row_slices_can_reuse_one_output_buffer():
    w = all_codes(300, 129, seed=17)
    s = special_scales((3, 2), BF16, seed=18)
    whole = dequantize_fp8_block(w, s)
    buf = np.empty((100, 129), BF16)
    for r0 in range(0, 300, 100):
        got = dequantize_fp8_block(w, s, rows=(r0, r0 + 100), out=buf)
        assert got is buf
        assert_bits_equal(buf, whole[r0:r0 + 100])


@given(
    m=st.integers(1, 70), n=st.integers(1, 70), b0=st.integers(1, 40), b1=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1), rows=st.tuples(st.integers(0, 70), st.integers(0, 70)))
@settings(max_examples=60)
def test_any_shape_block_and_row_slice_matches_the_graph(m, n, b0, b1, seed, rows):
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 256, (m, n), dtype=np.uint8)
    s = special_scales((-(-m // b0), -(-n // b1)), F32, seed=seed)
    r0, r1 = sorted(min(r, m) for r in rows)
    want = mlx_graph(w, s, (b0, b1))[r0:r1]
    assert_bits_equal(dequantize_fp8_block(w, s, (b0, b1), rows=(r0, r1)), want)


# ---- broadcast scales -----------------------------------------------------------------------


def numpy_scaled(w: np.ndarray, s: np.ndarray, dtype) -> np.ndarray:
    """The independent formula: E4M3 -> float32 (exact), times the scale in float32 (exact
    for a bfloat16 or float16 scale), rounded to bfloat16 first when the scale is bfloat16
    (the product's dtype), then cast, with MLX's conversions (mlxq.astype, tested against
    MLX elsewhere) so NaNs come out as MLX writes them."""
    e = w.view(E4M3).astype(F32)
    with np.errstate(all="ignore"):
        prod = e * s.astype(F32)
    prod[np.isnan(e)] = np.float32("nan")  # from_fp8 gives a positive NaN, which wins
    if s.dtype == BF16:
        prod = mlxq.astype(prod, BF16)
    return prod if prod.dtype == np.dtype(dtype) else mlxq.astype(prod, dtype)


def mistral4_dequant(weight: np.ndarray, scale: np.ndarray) -> np.ndarray:
    model = importlib.import_module("mlx_lm.models.mistral4").Model
    out = model.sanitize(_FAKE_MODEL, {"p.weight": mx.array(weight.view(np.uint8)),
                                       "p.weight_scale_inv": to_mx(scale)})
    return to_np(out["p.weight"])


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)], ids=str)
def test_per_tensor_scale_equals_mlx_lm_mistral4(shape):
    w = all_codes(64, 300, seed=19)
    for v in (0.0123, np.inf, np.nan, 1e-45):
        s = np.full(shape, v, np.float32)
        assert_bits_equal(dequantize_fp8_scaled(w, s), mistral4_dequant(w, s), str(v))


def test_per_expert_scale_equals_mlx_lm_mistral4():
    w = np.random.default_rng(20).integers(0, 256, (3, 40, 70), dtype=np.uint8)
    s = special_scales((3, 1, 1), F32, seed=21)
    assert_bits_equal(dequantize_fp8_scaled(w, s), mistral4_dequant(w, s))


@pytest.mark.parametrize("sdt", [F32, BF16, F16], ids=str)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_per_channel_scale_equals_the_numpy_formula(kernel, sdt, dtype):
    w = all_codes(130, 257, seed=22)
    s = special_scales((130, 1), sdt, seed=23)
    got = dequantize_fp8_scaled(w, s, dtype, impl=kernel)
    assert_bits_equal(got, numpy_scaled(w, s, dtype))
    if sdt != BF16:  # the same graph in MLX (bfloat16 scales keep a bfloat16 product)
        assert_bits_equal(got, to_np((mx.from_fp8(mx.array(w), dtype=mx.bfloat16)
                                      * to_mx(s)).astype(getattr(mx, dtype))))


def test_per_channel_rows_equal_the_rows_of_the_whole_result():
    w = all_codes(100, 90, seed=24)
    s = special_scales((100, 1), F32, seed=25)
    whole = dequantize_fp8_scaled(w, s)
    assert_bits_equal(dequantize_fp8_scaled(w, s, rows=(33, 77)), whole[33:77])


def test_one_dimensional_scales_of_several_values_are_refused_as_ambiguous():
    w = np.zeros((4, 4), np.uint8)
    with pytest.raises(errors.ShapeMismatchError, match="ambiguous"):
        dequantize_fp8_scaled(w, np.ones(4, np.float32))


def test_per_input_column_scales_are_refused():
    with pytest.raises(errors.ShapeMismatchError, match=r"\[\.\.\., out, 1\]"):
        dequantize_fp8_scaled(np.zeros((4, 6), np.uint8), np.ones((1, 6), np.float32))


# ---- malformed input ----------------------------------------------------------------------


def test_block_scales_of_the_wrong_shape_are_a_shape_error_naming_scale_inv():
    w = np.zeros((300, 257), np.uint8)
    with pytest.raises(errors.ShapeMismatchError, match=r"scale_inv has shape \(2, 3\), "
                       r"expected \(3, 3\)"):
        dequantize_fp8_block(w, np.ones((2, 3), np.float32))


def test_weights_that_are_not_e4m3_are_a_dtype_error_naming_weight():
    s = np.ones((1, 1), np.float32)
    for bad in (np.zeros((2, 2), np.float32), np.zeros((2, 2), ml_dtypes.float8_e5m2),
                np.zeros((2, 2), np.int8)):
        with pytest.raises(errors.UnsupportedDtypeError, match="weight"):
            dequantize_fp8_block(bad, s)


def test_scales_of_an_unsupported_dtype_are_a_dtype_error_naming_scale_inv():
    w = np.zeros((2, 2), np.uint8)
    for bad in (np.float64, np.int32, np.uint8):
        with pytest.raises(errors.UnsupportedDtypeError, match="scale_inv"):
            dequantize_fp8_block(w, np.ones((1, 1), bad))
    with pytest.raises(errors.UnsupportedDtypeError, match="scale"):
        dequantize_fp8_scaled(w, np.ones((), np.float64))


def test_output_dtypes_other_than_bf16_f16_f32_are_refused():
    with pytest.raises(errors.UnsupportedDtypeError, match="dtype"):
        dequantize_fp8_block(np.zeros((2, 2), np.uint8), np.ones((1, 1), np.float32),
                             dtype=np.float64)


@pytest.mark.parametrize("block", [0, (0, 128), (128, -1)], ids=str)
def test_non_positive_block_sizes_are_out_of_range(block):
    with pytest.raises(errors.OutOfRangeError, match="block_size"):
        dequantize_fp8_block(np.zeros((2, 2), np.uint8), np.ones((1, 1), np.float32), block)


@pytest.mark.parametrize("block", [(128,), "128", 1.5, (True, 1)], ids=str)
def test_block_sizes_that_are_not_ints_are_type_errors(block):
    with pytest.raises(errors.ArgumentTypeError, match="block_size"):
        dequantize_fp8_block(np.zeros((2, 2), np.uint8), np.ones((1, 1), np.float32), block)


def test_weights_that_are_not_matrices_are_rank_errors():
    with pytest.raises(errors.RankMismatchError, match="weight"):
        dequantize_fp8_block(np.zeros((2, 2, 2), np.uint8), np.ones((1, 1), np.float32))
    with pytest.raises(errors.RankMismatchError, match="scale_inv"):
        dequantize_fp8_block(np.zeros((2, 2), np.uint8), np.ones((1,), np.float32))


@pytest.mark.parametrize("rows", [(-1, 2), (2, 1), (0, 5), (0, 1, 2)], ids=str)
def test_row_slices_outside_the_weight_are_refused(rows):
    with pytest.raises((errors.OutOfRangeError, errors.ArgumentTypeError), match="rows"):
        dequantize_fp8_block(np.zeros((4, 2), np.uint8), np.ones((1, 1), np.float32),
                             rows=rows)


def test_output_buffers_of_the_wrong_kind_are_refused():
    w, s = np.zeros((4, 2), np.uint8), np.ones((1, 1), np.float32)
    with pytest.raises(errors.ShapeMismatchError, match="out"):
        dequantize_fp8_block(w, s, out=np.empty((3, 2), BF16))
    with pytest.raises(errors.UnsupportedDtypeError, match="out"):
        dequantize_fp8_block(w, s, out=np.empty((4, 2), np.uint16))
    with pytest.raises(errors.InvalidArgumentError, match="out"):
        dequantize_fp8_block(w, s, out=np.empty((2, 4), BF16).T)


def test_inputs_are_never_modified():
    w = all_codes(130, 130, seed=26)
    s = special_scales((2, 2), F32, seed=27)
    w0, s0 = w.copy(), s.copy()
    dequantize_fp8_block(w, s)
    dequantize_fp8_scaled(w, s[:1, :1])
    assert_bits_equal(w, w0)
    assert_bits_equal(s, s0)


# ---- the config ---------------------------------------------------------------------------


def test_deepseek_fp8_config_gives_its_block_size():
    cfg = Fp8Config.from_dict({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme":
                               "dynamic", "weight_block_size": [128, 128]})
    assert cfg.block_size == (128, 128)


def test_fp8_config_without_block_size_means_per_tensor_scales():
    assert Fp8Config.from_dict({"quant_method": "fp8"}).block_size is None


def test_unknown_fp8_fmt_is_refused_by_name():
    with pytest.raises(errors.UnknownEnumValueError, match="fmt='e5m2'"):
        Fp8Config.from_dict({"quant_method": "fp8", "fmt": "e5m2"})


@pytest.mark.parametrize("bad", [{"quant_method": "awq"},
                                 {"quant_method": "fp8", "weight_block_size": [128]},
                                 {"quant_method": "fp8", "weight_block_size": [0, 128]},
                                 {"quant_method": "fp8", "modules_to_not_convert": "lm_head"}],
                         ids=str)
def test_malformed_fp8_configs_are_parse_errors(bad):
    with pytest.raises(errors.ParseError):
        Fp8Config.from_dict(bad)
