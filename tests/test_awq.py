"""AutoAWQ GEMM -> MLX: one test per rule of transform_awq_weights (docs/awq.md), producer
faithfulness (AutoAWQ's own packing and dequantization), and bit-identity with mlx-lm."""

from __future__ import annotations

import numpy as np
import pytest

import mlxq
from mlxq import errors
from mlxq.formats.awq import AwqLoadConfig, awq_output_dtype, transform_awq_weights, unpack_awq_weights
from producers import awq_checkpoint, awq_dequant, awq_pack, mlx_unpack
from support import BF16, assert_bits_equal

OUT, IN, G = 64, 256, 128


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def layer(rng, prefix="m.l", scale_dtype=np.float16, out_f=OUT, in_f=IN, group=G, zeros=True):
    qw, s, qz, codes, z = awq_checkpoint(rng, out_f, in_f, group, scale_dtype)
    t = {f"{prefix}.qweight": qw, f"{prefix}.scales": s}
    if zeros:
        t[f"{prefix}.qzeros"] = qz
    return t, codes, s, z


def readonly(d):
    for a in d.values():
        a.flags.writeable = False
    return d


# ---- config ---------------------------------------------------------------------------------

def test_config_defaults_and_from_dict():
    assert AwqLoadConfig() == AwqLoadConfig(4, 128, True, "")
    cfg = AwqLoadConfig.from_dict({"quant_method": "awq", "w_bit": 4, "q_group_size": 64,
                                   "zero_point": False, "version": "GEMM"})
    assert cfg == AwqLoadConfig(4, 64, False, "gemm")
    assert AwqLoadConfig.from_dict({}) == AwqLoadConfig()


def test_config_rejects_wrong_types():
    with pytest.raises(errors.ArgumentTypeError):
        AwqLoadConfig(bits="4")
    with pytest.raises(errors.ArgumentTypeError):
        AwqLoadConfig(zero_point=1)
    with pytest.raises(errors.ArgumentTypeError):
        AwqLoadConfig(version=None)
    with pytest.raises(errors.ArgumentTypeError):
        AwqLoadConfig.from_dict([("bits", 4)])


@pytest.mark.parametrize("version", ["gemv", "exllama", "GEMM"])
def test_only_gemm_version_accepted(rng, version):
    t, *_ = layer(rng)
    with pytest.raises(errors.UnknownEnumValueError, match="gemm"):
        transform_awq_weights(t, AwqLoadConfig(version=version))


@pytest.mark.parametrize("version", ["", "gemm"])
def test_gemm_and_unspecified_version_accepted(rng, version):
    t, *_ = layer(rng)
    transform_awq_weights(t, AwqLoadConfig(version=version))


def test_bits_must_be_4(rng):
    t, *_ = layer(rng)
    with pytest.raises(errors.OutOfRangeError, match="4"):
        transform_awq_weights(t, {"bits": 8})


@pytest.mark.parametrize("gs", [0, -1])
def test_group_size_must_be_positive(rng, gs):
    t, *_ = layer(rng)
    with pytest.raises(errors.OutOfRangeError):
        transform_awq_weights(t, AwqLoadConfig(group_size=gs))


def test_group_size_not_expressible_in_mlx(rng):
    t, *_ = layer(rng, in_f=96, group=48)
    with pytest.raises(errors.OutOfRangeError, match="multiple of 32"):
        transform_awq_weights(t, AwqLoadConfig(group_size=48))


# ---- producer faithfulness -------------------------------------------------------------------

