"""Pre-quantized sources end to end (tests/fixtures/hf/fp8/, compressed_tensors/):

- FP8 block checkpoints of families whose mlx-lm sanitize dequantizes them (deepseek_v3,
  minimax): the same folder as ``mlx_lm.convert``, for every flag set;
- FP8 checkpoints of any other family (qwen3): the folder ``mlx_lm.convert`` makes from a
  copy dequantized here with an independent numpy formula (mlx-lm itself cannot);
- compressed-tensors INT4 (Kimi-K2-Thinking layout): the same folder as ``mlx_lm.convert``
  when the packed layers are kept (plain, ``-q``, ``-d``, ``--dtype``); with ``-q`` at
  other parameters, the folder mlx-lm makes from a copy dequantized by compressed-tensors'
  formula, with the bits asked for;
- malformed sources: typed errors naming the tensor, nothing written.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq import convert
from mlxq.errors import MlxqWarning
from mlxq._dtypes import bfloat16, float8_e4m3fn
from support import assert_same_folder, mlx_lm_convert

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"
FLAGS = {
    "plain": {},
    "q": {"quantize": True},
    "q3": {"quantize": True, "q_bits": 3},
    "q8g32": {"quantize": True, "q_bits": 8, "q_group_size": 32},
    "mxfp4": {"quantize": True, "q_mode": "mxfp4"},
    "d": {"dequantize": True},
    "f16": {"dtype": "float16"},
}


def write_copy(src: Path, dst: Path, tensors: dict, config: dict) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.json"))
    for f in src.glob("*.json"):
        if f.name not in ("config.json", "model.safetensors.index.json"):
            shutil.copy(f, dst / f.name)
    mlxq.save_safetensors(dst / "model.safetensors", tensors)
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    return dst


# ---- an independent numpy statement of mlx-lm's dequant (deepseek_v3 sanitize) -------------

def numpy_fp8_dequant(w: np.ndarray, s: np.ndarray, block=(128, 128)) -> np.ndarray:
    """from_fp8 to bfloat16 (exact), times the block's float32 scale in float32, rounded to
    bfloat16 once (round to nearest even; no NaN in these fixtures)."""
    v = w.view(float8_e4m3fn).astype(np.float32)
    rows = np.repeat(np.arange(s.shape[0]), block[0])[: v.shape[0]]
    cols = np.repeat(np.arange(s.shape[1]), block[1])[: v.shape[1]]
    prod = v * s.astype(np.float32)[rows][:, cols]
    assert np.isfinite(prod).all()
    bits = prod.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return rounded.view(bfloat16)


def dequantized_fp8_copy(src: Path, dst: Path) -> Path:
    w = mlxq.load_checkpoint(src)
    out = {}
    for k, v in w.items():
        if k.endswith("_scale_inv"):
            continue
        out[k] = numpy_fp8_dequant(np.array(v), np.array(w[k + "_scale_inv"])) \
            if k + "_scale_inv" in w else np.array(v)
    cfg = json.loads((src / "config.json").read_text())
    cfg.pop("quantization_config")
    return write_copy(src, dst, out, cfg)


@pytest.mark.parametrize("name", ["deepseek_v3", "minimax_m2"])
@pytest.mark.parametrize("flags", ["plain", "q", "q8g32", "mxfp4", "f16"])
def test_fp8_where_mlx_lm_dequantizes_gives_its_folder(name, flags, tmp_path):
    src = ROOT / "fp8" / name
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


def test_the_numpy_dequant_is_mlx_lms(tmp_path):
    """The independent formula used below agrees with mlx-lm's own dequant (through its
    deepseek_v3 conversion) on the FP8 fixture."""
    src = ROOT / "fp8" / "deepseek_v3"
    mlx_lm_convert(src, tmp_path / "a")
    mlx_lm_convert(dequantized_fp8_copy(src, tmp_path / "copy"), tmp_path / "b")
    a, b = mlxq.load_checkpoint(tmp_path / "a"), mlxq.load_checkpoint(tmp_path / "b")
    for k in b:
        np.testing.assert_array_equal(a[k].view(np.uint8), b[k].view(np.uint8), k)


@pytest.mark.parametrize("flags", ["plain", "q", "q3", "mxfp4", "f16"])
def test_fp8_of_any_family_equals_mlx_lm_on_a_dequantized_copy(flags, tmp_path):
    src = ROOT / "fp8" / "qwen3"
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    ref_src = dequantized_fp8_copy(src, tmp_path / "copy")
    mlx_lm_convert(ref_src, tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")
    assert "quantization_config" not in json.loads((tmp_path / "mlxq" / "config.json").read_text()) \
        or flags in ("q", "q3", "mxfp4")


# ---- compressed-tensors ---------------------------------------------------------------------

CT = ROOT / "compressed_tensors" / "deepseek_v3"


@pytest.mark.parametrize("flags", ["plain", "q", "d", "f16"])
def test_compressed_tensors_int4_kept_as_mlx_lm_keeps_it(flags, tmp_path):
    if flags == "q":  # the INT4 layers are kept, not quantized again: said so
        with pytest.warns(MlxqWarning, match="3 layers of the compressed-tensors checkpoint "
                          "keep their own quantization"):
            r = convert(CT, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    else:
        r = convert(CT, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    if flags != "d":
        assert r.repacked_layers == 3 and r.kept_quantized_layers == 0
        assert "3 layers repacked (compressed-tensors -> MLX, values unchanged)" in r.summary()
    mlx_lm_convert(CT, tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


def ct_dequantized_copy(dst: Path) -> Path:
    """compressed-tensors' own formula: (code - 8) * scale, rounded to the scale dtype once."""
    w = mlxq.load_checkpoint(CT)
    out = {}
    for k, v in w.items():
        if k.endswith(("weight_scale", "weight_shape")):
            continue
        if k.endswith("weight_packed"):
            base = k[: -len("_packed")]
            words = np.array(v).view(np.uint32)
            codes = (words[..., None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15
            q = codes.reshape(words.shape[0], -1).astype(np.float32) - 8
            s = np.array(w[base + "_scale"]).astype(np.float32)
            group = q.shape[1] // s.shape[1]
            dense = q * np.repeat(s, group, axis=1)
            out[base] = dense.astype(bfloat16)  # one rounding of the float32 product, as torch
            continue
        out[k] = np.array(v)
    cfg = json.loads((CT / "config.json").read_text())
    cfg.pop("quantization_config")
    return write_copy(CT, dst, out, cfg)


@pytest.mark.parametrize("flags", ["q3", "q8g32", "mxfp4"])
def test_compressed_tensors_requantized_to_the_bits_asked(flags, tmp_path):
    r = convert(CT, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(ct_dequantized_copy(tmp_path / "copy"), tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")
    want = {"q3": 3, "q8g32": 8, "mxfp4": 4}[flags]
    cfg = json.loads((tmp_path / "mlxq" / "config.json").read_text())
    assert cfg["quantization"]["bits"] == want
    assert r.kept_quantized_layers == 0


# ---- malformed ------------------------------------------------------------------------------

def fp8_variant(tmp_path: Path, edit, fixture: str = "qwen3") -> Path:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "fp8" / fixture, src)
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(src).items()}
    cfg = json.loads((src / "config.json").read_text())
    edit(w, cfg)
    for f in src.glob("model*.safetensors"):
        f.unlink()
    (src / "model.safetensors.index.json").unlink(missing_ok=True)
    mlxq.save_safetensors(src / "model.safetensors", w)
    (src / "config.json").write_text(json.dumps(cfg))
    return src


L = "model.layers.0.mlp.down_proj.weight"


@pytest.mark.parametrize("what,edit,error,match", [
    ("block scales of the wrong shape",
     lambda w, c: w.update({L + "_scale_inv": np.ones((1, 1), np.float32)}),
     mlxq.errors.FormatError, L),
    ("a missing weight_scale_inv", lambda w, c: w.pop(L + "_scale_inv"),
     mlxq.errors.FormatError, L),
    ("an FP8 tensor with no config", lambda w, c: c.pop("quantization_config"),
     mlxq.errors.FormatError, r"model\.layers\.\d+\.\S+\.weight.*float8"),
    ("an unknown fmt", lambda w, c: c["quantization_config"].update(fmt="e5m2"),
     mlxq.errors.UnknownEnumValueError, "e5m2"),
    ("a scale without its weight", lambda w, c: w.pop(L),
     mlxq.errors.FormatError, L),
])
def test_a_malformed_fp8_source_is_a_typed_error_naming_the_tensor(what, edit, error, match,
                                                                    tmp_path):
    src = fp8_variant(tmp_path, edit)
    with pytest.raises(error, match=match):
        convert(src, tmp_path / "out", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("fixture,name", [
    ("deepseek_v3", "model.layers.0.mlp.down_proj.weight"),
    ("minimax_m2", "model.layers.0.block_sparse_moe.experts.0.w1.weight"),
])
def test_wrong_block_scales_dequantized_by_a_family_sanitize_name_the_tensor(fixture, name,
                                                                              tmp_path):
    """deepseek_v3 and minimax dequantize FP8 inside their own sanitize (mlx-lm's), not
    through the generic FP8 path the qwen3 corpus above takes: the same refusal, the same
    name."""
    src = fp8_variant(tmp_path, lambda w, c: w.update(
        {name + "_scale_inv": np.ones((1, 1), np.float32)}), fixture)
    with pytest.raises(mlxq.errors.FormatError, match=re.escape(name) + ": scales"):
        convert(src, tmp_path / "out", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("what,edit,match", [
    ("asymmetric weights", lambda c: c["quantization_config"]["config_groups"]["group_0"]
     ["weights"].update(symmetric=False), "asymmetric"),
    ("a sparse format", lambda c: c["quantization_config"].update(format="sparse-bitmask"),
     "sparse"),
    ("nvfp4", lambda c: c["quantization_config"].update(format="nvfp4-pack-quantized"),
     "nvfp4"),
])
def test_a_compressed_tensors_variant_mlxq_cannot_hold_is_refused_by_name(what, edit, match,
                                                                         tmp_path):
    src = tmp_path / "src"
    shutil.copytree(CT, src)
    cfg = json.loads((src / "config.json").read_text())
    edit(cfg)
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(mlxq.errors.MlxqError, match=match):
        convert(src, tmp_path / "out", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("per", ["channel", "tensor"])
def test_fp8_with_per_channel_or_per_tensor_scales(per, tmp_path):
    """llm-compressor's FP8 layout: ``weight_scale`` float32, one per output row or one per
    tensor, ``weight_block_size`` null; the reference is mlx-lm on a copy dequantized with
    numpy (e4m3 -> float32 exactly, times the scale in float32, rounded to bfloat16)."""
    src_dense = mlxq.load_checkpoint(ROOT / "qwen3")
    fp8, dense = {}, {}
    for k, v in src_dense.items():
        v = np.array(v)
        if v.ndim == 2 and k.endswith("proj.weight"):
            f = v.astype(np.float32)
            amax = np.abs(f).max(axis=1, keepdims=True) if per == "channel" else \
                np.abs(f).max(keepdims=True).reshape(1)
            s = (np.maximum(amax, 1e-12) / 448).astype(np.float32)
            q = (f / s.reshape(-1, 1) if per == "channel" else f / s[0]).astype(float8_e4m3fn)
            fp8[k], fp8[k[: -len("weight")] + "weight_scale"] = q, s
            prod = q.astype(np.float32) * (s.reshape(-1, 1) if per == "channel" else s[0])
            bits = prod.view(np.uint32).astype(np.uint64)
            dense[k] = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16).view(bfloat16)
        else:
            fp8[k] = dense[k] = v
    cfg = json.loads((ROOT / "qwen3" / "config.json").read_text())
    a = write_copy(ROOT / "qwen3", tmp_path / "fp8", fp8, {**cfg, "quantization_config": {
        "quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
        "weight_block_size": None}})
    b = write_copy(ROOT / "qwen3", tmp_path / "dense", dense, cfg)
    for flags in ("plain", "q"):
        convert(a, tmp_path / f"mlxq-{flags}", quiet=True, **FLAGS[flags])
        mlx_lm_convert(b, tmp_path / f"ref-{flags}", **FLAGS[flags])
        assert_same_folder(tmp_path / f"mlxq-{flags}", tmp_path / f"ref-{flags}")
