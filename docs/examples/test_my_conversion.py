"""Validating a conversion with pytest and mlxq: a complete test file.

Point MODEL at a Hugging Face checkpoint folder (the default generates a small random one,
so the file runs anywhere) and run ``pytest docs/examples/test_my_conversion.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import mlxq
from mlxq import convert
from mlxq.metrics import weight_map_error
from mlxq.testing import close, compare_checkpoints, exact


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    if os.environ.get("MODEL"):
        return os.environ["MODEL"]
    from mlxq.synthetic import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("hf") / "model", layers=2, hidden=128,
                           intermediate=256, vocab=256)


@pytest.fixture(scope="module")
def converted(model, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("mlx") / "model-4bit"
    convert(model, out, quantize=True, quiet=True)
    return str(out)


def test_quantized_layers_are_bit_identical_to_mlxq_quantize(model, converted):
    """Each quantized layer is exactly what mlxq.quantize (== mx.quantize) makes of the
    source weight. `== exact(...)` failures print a per-tensor report."""
    src, out = mlxq.load_checkpoint(model), mlxq.load_checkpoint(converted)
    name = "model.layers.0.mlp.down_proj"
    wq, scales, biases = mlxq.quantize(src[f"{name}.weight"], group_size=64, bits=4)
    assert {"w": out[f"{name}.weight"], "s": out[f"{name}.scales"], "b": out[f"{name}.biases"]} \
        == exact({"w": wq, "s": scales, "b": biases})


def test_norms_are_carried_over_unchanged(model, converted, assert_arrays_equal):
    """The plugin's fixtures are the mlxq.testing functions."""
    src, out = mlxq.load_checkpoint(model), mlxq.load_checkpoint(converted)
    assert_arrays_equal(out["model.norm.weight"], src["model.norm.weight"])


def test_quantization_error_is_small(model, converted):
    per_layer, total = weight_map_error(mlxq.load_checkpoint(model),
                                        mlxq.load_checkpoint(converted))
    assert per_layer, "no quantized layer found"
    worst = min(per_layer.items(), key=lambda kv: kv[1].snr_db)
    assert worst[1].snr_db > 15, f"{worst[0]}: {worst[1]}"
    assert total.cosine > 0.99


def test_dequantized_weights_are_close_to_the_source(model, converted, tmp_path):
    back = tmp_path / "dequantized"
    convert(converted, back, dequantize=True, quiet=True)
    src, deq = mlxq.load_checkpoint(model), mlxq.load_checkpoint(back)
    w = "model.layers.1.self_attn.q_proj.weight"
    step = float(np.abs(src[w].astype(np.float32)).max()) / 7  # one 4-bit step at most
    assert deq[w] == close(src[w], atol=step)


def test_two_conversions_compare_identical(model, converted, tmp_path):
    again = tmp_path / "again"
    convert(model, again, quantize=True, quiet=True)
    result = compare_checkpoints(converted, again, check_config=True, check_index=True)
    assert result.matches, result.summary() + "\n" + result.table(all_rows=False)


def test_matches_mlx_lm_when_installed(model, tmp_path, mlx_device, assert_checkpoints_equal):
    """mlx_lm.convert quantizes on MLX's default device (the GPU on Apple silicon, the CPU
    with mlx[cpu]), whose arithmetic differs: convert on the same device to compare."""
    mlx_lm = pytest.importorskip("mlx_lm")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(model, str(tmp_path / "mlx_lm"), quantize=True)
    convert(model, tmp_path / "mlxq", quantize=True, quiet=True, device=mlx_device)
    assert_checkpoints_equal(tmp_path / "mlxq", tmp_path / "mlx_lm", check_index=True)
