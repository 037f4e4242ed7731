"""GPTQ -> MLX: producer-faithful v1/v2 checkpoints (AutoGPTQ's pack, GPTQModel's v2), the
GPTQ dequantization formula as the reference, and one test per refusal."""

from __future__ import annotations

import numpy as np
import pytest

import mlxq
from mlxq import errors
from mlxq.formats.gptq import GptqConfig, RequantizeReport, gptq_output_dtype, transform_gptq_weights
from producers import gptq_checkpoint, gptq_dequant, mlx_unpack, stream_pack
from support import BF16, assert_bits_equal

OUT, IN = 64, 256


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def layer(rng, bits=4, group=128, v2=False, prefix="m.l", scale_dtype=np.float16, **kw):
    t, codes, s, z, g_idx = gptq_checkpoint(rng, kw.pop("out_f", OUT), kw.pop("in_f", IN),
                                            group, bits, v2=v2, scale_dtype=scale_dtype, **kw)
    return {f"{prefix}.{k}": v for k, v in t.items()}, codes, s, z, g_idx


def cfg(bits=4, group=128, v2=False, **kw):
    return GptqConfig(bits=bits, group_size=group,
                      checkpoint_format="gptq_v2" if v2 else "gptq", **kw)


def mlx_dequant(out, p, q):
    return mlxq.dequantize(out[p + ".weight"], out[p + ".scales"], out[p + ".biases"],
                           group_size=q.group_size, bits=q.bits, dtype=np.float32)


# ---- config ---------------------------------------------------------------------------------

def test_config_from_dict():
    c = GptqConfig.from_dict({"quant_method": "gptq", "bits": 3, "group_size": 64,
                              "desc_act": True, "sym": False, "checkpoint_format": "gptq_v2"})
    assert c == GptqConfig(3, 64, False, True, "gptq_v2")
    assert GptqConfig.from_dict({}) == GptqConfig()
    assert c.zero_offset == 0 and GptqConfig().zero_offset == 1


@pytest.mark.parametrize("qc, err", [
    ({"checkpoint_format": "marlin"}, errors.UnknownEnumValueError),
    ({"is_marlin_format": True}, errors.UnknownEnumValueError),
    ({"bits": 5}, errors.OutOfRangeError),
    ({"bits": 16}, errors.OutOfRangeError),
    ({"group_size": 0}, errors.OutOfRangeError),
    ({"group_size": -2}, errors.OutOfRangeError),
    ({"group_size": 48}, errors.OutOfRangeError),
])
def test_config_refusals(rng, qc, err):
    t, *_ = layer(rng)
    with pytest.raises(err):
        transform_gptq_weights(t, qc)


def test_config_from_dict_refusals():
    with pytest.raises(errors.UnknownEnumValueError, match="pack_dtype"):
        GptqConfig.from_dict({"pack_dtype": "int16"})
    with pytest.raises(errors.InvalidArgumentError, match="dynamic"):
        GptqConfig.from_dict({"dynamic": {"-:.*lm_head": {}}})
    with pytest.raises(errors.ArgumentTypeError):
        GptqConfig(sym="yes")
    with pytest.raises(errors.ArgumentTypeError):
        GptqConfig(bits=4.0)
    with pytest.raises(errors.ArgumentTypeError):
        GptqConfig(checkpoint_format=2)
    with pytest.raises(errors.ArgumentTypeError):
        GptqConfig.from_dict("gptq")


