"""mlxq.imatrix: llama.cpp importance matrices, both layouts, and their MLX names.

Files are written here from the layouts' definitions (struct.pack, following llama.cpp's
save_imatrix_legacy / save_imatrix) and, for GGUF, also with the gguf package's own writer.
"""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from mlxq.errors import FormatError, MissingDependencyError, MlxqError, ShapeMismatchError
from mlxq.imatrix import read_imatrix

gguf = pytest.importorskip("gguf")


# ---- writers per the documented layouts ---------------------------------------------------


def dat_bytes(entries, chunk_count=None, dataset=None) -> bytes:
    """Legacy layout: n_entries, then (len, name, ncall, nval, values) per entry."""
    out = struct.pack("<i", len(entries))
    for name, ncall, values in entries:
        raw = name.encode()
        values = np.asarray(values, "<f4")
        out += struct.pack("<i", len(raw)) + raw + struct.pack("<ii", ncall, values.size)
        out += values.tobytes()
    if chunk_count is not None:
        out += struct.pack("<i", chunk_count)
        if dataset is not None:
            out += struct.pack("<i", len(dataset)) + dataset.encode()
    return out


def _gstr(s: str) -> bytes:
    return struct.pack("<Q", len(s.encode())) + s.encode()


def gguf_bytes(tensors: dict[str, np.ndarray], datasets=("calib.txt",), align=32) -> bytes:
    """GGUF v3 with imatrix metadata and float32 tensors (numpy shape = reversed ggml ne)."""
    kv = _gstr("general.type") + struct.pack("<I", 8) + _gstr("imatrix")
    kv += _gstr("imatrix.datasets") + struct.pack("<IIQ", 9, 8, len(datasets))
    kv += b"".join(_gstr(d) for d in datasets)
    kv += _gstr("imatrix.chunk_count") + struct.pack("<II", 4, 7)
    n_kv = 3
    infos, blobs, offset = b"", b"", 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, "<f4")
        dims = tuple(reversed(arr.shape))
        infos += _gstr(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        infos += struct.pack("<IQ", 0, offset)
        blob = arr.tobytes()
        blob += b"\0" * (-len(blob) % align)
        blobs += blob
        offset += len(blob)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), n_kv) + kv + infos
    head += b"\0" * (-len(head) % align)
    return head + blobs


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


DENSE = np.arange(1, 9, dtype=np.float32)  # 8 columns
EXPERTS = np.arange(1, 25, dtype=np.float32).reshape(3, 8)  # 3 experts x 8 columns


# ---- legacy .dat --------------------------------------------------------------------------


def test_dat_importance_is_values_over_ncall(tmp_path):
    p = write(tmp_path, "m.dat", dat_bytes([("blk.0.attn_q.weight", 4, DENSE * 4)], 12, "c.txt"))
    m = read_imatrix(p)
    assert m.format == "dat" and m.chunk_count == 12 and m.datasets == ("c.txt",)
    np.testing.assert_array_equal(m["blk.0.attn_q.weight"].importance, DENSE[None])


def test_dat_without_trailer_and_with_zero_ncall(tmp_path):
    p = write(tmp_path, "m.dat", dat_bytes([("blk.1.ffn_down.weight", 0, DENSE)]))
    np.testing.assert_array_equal(read_imatrix(p)["blk.1.ffn_down.weight"].importance, DENSE[None])


def test_dat_experts_split_by_the_weight_shape(tmp_path):
    p = write(tmp_path, "m.dat", dat_bytes([("blk.0.ffn_up_exps.weight", 2, EXPERTS.ravel() * 2)]))
    path = "model.layers.0.mlp.switch_mlp.up_proj"
    got = read_imatrix(p).to_mlx("qwen3moe", 1, {path: (3, 16, 8)})
    np.testing.assert_array_equal(got[path], EXPERTS)
    with pytest.raises(ShapeMismatchError, match="expert count"):
        read_imatrix(p).to_mlx("qwen3moe", 1)


# ---- GGUF ---------------------------------------------------------------------------------


