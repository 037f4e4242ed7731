"""mlxq.metrics against independent float64 computations."""

import math

import numpy as np
import pytest

import mlxq
from mlxq.errors import ShapeMismatchError
from mlxq.metrics import infer_params, quantization_error, weight_map_error


def _expected(dense, hat):
    d = hat.astype(np.float64) - dense.astype(np.float64)
    ref = dense.astype(np.float64).ravel()
    h = hat.astype(np.float64).ravel()
    return dict(
        rmse=math.sqrt(np.mean(d**2)),
        max_abs=np.abs(d).max(),
        mean_abs=np.abs(d).mean(),
        snr_db=10 * math.log10(np.sum(ref**2) / np.sum(d**2)),
        cosine=float(ref @ h / (np.linalg.norm(ref) * np.linalg.norm(h))),
    )


@pytest.mark.parametrize("mode,gs,bits", [("affine", 64, 4), ("affine", 32, 3), ("mxfp4", 32, 4),
                                           ("mxfp8", 32, 8), ("nvfp4", 16, 4)])
def test_quantization_error_matches_direct_computation(mode, gs, bits):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((48, 128)).astype(np.float32)
    q = mlxq.quantize(w, gs, bits, mode)
    hat = mlxq.dequantize(*q, group_size=gs, bits=bits, mode=mode, dtype=np.float32)
    got = quantization_error(w, *q)
    want = _expected(w, hat)
    assert got.n == w.size
    for k, v in want.items():
        assert getattr(got, k) == pytest.approx(v, rel=1e-9), k


def test_block_processing_gives_the_same_answer(monkeypatch):
    import mlxq.metrics as m

    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 40, 64)).astype(np.float32)
    q = mlxq.quantize(w, 64, 4)
    whole = quantization_error(w, *q)
    monkeypatch.setattr(m, "_BLOCK_ELEMENTS", 64 * 7)
    blocked = quantization_error(w, *q)
    assert blocked.rmse == pytest.approx(whole.rmse, rel=1e-12)
    assert blocked.max_abs == whole.max_abs


def test_exact_reconstruction_has_infinite_snr():
    w = np.zeros((2, 64), np.float32)
    err = quantization_error(w, *mlxq.quantize(w))
    assert err.rmse == 0 and err.snr_db == math.inf and err.cosine == 1.0


def test_infer_params_from_shapes():
    w = np.zeros((4, 128), np.float32)
    assert infer_params(w.shape, *mlxq.quantize(w, 32, 6)) == (32, 6, "affine")
    assert infer_params(w.shape, *mlxq.quantize(w, mode="mxfp8"), None) == (32, 8, "mxfp8")
    assert infer_params(w.shape, *mlxq.quantize(w, mode="nvfp4"), None) == (16, 4, "nvfp4")
    with pytest.raises(ShapeMismatchError):
        infer_params((4, 100), *mlxq.quantize(w))


def test_weight_map_error_per_layer_and_total():
    rng = np.random.default_rng(3)
    dense = {f"l{i}.weight": rng.standard_normal((16, 64)).astype(np.float32) for i in range(3)}
    dense["norm.weight"] = np.ones(64, np.float32)
    quant = {"norm.weight": dense["norm.weight"]}
    for i, bits in enumerate([2, 4, 8]):
        wq, s, b = mlxq.quantize(dense[f"l{i}.weight"], 64, bits)
        quant.update({f"l{i}.weight": wq, f"l{i}.scales": s, f"l{i}.biases": b})
    per_layer, total = weight_map_error(dense, quant)
    assert list(per_layer) == ["l0", "l1", "l2"]
    assert per_layer["l0"].snr_db < per_layer["l1"].snr_db < per_layer["l2"].snr_db
    sq = sum(e.rmse**2 * e.n for e in per_layer.values())
    assert total.n == 3 * 16 * 64
    assert total.rmse == pytest.approx(math.sqrt(sq / total.n), rel=1e-12)
    assert total.max_abs == max(e.max_abs for e in per_layer.values())
