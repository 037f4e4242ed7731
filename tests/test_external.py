"""mlxq.formats.external: format detection and the per-group interface the converter drives."""

from __future__ import annotations

import numpy as np
import pytest

import mlxq
from mlxq import errors
from mlxq.formats.external import AwqFormat, GptqFormat, Mxfp4Format, detect
from producers import awq_checkpoint, gptq_checkpoint, mxfp4_checkpoint
from support import BF16, assert_bits_equal


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def qc(**kw):
    return {"quantization_config": kw}


def test_detect_formats():
    assert isinstance(detect(qc(quant_method="awq", version="gemm")), AwqFormat)
    g = detect(qc(quant_method="gptq", bits=8, group_size=-1, checkpoint_format="gptq_v2"))
    assert isinstance(g, GptqFormat) and g.config.zero_offset == 0
    assert g.quantization() == mlxq.Quantization(128, 8)
    m = detect(qc(quant_method="mxfp4", modules_to_not_convert=["lm_head"]))
    assert isinstance(m, Mxfp4Format) and m.name == "mxfp4"
    assert m.quantization() == mlxq.Quantization(32, 4, "mxfp4")
    nested = detect({"text_config": qc(quant_method="AWQ")})
    assert isinstance(nested, AwqFormat)


def test_detect_none_without_quantization_config():
    assert detect({}) is None
    assert detect({"quantization": {"group_size": 64, "bits": 4}}) is None


@pytest.mark.parametrize("method", ["bitsandbytes", "fp8", "compressed-tensors", "hqq", None])
def test_detect_refuses_other_methods(method):
    with pytest.raises(errors.UnknownEnumValueError, match="not supported"):
        detect(qc(quant_method=method))


def test_detect_refuses_bad_configs():
    with pytest.raises(errors.UnknownEnumValueError, match="gemm"):
        detect(qc(quant_method="awq", version="gemv"))
    with pytest.raises(errors.OutOfRangeError):
        detect(qc(quant_method="gptq", bits=6))
    with pytest.raises(errors.ParseError, match="quantization_config must be an object"):
        detect({"quantization_config": "awq"})
    with pytest.raises(errors.ParseError, match="quant_method must be a string"):
        detect({"quantization_config": {"quant_method": ["awq"]}})
    with pytest.raises(errors.ArgumentTypeError):
        detect(["quantization_config"])


def _awq_map(rng):
    w = {"model.embed_tokens.weight": rng.standard_normal((8, 4)).astype(BF16)}
    for i, dt in enumerate([np.float16, BF16]):
        qw, s, qz, *_ = awq_checkpoint(rng, 32, 128, 128, dt)
        p = f"model.layers.{i}.mlp.up_proj"
        w.update({f"{p}.qweight": qw, f"{p}.qzeros": qz, f"{p}.scales": s,
                  f"{p}.bias": np.zeros(32, dt)})
    w["lm_head.weight"] = np.zeros((8, 4), np.float16)
    return w


def _gptq_map(rng):
    w = {"model.norm.weight": np.ones(4, np.float16)}
    for i in range(2):
        t, *_ = gptq_checkpoint(rng, 32, 256, 128, 4)
        w.update({f"model.layers.{i}.self_attn.q_proj.{k}": v for k, v in t.items()})
    return w


def _mxfp4_map(rng):
    b, s = mxfp4_checkpoint(rng, (2,), 8, 64)
    return {"model.layers.0.mlp.experts.down_proj_blocks": b,
            "model.layers.0.mlp.experts.down_proj_scales": s,
            "model.layers.0.mlp.experts.down_proj_bias": np.zeros((2, 8), BF16),
            "model.norm.weight": np.ones(4, BF16)}


CASES = [
    ("awq", _awq_map, 6),
    ("gptq", _gptq_map, 3),
    ("mxfp4", _mxfp4_map, 3),
]


@pytest.mark.parametrize("method, build, n_groups", CASES)
def test_groups_partition_and_per_group_transform_equals_whole(rng, method, build, n_groups):
    fmt = detect(qc(quant_method=method))
    w = build(rng)
    groups = fmt.group_keys(w)
    flat = [n for g in groups for n in g]
    assert sorted(flat) == sorted(w) and len(flat) == len(set(flat))
    assert len(groups) == n_groups
    out_dtype = fmt.output_dtype({k: v.dtype for k, v in w.items()})
    whole, q_whole = fmt.transform(w, out_dtype=out_dtype)
    merged: dict = {}
    for g in groups:
        part, q = fmt.transform({k: w[k] for k in g}, out_dtype=out_dtype)
        assert q.quantization == fmt.quantization() == q_whole.quantization
        merged.update(part)
    assert sorted(merged) == sorted(whole)
    for k in whole:
        assert_bits_equal(merged[k], whole[k])


def test_output_dtype_from_headers_only(rng):
    w = _awq_map(rng)
    fmt = detect(qc(quant_method="awq"))
    assert fmt.output_dtype({k: v.dtype for k, v in w.items()}) == np.float32
    assert detect(qc(quant_method="mxfp4")).output_dtype({"a_scales": np.uint8}) is None


def test_group_keys_keep_stale_siblings_with_their_layer(rng):
    fmt = detect(qc(quant_method="gptq"))
    groups = fmt.group_keys(["a.qweight", "a.weight", "a.scales", "a.bias", "b.weight"])
    assert groups == [["a.qweight", "a.weight", "a.scales"], ["a.bias"], ["b.weight"]]


def test_requantize_through_the_interface(rng):
    fmt = detect(qc(quant_method="gptq", desc_act=True))
    t, *_ = gptq_checkpoint(rng, 32, 256, 128, 4, act_order=True)
    w = {f"l.{k}": v for k, v in t.items()}
    with pytest.raises(errors.InvalidArgumentError):
        fmt.transform(w)
    report: list = []
    with pytest.warns(RuntimeWarning):
        out, _ = fmt.transform(w, allow_requantize=True, report=report)
    assert len(report) == 1 and "l.weight" in out