def test_gguf_importance_is_in_sum2_over_counts_per_expert(tmp_path):
    counts = np.array([[2.0], [0.0], [4.0]], np.float32)  # ggml [1, n_mat]
    p = write(tmp_path, "m.gguf", gguf_bytes({
        "blk.0.attn_q.weight.in_sum2": DENSE[None] * 5,
        "blk.0.attn_q.weight.counts": np.array([[5.0]], np.float32),
        "blk.0.ffn_up_exps.weight.in_sum2": EXPERTS * counts,
        "blk.0.ffn_up_exps.weight.counts": counts,
        "blk.0.ffn_up_exps.weight.in_sum": EXPERTS,
    }))
    m = read_imatrix(p)
    assert m.format == "gguf" and m.datasets == ("calib.txt",) and m.chunk_count == 7
    np.testing.assert_array_equal(m["blk.0.attn_q.weight"].importance, DENSE[None])
    want = EXPERTS.copy()
    want[1] = 1.0  # a zero count gives 1, as llama-quantize does
    np.testing.assert_array_equal(m["blk.0.ffn_up_exps.weight"].importance, want)


def test_gguf_written_by_the_gguf_package(tmp_path):
    path = tmp_path / "w.gguf"
    w = gguf.GGUFWriter(str(path), "imatrix")
    w.add_string("general.type", "imatrix")
    w.add_tensor("blk.0.attn_k.weight.in_sum2", DENSE[None] * 3)
    w.add_tensor("blk.0.attn_k.weight.counts", np.array([[3.0]], np.float32))
    w.add_tensor("blk.1.ffn_gate_exps.weight.in_sum2", EXPERTS * 2)
    w.add_tensor("blk.1.ffn_gate_exps.weight.counts", np.full((3, 1), 2.0, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    got = read_imatrix(path).to_mlx("qwen3moe", 2)
    np.testing.assert_array_equal(got["model.layers.0.self_attn.k_proj"], DENSE)
    np.testing.assert_array_equal(got["model.layers.1.mlp.switch_mlp.gate_proj"], EXPERTS)


# ---- names -------------------------------------------------------------------------------


def test_names_map_with_the_gguf_tensor_map(tmp_path):
    p = write(tmp_path, "m.dat", dat_bytes([
        ("blk.0.attn_q.weight", 1, DENSE), ("blk.0.ffn_down.weight", 1, DENSE),
        ("blk.1.attn_output.weight", 1, DENSE), ("output.weight", 1, DENSE),
        ("blk.9.nonsense.weight", 1, DENSE),
    ]))
    got = read_imatrix(p).to_mlx("llama", 2)
    assert set(got) == {"model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj",
                        "model.layers.1.self_attn.o_proj", "lm_head"}
    assert got.unmatched == ("blk.9.nonsense.weight",)


def test_names_given_by_the_model_map_forward(tmp_path):
    p = write(tmp_path, "m.dat", dat_bytes([("blk.0.attn_v.weight", 1, DENSE),
                                            ("blk.0.ffn_gate_exps.weight", 1, EXPERTS.ravel())]))
    layers = {"model.layers.0.self_attn.v_proj": (4, 8),
              "model.layers.0.block_sparse_moe.switch_mlp.gate_proj": (3, 5, 8)}
    got = read_imatrix(p).to_mlx("llama", 1, layers)
    np.testing.assert_array_equal(got["model.layers.0.self_attn.v_proj"], DENSE)
    np.testing.assert_array_equal(got["model.layers.0.block_sparse_moe.switch_mlp.gate_proj"],
                                  EXPERTS)
    with pytest.raises(ShapeMismatchError, match="8 values for a weight of 16 columns"):
        read_imatrix(p).to_mlx("llama", 1, {"model.layers.0.self_attn.v_proj": (4, 16)})


def test_unknown_architecture_is_a_typed_error(tmp_path):
    p = write(tmp_path, "m.dat", dat_bytes([("blk.0.attn_q.weight", 1, DENSE)]))
    with pytest.raises(MlxqError, match="arch='nope'"):
        read_imatrix(p).to_mlx("nope", 1)


def test_missing_gguf_package_is_a_clear_error(tmp_path, monkeypatch):
    p = write(tmp_path, "m.dat", dat_bytes([("blk.0.attn_q.weight", 1, DENSE)]))
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(MissingDependencyError, match="pip install"):
        read_imatrix(p).to_mlx("llama", 1)


# ---- malformed files ----------------------------------------------------------------------


def valid_files() -> list[bytes]:
    return [
        dat_bytes([("blk.0.attn_q.weight", 2, DENSE), ("blk.0.ffn_up_exps.weight", 1,
                                                       EXPERTS.ravel())], 3, "x"),
        gguf_bytes({"a.weight.in_sum2": DENSE[None], "a.weight.counts": np.ones((1, 1))}),
    ]


@pytest.mark.parametrize("which", [0, 1])
def test_every_truncation_is_a_format_error(tmp_path, which):
    data = valid_files()[which]
    # the GGUF file ends with the last tensor's alignment padding, which is not needed
    end = len(data) if which == 0 else len(data) - (-4 % 32)
    for n in range(end):
        if which == 0 and n in _dat_valid_prefixes(data):
            continue
        with pytest.raises(FormatError):
            read_imatrix(write(tmp_path, "t", data[:n]))


def _dat_valid_prefixes(data: bytes) -> set[int]:
    # the legacy trailer is optional: stopping right after the entries, or after the
    # chunk count, is a complete file
    end_entries = len(data) - 4 - 4 - 1
    return {end_entries, end_entries + 4}


@pytest.mark.parametrize("data,match", [
    (struct.pack("<i", 2**30), "entry count"),
    (struct.pack("<i", 0), "no entries"),
    (struct.pack("<ii", 1, 2**31 - 1) + bytes(12), "name length"),
    (dat_bytes([("x", 1, [np.nan])]), "NaN"),
    (dat_bytes([("x", 1, [-1.0])]), "negative"),
    (dat_bytes([("x", -3, [1.0])]), "negative ncall"),
    (dat_bytes([("x", 1, [1.0]), ("x", 1, [1.0])]), "twice"),
    (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "tensor count"),
    (b"GGUF" + struct.pack("<IQQ", 9, 0, 0), "version"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _gstr("k") + struct.pack("<IIQ", 9, 8, 2**50),
     "array length"),
    (gguf_bytes({"a.in_sum2": DENSE[None]}), "no counts"),
    (gguf_bytes({"a.in_sum2": EXPERTS, "a.counts": np.ones((2, 1))}), "3 rows"),
    (gguf_bytes({"a.in_sum2": DENSE[None], "a.counts": np.array([[np.inf]])}), "NaN or inf"),
])
def test_malformed_bytes_are_format_errors(tmp_path, data, match):
    with pytest.raises(FormatError, match=match):
        read_imatrix(write(tmp_path, "bad", data))


def test_tensor_data_outside_the_file_is_a_format_error(tmp_path):
    data = gguf_bytes({"a.in_sum2": DENSE[None], "a.counts": np.ones((1, 1))})
    with pytest.raises(FormatError, match="outside the file"):
        read_imatrix(write(tmp_path, "cut", data[:-40]))


def test_unreadable_path_is_an_io_error(tmp_path):
    with pytest.raises(OSError):
        read_imatrix(tmp_path / "missing.dat")


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402


@given(st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_mlxq_errors(tmp_path_factory, data):
    _parse_or_mlxq_error(tmp_path_factory, data)


@given(st.sampled_from([0, 1]), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                          min_size=1, max_size=6))
def test_fuzz_mutated_files_raise_only_mlxq_errors(tmp_path_factory, which, edits):
    data = bytearray(valid_files()[which])
    for pos, val in edits:
        data[pos % len(data)] = val
    _parse_or_mlxq_error(tmp_path_factory, bytes(data))


def _parse_or_mlxq_error(tmp_path_factory, data: bytes) -> None:
    p = tmp_path_factory.mktemp("fuzz") / "f"
    p.write_bytes(data)
    try:
        m = read_imatrix(p)
    except MlxqError:
        return
    for e in m.values():  # a parse that succeeds yields finite, non-negative importances
        assert e.importance.dtype == np.float32 and np.isfinite(e.importance).all()
        assert (e.importance >= 0).all()
