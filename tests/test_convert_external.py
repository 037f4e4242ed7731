"""mlxq convert on AutoAWQ, GPTQ and MXFP4 folders: routed by quant_method, converted into
MLX's layout; AWQ compared with mlx_lm.convert (which reads AWQ itself), GPTQ with the
producer's own formula (mlx-lm misreads GPTQ, see tests/test_gptq.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mlxq
from mlxq import convert
from mlxq.errors import InvalidArgumentError
from support import mlx_lm_convert

from producers import (
    awq_folder,
    gptq_dequant,
    gptq_folder,
    mlx_unpack,
    mxfp4_checkpoint,
    mxfp4_dequant,
)

# ---- AWQ ------------------------------------------------------------------------------------

def _mlx_lm():
    return pytest.importorskip("mlx_lm")


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
