"""MLX's two devices: choosing one (``device=``, MLXQ_DEVICE, the converter, the command line),
the differences between them on inputs whose results are worked out here by hand from MLX's
sources (never with mlxq), and the CPU/GPU diagnosis of ``mlxq compare`` against live MLX.

The GPU arithmetic itself is held to the transliterated Metal kernels by
tests/test_golden_gpu.py; the CPU arithmetic to real MLX by the rest of the suite, which
runs with MLXQ_DEVICE=cpu (conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

import mlxq
from mlxq.errors import UnknownEnumValueError, UnsupportedDtypeError
from support import assert_bits_equal, mlx_lm_convert

F32 = np.float32


def unpack(wq: np.ndarray, bits: int) -> np.ndarray:
    b = np.unpackbits(wq.view(np.uint8), bitorder="little").reshape(wq.shape[0], -1, bits)
    return (b.astype(np.int64) << np.arange(bits)).sum(-1)


# ---- choosing the device ---------------------------------------------------------------------


def test_the_default_device_is_gpu_and_MLXQ_DEVICE_sets_it(monkeypatch):
    monkeypatch.delenv("MLXQ_DEVICE", raising=False)
    assert mlxq.default_device() is mlxq.Device.GPU
    monkeypatch.setenv("MLXQ_DEVICE", "cpu")
    assert mlxq.default_device() == "cpu"
    monkeypatch.setenv("MLXQ_DEVICE", "GPU")  # as MLXQ_ISA: case does not matter
    assert mlxq.default_device() == "gpu"
    monkeypatch.setenv("MLXQ_DEVICE", "tpu")
    with pytest.raises(UnknownEnumValueError, match="MLXQ_DEVICE='tpu' is not a device"):
        mlxq.default_device()


def test_set_default_device_and_using_device_override_the_environment(monkeypatch):
    monkeypatch.setenv("MLXQ_DEVICE", "cpu")
    try:
        assert mlxq.set_default_device("gpu") == "gpu"
        with mlxq.using_device("cpu"):
            assert mlxq.default_device() == "cpu"
            with mlxq.using_device(None):
                assert mlxq.default_device() == "cpu"
        assert mlxq.default_device() == "gpu"
    finally:
        mlxq.set_default_device(None)
    assert mlxq.default_device() == "cpu"


def test_a_bad_device_is_refused_naming_it():
    w = np.zeros((2, 64), F32)
    with pytest.raises(UnknownEnumValueError, match="device='metal' is not a device"):
        mlxq.quantize(w, device="metal")
    with pytest.raises(UnknownEnumValueError, match="device='metal' is not a device"):
        mlxq.dequantize(*mlxq.quantize(w), device="metal")


def test_the_default_applies_when_no_device_is_named(monkeypatch):
    # a group with a tie on the GPU (see test_affine_ties_round_away_from_zero_on_the_gpu)
    w = np.array([[0.0, 0.5, 1.5] + [3.0] * 61], F32)
    monkeypatch.setenv("MLXQ_DEVICE", "gpu")
    gpu = mlxq.quantize(w, 64, 2)
    monkeypatch.setenv("MLXQ_DEVICE", "cpu")
    cpu = mlxq.quantize(w, 64, 2)
    assert (unpack(gpu[0], 2) != unpack(cpu[0], 2)).any()
    assert_bits_equal(mlxq.quantize(w, 64, 2, device="gpu")[0], gpu[0])
    assert_bits_equal(mlxq.quantize(w, 64, 2, device=mlxq.Device.CPU)[0], cpu[0])


# ---- the differences, worked out by hand from MLX's sources --------------------------------


def test_affine_ties_round_away_from_zero_on_the_gpu():
    """Range [0, 3], 2 bits: scale -1, bias 3 on both devices (q0 = -3 exactly), so the
    codes are (3 - w): 0.5 -> 2.5 and 1.5 -> 1.5 are ties. The CPU's rint gives 2 and 2,
    the GPU's round 3 and 2 (affine_quantize: `round`)."""
    w = np.array([[0.0, 0.5, 1.5] + [3.0] * 61], F32)
    cpu = unpack(mlxq.quantize(w, 64, 2, device="cpu")[0], 2)[0]
    gpu = unpack(mlxq.quantize(w, 64, 2, device="gpu")[0], 2)[0]
    assert list(cpu[:3]) == [3, 2, 2] and list(gpu[:3]) == [3, 3, 2]


