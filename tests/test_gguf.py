"""GGUF in: llama.cpp files converted into the MLX folder mlx_lm.convert writes for the model.

Inputs are made by the gguf package (its writer, name map and quantizers: tests/gguf_producer.py)
from the transformers-built checkpoints of tests/fixtures/hf/; the oracles are MLX's own GGUF
reader (``mx.load``) for the blocks kept quantized, gguf's reference dequantizers for the rest,
and the HF -> mlxq conversion of the same checkpoint for the round trip.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402

import mlxq  # noqa: E402
from mlxq import errors  # noqa: E402
from mlxq.formats import gguf as fmt  # noqa: E402

import gguf_producer as gp  # noqa: E402

mx = pytest.importorskip("mlx.core")

ARCHS = ["llama", "qwen2", "qwen3", "qwen3_moe", "gemma2", "gemma3_text", "phi3", "deepseek_v2",
         "deepseek_v3", "gpt_oss"]
PROMPT = [[1, 5, 9, 20, 33, 7, 64, 3]]


def tensors_of(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for f in sorted(folder.glob("model*.safetensors")):
        for k, v in mx.load(str(f)).items():
            out[k] = np.array(v.view(mx.uint16) if v.dtype == mx.bfloat16 else v)
    return out


def raw_file(path: Path, tensors: dict, types: dict, metadata: dict | None = None) -> Path:
    """A GGUF of raw tensors (``types``: name -> ggml type; data already in that type)."""
    w = gguf.GGUFWriter(str(path), "llama")
    for k, v in (metadata or {}).items():
        w.add_uint32(k, v)
    for name, data in tensors.items():
        qt = types[name]
        if qt in (Q.F32, Q.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ---- the header parser -------------------------------------------------------------------

def test_the_header_is_what_gguf_reader_reads(tmp_path):
    p = gp.hf_to_gguf("qwen3", tmp_path / "m.gguf", gp.everything(Q.Q4_0))
    h = fmt.read_header(p)
    r = gguf.GGUFReader(str(p))
    assert [t.name for t in h.tensors] == [t.name for t in r.tensors]
    for ours, theirs in zip(h.tensors, r.tensors):
        assert ours.shape == tuple(int(d) for d in reversed(theirs.shape.tolist()))
        assert ours.ggml_type == int(theirs.tensor_type)
        assert ours.offset == int(theirs.data_offset)
        assert ours.nbytes == int(theirs.n_bytes)
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        want = field.contents()
        got = h.metadata[key]
        if isinstance(want, float):
            assert np.float32(got) == np.float32(want), key
        elif isinstance(want, list) and want and isinstance(want[0], float):
            assert np.array_equal(np.float32(got), np.float32(want)), key
        else:
            assert got == want, key


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return gp.hf_to_gguf("llama", tmp_path_factory.mktemp("gguf") / "llama.gguf",
                         gp.everything(Q.Q8_0))


def _first_tensor_type_offset(data: bytes) -> int:
    """Byte offset of the first tensor's ggml type field (found by walking the header)."""
    import io

    f = io.BytesIO(data)
    c = fmt._Cursor(f, len(data), "x")
    c.take(4, "m")
    c.unpack("<I", "v")
    n_t = c.unpack("<Q", "t")[0]
    n_kv = c.unpack("<Q", "k")[0]
    for _ in range(n_kv):
        c.text("k")
        (vt,) = c.unpack("<I", "t")
        fmt._value(c, vt, "v")
    assert n_t
    c.text("name")
    (nd,) = c.unpack("<I", "nd")
    c.unpack(f"<{nd}Q", "dims")
    return c.pos


@pytest.mark.parametrize("cut", [0, 3, 8, 20, 100, 1000, -1])
def test_a_truncated_file_is_a_format_error_and_nothing_is_written(small, tmp_path, cut):
    data = small.read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:-7])
    with pytest.raises(errors.FormatError, match="truncated|past the end|not a GGUF"):
        mlxq.convert(str(bad), str(tmp_path / "out"), quiet=True)
    assert not (tmp_path / "out").exists()


def test_wrong_magic_is_refused(small, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + small.read_bytes()[4:])
    with pytest.raises(errors.FormatError, match="not a GGUF file"):
        fmt.read_header(bad)
    with pytest.raises(errors.FormatError, match="not a GGUF file"):
        mlxq.convert(str(bad), str(tmp_path / "out"), quiet=True)
    (tmp_path / "bad.bin").write_bytes(b"GGML" + small.read_bytes()[4:])
    with pytest.raises(errors.InvalidArgumentError, match="not a folder"):
        mlxq.convert(str(tmp_path / "bad.bin"), str(tmp_path / "out"), quiet=True)


def test_an_unknown_tensor_type_names_the_tensor_and_does_not_drop_the_rest(small, tmp_path):
    data = bytearray(small.read_bytes())
    at = _first_tensor_type_offset(bytes(data))
    data[at:at + 4] = struct.pack("<I", 9999)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    first = fmt.read_header(small).tensors[0].name
    with pytest.raises(errors.UnknownEnumValueError, match=f"{first}.*ggml type 9999") as e:
        mlxq.convert(str(bad), str(tmp_path / "out"), quiet=True)
    assert e.value.key == first
    assert not (tmp_path / "out").exists()


def test_tensor_data_past_the_end_is_refused(small, tmp_path):
    data = bytearray(small.read_bytes())
    at = _first_tensor_type_offset(bytes(data)) + 4
    data[at:at + 8] = struct.pack("<Q", 1 << 40)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(errors.FormatError, match="past the end of the file"):
        fmt.read_header(bad)


def test_impossible_counts_are_refused_before_allocating(small, tmp_path):
    data = bytearray(small.read_bytes())
    data[16:24] = struct.pack("<Q", 1 << 62)  # metadata count
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(errors.FormatError, match="impossible"):
        fmt.read_header(bad)


def test_inconsistent_metadata_is_refused(tmp_path):
    p = gp.hf_to_gguf("qwen2", tmp_path / "m.gguf")
    data = bytearray(p.read_bytes())
    key = b"qwen2.block_count"
    at = data.index(key) + len(key) + 4  # after the value type
    data[at:at + 4] = struct.pack("<I", 5)
    p.write_bytes(bytes(data))
    with pytest.raises(errors.FormatError, match="block_count is 5"):
        mlxq.convert(str(p), str(tmp_path / "out"), quiet=True)
    assert not (tmp_path / "out").exists()


