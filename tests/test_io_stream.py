"""SafetensorsWriter (tensors put one at a time, in any order) and SafetensorsReader
(tensors read with pread, no mapping): what the streaming converter is built on."""

from __future__ import annotations

import os

import numpy as np
import pytest

import mlxq
from mlxq.errors import (
    InvalidArgumentError,
    KeyCollisionError,
    MissingKeyError,
    MlxqIOError,
    SafetensorsError,
    UnsupportedDtypeError,
)
from mlxq.io import SafetensorsReader, SafetensorsWriter

TENSORS = {
    "b.weight": np.arange(12, dtype=np.uint32).reshape(3, 4),
    "a.scales": (np.arange(6, dtype=np.float32) / 7).astype(mlxq.bfloat16).reshape(3, 2),
    "c": np.array([1.5, -2.0], np.float64),
    "z.empty": np.zeros((0, 3), np.float16),
    "m.flag": np.array([True, False, True]),
}


def specs(tensors):
    return [(k, v.dtype, v.shape) for k, v in tensors.items()]


@pytest.mark.parametrize("order", [list(TENSORS), sorted(TENSORS), list(reversed(TENSORS))])
def test_any_order_gives_the_reference_file(tmp_path, order):
    ref = tmp_path / "ref.safetensors"
    mlxq.save_safetensors(ref, TENSORS, metadata={"format": "mlx"})
    out = tmp_path / "out.safetensors"
    with SafetensorsWriter(out, specs(TENSORS), {"format": "mlx"}) as w:
        for k in order:
            w.put(k, TENSORS[k])
        assert w.pending == frozenset()
    assert out.read_bytes() == ref.read_bytes()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_non_contiguous_input_is_accepted(tmp_path):
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    with SafetensorsWriter(tmp_path / "t.safetensors", [("t", np.float32, (5, 4))]) as w:
        w.put("t", a.T)
    np.testing.assert_array_equal(mlxq.load_safetensors(tmp_path / "t.safetensors")["t"], a.T)


def test_commit_with_missing_tensors_leaves_nothing(tmp_path):
    w = SafetensorsWriter(tmp_path / "t.safetensors", specs(TENSORS))
    w.put("c", TENSORS["c"])
    with pytest.raises(InvalidArgumentError, match="missing"):
        w.commit()
    assert os.listdir(tmp_path) == []


def test_exception_in_with_block_removes_the_file(tmp_path):
    with pytest.raises(RuntimeError):
        with SafetensorsWriter(tmp_path / "t.safetensors", specs(TENSORS)) as w:
            w.put("c", TENSORS["c"])
            raise RuntimeError("producer failed")
    assert os.listdir(tmp_path) == []


def test_dropping_an_open_writer_removes_the_file(tmp_path):
    w = SafetensorsWriter(tmp_path / "t.safetensors", specs(TENSORS))
    w.put("c", TENSORS["c"])
    del w
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name,arr,exc,match", [
    ("c", np.zeros(2, np.float32), InvalidArgumentError, "declared float64"),
    ("c", np.zeros(3, np.float64), InvalidArgumentError, r"\[2\]"),
    ("nope", np.zeros(2, np.float64), MissingKeyError, "nope"),
])
def test_put_checks_the_declaration(tmp_path, name, arr, exc, match):
    w = SafetensorsWriter(tmp_path / "t.safetensors", specs(TENSORS))
    with pytest.raises(exc, match=match):
        w.put(name, arr)
    w.abort()
    assert os.listdir(tmp_path) == []


def test_put_twice_is_refused(tmp_path):
    w = SafetensorsWriter(tmp_path / "t.safetensors", specs(TENSORS))
    w.put("c", TENSORS["c"])
    with pytest.raises(InvalidArgumentError, match="already written"):
        w.put("c", TENSORS["c"])
    w.abort()


def test_declaration_errors(tmp_path):
    with pytest.raises(KeyCollisionError):
        SafetensorsWriter(tmp_path / "t", [("a", np.float32, (1,)), ("a", np.float32, (1,))])
    with pytest.raises(UnsupportedDtypeError):
        SafetensorsWriter(tmp_path / "t", [("a", np.complex128, (1,))])
    with pytest.raises(InvalidArgumentError):
        SafetensorsWriter(tmp_path / "t", [("__metadata__", np.float32, (1,))])
    with pytest.raises(MlxqIOError):
        SafetensorsWriter(tmp_path / "no" / "dir" / "t", [("a", np.float32, (1,))])
    assert os.listdir(tmp_path) == []