def test_an_all_negative_group_spans_to_zero_on_the_gpu():
    """w in [-2, -1]: the CPU's max is -1, step 1/15, q0 = rint(-2 / (1/15)) = -30, scale
    -2 / -30; the GPU's max starts at 0 (affine_quantize: `w_max = 0`), step 2/15, q0 = -15,
    scale -2 / -15. Both store bias -2."""
    w = -np.linspace(1.0, 2.0, 64, dtype=F32)[None, :]
    _, s_cpu, b_cpu = mlxq.quantize(w, 64, 4, device="cpu")
    _, s_gpu, b_gpu = mlxq.quantize(w, 64, 4, device="gpu")
    assert b_cpu[0, 0] == b_gpu[0, 0] == F32(-2.0)
    assert s_cpu[0, 0] == F32(-2.0) / F32(-30.0)
    assert s_gpu[0, 0] == F32(-2.0) / F32(-15.0)


def test_a_nan_element_is_coded_n_bins_on_the_gpu_and_0_on_the_cpu():
    w = np.linspace(-1.0, 1.0, 64, dtype=F32)[None, :].copy()
    w[0, 7] = np.nan
    for bits in (2, 4, 8):
        assert unpack(mlxq.quantize(w, 64, bits, device="cpu")[0], bits)[0, 7] == 0
        assert unpack(mlxq.quantize(w, 64, bits, device="gpu")[0], bits)[0, 7] == 2**bits - 1


def test_fp4_ties_and_negative_zeros_differ_between_the_devices():
    """mxfp4 with max|w| = 6 (scale byte 127, factor 1): the CPU takes the nearest LUT entry,
    ties to the lower code; the GPU's fp4_e2m1 rounds ties to even and keeps the sign."""
    vals = [6.0, 0.75, 1.75, 3.5, -0.75, -0.1, -0.0, 0.25]
    w = np.array([vals + [0.0] * 24], F32)
    cpu_q, cpu_s = mlxq.quantize(w, mode="mxfp4", device="cpu")
    gpu_q, gpu_s = mlxq.quantize(w, mode="mxfp4", device="gpu")
    assert cpu_s[0, 0] == gpu_s[0, 0] == 127
    assert list(unpack(cpu_q, 4)[0, :8]) == [7, 1, 3, 5, 9, 0, 0, 0]
    assert list(unpack(gpu_q, 4)[0, :8]) == [7, 2, 4, 6, 10, 8, 8, 0]


def test_an_all_zero_mx_group_gets_scale_byte_0_on_the_gpu_and_127_on_the_cpu():
    w = np.zeros((1, 32), F32)
    assert mlxq.quantize(w, mode="mxfp4", device="cpu")[1][0, 0] == 127
    assert mlxq.quantize(w, mode="mxfp4", device="gpu")[1][0, 0] == 0
    assert mlxq.quantize(w, mode="mxfp8", device="gpu")[1][0, 0] == 0


def test_the_gpu_fuses_the_affine_dequantize_multiply_add():
    """float32 scale 1 + 2^-23, bias -255, code 255: the exact product 255 + 255 * 2^-23 is
    not a float32 (the CPU rounds it, then subtracts); Metal's contracted `scale * d + bias`
    rounds once."""
    s = F32(1.0 + 2.0**-23)
    wq8 = np.full((1, 16), 0xFFFFFFFF, np.uint32)  # 8-bit codes 255
    scales, biases = np.array([[s]], F32), np.array([[-255.0]], F32)
    exact = Fraction(float(s)) * 255 - 255
    two_roundings = float(F32(F32(float(s) * 255) - F32(255)))
    gpu = mlxq.dequantize(wq8, scales, biases, 64, 8, device="gpu")
    cpu = mlxq.dequantize(wq8, scales, biases, 64, 8, device="cpu")
    assert Fraction(float(gpu[0, 0])) == exact  # representable: 255 * 2^-23
    assert float(cpu[0, 0]) == two_roundings != float(exact)
    # bfloat16 scales: the product is exact in float32, so the GPU's float32 sum is rounded
    # once to bfloat16, the CPU rounds the product to bfloat16 first
    sb = np.array([[1.0078125]], mlxq.bfloat16)      # 1 + 2^-7
    bb = np.array([[-255.0]], mlxq.bfloat16)
    g = mlxq.dequantize(wq8, sb, bb, 64, 8, device="gpu")[0, 0]
    c = mlxq.dequantize(wq8, sb, bb, 64, 8, device="cpu")[0, 0]
    assert float(g) == 1.9921875  # 255 * 2^-7, a bfloat16
    assert float(c) == 1.0        # bfloat16(256.9921875) = 256, minus 255