V = gguf.GGUFValueType


@pytest.mark.parametrize("model_type, key, value, vtype, error, message", [
    ("qwen2", "general.architecture", [1, 2], V.ARRAY, errors.UnsupportedFormatError,
     r"architecture \[1, 2\] is not one"),
    ("qwen2", "qwen2.rope.scaling.type", "bogus", V.STRING, errors.UnsupportedFormatError,
     "'bogus', not one of llama.cpp's none, linear, yarn, longrope"),
    ("qwen2", "qwen2.rope.scaling.type", 3, V.UINT32, errors.ParseError, "not a string"),
    ("qwen2", "qwen2.rope.freq_base", float("inf"), V.FLOAT32, errors.ParseError,
     "not a finite float32"),
    ("qwen2", "qwen2.rope.freq_base", 1e300, V.FLOAT64, errors.ParseError,
     "not a finite float32"),
    ("qwen2", "qwen2.attention.layer_norm_rms_epsilon", float("nan"), V.FLOAT32,
     errors.ParseError, "not a finite float32"),
    ("phi3", "phi3.rope.dimension_count", "16", V.STRING, errors.ParseError,
     "not a non-negative integer"),
    ("phi3", "phi3.rope.dimension_count", 0, V.UINT32, errors.FormatError,
     "dimension_count is 0, not an even number in 1..16"),
    ("phi3", "phi3.rope.scaling.original_context_length", 1.5, V.FLOAT32, errors.ParseError,
     "not a non-negative integer"),
    ("phi3", "phi3.attention.sliding_window", True, V.BOOL, errors.ParseError,
     "not a non-negative integer"),
    # values of the right type that mlx-lm's model cannot load or run
    ("qwen2", "qwen2.attention.head_count_kv", 0, V.UINT32, errors.FormatError,
     "is 0, which does not divide the 4 query heads"),
    ("qwen2", "qwen2.attention.head_count_kv", 3, V.UINT32, errors.FormatError,
     "is 3, which does not divide"),
    ("qwen2", "qwen2.attention.head_count_kv", 1, V.UINT32, errors.FormatError,
     "make blk.0.attn_k.weight 16 rows, but it has 32"),
    ("phi3", "phi3.attention.head_count_kv", 2, V.UINT32, errors.FormatError,
     "make blk.0.attn_qkv.weight 128 rows"),
    ("qwen2", "qwen2.attention.layer_norm_rms_epsilon", -1.0, V.FLOAT32, errors.FormatError,
     "is -1.0, not positive"),
    ("phi3", "phi3.rope.dimension_count", 7, V.UINT32, errors.FormatError,
     "is 7, not an even number in 1..16"),
    ("deepseek_v3", "deepseek2.rope.dimension_count", 99, V.UINT32, errors.FormatError,
     "is 99, not an even number up to the key length"),
    ("qwen3_moe", "qwen3moe.expert_used_count", 99, V.UINT32, errors.FormatError,
     "is 99, not 1..4"),
    ("qwen3_moe", "qwen3moe.expert_used_count", 0, V.UINT32, errors.FormatError,
     "is 0, not 1..4"),
    ("gemma3_text", "gemma3.attention.sliding_window_pattern", 0, V.UINT32, errors.FormatError,
     "is 0: every layer would divide by it"),
])
def test_metadata_of_the_wrong_type_or_range_is_refused_naming_the_key(
        tmp_path, model_type, key, value, vtype, error, message):
    assert _refused(tmp_path, model_type, key, value, vtype, error, message).key == key


def _refused(tmp_path: Path, model_type: str, key: str, value: Any, vtype: Any, error: type,
             message: str) -> errors.MlxqError:
    """The error converting the fixture's GGUF with ``key`` written as ``value`` raises
    (matching ``message``); nothing is written."""
    p = gp.hf_to_gguf(model_type, tmp_path / "m.gguf", metadata={key: (value, vtype)})
    with pytest.raises(error, match=message) as e:
        mlxq.convert(str(p), str(tmp_path / "out"), quiet=True)
    assert not (tmp_path / "out").exists()
    return e.value


@pytest.mark.parametrize("key, value, vtype, error, message", [
    ("tokenizer.ggml.tokens", [1, 2, 3], V.ARRAY, errors.ParseError, "not an array of strings"),
    ("tokenizer.ggml.tokens", "abc", V.STRING, errors.ParseError, "not an array of strings"),
    ("tokenizer.ggml.merges", [1, 2], V.ARRAY, errors.ParseError, "not an array of strings"),
    ("tokenizer.ggml.merges", ["a"], V.ARRAY, errors.UnsupportedFormatError,
     "transformers cannot build a tokenizer"),
    ("tokenizer.ggml.model", 5, V.UINT32, errors.ParseError, "not a string"),
    ("tokenizer.ggml.token_type", [1], V.ARRAY, errors.FormatError, "1 entries for 128 tokens"),
    ("tokenizer.ggml.scores", ["x"], V.ARRAY, errors.ParseError, "not an array of numbers"),
    ("tokenizer.ggml.bos_token_id", True, V.BOOL, errors.FormatError,
     "True, not the index of one of the 128 tokens"),
    ("tokenizer.ggml.eos_token_id", 128, V.UINT32, errors.FormatError,
     "128, not the index of one of the 128 tokens"),
    ("tokenizer.chat_template", 3, V.UINT32, errors.ParseError, "not a string"),
    ("tokenizer.ggml.add_bos_token", "yes", V.STRING, errors.ParseError, "not a bool"),
])
def test_tokenizer_metadata_transformers_would_misread_is_refused(
        tmp_path, key, value, vtype, error, message):
    e = _refused(tmp_path, "qwen2", key, value, vtype, error, message)
    # transformers' own refusals name the tokenizer as a whole (it does not say which key)
    assert e.key == ("tokenizer.ggml.model" if error is errors.UnsupportedFormatError else key)


