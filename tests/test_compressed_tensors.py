"""compressed-tensors checkpoints: the config's routing and refusals, and the pack-quantized
tensors against mlx-lm's remap (deepseek_v3 `sanitize`, run live), `mx.dequantize` of the
remapped triple, and an independent numpy formula of compressed-tensors' decompression
(``(code - 2^(bits-1)) * scale`` in the scale dtype)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mlxq
from mlxq.formats import compressed_tensors as ct
from mlxq import errors
from mlxq.formats.compressed_tensors import Route
from support import BF16, assert_bits_equal, to_mx, to_np

mx = pytest.importorskip("mlx.core")
pytest.importorskip("mlx_lm")

F16, F32 = np.dtype(np.float16), np.dtype(np.float32)
_FAKE_MODEL = SimpleNamespace(args=SimpleNamespace(num_hidden_layers=0, n_routed_experts=0))


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """codes [out, in] (0 .. 2^bits - 1) -> int32 words, 32 / bits per word, LSB first (the
    packing compressed-tensors' pack_to_int32 gives for bits 2, 4 and 8)."""
    out, inn = codes.shape
    per = 32 // bits
    padded = np.zeros((out, -(-inn // per) * per), np.uint32)
    padded[:, :inn] = codes
    words = np.zeros((out, padded.shape[1] // per), np.uint32)
    for k in range(per):
        words |= padded[:, k::per] << np.uint32(bits * k)
    return words.view(np.int32)


def numpy_ct(codes: np.ndarray, scale: np.ndarray, bits: int, group: int) -> np.ndarray:
    """compressed-tensors' x_q.to(scale.dtype) * scale: the small integer times the scale is
    exact in float32, then one rounding to the scale dtype (MLX's conversion for NaNs)."""
    with np.errstate(all="ignore"):
        prod = (codes.astype(F32) - (1 << (bits - 1))) * np.repeat(scale.astype(F32), group, 1)
    return prod if scale.dtype == F32 else mlxq.astype(prod, scale.dtype)


def scales(shape, dtype, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = (rng.standard_normal(shape) * 0.02).astype(F32)
    flat = s.reshape(-1)
    specials = np.array([np.inf, -np.inf, np.nan, 0.0, 1e-40], F32)
    flat[:5] = specials[:flat.size]
    with np.errstate(all="ignore"):
        return s if np.dtype(dtype) == F32 else mlxq.astype(s, dtype)


def random_layer(out, inn, group, bits=4, dtype=BF16, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1 << bits, (out, inn), dtype=np.uint32)
    return codes, pack(codes, bits), scales((out, -(-inn // group)), dtype, seed + 1)


def mlx_lm_remap(packed, scale, shape):
    model = importlib.import_module("mlx_lm.models.deepseek_v3").Model
    out = model.sanitize(_FAKE_MODEL, {
        "p.weight_packed": mx.array(packed), "p.weight_scale": to_mx(scale),
        "p.weight_shape": mx.array(np.array(shape, np.int64))})
    return to_np(out["p.weight"]), to_np(out["p.scales"]), to_np(out["p.biases"])


# ---- the MLX remap ----------------------------------------------------------------------


@pytest.mark.parametrize("sdt", [BF16, F16, F32], ids=str)
def test_to_mlx_affine_equals_mlx_lm_remap(sdt):
    _, packed, s = random_layer(64, 256, 32, dtype=sdt, seed=1)
    t = ct.to_mlx_affine(packed, s, (64, 256))
    for got, want, name in zip(t, mlx_lm_remap(packed, s, (64, 256)), ("wq", "scales", "biases")):
        assert_bits_equal(got, want, name)
    assert (t.group_size, t.bits) == (32, 4)


def test_the_packed_words_are_viewed_not_copied():
    _, packed, s = random_layer(8, 64, 32, seed=2)
    assert np.shares_memory(ct.to_mlx_affine(packed, s, (8, 64)).wq, packed)


@pytest.mark.parametrize("sdt", [BF16, F16, F32], ids=str)
def test_mlx_formula_equals_mx_dequantize_of_the_remapped_triple(sdt, kernel):
    _, packed, s = random_layer(48, 384, 32, dtype=sdt, seed=3)
    wq, sc, bi = (to_mx(a) for a in mlx_lm_remap(packed, s, (48, 384)))
    want = to_np(mx.dequantize(wq, sc, bi, group_size=32, bits=4))
    assert_bits_equal(ct.dequantize_pack_quantized(packed, s, (48, 384), impl=kernel), want)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("sdt", [BF16, F16, F32], ids=str)
def test_compressed_tensors_formula_equals_numpy(bits, sdt, kernel):
    for group, inn in [(32, 256), (128, 384), (24, 72), (256, 256)]:
        codes, packed, s = random_layer(40, inn, group, bits, sdt, seed=bits + inn)
        got = ct.dequantize_pack_quantized(packed, s, (40, inn), num_bits=bits,
                                           formula="compressed-tensors", impl=kernel)
        assert_bits_equal(got, numpy_ct(codes, s, bits, group), f"group {group}")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_both_formulas_cast_to_the_requested_dtype(dtype):
    codes, packed, s = random_layer(16, 128, 32, seed=5)
    got = ct.dequantize_pack_quantized(packed, s, (16, 128), dtype, formula="compressed-tensors")
    assert_bits_equal(got, mlxq.astype(numpy_ct(codes, s, 4, 32), dtype))
    want = to_np(mx.dequantize(*(to_mx(a) for a in mlx_lm_remap(packed, s, (16, 128))),
                               group_size=32, bits=4, dtype=getattr(mx, dtype)))
    assert_bits_equal(ct.dequantize_pack_quantized(packed, s, (16, 128), dtype), want)


def test_channel_scales_become_mlx_groups_with_the_scale_repeated():
    codes, packed, s = random_layer(16, 384, 384, seed=6)
    t = ct.to_mlx_affine(packed, s, (16, 384))
    assert (t.group_size, t.scales.shape) == (128, (16, 3))
    rep = np.repeat(s, 3, axis=1)
    want = to_np(mx.dequantize(to_mx(t.wq), to_mx(rep), to_mx(rep) * -8, group_size=128, bits=4))
    assert_bits_equal(ct.dequantize_pack_quantized(packed, s, (16, 384)), want)


def test_a_per_tensor_scale_applies_to_every_group():
    codes, packed, _ = random_layer(8, 64, 32, seed=7)
    s = np.array([0.125], BF16)
    got = ct.dequantize_pack_quantized(packed, s, (8, 64), formula="compressed-tensors")
    assert_bits_equal(got, numpy_ct(codes, np.full((8, 1), 0.125, BF16), 4, 64))
    t = ct.to_mlx_affine(packed, s, (8, 64))
    assert (t.group_size, t.scales.shape, t.scales.flags.c_contiguous) == (64, (8, 1), True)


@given(out=st.integers(1, 40), groups=st.integers(1, 6), r0=st.integers(0, 40),
       r1=st.integers(0, 40), seed=st.integers(0, 2**31))
@settings(max_examples=40)
def test_row_slices_equal_the_rows_of_the_whole_result(out, groups, r0, r1, seed):
    r0, r1 = sorted((min(r0, out), min(r1, out)))
    _, packed, s = random_layer(out, 32 * groups, 32, seed=seed)
    shape = (out, 32 * groups)
    for formula in ("mlx", "compressed-tensors"):
        whole = ct.dequantize_pack_quantized(packed, s, shape, formula=formula)
        part = ct.dequantize_pack_quantized(packed, s, shape, formula=formula, rows=(r0, r1))
        assert_bits_equal(part, whole[r0:r1], formula)
    t, tr = ct.to_mlx_affine(packed, s, shape), ct.to_mlx_affine(packed, s, shape, rows=(r0, r1))
    for a, b in zip(t, tr):
        assert_bits_equal(b, a[r0:r1])


def test_inputs_are_never_modified():
    _, packed, s = random_layer(16, 64, 32, seed=8)
    p0, s0 = packed.copy(), s.copy()
    for formula in ("mlx", "compressed-tensors"):
        ct.dequantize_pack_quantized(packed, s, (16, 64), formula=formula)
    assert_bits_equal(packed, p0)
    assert_bits_equal(s, s0)


# ---- mxfp4-pack-quantized -------------------------------------------------------------------


def test_mxfp4_pack_quantized_is_mlx_mxfp4_byte_for_byte():
    # compressed-tensors decodes lut[nibble] * 2^(scale - 127), the even element low
    rng = np.random.default_rng(9)
    packed = rng.integers(0, 256, (8, 64), dtype=np.uint8)
    sc = rng.integers(100, 150, (8, 4), dtype=np.uint8)
    lut = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], F32)
    nib = np.stack([packed & 15, packed >> 4], -1).reshape(8, 128)
    want = lut[nib] * np.repeat(np.exp2(sc.astype(F32) - 127), 32, 1)
    wq, scales_ = ct.to_mlx_mxfp4(packed, sc)
    got = to_np(mx.dequantize(to_mx(wq), to_mx(scales_), mode="mxfp4", group_size=32, bits=4,
                              dtype=mx.float32))
    assert_bits_equal(got, want)


# ---- malformed tensors ------------------------------------------------------------------------


def test_packed_words_of_the_wrong_shape_are_a_shape_error_naming_weight_packed():
    _, packed, s = random_layer(8, 64, 32, seed=10)
    with pytest.raises(errors.ShapeMismatchError, match="weight_packed"):
        ct.to_mlx_affine(packed, s, (8, 128))


def test_scales_of_the_wrong_shape_are_a_shape_error_naming_weight_scale():
    _, packed, s = random_layer(8, 96, 32, seed=11)
    with pytest.raises(errors.ShapeMismatchError, match="weight_scale"):
        ct.to_mlx_affine(packed, s[:4], (8, 96))
    with pytest.raises(errors.ShapeMismatchError, match="weight_scale has 5 groups"):
        ct.to_mlx_affine(packed, np.repeat(s[:, :1], 5, axis=1), (8, 96))


def test_groups_mlx_cannot_hold_are_a_divisibility_error():
    _, packed, s = random_layer(8, 64, 16, seed=12)
    with pytest.raises(errors.DivisibilityError, match="group size 16"):
        ct.to_mlx_affine(packed, s, (8, 64))


@pytest.mark.parametrize("bad, exc", [
    (lambda p, s: (p.astype(np.float32), s), errors.UnsupportedDtypeError),
    (lambda p, s: (p, s.astype(np.float64)), errors.UnsupportedDtypeError),
    (lambda p, s: (p[None], s), errors.RankMismatchError),
])
def test_wrong_dtypes_and_ranks_are_typed_errors(bad, exc):
    _, packed, s = random_layer(8, 64, 32, seed=13)
    p, s2 = bad(packed, s)
    with pytest.raises(exc):
        ct.to_mlx_affine(p, s2, (8, 64))


@pytest.mark.parametrize("bits", [3, 5, 0, 16])
def test_widths_with_an_ambiguous_or_no_packing_are_refused(bits):
    _, packed, s = random_layer(8, 64, 32, seed=14)
    with pytest.raises(errors.OutOfRangeError, match="num_bits"):
        ct.dequantize_pack_quantized(packed, s, (8, 64), num_bits=bits)


def test_an_unknown_formula_is_refused_by_name():
    _, packed, s = random_layer(8, 64, 32, seed=15)
    with pytest.raises(errors.UnknownEnumValueError, match="formula='gptq'"):
        ct.dequantize_pack_quantized(packed, s, (8, 64), formula="gptq")


@pytest.mark.parametrize("shape", [(8,), (8, 64, 1), ("8", 64), (8, -64)], ids=str)
def test_malformed_weight_shapes_are_refused(shape):
    _, packed, s = random_layer(8, 64, 32, seed=16)
    with pytest.raises((errors.ArgumentTypeError, errors.OutOfRangeError), match="weight_shape"):
        ct.to_mlx_affine(packed, s, shape)


# ---- the config ---------------------------------------------------------------------------

KIMI_K2_THINKING = {
    "quant_method": "compressed-tensors", "format": "pack-quantized",
    "quantization_status": "compressed", "kv_cache_scheme": None,
    "config_groups": {"group_0": {
        "input_activations": None, "output_activations": None, "targets": ["Linear"],
        "weights": {"actorder": None, "block_structure": None, "dynamic": False,
                    "group_size": 32, "num_bits": 4, "observer": "minmax",
                    "observer_kwargs": {}, "strategy": "group", "symmetric": True,
                    "type": "int"}}},
    "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*",
               "re:.*mlp\\.(gate|up|gate_up|down)_proj.*"],
}


def _with_weights(fmt="pack-quantized", **weights):
    base = {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group",
            "group_size": 32}
    base.update(weights)
    return {"quant_method": "compressed-tensors", "format": fmt,
            "config_groups": {"g": {"targets": ["Linear"], "weights": base}}}


def test_kimi_k2_thinking_routes_experts_to_affine_and_ignores_attention():
    cfg = ct.parse_config(KIMI_K2_THINKING)
    cfg.validate()
    assert cfg.group_for("model.layers.3.mlp.experts.7.down_proj").route is Route.PACKED_INT
    for dense in ("lm_head", "model.layers.3.self_attn.q_a_proj",
                  "model.layers.3.mlp.shared_experts.up_proj", "model.layers.0.mlp.gate_proj"):
        assert cfg.group_for(dense) is None, dense


def test_detect_finds_the_config_also_under_text_config():
    assert ct.detect({"quantization_config": KIMI_K2_THINKING}).format == "pack-quantized"
    assert ct.detect({"text_config": {"quantization_config": KIMI_K2_THINKING}}) is not None
    assert ct.detect({"quantization_config": {"quant_method": "fp8"}}) is None


@pytest.mark.parametrize("config, route", [
    (_with_weights(strategy="channel", group_size=None), Route.PACKED_INT),
    (_with_weights(num_bits=8), Route.PACKED_INT),
    (_with_weights("float-quantized", type="float", num_bits=8, strategy="tensor",
                   group_size=None), Route.FP8_SCALED),
    (_with_weights("float-quantized", type="float", num_bits=8, strategy="channel",
                   group_size=None), Route.FP8_SCALED),
    (_with_weights("float-quantized", type="float", num_bits=8, strategy="block",
                   group_size=None, block_structure=[128, 128]), Route.FP8_BLOCK),
    (_with_weights("mxfp4-pack-quantized", type="float"), Route.MXFP4),
    (_with_weights("dense"), Route.DENSE),
    (_with_weights(actorder="weight"), Route.PACKED_INT),
], ids=lambda v: v if isinstance(v, Route) else "")
def test_accepted_variants_route_to_their_conversion(config, route):
    assert ct.parse_config(config).groups[0].route is route


@pytest.mark.parametrize("config, reason", [
    (_with_weights(symmetric=False), "asymmetric"),
    (_with_weights(actorder="group"), "actorder='group'"),
    (_with_weights(actorder=True), "actorder='group'"),
    (_with_weights(num_bits=3), "num_bits=3"),
    (_with_weights(type="float"), "pack-quantized float"),
    (_with_weights(strategy="block", group_size=None, block_structure="8x8"), "strategy 'block'"),
    (_with_weights("nvfp4-pack-quantized", type="float", group_size=16), "nvfp4"),
    (_with_weights("float-quantized", type="float", num_bits=4), "float-quantized float 4-bit"),
    (_with_weights("sparse-24-bitmask"), "sparse"),
    (_with_weights("int-quantized", num_bits=8), "int-quantized"),
])
def test_refused_variants_name_the_variant_and_the_reason(config, reason):
    cfg = ct.parse_config(config)
    with pytest.raises(errors.UnsupportedFormatError, match=reason) as e:
        cfg.validate()
    assert "config group 'g'" in str(e.value)


def test_an_unknown_format_is_an_unknown_enum_value():
    with pytest.raises(errors.UnknownEnumValueError, match="'awq-packed'"):
        ct.parse_config(_with_weights("awq-packed")).validate()


def test_sparse_checkpoints_are_refused():
    cfg = dict(KIMI_K2_THINKING, sparsity_config={"format": "sparse-bitmask"})
    with pytest.raises(errors.UnsupportedFormatError, match="sparsity_config"):
        ct.parse_config(cfg)


@pytest.mark.parametrize("config", [
    {"quant_method": "fp8"},
    dict(KIMI_K2_THINKING, config_groups=[1, 2]),
    dict(KIMI_K2_THINKING, ignore="lm_head"),
    _with_weights(num_bits="4"),
    _with_weights(block_structure=[128]),
], ids=str)
def test_malformed_configs_are_parse_errors(config):
    with pytest.raises(errors.ParseError):
        ct.parse_config(config)