@pytest.mark.parametrize("scale_dtype", [np.float16, BF16, np.float32])
def test_codes_and_scales_move_losslessly(rng, scale_dtype):
    t, codes, s, z = layer(rng, scale_dtype=scale_dtype)
    out, q = transform_awq_weights(readonly(t))
    assert q == mlxq.PerLayerQuantization(mlxq.Quantization(128, 4))
    assert out["m.l.weight"].dtype == np.uint32 and out["m.l.weight"].shape == (OUT, IN // 8)
    np.testing.assert_array_equal(mlx_unpack(out["m.l.weight"], 4, IN), codes.T)
    assert_bits_equal(out["m.l.scales"], np.ascontiguousarray(s.T))


def test_dequantized_equals_awq_formula_exactly_when_bias_is_representable(rng):
    # Scales with few significant bits make -zero*scale exact in float16, so MLX's
    # q*scale + bias and AutoAWQ's (q - zero)*scale are the same real number.
    t, codes, _, z = layer(rng)
    s = (rng.integers(1, 64, size=(IN // G, OUT)) * 2.0 ** -9).astype(np.float16)
    t["m.l.scales"] = s
    out, _ = transform_awq_weights(t)
    got = mlxq.dequantize(out["m.l.weight"], out["m.l.scales"], out["m.l.biases"],
                          group_size=G, bits=4, dtype=np.float32)
    ref = awq_dequant(codes, s, z, G).T.astype(np.float32)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("scale_dtype", [np.float16, BF16, np.float32])
def test_dequantized_within_bias_rounding_of_awq_formula(rng, scale_dtype):
    t, codes, s, z = layer(rng, scale_dtype=scale_dtype)
    out, _ = transform_awq_weights(t)
    got = mlxq.dequantize(out["m.l.weight"], out["m.l.scales"], out["m.l.biases"],
                          group_size=G, bits=4, dtype=np.float32).astype(np.float64)
    ref = awq_dequant(codes, s, z, G).T
    # The only rounding beyond the output's own: the bias -zero*scale rounded to the scales'
    # dtype (half an ulp), plus the products and sum rounded in that dtype (docs/awq.md).
    zs = np.repeat((z * s.astype(np.float64)).T, G, axis=1)
    mag = np.abs(zs) + np.abs(ref) + np.repeat(np.abs(s.astype(np.float64)).T, G, axis=1) * 15
    eps = {np.dtype(np.float16): 2.0 ** -11, BF16: 2.0 ** -8, np.dtype(np.float32): 2.0 ** -24}
    assert np.all(np.abs(got - ref) <= 2 * eps[np.dtype(scale_dtype)] * mag)


def test_negative_int32_words_keep_their_top_nibble(rng):
    codes = np.full((G, 8), 15, np.int64)
    qw = awq_pack(codes)
    assert (qw < 0).all()
    s = np.ones((1, 8), np.float16)
    out, _ = transform_awq_weights({"l.qweight": qw, "l.scales": s})
    np.testing.assert_array_equal(mlx_unpack(out["l.weight"], 4, G), codes.T)
    out_u, _ = transform_awq_weights({"l.qweight": qw.view(np.uint32), "l.scales": s})
    assert_bits_equal(out_u["l.weight"], out["l.weight"])


def test_zero_point_uses_qzeros_biases_are_minus_zero_times_scale_in_float32(rng):
    t, _, s, z = layer(rng)
    out, _ = transform_awq_weights(t)
    ref = (-(z.T.astype(np.float32)) * s.T.astype(np.float32)).astype(np.float16)  # numpy: RNE
    assert_bits_equal(out["m.l.biases"], ref)


def test_zero_point_without_qzeros_uses_implicit_zero_8(rng):
    t, _, s, _ = layer(rng, zeros=False)
    out, _ = transform_awq_weights(t)
    assert_bits_equal(out["m.l.biases"], (-8 * s.T.astype(np.float32)).astype(np.float16))


def test_zero_point_false_ignores_qzeros(rng):
    t, _, s, _ = layer(rng)
    out, _ = transform_awq_weights(t, AwqLoadConfig(zero_point=False))
    assert_bits_equal(out["m.l.biases"], (-8 * s.T.astype(np.float32)).astype(np.float16))
    assert "m.l.qzeros" not in out


def test_group_size_256_is_regrouped_losslessly(rng):
    t, codes, s, z = layer(rng, in_f=512, group=256)
    out, q = transform_awq_weights(t, AwqLoadConfig(group_size=256))
    assert q.quantization.group_size == 128
    assert out["m.l.scales"].shape == (OUT, 4)
    assert_bits_equal(out["m.l.scales"], np.repeat(s.T, 2, axis=1))
    np.testing.assert_array_equal(mlx_unpack(out["m.l.weight"], 4, 512), codes.T)


def test_passthrough_order_and_identity(rng):
    t, *_ = layer(rng)
    emb = rng.standard_normal((10, 4)).astype(BF16)
    w = {"embed.weight": emb, **t, "m.l.bias": np.zeros(OUT, np.float16)}
    out, _ = transform_awq_weights(w)
    assert list(out) == ["embed.weight", "m.l.weight", "m.l.scales", "m.l.biases", "m.l.bias"]
    assert out["embed.weight"] is emb


def test_orphan_scales_and_qzeros_pass_through(rng):
    t, *_ = layer(rng)
    orphan_s = np.ones((2, 3), np.float16)
    orphan_z = np.zeros((2, 1), np.int32)
    out, _ = transform_awq_weights({**t, "x.scales": orphan_s, "y.qzeros": orphan_z})
    assert out["x.scales"] is orphan_s and out["y.qzeros"] is orphan_z


def test_inputs_are_not_modified(rng):
    t, *_ = layer(rng)
    before = {k: v.copy() for k, v in t.items()}
    transform_awq_weights(readonly(t))
    for k in t:
        assert_bits_equal(t[k], before[k])


def test_unpack_awq_weights_natural_order(rng):
    codes = rng.integers(0, 16, size=(5, 16))
    packed = awq_pack(codes)
    got = unpack_awq_weights(packed)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, codes)
    np.testing.assert_array_equal(unpack_awq_weights(packed.view(np.uint32)), codes)


def test_unpack_awq_weights_rejects_bad_input():
    with pytest.raises(errors.RankMismatchError):
        unpack_awq_weights(np.zeros((2, 2, 2), np.int32))
    with pytest.raises(errors.UnsupportedDtypeError):
        unpack_awq_weights(np.zeros((2, 2), np.int64))
    with pytest.raises(errors.ArgumentTypeError):
        unpack_awq_weights([[1]])


# ---- dtype resolution ---------------------------------------------------------------------

def test_f16_plus_bf16_escalates_generated_tensors_to_f32_only(rng):
    a, _, sa, _ = layer(rng, "a", np.float16)
    b, *_ = layer(rng, "b", BF16)
    emb = rng.standard_normal((4, 4)).astype(BF16)
    out, _ = transform_awq_weights({**a, **b, "emb.weight": emb})
    for p in "ab":
        assert out[f"{p}.scales"].dtype == np.float32
        assert out[f"{p}.biases"].dtype == np.float32
    assert out["emb.weight"].dtype == BF16 and out["emb.weight"] is emb
    # float16 scales survive exactly (a bfloat16 target would have rounded them).
    np.testing.assert_array_equal(out["a.scales"], sa.T.astype(np.float32))


def test_highest_precision_scales_dtype_wins(rng):
    a, *_ = layer(rng, "a", np.float16)
    b, *_ = layer(rng, "b", np.float32)
    out, _ = transform_awq_weights({**a, **b})
    assert out["a.scales"].dtype == np.float32 and out["a.biases"].dtype == np.float32


def test_explicit_out_dtype(rng):
    t, *_ = layer(rng, scale_dtype=np.float32)
    out, _ = transform_awq_weights(t, out_dtype="bfloat16")
    assert out["m.l.scales"].dtype == BF16 and out["m.l.biases"].dtype == BF16
    with pytest.raises(errors.UnsupportedDtypeError):
        transform_awq_weights(t, out_dtype=np.int32)


def test_awq_output_dtype_from_headers():
    d = {"a.qweight": np.int32, "a.scales": np.float16, "b.qweight": np.int32,
         "b.scales": BF16, "x.scales": np.float64, "emb.weight": np.float64}
    assert awq_output_dtype(d) == np.float32
    assert awq_output_dtype({"emb.weight": np.float32}) is None


# ---- refusals -----------------------------------------------------------------------------

def test_g_idx_rejected(rng):
    t, *_ = layer(rng)
    t["m.l.g_idx"] = np.zeros(IN, np.int32)
    with pytest.raises(errors.InvalidArgumentError, match="g_idx"):
        transform_awq_weights(t)


def test_scales_must_be_floating(rng):
    t, *_ = layer(rng)
    t["m.l.scales"] = t["m.l.scales"].astype(np.int32)
    with pytest.raises(errors.UnsupportedDtypeError) as e:
        transform_awq_weights(t)
    assert e.value.key == "m.l.scales"


def test_missing_scales(rng):
    t, *_ = layer(rng)
    del t["m.l.scales"]
    with pytest.raises(errors.MissingKeyError) as e:
        transform_awq_weights(t)
    assert e.value.key == "m.l.scales" and e.value.layer == "m.l"


@pytest.mark.parametrize("stale", ["weight", "biases"])
def test_stale_dense_siblings_collide(rng, stale):
    t, *_ = layer(rng)
    t[f"m.l.{stale}"] = np.zeros((OUT, IN), np.float16)
    with pytest.raises(errors.KeyCollisionError) as e:
        transform_awq_weights(t)
    assert e.value.key == f"m.l.{stale}"


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.float32])
def test_qweight_dtype(rng, dtype):
    t, *_ = layer(rng)
    t["m.l.qweight"] = t["m.l.qweight"].astype(dtype)
    with pytest.raises(errors.UnsupportedDtypeError):
        transform_awq_weights(t)


def test_qweight_rank(rng):
    t, *_ = layer(rng)
    t["m.l.qweight"] = t["m.l.qweight"][None]
    with pytest.raises(errors.RankMismatchError):
        transform_awq_weights(t)


def test_scales_rank(rng):
    t, *_ = layer(rng)
    t["m.l.scales"] = t["m.l.scales"].reshape(-1)
    with pytest.raises(errors.RankMismatchError):
        transform_awq_weights(t)


def test_in_features_divisible_by_group(rng):
    t, *_ = layer(rng)
    t["m.l.qweight"] = t["m.l.qweight"][:200]
    with pytest.raises(errors.DivisibilityError):
        transform_awq_weights(t)


def test_scales_shape(rng):
    t, *_ = layer(rng)
    t["m.l.scales"] = t["m.l.scales"][:, :-8]
    with pytest.raises(errors.ShapeMismatchError):
        transform_awq_weights(t)


def test_qzeros_dtype(rng):
    t, *_ = layer(rng)
    t["m.l.qzeros"] = t["m.l.qzeros"].astype(np.float32)
    with pytest.raises(errors.UnsupportedDtypeError):
        transform_awq_weights(t)


def test_qzeros_shape(rng):
    t, *_ = layer(rng)
    t["m.l.qzeros"] = t["m.l.qzeros"][:1, :-1]
    with pytest.raises(errors.ShapeMismatchError):
        transform_awq_weights(t)


def test_non_array_value(rng):
    t, *_ = layer(rng)
    t["m.l.scales"] = t["m.l.scales"].tolist()
    with pytest.raises(errors.ArgumentTypeError):
        transform_awq_weights(t)


def test_weights_must_be_a_mapping():
    with pytest.raises(errors.ArgumentTypeError):
        transform_awq_weights([("a", np.zeros(1))])


# ---- mlx-lm bit identity --------------------------------------------------------------------

def _mlx_lm(weights, cfg):
    mx = pytest.importorskip("mlx.core")
    utils = pytest.importorskip("mlx_lm.utils")
    from support import to_mx, to_np

    out, q = utils._transform_awq_weights({k: to_mx(v) for k, v in weights.items()}, cfg)
    return {k: to_np(v) for k, v in out.items()}, q


@pytest.mark.parametrize("scale_dtype", [np.float16, BF16, np.float32])
@pytest.mark.parametrize("zeros", [True, False])
def test_bit_identical_to_mlx_lm(rng, scale_dtype, zeros):
    a, *_ = layer(rng, "model.layers.0.mlp.up_proj", scale_dtype, zeros=zeros)
    b, *_ = layer(rng, "model.layers.0.mlp.down_proj", scale_dtype, out_f=32, in_f=512,
                  zeros=zeros)
    w = {**a, **b, "model.norm.weight": rng.standard_normal(8).astype(scale_dtype)}
    ref, ref_q = _mlx_lm(w, {"bits": 4, "group_size": 128})
    out, q = transform_awq_weights(w, {"bits": 4, "group_size": 128})
    assert sorted(out) == sorted(ref)
    for k in ref:
        assert_bits_equal(out[k], ref[k])
    assert ref_q == {"group_size": q.quantization.group_size, "bits": q.quantization.bits}


def test_deliberate_difference_from_mlx_lm_dtype_unification(rng):
    # mlx-lm casts every floating tensor (pass-through included) to the LAST layer's scales
    # dtype; mlxq casts only generated scales/biases, to the most precise dtype (f16+bf16 ->
    # f32). Everything else is the same.
    a, *_ = layer(rng, "a", np.float16)
    b, *_ = layer(rng, "b", BF16)
    emb = rng.standard_normal((4, 4)).astype(np.float16)
    w = {**a, **b, "emb.weight": emb}
    ref, _ = _mlx_lm(w, {"bits": 4, "group_size": 128})
    out, _ = transform_awq_weights(w)
    assert ref["emb.weight"].dtype == BF16 and out["emb.weight"].dtype == np.float16
    assert ref["a.scales"].dtype == BF16 and out["a.scales"].dtype == np.float32
    for k in ("a.weight", "b.weight"):
        assert_bits_equal(out[k], ref[k])
    # Narrowing mlxq's float32 to bfloat16 reproduces mlx-lm's generated tensors exactly.
    for k in ("a.scales", "a.biases", "b.scales", "b.biases"):
        assert_bits_equal(mlxq.astype(mlxq.astype(out[k], np.float16 if k[0] == "a" else BF16),
                                      BF16), ref[k])


# ---- the C kernels --------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 2])
def test_repack_any_strides_any_thread_count(rng, threads):
    from mlxq import _core

    codes = rng.integers(0, 16, size=(136, 88))  # 11 packed columns, 17 input words: tails
    packed = awq_pack(codes)
    prev = mlxq.get_num_threads()
    try:
        mlxq.set_num_threads(threads)
        for q in (packed, np.asfortranarray(packed), np.stack([packed, packed], -1)[..., 1]):
            got = _core.awq_repack(q, 6)
            np.testing.assert_array_equal(mlx_unpack(got, 4, 136), codes.T)
            t = _core.transpose_u32(q, 6)
            assert_bits_equal(t, np.ascontiguousarray(packed.view(np.uint32).T))
    finally:
        mlxq.set_num_threads(prev)


def test_c_kernels_refuse_bad_shapes():
    from mlxq import _core

    with pytest.raises(errors.DivisibilityError):
        _core.awq_repack(np.zeros((12, 2), np.int32), 6)
    with pytest.raises(errors.RankMismatchError):
        _core.awq_repack(np.zeros(8, np.int32), 6)
    with pytest.raises(TypeError):
        _core.awq_repack(np.zeros((8, 2), np.float32), 11)
    with pytest.raises(errors.OutOfRangeError):
        _core.gptq_unpack_zeros(np.zeros((2, 3), np.int32), 6, 5, 0)
    with pytest.raises(errors.OutOfRangeError):
        _core.gptq_unpack_zeros(np.zeros((2, 3), np.int32), 6, 4, 2)


def test_bit_identical_to_mlx_lm_on_arbitrary_words(rng):
    # Every bit pattern, negative int32 words included, not just what a quantizer emits.
    words = lambda *s: rng.integers(-2**31, 2**31, size=s, dtype=np.int64).astype(np.int32)
    w = {"l.qweight": words(256, 16), "l.qzeros": words(2, 16),
         "l.scales": rng.standard_normal((2, 128)).astype(np.float16)}
    ref, _ = _mlx_lm(w, {"bits": 4, "group_size": 128})
    out, _ = transform_awq_weights(w)
    for k in ref:
        assert_bits_equal(out[k], ref[k])