def test_a_block_count_with_no_blocks_behind_it_is_refused_at_once(tmp_path):
    # the name map walks every block the count promises: a huge count and no blocks was a hang
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "qwen2")
    w.add_block_count(1 << 30)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_tensor("token_embd.weight", np.zeros((8, 64), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(errors.FormatError, match="block_count is 1073741824 but the file has "
                       "no block tensors"):
        mlxq.convert(str(tmp_path / "m.gguf"), str(tmp_path / "out"), quiet=True)


def test_an_architecture_mlxq_does_not_convert_is_refused_with_the_list(tmp_path):
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "rwkv7")
    w.add_tensor("token_embd.weight", np.zeros((8, 64), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(errors.UnsupportedFormatError, match="rwkv7.*supported: llama, qwen2"):
        mlxq.convert(str(tmp_path / "m.gguf"), str(tmp_path / "out"), quiet=True)


# ---- exact blocks: mx.load is the oracle ---------------------------------------------------

def _edge_rows(rng, cols: int) -> np.ndarray:
    x = rng.standard_normal((6, cols)).astype(np.float32)
    x[1] = 0
    x[2, ::3] = 1e4
    x[3] *= 1e-6
    x[4, :32] = -7.5
    return x


@pytest.mark.parametrize("qt", [Q.Q4_0, Q.Q4_1, Q.Q8_0])
def test_kept_blocks_are_bit_for_bit_what_mx_load_gives(tmp_path, qt):
    rng = np.random.default_rng(int(qt))
    x = np.concatenate([_edge_rows(rng, 256), rng.standard_normal((9, 256)).astype(np.float32)])
    data = gguf.quants.quantize(x, qt)
    p = raw_file(tmp_path / "t.gguf", {"a.weight": data}, {"a.weight": qt})
    want = mx.load(str(p))
    h = fmt.read_header(p)
    t = h.tensors[0]
    with fmt.GgufFile(p) as f:
        got = fmt.to_mlx(f.read_raw("a.weight", 0, t.nrows), t.type)
    for arr, key in zip(got, ("weight", "scales", "biases")):
        ref = np.array(want[f"a.{key}"])
        assert arr.dtype == ref.dtype and arr.shape == ref.shape
        assert np.array_equal(arr.view(np.uint8), ref.view(np.uint8)), key


def test_mxfp4_blocks_are_mlx_mxfp4_with_the_same_codes_and_exponents(tmp_path):
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, size=(8, 8 * 17), dtype=np.uint8)
    b = blocks.reshape(8, 8, 17)
    b[..., 0] = rng.integers(100, 150, size=(8, 8))  # exponents (255 has no MLX value)
    b[0, 0, 0], b[0, 1, 0] = 0, 254
    with np.errstate(over="ignore"):
        want = gguf.quants.dequantize(blocks, Q.MXFP4)
    wq, scales = fmt.mxfp4_to_mlx(blocks)
    got = np.array(mx.dequantize(mx.array(wq), mx.array(scales), mode="mxfp4", group_size=32,
                                 bits=4, dtype=mx.float32))
    assert np.array_equal(got, want)


@pytest.mark.parametrize("qt", [Q.Q4_K, Q.Q6_K, Q.Q2_K])
def test_k_quants_dequantize_to_what_mx_load_gives(tmp_path, qt):
    rng = np.random.default_rng(int(qt))
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, size=(4, 512 // bs * ts), dtype=np.uint8)
    # keep the f16 super-block scales finite and moderate (random bytes could be NaN)
    blocks = raw.reshape(4, -1, ts)
    at = {Q.Q4_K: [0, 2], Q.Q6_K: [ts - 2], Q.Q2_K: [ts - 4, ts - 2]}[qt]
    for a in at:
        blocks[..., a:a + 2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    p = raw_file(tmp_path / "t.gguf", {"a.weight": raw}, {"a.weight": qt})
    ref = np.array(mx.load(str(p))["a.weight"])
    t = fmt.read_header(p).tensors[0]
    got = fmt.dequantize_rows(raw, t)
    assert np.array_equal(got, gguf.quants.dequantize(raw, qt))
    if qt != Q.Q4_K:
        assert np.array_equal(got.astype(np.float16), ref)
        return
    # MLX's GGUF reader (gguflib) scales both 32-element halves of each 64-element Q4_K
    # chunk with the first half's scale and min; llama.cpp (ggml's dequantize_row_q4_K,
    # gguf.quants) gives each sub-block its own. mlxq follows llama.cpp: the first halves
    # agree with mx.load, the second ones do not.
    halves = got.astype(np.float16).reshape(4, -1, 2, 32)
    assert np.array_equal(halves[:, :, 0], ref.reshape(4, -1, 2, 32)[:, :, 0])
    assert not np.array_equal(halves[:, :, 1], ref.reshape(4, -1, 2, 32)[:, :, 1])


# ---- the C module (src/mlxq_gguf.h) --------------------------------------------------------

#: float16 scales worth trying in every scale field: NaNs of both signs (quiet, signalling,
#: with payloads), infinities, zeros, subnormals, the largest finite values, ordinary ones
SPECIAL_HALVES = np.array([0x7C01, 0xFC01, 0x7E00, 0xFE00, 0x7D55, 0xFD55, 0x7C00, 0xFC00,
                           0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7BFF,
                           0xFBFF, 0x7000, 0x6C00, 0x3C00, 0xBC00, 0x2E66, 0x1400],
                          np.uint16)

#: byte offsets of the float16 scale fields in each block type
HALF_FIELDS = {Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
               Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2],
               Q.Q6_K: [208], Q.MXFP4: []}
C_TYPES = list(HALF_FIELDS)


def _blocks_with_special_scales(rng, qt, rows: int, blocks: int) -> np.ndarray:
    """Random blocks whose scale fields run through SPECIAL_HALVES (in every pairing)."""
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, size=(rows, blocks, ts), dtype=np.uint8)
    flat = raw.reshape(-1, ts)
    for j, at in enumerate(HALF_FIELDS[qt]):
        pick = SPECIAL_HALVES[(np.arange(len(flat)) // len(SPECIAL_HALVES) ** j)
                              % len(SPECIAL_HALVES)]
        keep = rng.random(len(flat)) < 0.8  # and some random bit patterns left as they are
        flat[keep, at:at + 2] = pick[keep].view(np.uint8).reshape(-1, 2)
    return raw.reshape(rows, blocks * ts)


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint8)


@pytest.mark.parametrize("qt", C_TYPES, ids=lambda q: q.name)
def test_c_dequantizers_are_gguf_reference_bit_for_bit(qt):
    """NaN payloads and signs included: numpy's float16 widening, the x86 NaN rules."""
    rng = np.random.default_rng(int(qt))
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    blocks = 4096 // bs
    raw = _blocks_with_special_scales(rng, qt, 48, blocks)
    t = fmt.GgufTensor("a.weight", (48, blocks * bs), int(qt), qt.name, bs, ts, 0, raw.nbytes,
                       "x")
    with np.errstate(all="ignore"):
        want = gguf.quants.dequantize(raw, qt)
    for impl in ("reference", "fast"):
        got = fmt.dequantize_rows(raw, t, impl=impl)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.array_equal(_bits(got), _bits(want)), impl


@pytest.mark.parametrize("qt", C_TYPES, ids=lambda q: q.name)
def test_c_dequantizers_fast_equals_reference_for_any_rows_isa_and_threads(tmp_path, qt):
    """Every instruction set the machine has (the AVX2 kernels of gguf_avx2.c included),
    one and two threads, float32 and the half-precision outputs, from memory and file."""
    from support import supported_configs, use_kernel

    from mlxq._dtypes import bfloat16

    rng = np.random.default_rng(100 + int(qt))
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    raw = _blocks_with_special_scales(rng, qt, 37, 2048 // bs)
    p = raw_file(tmp_path / "t.gguf", {"a.weight": raw}, {"a.weight": qt})
    rows = rng.permutation(37)[:29]
    with fmt.GgufFile(p) as f:
        t = f.tensors["a.weight"]
        for dt in (np.float32, np.float16, bfloat16):
            ref = fmt.dequantize_rows(raw, t, rows, impl="reference", dtype=dt)
            assert np.array_equal(_bits(ref), _bits(fmt.dequantize_rows(
                raw[rows], t, impl="reference", dtype=dt)))
            whole = fmt.dequantize_rows(raw, t, impl="reference", dtype=dt)
            for impl, isa, threads in supported_configs():
                with use_kernel(impl, isa, threads) as k:
                    got = fmt.dequantize_rows(raw, t, rows, impl=k, dtype=dt)
                    read = f.read_dequantized("a.weight", 0, 37, impl=k, dtype=dt)
                assert np.array_equal(_bits(got), _bits(ref)), (dt, isa, threads)
                assert np.array_equal(_bits(read), _bits(whole)), (dt, isa, threads)


@pytest.mark.parametrize("qt", C_TYPES, ids=lambda q: q.name)
def test_c_dequantizers_in_half_precision_are_the_float32_values_cast_as_mlx(tmp_path, qt):
    """Made in float16/bfloat16 in one pass: the float32 values cast by MLX's astype rules
    (mlxq.astype: NaN as MLX writes it), from memory and from the file, either kernel."""
    from mlxq._dtypes import bfloat16

    rng = np.random.default_rng(200 + int(qt))
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    raw = _blocks_with_special_scales(rng, qt, 40, 1024 // bs)
    p = raw_file(tmp_path / "t.gguf", {"a.weight": raw}, {"a.weight": qt})
    with fmt.GgufFile(p) as f:
        t = f.tensors["a.weight"]
        wide = fmt.dequantize_rows(raw, t, impl="reference")
        for dt in (np.float16, bfloat16):
            want = mlxq.astype(wide, dt)
            for impl in ("reference", "fast"):
                got = fmt.dequantize_rows(raw, t, impl=impl, dtype=dt)
                assert got.dtype == want.dtype and np.array_equal(_bits(got), _bits(want))
                got = f.read_dequantized("a.weight", 0, 40, impl=impl, dtype=dt)
                assert got.dtype == want.dtype and np.array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("qt", [Q.Q4_0, Q.Q8_0, Q.Q4_1], ids=lambda q: q.name)
def test_c_repack_is_mx_load_for_every_float16_scale(tmp_path, qt):
    """All 65536 float16 values as d (and as Q4_1's m): scales, -8d / -128d biases (overflow,
    subnormals, NaN signs) and codes as MLX's GGUF reader gives them, by both kernels."""
    rng = np.random.default_rng(7)
    ts = gguf.GGML_QUANT_SIZES[qt][1]
    raw = rng.integers(0, 256, size=(256, 256 * ts), dtype=np.uint8)
    halves = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    flat = raw.reshape(-1, ts)
    flat[:, 0:2] = halves.view(np.uint8).reshape(-1, 2)
    if qt == Q.Q4_1:
        flat[:, 2:4] = halves[::-1].copy().view(np.uint8).reshape(-1, 2)
    p = raw_file(tmp_path / "t.gguf", {"a.weight": raw}, {"a.weight": qt})
    want = mx.load(str(p))
    for impl in ("reference", "fast"):
        got = fmt.to_mlx(raw, qt.name, impl=impl)
        for arr, key in zip(got, ("weight", "scales", "biases")):
            ref = np.array(want[f"a.{key}"])
            assert arr.dtype == ref.dtype and arr.shape == ref.shape, key
            assert np.array_equal(_bits(arr), _bits(ref)), (impl, key)


@pytest.mark.parametrize("qt", [Q.Q4_0, Q.Q4_1, Q.Q8_0, Q.MXFP4], ids=lambda q: q.name)
def test_c_repack_fast_equals_reference_with_a_row_order(qt):
    from support import use_kernel

    rng = np.random.default_rng(11)
    ts = gguf.GGML_QUANT_SIZES[qt][1]
    raw = rng.integers(0, 256, size=(41, 24 * ts), dtype=np.uint8)
    if qt == Q.MXFP4:
        raw.reshape(41, 24, ts)[..., 0] %= 255
    rows = np.concatenate([rng.permutation(41), [3, 3, 40]])
    ref = fmt.to_mlx(raw, qt.name, rows, impl="reference")
    whole = fmt.to_mlx(raw, qt.name, impl="reference")
    for a, b in zip(ref, whole):
        assert np.array_equal(_bits(a), _bits(np.ascontiguousarray(b[rows])))
    for threads in (1, 2):
        with use_kernel("fast", threads=threads) as impl:
            got = fmt.to_mlx(raw, qt.name, rows, impl=impl)
        assert all(np.array_equal(_bits(a), _bits(b)) for a, b in zip(got, ref)), threads


@pytest.mark.parametrize("qt", [Q.Q4_0, Q.Q8_0, Q.MXFP4, Q.Q4_K, Q.Q6_K, Q.Q5_0],
                         ids=lambda q: q.name)
def test_reading_from_the_file_in_c_is_reading_then_converting(tmp_path, qt):
    """src/gguf_read.c (pread in pieces by the pool's threads) gives what the in-memory
    conversion of the same bytes gives, for any row range, with either kernel."""
    rng = np.random.default_rng(5)
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    raw = _blocks_with_special_scales(rng, qt, 300, 1024 // bs)
    if qt == Q.MXFP4:
        raw.reshape(300, -1, ts)[..., 0] %= 255
    p = raw_file(tmp_path / "t.gguf", {"a.weight": raw}, {"a.weight": qt})
    with fmt.GgufFile(p) as f:
        t = f.tensors["a.weight"]
        for r0, r1 in ((0, 300), (7, 263), (299, 300), (5, 5)):
            before = f.bytes_read
            for impl in ("reference", "fast"):
                if qt.name in fmt.EXACT:
                    got = f.read_to_mlx("a.weight", r0, r1, impl=impl)
                    want = fmt.to_mlx(raw[r0:r1], qt.name, impl="reference")
                else:
                    got = (f.read_dequantized("a.weight", r0, r1, impl=impl),)
                    want = (fmt.dequantize_rows(raw[r0:r1], t, impl="reference"),)
                assert len(got) == len(want)
                assert all(np.array_equal(_bits(a), _bits(b)) for a, b in zip(got, want))
            assert f.bytes_read - before == 2 * (r1 - r0) * t.row_bytes


def test_a_file_that_shrinks_while_read_in_c_is_a_format_error(tmp_path):
    raw = np.zeros((64, 8 * 18), np.uint8)
    p = raw_file(tmp_path / "t.gguf", {"a.weight": raw}, {"a.weight": Q.Q4_0})
    with fmt.GgufFile(p) as f:
        t = f.tensors["a.weight"]
        os.truncate(p, t.offset + 10 * t.row_bytes + 5)
        for impl in ("reference", "fast"):
            with pytest.raises(errors.FormatError, match="'a.weight'.*file ended at byte "
                                                         f"{t.offset + 10 * t.row_bytes + 5}"):
                f.read_to_mlx("a.weight", 0, 64, impl=impl)
            with pytest.raises(errors.FormatError, match="shrank"):
                f.read_dequantized("a.weight", 3, 40, impl=impl)


def test_mxfp4_exponent_255_has_no_mlx_layout_and_is_named(tmp_path):
    raw = np.zeros((3, 4 * 17), np.uint8)
    raw.reshape(3, 4, 17)[2, 1, 0] = 255
    p = raw_file(tmp_path / "t.gguf", {"a.weight": raw}, {"a.weight": Q.MXFP4})
    with fmt.GgufFile(p) as f:
        for impl in ("reference", "fast"):
            with pytest.raises(errors.FormatError, match="row 2, block 1: an MXFP4 scale "
                                                         "exponent of 255"):
                fmt.to_mlx(raw, "MXFP4", impl=impl)
            with pytest.raises(errors.FormatError, match="'a.weight': row 2, block 1"):
                f.read_to_mlx("a.weight", 0, 3, impl=impl)


def test_the_c_module_refuses_bad_arguments_with_typed_errors():
    from mlxq import _core

    good = np.zeros((2, 18), np.uint8)
    with pytest.raises(errors.MlxqError, match="not one mlxq converts in C"):
        _core.gguf_dequant(23, good, None, 0)  # IQ4_XS
    with pytest.raises(errors.MlxqError, match="no exact MLX layout"):
        _core.gguf_to_mlx(12, np.zeros((2, 144), np.uint8), None, 0)  # Q4_K
    with pytest.raises(errors.MlxqError, match="not whole blocks of 18 bytes"):
        _core.gguf_to_mlx(2, np.zeros((2, 20), np.uint8), None, 0)
    with pytest.raises(errors.MlxqError, match="2-D"):
        _core.gguf_to_mlx(2, np.zeros(18, np.uint8), None, 0)
    with pytest.raises(errors.MlxqError, match=r"rows\[1\] = 2 is outside the 2 source rows"):
        _core.gguf_to_mlx(2, good, np.array([0, 2], np.int64), 0)
    with pytest.raises(errors.MlxqError, match="rows must not overlap"):
        _core.gguf_dequant(2, np.lib.stride_tricks.as_strided(good, (2, 18), (1, 1)), None, 0)


# ---- whole models ------------------------------------------------------------------------

def _convert(src: Path, dst: Path, **kw) -> "mlxq.conversion.ConvertResult":
    return mlxq.convert(str(src), str(dst), quiet=True, **kw)


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_hf_to_gguf_to_mlx_equals_hf_to_mlx(tmp_path, arch):
    """BF16 matrices and F32 norms, in llama.cpp's layout (llama's permuted rows, Gemma's
    1 + w norms, stacked experts): the same tensors, bit for bit, as converting the
    Hugging Face checkpoint itself."""
    g = gp.hf_to_gguf(arch, tmp_path / "m.gguf", gp.everything(Q.BF16))
    _convert(g, tmp_path / "from-gguf")
    mlxq.convert(str(gp.ROOT / arch), str(tmp_path / "from-hf"), quiet=True)
    a, b = tensors_of(tmp_path / "from-gguf"), tensors_of(tmp_path / "from-hf")
    assert sorted(a) == sorted(b)
    for k in a:
        if k.endswith("e_score_correction_bias"):
            # a tensor the family never casts: the checkpoint's bfloat16, llama.cpp's float32
            # (every vector is float32 in a GGUF); the same values
            assert a[k].dtype == np.float32 and b[k].dtype == np.uint16
            assert np.array_equal(a[k], (b[k].astype(np.uint32) << 16).view(np.float32)), k
            continue
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    # the same model in the config's terms
    ca = json.loads((tmp_path / "from-gguf" / "config.json").read_text())
    cb = json.loads((tmp_path / "from-hf" / "config.json").read_text())
    for key in ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "intermediate_size", "vocab_size", "torch_dtype",
                "rms_norm_eps", "rope_theta", "tie_word_embeddings"):
        if key in cb:
            assert ca.get(key) == cb[key], key


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_with_q_quantizes_as_from_hf(tmp_path, arch):
    g = gp.hf_to_gguf(arch, tmp_path / "m.gguf", gp.everything(Q.BF16))
    _convert(g, tmp_path / "from-gguf", quantize=True)
    mlxq.convert(str(gp.ROOT / arch), str(tmp_path / "from-hf"), quiet=True, quantize=True)
    a, b = tensors_of(tmp_path / "from-gguf"), tensors_of(tmp_path / "from-hf")
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    qa = json.loads((tmp_path / "from-gguf" / "config.json").read_text())["quantization"]
    qb = json.loads((tmp_path / "from-hf" / "config.json").read_text())["quantization"]
    assert qa == qb


def _logits(folder: Path) -> np.ndarray:
    from mlx_lm import load

    model, _ = load(str(folder))
    return np.array(model(mx.array(PROMPT)).astype(mx.float32))


@pytest.mark.parametrize("arch", ["llama", "qwen3_moe", "gemma3_text", "phi3", "deepseek_v2",
                                  "deepseek_v3", "gpt_oss"])
@pytest.mark.parametrize("qt,tol", [(Q.Q8_0, 0.05), (Q.Q4_0, 0.5), (Q.Q4_1, 0.5)])
def test_kept_blocks_load_in_mlx_lm_and_match_the_float_model(tmp_path, arch, qt, tol):
    g = gp.hf_to_gguf(arch, tmp_path / "m.gguf", gp.everything(qt))
    r = _convert(g, tmp_path / "mlx")
    assert r.repacked_layers > 0 and not r.requantized
    kept = [t for t in r.gguf_tensors if t.action == "kept"]
    assert kept and all(t.type == qt.name for t in kept)
    # (float32: MLX's CPU gather_mm of unquantized experts takes nothing else)
    mlxq.convert(str(gp.ROOT / arch), str(tmp_path / "ref"), quiet=True, dtype="float32")
    got, want = _logits(tmp_path / "mlx"), _logits(tmp_path / "ref")
    assert np.abs(got - want).max() < tol * np.abs(want).max()
    # every kept triple is mx.load's, moved to its Hugging Face name
    ours = tensors_of(tmp_path / "mlx")
    theirs = {k: np.array(v) for k, v in mx.load(str(g)).items()}
    names = {t.gguf_name[: -len(".weight")]: t.name[: -len(".weight")] for t in kept}
    for gname, hf in names.items():
        if arch == "llama" and gname.endswith(("attn_q", "attn_k")):
            continue  # rows reordered (the next test)
        for leaf in ("weight", "scales", "biases"):
            assert np.array_equal(ours[f"{hf}.{leaf}"], theirs[f"{gname}.{leaf}"]), hf


@pytest.mark.parametrize("arch", ["deepseek_v2", "deepseek_v3"])
def test_deepseek2_before_the_mla_split_converts_the_same(tmp_path, arch):
    """Converters before llama.cpp's MLA split wrote ``kv_b_proj`` whole (``attn_kv_b``)."""
    joint = gp.hf_to_gguf(arch, tmp_path / "joint.gguf", gp.everything(Q.BF16),
                          deepseek_kv_b="joint")
    names = {t.name for t in fmt.read_header(joint).tensors}
    assert "blk.0.attn_kv_b.weight" in names and "blk.0.attn_k_b.weight" not in names
    _convert(joint, tmp_path / "a")
    mlxq.convert(str(gp.ROOT / arch), str(tmp_path / "b"), quiet=True)
    a, b = tensors_of(tmp_path / "a"), tensors_of(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert all(np.array_equal(a[k], b[k]) for k in a if "e_score_correction" not in k)


def test_deepseek2_config_is_the_models(tmp_path):
    """The values mlx-lm's deepseek_v2 reads: yarn's mscale pair (llama.cpp keeps 0.1 x
    mscale_all_dim), the routing, the MLA sizes; and the folder's logits are the Hugging Face
    checkpoint's (every weight BF16, so the same model)."""
    g = gp.hf_to_gguf("deepseek_v2", tmp_path / "m.gguf", gp.everything(Q.BF16))
    _convert(g, tmp_path / "a", dtype="float32")
    ca = json.loads((tmp_path / "a" / "config.json").read_text())
    cb = json.loads((gp.ROOT / "deepseek_v2" / "config.json").read_text())
    for k in ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
              "v_head_dim", "n_routed_experts", "n_shared_experts", "num_experts_per_tok",
              "moe_intermediate_size", "first_k_dense_replace", "routed_scaling_factor",
              "norm_topk_prob", "n_group", "topk_group", "topk_method"):
        assert ca[k] == cb[k], k
    for k in ("factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale",
              "mscale_all_dim"):
        assert ca["rope_scaling"][k] == cb["rope_scaling"][k], k
    mlxq.convert(str(gp.ROOT / "deepseek_v2"), str(tmp_path / "b"), quiet=True, dtype="float32")
    assert np.array_equal(_logits(tmp_path / "a"), _logits(tmp_path / "b"))


def test_a_quantized_router_is_dequantized_as_mlx_lm_keeps_it_dense(tmp_path):
    """deepseek's mlp.gate is never quantized in mlx-lm's model: a GGUF that quantized it
    (llama.cpp does not) gets it dense, with the GGUF's values."""
    g = gp.hf_to_gguf("deepseek_v3", tmp_path / "m.gguf", gp.everything(Q.Q8_0),
                      router_f32=False)
    res = _convert(g, tmp_path / "mlx")
    gate = [t for t in res.gguf_tensors if t.gguf_name == "blk.1.ffn_gate_inp.weight"]
    assert gate and gate[0].action == "dequantized" and gate[0].type == "Q8_0"
    ours = tensors_of(tmp_path / "mlx")
    assert "model.layers.1.mlp.gate.scales" not in ours
    rd = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(g)).tensors}
    want = gguf.quants.dequantize(rd["blk.1.ffn_gate_inp.weight"], Q.Q8_0)
    assert np.array_equal(ours["model.layers.1.mlp.gate.weight"], want.astype(np.float16))
    from mlx_lm import load

    load(str(tmp_path / "mlx"))


def _mxfp4_moe(name: str, shape: tuple) -> "Q":
    """llama.cpp's MXFP4_MOE mix: the experts in MXFP4, the other matrices BF16."""
    return Q.MXFP4 if "_exps." in name else Q.BF16


def test_gpt_oss_mxfp4_experts_are_mlx_mxfp4_holding_the_gguf_values(tmp_path):
    """MXFP4 is where GGUF files carry it (gpt-oss's experts): kept as MLX mxfp4 (same codes,
    same E8M0 exponents), whose values are gguf's reference dequantizer's, bit for bit;
    the rest as the Hugging Face checkpoint converts; mlx_lm.load runs it."""
    g = gp.hf_to_gguf("gpt_oss", tmp_path / "m.gguf", _mxfp4_moe)
    r = _convert(g, tmp_path / "mlx")
    cfg = json.loads((gp.ROOT / "gpt_oss" / "config.json").read_text())
    layers = cfg["num_hidden_layers"]
    kept = [t for t in r.gguf_tensors if t.action == "kept"]
    assert len(kept) == 3 * layers and {t.type for t in kept} == {"MXFP4"}
    q = json.loads((tmp_path / "mlx" / "config.json").read_text())["quantization"]
    ours = tensors_of(tmp_path / "mlx")
    rd = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(g)).tensors}
    experts = set()
    for i in range(layers):
        for proj in ("gate", "up", "down"):
            path = f"model.layers.{i}.mlp.experts.{proj}_proj"
            assert q[path] == {"group_size": 32, "bits": 4, "mode": "mxfp4"}
            got = mx.dequantize(mx.array(ours[f"{path}.weight"]), mx.array(ours[f"{path}.scales"]),
                                mode="mxfp4", group_size=32, bits=4, dtype=mx.float32)
            want = gguf.quants.dequantize(rd[f"blk.{i}.ffn_{proj}_exps.weight"], Q.MXFP4)
            assert np.array_equal(np.array(got), want), path
            experts.update({f"{path}.weight", f"{path}.scales"})
    mlxq.convert(str(gp.ROOT / "gpt_oss"), str(tmp_path / "hf"), quiet=True)
    ref = tensors_of(tmp_path / "hf")
    assert sorted(set(ours) - experts) == sorted(set(ref) - {k for k in ref if k in experts})
    for k in set(ours) - experts:
        assert ours[k].dtype == ref[k].dtype and np.array_equal(ours[k], ref[k]), k
    mlxq.convert(str(gp.ROOT / "gpt_oss"), str(tmp_path / "f32"), quiet=True, dtype="float32")
    got, want = _logits(tmp_path / "mlx"), _logits(tmp_path / "f32")
    assert np.abs(got - want).max() < 0.5 * np.abs(want).max()