def test_nvfp4_with_a_global_scale_dequantizes_to_the_asked_dtype_on_the_gpu():
    w = np.random.default_rng(0).standard_normal((2, 64)).astype(F32)
    q = mlxq.quantize(w, mode="nvfp4", global_scale=3.0, device="gpu")
    kw = dict(mode="nvfp4", global_scale=3.0, dtype="bfloat16")
    assert mlxq.dequantize(*q, **kw, device="gpu").dtype == mlxq.bfloat16
    assert mlxq.dequantize(*q, **kw, device="cpu").dtype == np.float32


def test_what_mlx_gpu_refuses_is_refused_on_the_gpu_device():
    w64 = np.zeros((2, 32), np.float64)
    with pytest.raises(UnsupportedDtypeError, match="GPU kernels do not support"):
        mlxq.quantize(w64, mode="mxfp4", device="gpu")
    mlxq.quantize(w64, mode="mxfp4", device="cpu")  # MLX's CPU backend takes it
    wq, s, b = mlxq.quantize(np.zeros((2, 64), F32), device="gpu")
    with pytest.raises(UnsupportedDtypeError, match="one dtype on device 'gpu'"):
        mlxq.dequantize(wq, s, b.astype(np.float16), device="gpu")
    with pytest.raises(UnsupportedDtypeError, match="float64 is not supported on device"):
        mlxq.dequantize(wq, s, b, dtype="float64", device="gpu")


def test_mse_keeps_its_meaning_on_either_device():
    """Never worse than MLX's own choice on that device, measured with that device's
    dequantization."""
    w = (np.random.default_rng(1).standard_normal((16, 256)) * 0.02).astype(mlxq.bfloat16)
    x = w.astype(np.float64)
    for dev in ("cpu", "gpu"):
        for bits in (3, 4):
            err = lambda t: float(((mlxq.dequantize(*t, 64, bits, device=dev)  # noqa: E731
                                    .astype(np.float64) - x) ** 2).sum())
            mlx, mse = (mlxq.quantize(w, 64, bits, method=m, device=dev) for m in ("mlx", "mse"))
            assert err(mse) <= err(mlx)


def test_a_graph_node_keeps_the_device_it_was_made_on():
    """The converter builds its lazy graph (sanitize steps' mx.quantize / mx.dequantize) on
    the conversion's device; evaluating it later, elsewhere, must not change the
    arithmetic."""
    from mlxq.conversion import graph

    w = np.array([[0.0, 0.5, 1.5] + [3.0] * 61], F32)
    cpu = mlxq.quantize(w, 64, 2, device="cpu")
    with mlxq.using_device("cpu"):
        node = graph.quantize(graph.constant(w), 64, 2)
        deq = graph.dequantize(*[graph.constant(a) for a in cpu], group_size=64, bits=2)
    with mlxq.using_device("gpu"):
        got = node[0].rows(0, 1)
        back = deq.rows(0, 1)
    assert_bits_equal(got, cpu[0])
    assert_bits_equal(back, mlxq.dequantize(*cpu, 64, 2, device="cpu"))


# ---- conversions and the CPU/GPU diagnosis, against live mlx[cpu] -------------------------


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    from mlxq.synthetic import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("hf") / "model", layers=2, hidden=128,
                           intermediate=256, vocab=256)


