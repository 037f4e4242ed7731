"""Lower error than MLX in MLX's own format, through the converter: ``q_method="mse"``, an
importance matrix from llama.cpp's files, and ``target_bpw`` (mlxq.conversion.quality).
The outputs are ordinary MLX folders: mlx-lm loads them strictly; the errors are measured
by mlxq's report against the source weights (itself checked against an independent
formula in tests/test_convert.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq import convert

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"
LLAMA = ROOT / "llama"
MOE = ROOT / "qwen3_moe"


def load_strict(folder: Path) -> None:
    utils = pytest.importorskip("mlx_lm.utils")
    utils.load_model(folder)


def test_mse_never_loses_to_mlx_on_any_layer_and_writes_mlxs_format(tmp_path):
    a = convert(LLAMA, tmp_path / "mlx", quantize=True, quiet=True, report=True)
    b = convert(LLAMA, tmp_path / "mse", quantize=True, quiet=True, report=True, q_method="mse")
    assert [r.layer for r in a.report] == [r.layer for r in b.report]
    for ra, rb in zip(a.report, b.report):
        assert rb.error.rmse <= ra.error.rmse * (1 + 1e-12), ra.layer
    assert b.report_total.rmse < 0.95 * a.report_total.rmse
    assert (tmp_path / "mlx" / "config.json").read_text() == \
        (tmp_path / "mse" / "config.json").read_text()
    load_strict(tmp_path / "mse")


def write_imatrix(path: Path, heavy: dict[str, np.ndarray], n_blocks: int) -> None:
    gguf = pytest.importorskip("gguf")
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_blocks)
    w = gguf.GGUFWriter(str(path), "imatrix")
    w.add_string("general.type", "imatrix")
    for layer, imp in heavy.items():
        name = tmap.get_name(layer)
        w.add_tensor(f"{name}.weight.in_sum2", (imp * 10)[None].astype(np.float32))
        w.add_tensor(f"{name}.weight.counts", np.array([[10.0]], np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def column_error(out: Path, layer: str, cols: np.ndarray) -> float:
    q = mlxq.load_checkpoint(out)
    src = mlxq.load_checkpoint(LLAMA)[f"{layer}.weight"].astype(np.float64)
    cfg = json.loads((out / "config.json").read_text())["quantization"]
    hat = mlxq.dequantize(q[f"{layer}.weight"], q[f"{layer}.scales"], q[f"{layer}.biases"],
                          group_size=cfg["group_size"], bits=cfg["bits"]).astype(np.float64)
    return float(((hat - src)[:, cols] ** 2).sum())


def test_an_importance_matrix_moves_error_off_the_heavy_columns(tmp_path):
    layer = "model.layers.0.mlp.down_proj"
    cols = np.arange(0, 128, 16)
    imp = np.ones(128)
    imp[cols] = 1000.0
    write_imatrix(tmp_path / "imatrix.gguf", {layer: imp}, n_blocks=2)
    convert(LLAMA, tmp_path / "plain", quantize=True, quiet=True, q_method="mse")
    with pytest.warns(mlxq.MlxqWarning, match="the importance matrix covers 1 of 16 "
                      "quantized layers"):
        convert(LLAMA, tmp_path / "imat", quantize=True, quiet=True, q_method="mse",
                imatrix=tmp_path / "imatrix.gguf")
    assert column_error(tmp_path / "imat", layer, cols) < \
        0.8 * column_error(tmp_path / "plain", layer, cols)
    load_strict(tmp_path / "imat")


@pytest.mark.parametrize("target", [2.6, 3.5, 4.5, 6.0])
def test_target_bpw_honours_its_budget_and_mlx_lm_loads_the_mix(target, tmp_path):
    r = convert(LLAMA, tmp_path / "out", quantize=True, quiet=True, target_bpw=target)
    assert r.bits_per_weight <= target
    assert r.allocation is not None and r.allocation.bits_per_weight == pytest.approx(
        r.bits_per_weight)
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    entries = {k: v for k, v in cfg["quantization"].items() if isinstance(v, dict)}
    assert set(entries) == set(r.allocation.bits)
    assert {v["bits"] for v in entries.values()} <= {2, 3, 4, 5, 6, 8}
    load_strict(tmp_path / "out")


def test_a_lower_target_gives_fewer_bits_and_more_error(tmp_path):
    lo = convert(LLAMA, tmp_path / "lo", quantize=True, quiet=True, target_bpw=3.0, report=True)
    hi = convert(LLAMA, tmp_path / "hi", quantize=True, quiet=True, target_bpw=5.0, report=True)
    assert lo.bits_per_weight < hi.bits_per_weight
    assert lo.report_total.rmse > hi.report_total.rmse


def test_target_bpw_keeps_a_routers_pinned_bits(tmp_path):
    r = convert(MOE, tmp_path / "out", quantize=True, quiet=True, target_bpw=4.0)
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())["quantization"]
    routers = [k for k in cfg if k.endswith("mlp.gate")]
    assert routers and all(cfg[k] == {"group_size": 64, "bits": 8} for k in routers)
    assert r.bits_per_weight <= 4.0


@pytest.mark.parametrize("kwargs,match", [
    ({"target_bpw": 0.5}, "below what the model can reach"),
    ({"target_bpw": 4.0, "q_bits": 4}, "target_bpw=4.0 chooses the bits of each layer: give it without q_bits=4"),
    ({"target_bpw": 4.0, "q_mode": "mxfp4"}, "affine"),
    ({"q_method": "best"}, "q_method"),
])
def test_impossible_requests_are_typed_errors(kwargs, match, tmp_path):
    with pytest.raises(mlxq.errors.MlxqError, match=match):
        convert(LLAMA, tmp_path / "out", quantize=True, quiet=True, **kwargs)
    assert not (tmp_path / "out").exists()


def test_quality_options_need_quantize(tmp_path):
    for kw in ({"q_method": "mse"}, {"target_bpw": 4.0}):
        with pytest.raises(mlxq.errors.InvalidArgumentError, match="needs quantize=True"):
            convert(LLAMA, tmp_path / "out", quiet=True, **kw)


def test_the_command_line_names_the_flags(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "mlxq", "convert", LLAMA, str(out), "-q",
                        "--target-bpw", "4", "--q-bits", "4"], capture_output=True, text=True)
    assert p.returncode != 0 and not out.exists()
    assert "--target-bpw 4.0 chooses the bits of each layer: give it without --q-bits 4" in \
        p.stderr, p.stderr
    p = subprocess.run([sys.executable, "-m", "mlxq", "convert", LLAMA, str(out),
                        "--q-method", "mse"], capture_output=True, text=True)
    assert "--q-method mse chooses how layers are quantized: it needs -q" in p.stderr, p.stderr