def test_llama_q_and_k_rows_are_reordered_as_whole_blocks(tmp_path):
    g = gp.hf_to_gguf("llama", tmp_path / "m.gguf", gp.everything(Q.Q4_0))
    _convert(g, tmp_path / "mlx")
    cfg = json.loads((gp.ROOT / "llama" / "config.json").read_text())
    ours = tensors_of(tmp_path / "mlx")
    theirs = {k: np.array(v) for k, v in mx.load(str(g)).items()}
    for proj, heads in (("q", cfg["num_attention_heads"]), ("k", cfg["num_key_value_heads"])):
        for leaf in ("weight", "scales", "biases"):
            t = theirs[f"blk.0.attn_{proj}.{leaf}"]
            d = t.shape[0] // heads
            undone = t.reshape(heads, d // 2, 2, -1).swapaxes(1, 2).reshape(t.shape)
            assert np.array_equal(ours[f"model.layers.0.self_attn.{proj}_proj.{leaf}"], undone)


def test_explicit_q_parameters_win_and_the_requantize_is_reported(tmp_path):
    g = gp.hf_to_gguf("qwen3", tmp_path / "m.gguf", gp.everything(Q.Q8_0))
    r = _convert(g, tmp_path / "mlx", quantize=True, q_bits=4, q_group_size=64)
    assert r.repacked_layers == 0
    assert r.requantized and all(x.source_type == "Q8_0" for x in r.requantized)
    assert all(x.error.rmse > 0 for x in r.requantized)
    assert "re-quantized (Q8_0 -> MLX)" in r.summary()
    q = json.loads((tmp_path / "mlx" / "config.json").read_text())["quantization"]
    assert q["group_size"] == 64 and q["bits"] == 4
    assert all(v == {"group_size": 64, "bits": 4, "mode": "affine"} for k, v in q.items()
               if isinstance(v, dict))


@pytest.mark.parametrize("qt", [Q.Q4_0, Q.Q4_K, Q.BF16], ids=lambda q: q.name)
def test_bytes_read_are_the_files_bytes_each_block_read_once(tmp_path, qt):
    src = tmp_path / "hf"
    gp.widen_mlp(gp.ROOT / "llama", src)
    g = gp.hf_to_gguf("llama", tmp_path / "m.gguf", lambda n, s: qt if s[-1] % 256 == 0
                      else Q.Q8_0, src=src)
    r = _convert(g, tmp_path / "mlx")
    h = fmt.read_header(g)
    assert r.bytes_read == h.header_bytes + sum(t.nbytes for t in h.tensors)
    assert r.bytes_read <= g.stat().st_size
    assert "size %s read" % mlxq.conversion.human_bytes(r.bytes_read) in r.summary()


def test_plain_q_keeps_the_gguf_blocks(tmp_path):
    g = gp.hf_to_gguf("qwen3", tmp_path / "m.gguf", gp.everything(Q.Q8_0))
    r = _convert(g, tmp_path / "mlx", quantize=True)
    assert r.repacked_layers > 0 and not r.requantized


def test_dequantize_gives_a_float_folder_of_the_gguf_values(tmp_path):
    g = gp.hf_to_gguf("qwen2", tmp_path / "m.gguf", gp.everything(Q.Q4_1))
    r = _convert(g, tmp_path / "mlx", dequantize=True)
    assert r.dequantized_layers > 0
    cfg = json.loads((tmp_path / "mlx" / "config.json").read_text())
    assert "quantization" not in cfg
    ours = tensors_of(tmp_path / "mlx")
    theirs = mx.load(str(g))
    w = mx.dequantize(theirs["blk.1.ffn_up.weight"], theirs["blk.1.ffn_up.scales"],
                      theirs["blk.1.ffn_up.biases"], group_size=32, bits=4)
    assert np.array_equal(ours["model.layers.1.mlp.up_proj.weight"], np.array(w))


def _k_quant_llama(tmp_path: Path) -> Path:
    """The llama fixture with MLP rows 256 wide, as a GGUF: Q4_K for those rows (down_proj),
    Q8_0 for the rest."""
    def qtype(name, shape):
        return Q.Q4_K if shape[-1] % 256 == 0 else Q.Q8_0
    src = tmp_path / "hf"
    gp.widen_mlp(gp.ROOT / "llama", src)
    return gp.hf_to_gguf("llama", tmp_path / "m.gguf", qtype, src=src)


def test_k_quant_tensors_are_dequantized_and_q_requantizes_them_with_their_error(tmp_path):
    g = _k_quant_llama(tmp_path)
    r = _convert(g, tmp_path / "float")
    deq = [t for t in r.gguf_tensors if t.action == "dequantized"]
    assert deq and {t.type for t in deq} == {"Q4_K"}
    ours = tensors_of(tmp_path / "float")
    rd = {t.name: t for t in gguf.GGUFReader(str(g)).tensors}
    want = gguf.quants.dequantize(np.array(rd["blk.0.ffn_down.weight"].data), Q.Q4_K)
    assert np.array_equal(ours["model.layers.0.mlp.down_proj.weight"],
                          want.astype(np.float16))
    r = _convert(g, tmp_path / "q", quantize=True)
    assert {x.layer for x in r.requantized} == {t.name[: -len(".weight")] for t in deq}
    assert all(x.source_type == "Q4_K" and x.error.rmse > 0 for x in r.requantized)
    assert r.repacked_layers > 0


def test_data_free_mse_reads_kept_layers_as_their_dequantized_weights(tmp_path):
    # Q8_0 gate/up kept as MLX 8-bit, Q4_K down re-quantized with the data-free mse: its
    # importance comes from gate/up's weights, read through the kept blocks as MLX
    # dequantizes them (with the file's float16 scales). It must be the importance the same
    # model gives as a float folder of those values (mx.dequantize's), so down_proj's bytes
    # are that folder's. (float32 throughout: the Q4_K rows are quantized as read.)
    g = _k_quant_llama(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every layer covered: no fallback to MLX's method
        r = _convert(g, tmp_path / "q", quantize=True, q_method="mse", dtype="float32")
    assert r.repacked_layers > 0 and r.requantized
    # the float folder, each kept layer replaced by what MLX dequantizes the file's blocks to
    _convert(g, tmp_path / "kept", quantize=True)  # the blocks as MLX's, float16 scales
    _convert(g, tmp_path / "f", dequantize=True, dtype="float32")
    cfg = json.loads((tmp_path / "kept" / "config.json").read_text())["quantization"]
    kept = mx.load(str(tmp_path / "kept" / "model.safetensors"))
    floats = mx.load(str(tmp_path / "f" / "model.safetensors"))
    for path, q in cfg.items():
        if isinstance(q, dict) and q["bits"] == 8:
            assert kept[f"{path}.scales"].dtype == mx.float16
            floats[f"{path}.weight"] = mx.dequantize(
                kept[f"{path}.weight"], kept[f"{path}.scales"], kept[f"{path}.biases"],
                group_size=q["group_size"], bits=q["bits"]).astype(mx.float32)
    mx.save_safetensors(str(tmp_path / "f" / "model.safetensors"), floats,
                        metadata={"format": "mlx"})
    _convert(tmp_path / "f", tmp_path / "ref", quantize=True, q_method="mse")
    _convert(tmp_path / "f", tmp_path / "rtn", quantize=True)
    ours, ref, rtn = (tensors_of(tmp_path / d) for d in ("q", "ref", "rtn"))
    for x in r.requantized:
        for leaf in ("weight", "scales", "biases"):
            k = f"{x.layer}.{leaf}"
            assert ours[k].tobytes() == ref[k].tobytes(), k
        k = f"{x.layer}.weight"
        assert ours[k].tobytes() != rtn[k].tobytes(), k  # the importance did something


def test_a_split_set_converts_as_the_single_file(tmp_path):
    one = gp.hf_to_gguf("qwen3", tmp_path / "one.gguf", gp.everything(Q.Q8_0))
    (tmp_path / "split").mkdir()
    first = gp.hf_to_gguf("qwen3", tmp_path / "split" / "m.gguf", gp.everything(Q.Q8_0),
                          split_max_tensors=10)
    assert first.name.endswith("-00001-of-00003.gguf"), first
    _convert(one, tmp_path / "a")
    _convert(first, tmp_path / "b")
    a, b = tensors_of(tmp_path / "a"), tensors_of(tmp_path / "b")
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    (sorted((tmp_path / "split").glob("*-00002-*"))[0]).unlink()
    with pytest.raises(errors.MlxqIOError, match="00002-of-00003"):
        _convert(first, tmp_path / "c")


def test_the_tokenizer_and_chat_template_come_from_the_metadata(tmp_path):
    tmpl = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    g = gp.hf_to_gguf("qwen3", tmp_path / "m.gguf", chat_template=tmpl)
    _convert(g, tmp_path / "mlx")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tmp_path / "mlx"))
    assert tok.chat_template == tmpl
    vocab = json.loads((gp.ROOT / "qwen3" / "tokenizer.json").read_text())["model"]["vocab"]
    assert all(tok.convert_tokens_to_ids(t) == i for t, i in vocab.items())
    cfg = json.loads((tmp_path / "mlx" / "config.json").read_text())
    assert (cfg["bos_token_id"], cfg["eos_token_id"]) == (1, 2)


