"""gpt-oss MXFP4 -> MLX mxfp4: lossless against transformers' decoding formula, names as
mlx-lm's gpt_oss sanitize produces them, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest

import mlxq
from mlxq import errors
from mlxq.formats.mxfp4_checkpoint import transform_mxfp4_weights
from producers import mxfp4_checkpoint, mxfp4_dequant
from support import assert_bits_equal

P = "model.layers.0.mlp.experts"


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def ckpt(rng, lead=(3,), out_f=16, in_f=64, name="gate_up_proj"):
    b, s = mxfp4_checkpoint(rng, lead, out_f, in_f)
    return {f"{P}.{name}_blocks": b, f"{P}.{name}_scales": s}, b, s


def test_dequantized_equals_transformers_formula(rng):
    w, b, s = ckpt(rng)
    out, q = transform_mxfp4_weights(w)
    assert q.quantization == mlxq.Quantization(32, 4, "mxfp4")
    wq, sc = out[f"{P}.gate_up_proj.weight"], out[f"{P}.gate_up_proj.scales"]
    assert wq.dtype == np.uint32 and wq.shape == (3, 16, 8)
    assert_bits_equal(sc, s)
    got = mlxq.dequantize(wq, sc, mode="mxfp4", dtype=np.float32)
    np.testing.assert_array_equal(got, mxfp4_dequant(b, s))


def test_low_nibble_is_the_first_element():
    b = np.zeros((1, 1, 16), np.uint8)
    b[0, 0, 0] = 0x72  # low nibble 2 (1.0) first, then 7 (6.0)
    out, _ = transform_mxfp4_weights({"x_blocks": b, "x_scales": np.full((1, 1), 127, np.uint8)})
    got = mlxq.dequantize(out["x.weight"], out["x.scales"], mode="mxfp4", dtype=np.float32)
    assert got[0, :3].tolist() == [1.0, 6.0, 0.0]


def test_passthrough_and_readonly_inputs(rng):
    w, b, s = ckpt(rng)
    bias = np.zeros((3, 16), np.float32)
    w = {"emb": np.zeros(2, np.float32), **w, f"{P}.gate_up_proj_bias": bias,
         "rope_scales": np.ones(2, np.float32)}
    for a in w.values():
        a.flags.writeable = False
    out, _ = transform_mxfp4_weights(w)
    assert list(out) == ["emb", f"{P}.gate_up_proj.weight", f"{P}.gate_up_proj.scales",
                         f"{P}.gate_up_proj_bias", "rope_scales"]
    assert out[f"{P}.gate_up_proj_bias"] is bias


def test_names_match_mlx_lm_gpt_oss_sanitize(rng):
    mx = pytest.importorskip("mlx.core")
    gpt_oss = pytest.importorskip("mlx_lm.models.gpt_oss")
    from support import to_mx, to_np

    w, *_ = ckpt(rng)
    d, *_ = ckpt(rng, name="down_proj")
    w.update(d)
    ref = gpt_oss.Model.sanitize(None, {k: to_mx(v) for k, v in w.items()})
    out, _ = transform_mxfp4_weights(w)
    # mlx-lm's sanitize, run on our output, reaches the same tensors as on the raw checkpoint.
    again = gpt_oss.Model.sanitize(None, {k: to_mx(v) for k, v in out.items()})
    assert sorted(again) == sorted(ref)
    for k in ref:
        assert_bits_equal(to_np(again[k]), to_np(ref[k]))
    assert_bits_equal(out[f"{P}.down_proj.weight"], to_np(ref[f"{P}.down_proj.weight"]))


def test_blocks_without_scales(rng):
    w, *_ = ckpt(rng)
    del w[f"{P}.gate_up_proj_scales"]
    with pytest.raises(errors.MissingKeyError):
        transform_mxfp4_weights(w)


@pytest.mark.parametrize("suffix", [".weight", ".scales"])
def test_collision_with_existing_output(rng, suffix):
    w, *_ = ckpt(rng)
    w[f"{P}.gate_up_proj{suffix}"] = np.zeros(1)
    with pytest.raises(errors.KeyCollisionError):
        transform_mxfp4_weights(w)


@pytest.mark.parametrize("which", ["blocks", "scales"])
def test_dtype_must_be_uint8(rng, which):
    w, *_ = ckpt(rng)
    k = f"{P}.gate_up_proj_{which}"
    w[k] = w[k].astype(np.int16)
    with pytest.raises(errors.UnsupportedDtypeError):
        transform_mxfp4_weights(w)


def test_shapes_must_agree(rng):
    w, *_ = ckpt(rng)
    w[f"{P}.gate_up_proj_blocks"] = w[f"{P}.gate_up_proj_blocks"][..., :8]
    with pytest.raises(errors.ShapeMismatchError):
        transform_mxfp4_weights(w)


def test_scales_rank(rng):
    w = {"x_blocks": np.zeros((2, 16), np.uint8), "x_scales": np.zeros(2, np.uint8)}
    with pytest.raises(errors.RankMismatchError):
        transform_mxfp4_weights(w)