def test_core_writer_refuses_mixing_sequential_and_random_access(tmp_path):
    # the C writer's two modes exclude each other; the Python class only uses put
    w = mlxq._core.StWriter(str(tmp_path / "t"), [("a", "F32", (2,))])
    w.put(0, np.zeros(2, np.float32))
    with pytest.raises(IndexError):
        w.put(1, np.zeros(2, np.float32))
    w.commit()
    with pytest.raises(ValueError, match="already committed"):
        w.put(0, np.zeros(2, np.float32))


# ---- reader ---------------------------------------------------------------------------------

@pytest.fixture
def ref(tmp_path):
    p = tmp_path / "ref.safetensors"
    mlxq.save_safetensors(p, TENSORS, metadata={"k": "v"})
    return p


def test_reader_reads_every_tensor(ref):
    with SafetensorsReader(ref) as r:
        assert sorted(r.names) == sorted(TENSORS)
        assert r.metadata == {"k": "v"}
        for k, v in TENSORS.items():
            got = r.read(k)
            assert got.dtype == v.dtype and got.shape == v.shape
            assert got.tobytes() == v.tobytes()
            assert got.flags.writeable  # its own buffer, not a view of a mapping


def test_reader_rows(ref):
    with SafetensorsReader(ref) as r:
        out = np.empty((2, 4), np.uint32)
        np.testing.assert_array_equal(r.read_rows("b.weight", 1, out), TENSORS["b.weight"][1:])
        with pytest.raises(InvalidArgumentError):
            r.read_rows("b.weight", 2, out)  # past the end
        with pytest.raises(InvalidArgumentError):
            r.read_rows("b.weight", 0, np.empty((2, 4), np.int32))
        with pytest.raises(InvalidArgumentError):
            r.read("c", out=np.empty(3, np.float64))
        with pytest.raises(MissingKeyError):
            r.read("nope")


def test_reader_agrees_with_the_mapped_reader_on_bad_files(ref, tmp_path):
    data = ref.read_bytes()
    cases = {
        "truncated": data[:-3],
        "trailing": data + b"\0",
        "short": data[:5],
        "header-past-end": (10**6).to_bytes(8, "little") + data[8:],
        "not-json": len(b"{nope").to_bytes(8, "little") + b"{nope",
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        with pytest.raises(SafetensorsError) as mapped:
            mlxq.open_safetensors(p)
        with pytest.raises(SafetensorsError) as streamed:
            SafetensorsReader(p)
        assert str(p) in str(streamed.value), name
        assert mapped.type is streamed.type


def test_reader_missing_file(tmp_path):
    with pytest.raises(MlxqIOError, match="cannot open"):
        SafetensorsReader(tmp_path / "nope.safetensors")


def test_parts_in_order_give_the_reference_file(tmp_path):
    ref = tmp_path / "ref.safetensors"
    mlxq.save_safetensors(ref, TENSORS)
    out = tmp_path / "out.safetensors"
    with SafetensorsWriter(out, specs(TENSORS)) as w:
        flat = TENSORS["b.weight"].reshape(-1)
        w.put_part("b.weight", 0, flat[:5])
        w.put_part("b.weight", 20, flat[5:9].reshape(2, 2))  # any shape
        w.put_part("b.weight", 36, flat[9:])
        for k in TENSORS:
            if k != "b.weight":
                w.put(k, TENSORS[k])
    assert out.read_bytes() == ref.read_bytes()


def test_parts_out_of_order_or_overrunning_are_refused(tmp_path):
    w = SafetensorsWriter(tmp_path / "t.safetensors", specs(TENSORS))
    flat = TENSORS["b.weight"].reshape(-1)
    with pytest.raises(InvalidArgumentError, match="in order"):
        w.put_part("b.weight", 4, flat[:2])
    w.put_part("b.weight", 0, flat[:10])
    with pytest.raises(InvalidArgumentError, match="more than"):
        w.put_part("b.weight", 40, flat[:3])
    with pytest.raises(InvalidArgumentError, match="declared"):
        w.put_part("b.weight", 40, np.zeros(2, np.float32))
    with pytest.raises(InvalidArgumentError, match="missing"):
        w.commit()
    assert os.listdir(tmp_path) == []


def test_empty_tensor_put_once(tmp_path):
    w = SafetensorsWriter(tmp_path / "t.safetensors", [("e", np.float16, (0, 3))])
    w.put("e", np.zeros((0, 3), np.float16))
    with pytest.raises(InvalidArgumentError, match="already written"):
        w.put("e", np.zeros((0, 3), np.float16))
    w.commit()
    assert mlxq.load_safetensors(tmp_path / "t.safetensors")["e"].shape == (0, 3)