def test_a_vocabulary_transformers_cannot_build_fails_and_nothing_is_written(tmp_path):
    """The tokenizer is built beside the tensors: its failure still stops the conversion,
    typed, and commits nothing."""
    g = gp.hf_to_gguf("qwen3", tmp_path / "m.gguf", gp.everything(Q.Q8_0))
    data = g.read_bytes()
    key = b"tokenizer.ggml.model" + struct.pack("<IQ", 8, 4) + b"gpt2"
    assert data.count(key) == 1
    g.write_bytes(data.replace(key, key[:-4] + b"gpt9"))
    with pytest.raises(errors.UnsupportedFormatError, match="'gpt9'"):
        _convert(g, tmp_path / "mlx")
    assert not (tmp_path / "mlx").exists()


def test_the_tokenizer_needs_no_torch(tmp_path):
    """CI has no torch: the tokenizer step (transformers' GGUF tokenizer conversion) and
    mlx_lm.load of the folder run in a process where importing torch fails."""
    import subprocess
    import sys

    g = gp.hf_to_gguf("qwen3", tmp_path / "m.gguf", gp.everything(Q.Q8_0))
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` raises ImportError
            "import mlxq, mlx.core as mx\n"
            f"mlxq.convert({str(g)!r}, {str(tmp_path / 'mlx')!r}, quiet=True)\n"
            "from mlx_lm import load\n"
            f"model, tok = load({str(tmp_path / 'mlx')!r})\n"
            "print(tok.encode('hello world'), model(mx.array([[1, 2, 3]])).shape)\n"
            "assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]


def test_the_input_file_is_not_modified(tmp_path):
    g = gp.hf_to_gguf("gemma2", tmp_path / "m.gguf", gp.everything(Q.Q4_0))
    before = g.read_bytes()
    _convert(g, tmp_path / "mlx", quantize=True)
    assert g.read_bytes() == before