# ---- lossless conversion ----------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("v2", [False, True])
def test_codes_and_zeros_move_losslessly(rng, bits, v2):
    t, codes, s, z, _ = layer(rng, bits, v2=v2)
    out, q = transform_gptq_weights(t, cfg(bits, v2=v2))
    assert q.quantization == mlxq.Quantization(128, bits)
    wq = out["m.l.weight"]
    assert wq.dtype == np.uint32 and wq.shape == (OUT, IN * bits // 32)
    np.testing.assert_array_equal(mlx_unpack(wq, bits, IN), codes.T)
    assert_bits_equal(out["m.l.scales"], np.ascontiguousarray(s.T))
    ref_b = (-(z.T.astype(np.float32)) * s.T.astype(np.float32)).astype(np.float16)
    assert_bits_equal(out["m.l.biases"], ref_b)
    assert not any(k.endswith((".qweight", ".qzeros", ".g_idx")) for k in out)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_dequantized_equals_gptq_formula_when_bias_is_representable(rng, bits):
    t, codes, _, z, g_idx = layer(rng, bits, v2=True)
    # Few significant bits in the scales: -zero*scale and every product are exact in
    # float16, so MLX's q*s + b equals GPTQ's s*(q - z) exactly.
    s = (rng.integers(1, 8, size=t["m.l.scales"].shape) * 2.0 ** -10).astype(np.float16)
    t["m.l.scales"] = s
    out, q = transform_gptq_weights(t, cfg(bits, v2=True))
    ref = gptq_dequant(codes, s, z, g_idx).T.astype(np.float32)
    np.testing.assert_array_equal(mlx_dequant(out, "m.l", q.quantization), ref)


@pytest.mark.parametrize("scale_dtype", [np.float16, BF16, np.float32])
def test_dequantized_within_bias_rounding_of_gptq_formula(rng, scale_dtype):
    t, codes, s, z, g_idx = layer(rng, 4, scale_dtype=scale_dtype)
    out, q = transform_gptq_weights(t, cfg(4))
    got = mlx_dequant(out, "m.l", q.quantization).astype(np.float64)
    ref = gptq_dequant(codes, s, z, g_idx).T
    sf = np.abs(s.astype(np.float64))[g_idx].T
    mag = np.abs(ref) + sf * 15 + (z.astype(np.float64) * np.abs(s.astype(np.float64)))[g_idx].T
    eps = {np.dtype(np.float16): 2.0 ** -11, BF16: 2.0 ** -8, np.dtype(np.float32): 2.0 ** -24}
    assert np.all(np.abs(got - ref) <= 2 * eps[np.dtype(scale_dtype)] * mag)


def test_v1_offset_is_the_classic_off_by_one(rng):
    t1, codes, s, z, _ = layer(np.random.default_rng(1), 4, v2=False)
    t2, *_ = layer(np.random.default_rng(1), 4, v2=True)
    assert not np.array_equal(t1["m.l.qzeros"], t2["m.l.qzeros"])
    o1, _ = transform_gptq_weights(t1, cfg(4, v2=False))
    o2, _ = transform_gptq_weights(t2, cfg(4, v2=True))
    for k in o1:
        assert_bits_equal(o1[k], o2[k])
    # Read as v2, a v1 checkpoint would be off by one scale everywhere.
    o3, _ = transform_gptq_weights(t1, cfg(4, v2=True))
    np.testing.assert_allclose(o3["m.l.biases"].astype(np.float32),
                               o1["m.l.biases"].astype(np.float32) + o1["m.l.scales"], rtol=2e-3)


def test_v1_all_ones_field_decodes_to_2_pow_bits(rng):
    # AutoGPTQ's kernels mask the field then add one: a stored 15 is zero 16.
    t, codes, s, _, _ = layer(rng, 4)
    t["m.l.qzeros"] = np.full_like(t["m.l.qzeros"], -1)
    out, _ = transform_gptq_weights(t, cfg(4))
    assert_bits_equal(out["m.l.biases"], (-16 * s.T.astype(np.float32)).astype(np.float16))


def test_sym_without_qzeros_uses_implicit_midpoint(rng):
    t, _, s, _, _ = layer(rng, 8)
    del t["m.l.qzeros"]
    out, _ = transform_gptq_weights(t, cfg(8, sym=True))
    assert_bits_equal(out["m.l.biases"], (-128 * s.T.astype(np.float32)).astype(np.float16))


def test_missing_g_idx_is_the_contiguous_mapping(rng):
    t, *_ = layer(rng)
    ref, _ = transform_gptq_weights(t, cfg())
    del t["m.l.g_idx"]
    out, _ = transform_gptq_weights(t, cfg())
    for k in ref:
        assert_bits_equal(out[k], ref[k])


@pytest.mark.parametrize("group, in_f, mlx_group", [(-1, 256, 128), (-1, 96, 32), (256, 512, 128),
                                                     (64, 256, 64), (32, 96, 32)])
def test_groups_mlx_lacks_are_regrouped_losslessly(rng, group, in_f, mlx_group):
    t, codes, s, z, g_idx = layer(rng, 4, group=group, in_f=in_f)
    out, q = transform_gptq_weights(t, cfg(4, group))
    got_q = q.quantization_for("m.l")
    assert got_q.group_size == mlx_group
    if mlx_group != q.quantization.group_size:
        assert q.per_layer["m.l"] == mlxq.Quantization(mlx_group, 4)
    assert out["m.l.scales"].shape == (OUT, in_f // mlx_group)
    np.testing.assert_array_equal(mlx_unpack(out["m.l.weight"], 4, in_f), codes.T)
    ref_s = s[(np.arange(in_f // mlx_group) * mlx_group) // (in_f if group == -1 else group)]
    assert_bits_equal(out["m.l.scales"], np.ascontiguousarray(ref_s.T))


def test_partial_last_group(rng):
    # AutoGPTQ sizes scales with ceil(in / group): in=192, group=128 -> 2 groups, the last
    # half full; MLX groups of 64 re-express it.
    t, codes, s, z, g_idx = layer(rng, 4, group=128, in_f=192)
    out, q = transform_gptq_weights(t, cfg(4, 128))
    assert q.quantization_for("m.l").group_size == 64
    ref = gptq_dequant(codes, s, z, g_idx).T
    got = mlx_dequant(out, "m.l", q.quantization_for("m.l")).astype(np.float64)
    np.testing.assert_allclose(got, ref, atol=float(np.abs(s.astype(np.float64)).max()) * 2e-2)


def test_passthrough_and_inputs_untouched(rng):
    t, *_ = layer(rng)
    bias = np.ones(OUT, np.float16)
    w = {"emb.weight": np.zeros((3, 3), BF16), **t, "m.l.bias": bias}
    for a in w.values():
        a.flags.writeable = False
    before = {k: v.copy() for k, v in w.items()}
    out, _ = transform_gptq_weights(w, cfg())
    assert list(out) == ["emb.weight", "m.l.weight", "m.l.scales", "m.l.biases", "m.l.bias"]
    assert out["m.l.bias"] is bias
    for k in w:
        assert_bits_equal(w[k], before[k])


def test_mixed_scale_dtypes_escalate_generated_only(rng):
    a, *_ = layer(rng, prefix="a", scale_dtype=np.float16)
    b, *_ = layer(rng, prefix="b", scale_dtype=BF16)
    emb = np.zeros((2, 2), BF16)
    out, _ = transform_gptq_weights({**a, **b, "emb": emb}, cfg())
    assert {out[f"{p}.{k}"].dtype for p in "ab" for k in ("scales", "biases")} == {np.dtype(np.float32)}
    assert out["emb"] is emb
    assert gptq_output_dtype({"a.qweight": np.int32, "a.scales": np.float16,
                              "b.qweight": np.int32, "b.scales": BF16}) == np.float32
    out2, _ = transform_gptq_weights(a, cfg(), out_dtype=np.float32)
    assert_bits_equal(out2["a.scales"], out["a.scales"])


# ---- act-order ----------------------------------------------------------------------------

def test_act_order_g_idx_refused_by_default(rng):
    t, *_ = layer(rng, act_order=True)
    with pytest.raises(errors.InvalidArgumentError, match="allow_requantize") as e:
        transform_gptq_weights(t, cfg(desc_act=True))
    assert e.value.key == "m.l.g_idx"


def test_act_order_requantized_with_report(rng):
    t, codes, s, z, g_idx = layer(rng, 4, act_order=True)
    report: list = []
    with pytest.warns(RuntimeWarning, match="re-quantized"):
        out, q = transform_gptq_weights(t, cfg(desc_act=True), allow_requantize=True,
                                        report=report)
    (rep,) = report
    assert isinstance(rep, RequantizeReport) and rep.layer == "m.l"
    assert rep.quantization == mlxq.Quantization(128, 4)
    ref = gptq_dequant(codes, s, z, g_idx).T  # the producer's weights, independent of mlxq
    got = mlx_dequant(out, "m.l", q.quantization).astype(np.float64)
    err = got - ref
    assert rep.error.rmse == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-3)
    assert rep.error.max_abs == pytest.approx(np.abs(err).max(), rel=1e-3)
    # Re-quantizing 4-bit weights into 4-bit groups of 128 adds error, but bounded: at most
    # one step of the new groups (range / 15) plus the dequantized producer rounding.
    assert 0 < rep.error.rmse < float(np.abs(ref).max()) / 15


def test_contiguous_g_idx_with_desc_act_converts_losslessly(rng):
    t, codes, *_ = layer(rng, 4)
    out, _ = transform_gptq_weights(t, cfg(desc_act=True))
    np.testing.assert_array_equal(mlx_unpack(out["m.l.weight"], 4, IN), codes.T)


# ---- refusals -----------------------------------------------------------------------------

def _broken(rng, edit):
    t, *_ = layer(rng)
    edit(t)
    return t


@pytest.mark.parametrize("edit, err, key", [
    (lambda t: t.pop("m.l.scales"), errors.MissingKeyError, "m.l.scales"),
    (lambda t: t.__setitem__("m.l.weight", np.zeros(1)), errors.KeyCollisionError, "m.l.weight"),
    (lambda t: t.__setitem__("m.l.biases", np.zeros(1)), errors.KeyCollisionError, "m.l.biases"),
    (lambda t: t.__setitem__("m.l.qweight", t["m.l.qweight"].astype(np.int64)),
     errors.UnsupportedDtypeError, "m.l.qweight"),
    (lambda t: t.__setitem__("m.l.scales", t["m.l.scales"].astype(np.int16)),
     errors.UnsupportedDtypeError, "m.l.scales"),
    (lambda t: t.__setitem__("m.l.qweight", t["m.l.qweight"][None]),
     errors.RankMismatchError, "m.l.qweight"),
    (lambda t: t.__setitem__("m.l.scales", t["m.l.scales"][0]),
     errors.RankMismatchError, "m.l.scales"),
    (lambda t: t.__setitem__("m.l.scales", t["m.l.scales"][:, :8]),
     errors.ShapeMismatchError, "m.l.scales"),
    (lambda t: t.__setitem__("m.l.qzeros", t["m.l.qzeros"].astype(np.float32)),
     errors.UnsupportedDtypeError, "m.l.qzeros"),
    (lambda t: t.__setitem__("m.l.qzeros", t["m.l.qzeros"][:, :3]),
     errors.ShapeMismatchError, "m.l.qzeros"),
    (lambda t: t.__setitem__("m.l.g_idx", t["m.l.g_idx"].astype(np.float32)),
     errors.UnsupportedDtypeError, "m.l.g_idx"),
    (lambda t: t.__setitem__("m.l.g_idx", t["m.l.g_idx"][:10]),
     errors.ShapeMismatchError, "m.l.g_idx"),
    (lambda t: t.__setitem__("m.l.g_idx", t["m.l.g_idx"] + 5),
     errors.OutOfRangeError, "m.l.g_idx"),
    (lambda t: t.__setitem__("m.l.scales", t["m.l.scales"].tolist()),
     errors.ArgumentTypeError, "m.l.scales"),
])
def test_malformed_layers(rng, edit, err, key):
    with pytest.raises(err) as e:
        transform_gptq_weights(_broken(rng, edit), cfg())
    assert e.value.layer == "m.l" and e.value.key == key


def test_asym_without_qzeros(rng):
    t, *_ = layer(rng)
    del t["m.l.qzeros"]
    with pytest.raises(errors.MissingKeyError, match="sym=False"):
        transform_gptq_weights(t, cfg(sym=False))


def test_desc_act_without_g_idx(rng):
    t, *_ = layer(rng)
    del t["m.l.g_idx"]
    with pytest.raises(errors.MissingKeyError, match="desc_act"):
        transform_gptq_weights(t, cfg(desc_act=True))


def test_qweight_rows_not_whole_3bit_codes(rng):
    t, *_ = layer(rng, 3)
    t["m.l.qweight"] = t["m.l.qweight"][:-1]
    with pytest.raises(errors.DivisibilityError):
        transform_gptq_weights(t, cfg(3))


def test_width_with_no_mlx_group(rng):
    # in = 16 inputs (4-bit: 2 rows of qweight), group_size -1: no MLX group divides 16.
    qw = stream_pack(np.zeros((16, 32), np.int64), 4, axis=0)
    t = {"l.qweight": qw, "l.scales": np.ones((1, 32), np.float16),
         "l.qzeros": np.zeros((1, 4), np.int32)}
    with pytest.raises(errors.DivisibilityError, match="MLX group"):
        transform_gptq_weights(t, cfg(4, -1))


def test_mlx_lm_transform_is_wrong_for_gptq(rng):
    # Why mlxq needs its own GPTQ path: mlx-lm routes quant_method "gptq" through its AWQ
    # transform, which reads GPTQ's [in*bits/32, out] qweight as AWQ's [in, out/8].
    mx = pytest.importorskip("mlx.core")
    utils = pytest.importorskip("mlx_lm.utils")
    from support import to_mx

    t, codes, *_ = layer(rng, 4)
    del t["m.l.g_idx"]
    try:
        ref, _ = utils._transform_awq_weights({k: to_mx(v) for k, v in t.items()}, {"bits": 4})
        assert np.array(ref["m.l.weight"]).shape != (OUT, IN // 8)
    except (ValueError, RuntimeError):
        pass  # a shape error is the other possible outcome
    out, _ = transform_gptq_weights(t, cfg())
    np.testing.assert_array_equal(mlx_unpack(out["m.l.weight"], 4, IN), codes.T)
