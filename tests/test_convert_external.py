"""mlxq convert on AutoAWQ, GPTQ and MXFP4 folders: routed by quant_method, converted into
MLX's layout; AWQ compared with mlx_lm.convert (which reads AWQ itself), GPTQ with the
producer's own formula (mlx-lm misreads GPTQ, see tests/test_gptq.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest

import mlxq
from mlxq import convert
from mlxq.errors import InvalidArgumentError
from mlxq.synthetic import make_checkpoint

from producers import (
    asym_params,
    awq_pack,
    gptq_dequant,
    mlx_unpack,
    mxfp4_checkpoint,
    mxfp4_dequant,
    stream_pack,
)

SIZES = dict(layers=2, hidden=128, intermediate=256, vocab=128)
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _rewrite(src: str, transform, quantization_config: dict) -> dict:
    """Replaces every projection weight of a dense float16 folder by `transform(w)`'s
    tensors; returns what each layer packed, for references."""
    w = mlxq.load_checkpoint(src)
    out, packed = {}, {}
    for k, v in w.items():
        layer = k[: -len(".weight")]
        if k.endswith(".weight") and layer.rsplit(".", 1)[-1] in PROJ:
            tensors, info = transform(np.asarray(v, np.float32))
            out.update({f"{layer}.{n}": t for n, t in tensors.items()})
            packed[layer] = info
        else:
            out[k] = np.array(v)
    del w
    os.remove(os.path.join(src, "model.safetensors"))
    mlxq.save_safetensors(os.path.join(src, "model.safetensors"), out,
                          metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization_config"] = quantization_config
    json.dump(cfg, open(os.path.join(src, "config.json"), "w"))
    return packed


def awq_folder(path, group=64) -> tuple[str, dict]:
    src = make_checkpoint(path, dtype="float16", **SIZES)

    def pack(w):
        q, s, z = asym_params(w, group, 4, np.float16)
        return {"qweight": awq_pack(q), "scales": s, "qzeros": awq_pack(z)}, (q, s, z)
    packed = _rewrite(src, pack, {"quant_method": "awq", "bits": 4, "group_size": group,
                                  "version": "gemm", "zero_point": True})
    return src, packed


def gptq_folder(path, bits=4, group=64, act_order=False, v2=False) -> tuple[str, dict]:
    src = make_checkpoint(path, dtype="float16", **SIZES)
    rng = np.random.default_rng(1)

    def pack(w):
        out_f, in_f = w.shape
        q, s, z = asym_params(w, group, bits, np.float16)
        g_idx = (np.arange(in_f) // group).astype(np.int32)
        if act_order:  # a real act-order permutation of the group assignment (the codes
            g_idx = g_idx[rng.permutation(in_f)]  # then mean other weights: only the
            # refusal and the re-quantization path are tested with it)
        z = np.maximum(z, 0 if v2 else 1)  # v1 stores z - 1: it cannot hold a zero of 0
        stored = z - (0 if v2 else 1)
        return ({"qweight": stream_pack(q, bits, axis=0),
                 "qzeros": stream_pack(stored, bits, axis=1), "scales": s,
                 "g_idx": g_idx}, (q, s, z, g_idx))
    qc = {"quant_method": "gptq", "bits": bits, "group_size": group, "sym": False,
          "desc_act": act_order}
    if v2:
        qc["checkpoint_format"] = "gptq_v2"
    return src, _rewrite(src, pack, qc)


# ---- AWQ ------------------------------------------------------------------------------------

def _mlx_lm():
    return pytest.importorskip("mlx_lm")


def mlx_lm_convert(src, dst, **flags):
    m = _mlx_lm()
    with contextlib.redirect_stdout(io.StringIO()):
        m.convert(str(src), str(dst), **flags)


@pytest.mark.parametrize("flags", [{}, {"quantize": True}, {"dequantize": True},
                                   {"dtype": "bfloat16"}])
def test_awq_folder_same_as_mlx_lm(tmp_path, flags):
    from mlxq.testing import assert_checkpoints_equal

    src, _ = awq_folder(tmp_path / "awq")
    if flags.get("quantize"):  # AWQ's layers keep their quantization, and that is said
        with pytest.warns(mlxq.MlxqWarning, match="14 layers of the AWQ checkpoint keep "
                          "their own quantization"):
            r = convert(src, tmp_path / "a", quiet=True, **flags)
    else:
        r = convert(src, tmp_path / "a", quiet=True, **flags)
    if not flags.get("dequantize"):
        assert r.repacked_layers == 14 and r.kept_quantized_layers == 0
        assert "14 layers repacked (AWQ -> MLX, values unchanged)" in r.summary()
    mlx_lm_convert(src, tmp_path / "b", **flags)
    assert_checkpoints_equal(tmp_path / "a", tmp_path / "b", check_config=True,
                             check_index=True)


def test_awq_folder_codes_and_generation(tmp_path):
    src, packed = awq_folder(tmp_path / "awq")
    convert(src, tmp_path / "a", quiet=True)
    w = mlxq.load_checkpoint(tmp_path / "a")
    for layer, (q, s, z) in packed.items():
        # MLX rows are AWQ's columns: the same codes, transposed
        np.testing.assert_array_equal(mlx_unpack(w[f"{layer}.weight"], 4, q.shape[0]), q.T)
        np.testing.assert_array_equal(w[f"{layer}.scales"], s.T)
    cfg = json.load(open(tmp_path / "a" / "config.json"))
    assert cfg["quantization"] == {"group_size": 64, "bits": 4}
    m = _mlx_lm()
    mlx_lm_convert(src, tmp_path / "b")
    texts = []
    for d in (tmp_path / "a", tmp_path / "b"):
        model, tok = m.load(str(d))
        texts.append(m.generate(model, tok, prompt="the time of", max_tokens=10))
    assert texts[0] == texts[1]


# ---- GPTQ -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,v2", [(4, False), (8, False), (4, True), (3, False)])
def test_gptq_folder_matches_the_gptq_formula(tmp_path, bits, v2):
    src, packed = gptq_folder(tmp_path / "gptq", bits=bits, v2=v2)
    convert(src, tmp_path / "a", quiet=True)
    w = mlxq.load_checkpoint(tmp_path / "a")
    cfg = json.load(open(tmp_path / "a" / "config.json"))
    assert cfg["quantization"]["bits"] == bits
    for layer, (q, s, z, g_idx) in packed.items():
        in_f = q.shape[0]
        np.testing.assert_array_equal(mlx_unpack(w[f"{layer}.weight"], bits, in_f), q.T)
        ref = gptq_dequant(q, s, z, g_idx).T  # [out, in], float64
        # MLX: q * scale + bias with bias = -z * scale rounded to float16 (the format's own
        # rounding); the reference has none, so compare within that rounding
        sc = np.repeat(w[f"{layer}.scales"].astype(np.float64), 64, axis=1)
        bi = np.repeat(w[f"{layer}.biases"].astype(np.float64), 64, axis=1)
        hat = q.T * sc + bi
        bound = np.abs(np.repeat((z * s.astype(np.float64)).T, 64, axis=1)) * 2.0 ** -11
        assert np.all(np.abs(hat - ref) <= bound + 1e-12)


def test_gptq_loads_in_mlx_lm(tmp_path):
    m = _mlx_lm()
    src, _ = gptq_folder(tmp_path / "gptq")
    convert(src, tmp_path / "a", quiet=True)
    model, tok = m.load(str(tmp_path / "a"))
    assert len(m.generate(model, tok, prompt="the", max_tokens=5)) > 0


def test_gptq_act_order_is_refused_then_requantized(tmp_path, capsys):
    src, _ = gptq_folder(tmp_path / "gptq", act_order=True)
    with pytest.raises(InvalidArgumentError, match="g_idx.*use allow_requantize=True to"):
        convert(src, tmp_path / "a", quiet=True)
    assert not (tmp_path / "a").exists()
    from mlxq import cli

    # the command line names its flag, not the Python argument
    assert cli.main(["convert", src, str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "use --allow-requantize to dequantize and re-quantize" in err
    assert "allow_requantize=True" not in err
    assert cli.main(["convert", src, str(tmp_path / "a"), "--allow-requantize"]) == 0
    out = capsys.readouterr().out
    assert "14 layers re-quantized (act-order GPTQ)" in out and "repacked" not in out
    assert len([line for line in out.splitlines()
                if line.startswith("  re-quantized (act-order GPTQ) model.")]) == 14
    assert "SNR" in out
    w = mlxq.load_checkpoint(tmp_path / "a")
    assert w["model.layers.0.mlp.up_proj.weight"].dtype == np.uint32


# ---- MXFP4 (gpt-oss style tensors, generic architecture) ------------------------------------

def test_mxfp4_folder_is_repacked_losslessly(tmp_path):
    d = tmp_path / "oss"
    d.mkdir()
    rng = np.random.default_rng(0)
    blocks, scales = mxfp4_checkpoint(rng, (2,), 64, 128)
    tensors = {"model.layers.0.mlp.experts.down_proj_blocks": blocks,
               "model.layers.0.mlp.experts.down_proj_scales": scales,
               "model.norm.weight": np.ones(64, mlxq.bfloat16)}
    mlxq.save_safetensors(d / "model.safetensors", tensors)
    (d / "config.json").write_text(json.dumps({
        "model_type": "some_oss_like", "quantization_config": {"quant_method": "mxfp4"}}))
    with pytest.warns(mlxq.MlxqWarning, match="'some_oss_like' is not one mlx-lm supports"):
        r = convert(d, tmp_path / "a", quiet=True, allow_unknown_architecture=True)
    assert r.repacked_layers == 1 and "1 layer repacked (MXFP4 -> MLX" in r.summary()
    w = mlxq.load_checkpoint(tmp_path / "a")
    cfg = json.load(open(tmp_path / "a" / "config.json"))
    assert cfg["quantization"] == {"group_size": 32, "bits": 4, "mode": "mxfp4"}
    wq = [k for k in w if k.endswith(".weight") and w[k].dtype == np.uint32]
    assert len(wq) == 1
    layer = wq[0][: -len(".weight")]
    got = mlxq.dequantize(w[f"{layer}.weight"], w[f"{layer}.scales"], mode="mxfp4",
                          dtype=np.float32)
    np.testing.assert_array_equal(got, mxfp4_dequant(blocks, scales))
