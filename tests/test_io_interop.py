"""Interoperability: files written by the `safetensors` package and by MLX load identically
in mlxq, mlxq's files load identically in both, and mlx-lm loads mlxq's sharded folders."""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import mlxq

st_numpy = pytest.importorskip("safetensors.numpy")
safetensors = pytest.importorskip("safetensors")

RNG = np.random.default_rng(1)


def sample(dtype, shape) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return RNG.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        return RNG.integers(np.iinfo(dt).min, np.iinfo(dt).max, shape, dtype=dt, endpoint=True)
    return RNG.standard_normal(shape).astype(np.float32).astype(dt)


# dtypes the safetensors numpy API reads and writes
ST_DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64,
             np.int64, np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.complex64]


def st_tensors() -> dict[str, np.ndarray]:
    out = {f"t.{np.dtype(dt).name}": sample(dt, (3, 4)) for dt in ST_DTYPES}
    out["scalar"] = np.array(2.5, np.float32)
    out["empty"] = np.zeros((0, 3), np.float16)
    out["long.name/with é"] = np.arange(7, dtype=np.int32)
    return out


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


def test_safetensors_files_load_identically(tmp_path):
    t = st_tensors()
    st_numpy.save_file(t, str(tmp_path / "ref.safetensors"), metadata={"format": "np"})
    assert_same(mlxq.load_safetensors(tmp_path / "ref.safetensors"), t)
    assert mlxq.safetensors_metadata(tmp_path / "ref.safetensors") == {"format": "np"}