def _cli(*args: str, env_device: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("MLXQ_DEVICE", None)
    if env_device:
        env["MLXQ_DEVICE"] = env_device
    return subprocess.run([sys.executable, "-m", "mlxq", *args], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("mode", ["affine", "mxfp4"])
def test_mlxq_compare_says_which_folder_matches_which_device(hf, tmp_path, mode):
    """mlx_lm.convert here runs on mlx[cpu]; mlxq converts on both devices. The CPU folder
    is identical to mlx-lm's; the GPU folder differs only where MLX's devices round
    differently, and `mlxq compare` says the GPU folder is the GPU side."""
    pytest.importorskip("mlx.core")
    from mlxq.testing import mlx_device

    assert mlx_device() == "cpu", "this comparison needs MLX on the CPU (mlx[cpu])"
    ref = tmp_path / "mlx_lm"
    mlx_lm_convert(hf, ref, quantize=True, q_mode=mode)
    for dev in ("cpu", "gpu"):
        r = _cli("convert", str(hf), str(tmp_path / dev), "-q", "--q-mode", mode, "--device",
                 dev, "--quiet")
        assert r.returncode == 0, r.stderr
    same = _cli("compare", str(tmp_path / "cpu"), str(ref), "--index")
    assert same.returncode == 0, same.stdout
    diff = _cli("compare", str(tmp_path / "gpu"), str(ref), "--quiet")
    assert diff.returncode == 1
    assert "A matches MLX's GPU (Metal) kernels" in diff.stdout, diff.stdout
    assert "B matches MLX's CPU backend" in diff.stdout
    assert "--device cpu" in diff.stdout
    report = json.loads(_cli("compare", str(ref), str(tmp_path / "gpu"), "--json").stdout)
    assert report["devices"]["only_rounding"] and report["devices"]["sides"] == ["cpu", "gpu"]


def test_the_default_conversion_is_the_gpus_and_says_so(hf, tmp_path):
    r = _cli("convert", str(hf), str(tmp_path / "default"), "-q")
    assert r.returncode == 0, r.stderr
    assert "device gpu: the arithmetic of MLX's GPU (Metal) kernels" in r.stdout
    r = _cli("convert", str(hf), str(tmp_path / "env"), "-q", env_device="cpu")
    assert "device cpu: the arithmetic of MLX's CPU backend" in r.stdout
    a = mlxq.load_checkpoint(tmp_path / "default")
    b = mlxq.load_checkpoint(tmp_path / "env")
    name = "model.layers.0.mlp.down_proj"
    dense = mlxq.load_checkpoint(hf)[name + ".weight"]
    for folder, dev in ((a, "gpu"), (b, "cpu")):
        q = mlxq.quantize(dense, 64, 4, device=dev)
        for part, suffix in zip(q, (".weight", ".scales", ".biases")):
            assert_bits_equal(folder[name + suffix], part, f"{dev} {suffix}")


def test_convert_refuses_an_unknown_device(hf, tmp_path):
    with pytest.raises(UnknownEnumValueError, match="device='npu' is not a device"):
        mlxq.convert(hf, tmp_path / "x", quantize=True, device="npu")
    r = _cli("convert", str(hf), str(tmp_path / "y"), "-q", "--device", "npu")
    assert r.returncode == 2 and "invalid choice: 'npu'" in r.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_difference_no_device_makes_gets_no_device_verdict(hf, tmp_path):
    """One bit flipped in a scale of an otherwise identical folder: not a rounding of
    either device, so compare reports no device verdict."""
    import shutil

    from mlxq.testing import compare_checkpoints

    a = tmp_path / "a"
    mlxq.convert(hf, a, quantize=True, quiet=True, device="cpu")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(b).items()}
    name = "model.layers.0.mlp.up_proj.scales"
    w[name].view(np.uint16)[0, 0] ^= 0x100
    for f in b.glob("*.safetensors"):
        f.unlink()
    mlxq.save_safetensors(b / "model.safetensors", w)
    r = compare_checkpoints(a, b)
    assert not r.matches and r.devices is not None and not r.devices.only_rounding
    assert r.devices.sides is None
    assert "the rest are not (not a device difference)" in r.summary()
    # lone files: no config to read the quantization from, no device verdict
    lone = compare_checkpoints(next(a.glob("*.safetensors")), b / "model.safetensors")
    assert lone.devices is None