def test_mlxq_files_load_identically_in_safetensors_and_are_byte_identical(tmp_path):
    t = st_tensors()
    mlxq.save_safetensors(tmp_path / "ours.safetensors", t, metadata={"format": "np"})
    assert_same(st_numpy.load_file(str(tmp_path / "ours.safetensors")), t)
    st_numpy.save_file(t, str(tmp_path / "ref.safetensors"), metadata={"format": "np"})
    assert (tmp_path / "ours.safetensors").read_bytes() == (tmp_path / "ref.safetensors").read_bytes()
    with safetensors.safe_open(str(tmp_path / "ours.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "np"}


def test_fp8_round_trips_and_reads_raw_in_safetensors(tmp_path):
    e4 = np.array([0.5, -1.75, 448, 0], np.float32).astype(ml_dtypes.float8_e4m3fn)
    e5 = np.array([1.5, -57344, 2**-16, 0], np.float32).astype(ml_dtypes.float8_e5m2)
    p = tmp_path / "fp8.safetensors"
    mlxq.save_safetensors(p, {"e4": e4, "e5": e5})
    back = mlxq.load_safetensors(p)
    assert_same(back, {"e4": e4, "e5": e5})
    raw = dict(safetensors.deserialize(p.read_bytes()))
    assert raw["e4"]["dtype"] == "F8_E4M3" and bytes(raw["e4"]["data"]) == e4.tobytes()
    assert raw["e5"]["dtype"] == "F8_E5M2" and bytes(raw["e5"]["data"]) == e5.tobytes()


def test_bf16_round_trips_every_bit_pattern(tmp_path):
    bits = np.arange(1 << 16, dtype=np.uint16)
    bf = bits.view(ml_dtypes.bfloat16).reshape(256, 256)
    mlxq.save_safetensors(tmp_path / "bf.safetensors", {"bf": bf})
    back = mlxq.load_safetensors(tmp_path / "bf.safetensors")["bf"]
    assert back.dtype == ml_dtypes.bfloat16 and np.array_equal(back.view(np.uint16), bits.reshape(256, 256))
    assert np.array_equal(st_numpy.load_file(str(tmp_path / "bf.safetensors"))["bf"].view(np.uint16), back.view(np.uint16))


# ---- MLX ----------------------------------------------------------------------------------

mx = pytest.importorskip("mlx.core")

MX_DTYPES = {np.bool_: mx.bool_, np.uint8: mx.uint8, np.int8: mx.int8, np.uint16: mx.uint16,
             np.int16: mx.int16, np.uint32: mx.uint32, np.int32: mx.int32, np.uint64: mx.uint64,
             np.int64: mx.int64, np.float16: mx.float16, np.float32: mx.float32,
             np.complex64: mx.complex64}


def to_numpy(a) -> np.ndarray:
    if a.dtype == mx.bfloat16:
        return np.array(a.view(mx.uint16)).view(ml_dtypes.bfloat16)
    return np.array(a)


def mx_tensors():
    out = {}
    for dt in MX_DTYPES:
        out[f"t.{np.dtype(dt).name}"] = sample(dt, (2, 3, 5))
    out["t.bfloat16"] = sample(ml_dtypes.bfloat16, (4, 6))
    out["scalar"] = np.array(7, np.int32)
    return out


def to_mx(a: np.ndarray):
    if a.dtype == ml_dtypes.bfloat16:
        return mx.array(a.view(np.uint16)).view(mx.bfloat16)
    return mx.array(a)


def test_mlx_files_load_identically(tmp_path):
    t = mx_tensors()
    p = tmp_path / "mx.safetensors"
    mx.save_safetensors(str(p), {k: to_mx(v) for k, v in t.items()}, metadata={"format": "mlx"})
    # MLX pads nothing, so its tensors are not aligned: views must still be exact
    assert_same(mlxq.load_safetensors(p), t)
    assert mlxq.safetensors_metadata(p) == {"format": "mlx"}
    assert_same(mlxq.load_safetensors(p), {k: to_numpy(v) for k, v in mx.load(str(p)).items()})


def test_mlxq_files_load_identically_in_mlx(tmp_path):
    t = mx_tensors()
    p = tmp_path / "ours.safetensors"
    mlxq.save_safetensors(p, t, metadata={"format": "mlx"})
    loaded, meta = mx.load(str(p), return_metadata=True)
    assert meta == {"format": "mlx"}
    assert_same({k: to_numpy(v) for k, v in loaded.items()}, t)


def test_mlx_reads_mlxq_fp8_e4m3_as_its_raw_bytes(tmp_path):
    # MLX has no fp8 dtype: it loads F8_E4M3 as uint8 codes (and refuses F8_E5M2).
    e4 = np.linspace(-3, 3, 16, dtype=np.float32).astype(ml_dtypes.float8_e4m3fn)
    mlxq.save_safetensors(tmp_path / "e4.safetensors", {"e4": e4})
    got = mx.load(str(tmp_path / "e4.safetensors"))["e4"]
    assert got.dtype == mx.uint8 and np.array_equal(np.array(got), e4.view(np.uint8))


# ---- mlx-lm ---------------------------------------------------------------------------------


def tiny_llama_config(**extra):
    return {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
            "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5, "vocab_size": 96, "tie_word_embeddings": False, **extra}


@pytest.mark.parametrize("quantized", [False, True], ids=["bf16", "q4"])
def test_mlx_lm_loads_a_sharded_mlxq_checkpoint(tmp_path, quantized):
    utils = pytest.importorskip("mlx_lm.utils")
    nn = pytest.importorskip("mlx.nn")
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    config = tiny_llama_config()
    model = llama.Model(llama.ModelArgs.from_dict(config))
    model.set_dtype(mx.bfloat16)
    if quantized:
        nn.quantize(model, group_size=32, bits=4)
        config["quantization"] = config["quantization_config"] = {"group_size": 32, "bits": 4, "mode": "affine"}
    mx.eval(model.parameters())
    weights = {k: to_numpy(v) for k, v in tree_flatten(model.parameters())}
    index = mlxq.save_checkpoint(tmp_path, weights.items(), max_shard_size=16 << 10,
                                 quantization=config.get("quantization"))
    (tmp_path / "config.json").write_text(json.dumps(config, indent=4, sort_keys=True))
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert index["metadata"]["total_parameters"] == utils.get_total_parameters(model)

    loaded, _ = utils.load_model(Path(tmp_path))
    got = {k: to_numpy(v) for k, v in tree_flatten(loaded.parameters())}
    assert_same(got, weights)
    assert_same(mlxq.load_checkpoint(tmp_path), weights)
