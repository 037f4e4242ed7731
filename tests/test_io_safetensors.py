"""Reading and writing single safetensors files: zero-copy views, every dtype, exact and
atomic writes."""

from __future__ import annotations

import gc
import os
import resource
import subprocess
import sys
import time

import ml_dtypes
import numpy as np
import pytest

import mlxq
from mlxq import _core
from mlxq.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    KeyCollisionError,
    MissingKeyError,
    MlxqIOError,
    SafetensorsError,
    UnsupportedDtypeError,
)
from st_util import entry, st_bytes

RNG = np.random.default_rng(0)

DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
    "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
    "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F32": np.float32, "F64": np.float64,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
    "C64": np.complex64, "F8_E8M0": ml_dtypes.float8_e8m0fnu,
    "F8_E4M3FNUZ": ml_dtypes.float8_e4m3fnuz, "F8_E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
}


def sample(dtype, shape=(3, 5)) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return RNG.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return RNG.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    bits = RNG.integers(0, 256, (*shape, dt.itemsize), dtype=np.uint8)
    arr = bits.view(dt).reshape(shape)
    return arr


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize("st_name", sorted(DTYPES))
def test_every_numpy_dtype_round_trips_bit_exactly(tmp_path, st_name):
    arr = sample(DTYPES[st_name])
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"x": arr})
    f = mlxq.open_safetensors(p)
    assert f.info("x").dtype == st_name
    assert same_bits(f["x"], arr)


def test_arrays_are_read_only_views_of_the_mapping(tmp_path):
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"a": np.arange(1000, dtype=np.float32), "b": np.ones(3, np.int8)})
    f = mlxq.open_safetensors(p)
    a = f["a"]
    assert not a.flags.writeable and not a.flags.owndata
    assert isinstance(a.base, _core.SafetensorsFile)
    with pytest.raises(ValueError):
        a[0] = 1
    with pytest.raises(ValueError):
        a.setflags(write=True)
    # Two reads of one tensor view the same bytes: no copy was made.
    assert np.shares_memory(a, f["a"])
    assert a.__array_interface__["data"][0] - f["b"].__array_interface__["data"][0] != 0


def test_mapping_outlives_the_file_object_and_the_file(tmp_path):
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"a": np.arange(10, dtype=np.int64)})
    a = mlxq.load_safetensors(p)["a"]
    gc.collect()
    os.unlink(p)
    assert a.tolist() == list(range(10))


def test_tensors_come_sorted_with_metadata(tmp_path):
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"b": np.zeros(1), "a": np.zeros(2), "a.b": np.zeros(0)}, metadata={"format": "mlx", "x": "é"})
    assert list(mlxq.load_safetensors(p)) == ["a", "a.b", "b"]
    assert mlxq.safetensors_metadata(p) == {"format": "mlx", "x": "é"}
    f = mlxq.open_safetensors(p)
    assert len(f) == 3 and "a" in f and "c" not in f and f.has_metadata
    assert f.info("a") == mlxq.io.TensorInfo("F64", (2,), (0, 16)) and f.info("a").nbytes == 16


def test_file_without_metadata_reports_none(tmp_path):
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"a": np.zeros(1)})
    f = mlxq.open_safetensors(p)
    assert f.metadata == {} and not f.has_metadata


def test_missing_tensor_is_a_key_error(tmp_path):
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"a": np.zeros(1)})
    with pytest.raises(MissingKeyError, match="no tensor named 'b'") as info:
        mlxq.open_safetensors(p)["b"]
    assert isinstance(info.value, KeyError)


def test_sub_byte_dtypes_raise_a_clear_error_but_keep_the_rest_readable(tmp_path):
    h = {"f4": entry("F4", [4], 0, 2), "u": entry("U8", [2], 2, 4)}
    p = tmp_path / "f4.safetensors"
    p.write_bytes(st_bytes(h, b"\x12\x34\x56\x78"))
    f = mlxq.open_safetensors(p)
    assert f["u"].tolist() == [0x56, 0x78]
    assert f.info("f4").dtype == "F4"
    with pytest.raises(SafetensorsError, match="'f4' has dtype F4, which packs elements below one byte"):
        f["f4"]
    with pytest.raises(SafetensorsError, match="F4"):
        mlxq.load_safetensors(p)


def test_unaligned_tensors_still_load(tmp_path):
    # MLX does not pad its header, so its tensors can start at any byte.
    h = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}'
    p = tmp_path / "u.safetensors"
    p.write_bytes(st_bytes(h, b"\x07" + np.array([1.5, -2], np.float32).tobytes()))
    b = mlxq.load_safetensors(p)["b"]
    assert b.tolist() == [1.5, -2.0]


@pytest.mark.parametrize("what", ["missing", "directory", "fifo"])
def test_unopenable_paths_raise_io_errors(tmp_path, what):
    p = tmp_path / what
    if what == "directory":
        p.mkdir()
    elif what == "fifo":
        os.mkfifo(p)
    with pytest.raises(MlxqIOError) as info:
        mlxq.load_safetensors(p)
    assert isinstance(info.value, OSError) and str(p) in str(info.value)


def test_empty_file_is_a_format_error(tmp_path):
    p = tmp_path / "e.safetensors"
    p.write_bytes(b"")
    with pytest.raises(SafetensorsError, match="too short"):
        mlxq.load_safetensors(p)


def test_loading_costs_the_header_not_the_data(tmp_path):
    """A 2 GiB file whose data is a hole: loading and slicing must not read it."""
    n = 1 << 31
    hdr = st_bytes({"big": entry("U8", [n], 0, n), "small": entry("U8", [4], n, n + 4)})
    p = tmp_path / "sparse.safetensors"
    with open(p, "wb") as f:
        f.write(hdr)
        f.truncate(len(hdr) + n + 4)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    d = mlxq.load_safetensors(p)
    assert d["big"].shape == (n,) and int(d["big"][n // 2]) == 0 and d["small"].tolist() == [0] * 4
    assert time.perf_counter() - t0 < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB


# ---- writing -------------------------------------------------------------------------------


def test_header_is_padded_to_8_bytes_with_spaces(tmp_path):
    for k in range(10):
        p = tmp_path / f"p{k}.safetensors"
        mlxq.save_safetensors(p, {"n" * k: np.zeros(1, np.uint8)})
        raw = p.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        assert n % 8 == 0 and raw[8 + n - 1 : 8 + n].strip(b" ") in (b"}", b"")
        assert raw[8 : 8 + n].rstrip(b" ").endswith(b"}")


def test_layout_is_by_dtype_then_name_whatever_the_input_order(tmp_path):
    t = {"z8": np.zeros(3, np.int8), "a32": np.zeros(2, np.float32), "m64": np.zeros(1, np.float64),
         "b16": np.zeros(5, ml_dtypes.bfloat16), "a8": np.zeros(1, np.uint8)}
    paths = []
    for i, order in enumerate([list(t), sorted(t), sorted(t, reverse=True)]):
        paths.append(tmp_path / f"o{i}.safetensors")
        mlxq.save_safetensors(paths[-1], [(k, t[k]) for k in order])
    assert paths[0].read_bytes() == paths[1].read_bytes() == paths[2].read_bytes()
    f = mlxq.open_safetensors(paths[0])
    by_offset = sorted(f, key=lambda k: f.info(k).data_offsets)
    assert by_offset == ["m64", "a32", "b16", "z8", "a8"]  # F64 > F32 > BF16 > I8 > U8
    for k in f:  # every tensor aligned to its element size in the file
        assert (f._f.data_start + f.info(k).data_offsets[0]) % f[k].itemsize == 0


def test_metadata_keys_are_sorted(tmp_path):
    p = tmp_path / "m.safetensors"
    mlxq.save_safetensors(p, {}, metadata={"b": "1", "a": "2", "é": "3"})
    assert b'{"__metadata__":{"a":"2","b":"1","\xc3\xa9":"3"}}' in p.read_bytes()


def test_no_metadata_vs_empty_metadata(tmp_path):
    mlxq.save_safetensors(tmp_path / "a.st", {})
    mlxq.save_safetensors(tmp_path / "b.st", {}, metadata={})
    assert (tmp_path / "a.st").read_bytes() == b"\x08" + b"\0" * 7 + b"{}      "
    assert b'"__metadata__":{}' in (tmp_path / "b.st").read_bytes()


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(24, dtype=np.int32).reshape(4, 6).T,
        lambda: np.arange(60, dtype=np.float32).reshape(3, 4, 5)[::-1, 1:, ::2],
        lambda: np.broadcast_to(np.arange(7, dtype=np.int16), (5, 7)),
        lambda: np.arange(10, dtype=np.float64)[::3],
        lambda: np.asfortranarray(np.arange(12, dtype=ml_dtypes.bfloat16).reshape(3, 4)),
        lambda: np.float32(3.5) * np.ones((), np.float32),
        lambda: np.zeros((0, 4), np.float32)[:, ::2],
        lambda: np.arange(3 * 400_000, dtype=np.uint16).reshape(3, 400_000)[:, ::2].T,  # > 1 MiB
    ],
    ids=["transposed", "negative-strides", "broadcast", "step", "fortran", "scalar", "empty", "large"],
)
def test_non_contiguous_arrays_are_written_in_c_order(tmp_path, make):
    arr = make()
    p = tmp_path / "s.safetensors"
    mlxq.save_safetensors(p, {"s": arr})
    got = mlxq.load_safetensors(p)["s"]
    assert got.shape == arr.shape and got.tobytes() == np.ascontiguousarray(arr).tobytes()


def test_big_endian_arrays_are_stored_little_endian(tmp_path):
    arr = np.arange(5, dtype=">i4")
    mlxq.save_safetensors(tmp_path / "b.st", {"b": arr})
    got = mlxq.load_safetensors(tmp_path / "b.st")["b"]
    assert got.dtype == np.dtype("<i4") and got.tolist() == list(range(5))


def test_non_numpy_inputs_go_through_asarray(tmp_path):
    mlxq.save_safetensors(tmp_path / "l.st", {"l": [[1, 2], [3, 4]]})
    assert mlxq.load_safetensors(tmp_path / "l.st")["l"].tolist() == [[1, 2], [3, 4]]


def test_bad_arguments_are_refused_before_any_file_exists(tmp_path):
    p = tmp_path / "x.safetensors"
    cases = [
        ([("a", np.zeros(1)), ("a", np.zeros(1))], KeyCollisionError),
        ({"__metadata__": np.zeros(1)}, InvalidArgumentError),
        ({"a\0": np.zeros(1)}, InvalidArgumentError),
        ({"\ud800": np.zeros(1)}, InvalidArgumentError),
        ({1: np.zeros(1)}, ArgumentTypeError),
        ({"o": np.array(["x"], dtype=object)}, UnsupportedDtypeError),
        ({"s": np.array(["x"])}, UnsupportedDtypeError),
        ({"c": np.zeros(1, np.complex128)}, UnsupportedDtypeError),
        ([np.zeros(1)], ArgumentTypeError),
    ]
    for tensors, exc in cases:
        with pytest.raises(exc):
            mlxq.save_safetensors(p, tensors)
    with pytest.raises(ArgumentTypeError):
        mlxq.save_safetensors(p, {}, metadata={"k": 1})
    with pytest.raises(ArgumentTypeError):
        mlxq.save_safetensors(p, {}, metadata=[("k", "v")])
    assert os.listdir(tmp_path) == []


def test_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        mlxq.save_safetensors(tmp_path / "m.st", {"a": np.zeros(1)})
    finally:
        os.umask(old)
    assert (tmp_path / "m.st").stat().st_mode & 0o777 == 0o640


def test_overwriting_keeps_mapped_readers_on_the_old_file(tmp_path):
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"a": np.arange(4, dtype=np.int32)})
    old = mlxq.load_safetensors(p)["a"]
    mlxq.save_safetensors(p, {"a": np.arange(4, 8, dtype=np.int32)})
    assert old.tolist() == [0, 1, 2, 3]
    assert mlxq.load_safetensors(p)["a"].tolist() == [4, 5, 6, 7]
    # re-saving a file's own arrays over it is safe too
    mlxq.save_safetensors(p, mlxq.load_safetensors(p))
    assert mlxq.load_safetensors(p)["a"].tolist() == [4, 5, 6, 7]


def test_unwritable_folder_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(MlxqIOError, match="cannot create a temporary file"):
        mlxq.save_safetensors(tmp_path / "missing" / "x.safetensors", {"a": np.zeros(1)})
    (tmp_path / "d").mkdir()
    with pytest.raises(MlxqIOError, match="cannot rename"):
        mlxq.save_safetensors(tmp_path / "d", {"a": np.zeros(1)})  # a directory is in the way
    assert os.listdir(tmp_path / "d") == [] and sorted(os.listdir(tmp_path)) == ["d"]


FAIL_MIDWAY = r"""
import os, resource, signal, sys, numpy as np, mlxq
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # make write() fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    mlxq.save_safetensors(sys.argv[1], {"a": np.ones(1 << 19, np.float32), "b": np.ones(1 << 19, np.float32)})
except mlxq.errors.MlxqIOError as e:
    print("raised:", e)
"""


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "x.safetensors"
    mlxq.save_safetensors(p, {"old": np.zeros(2)})
    before = p.read_bytes()
    out = subprocess.run([sys.executable, "-c", FAIL_MIDWAY, str(p)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "raised:" in out.stdout and "cannot write" in out.stdout, out.stderr
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["x.safetensors"]


def test_name_and_metadata_escapes_match_serde_json(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    names = ['q"uote', "back\\slash", "ctl\x01\x1f\x7f", "nl\n\r\t\b\f", "slash/é☃😀", ""]
    t = {n: np.full(2, i, np.int16) for i, n in enumerate(names)}
    mlxq.save_safetensors(tmp_path / "m.st", t, metadata={"k": "v\n\"\\"})
    save_file(t, str(tmp_path / "r.st"), metadata={"k": "v\n\"\\"})
    assert (tmp_path / "m.st").read_bytes() == (tmp_path / "r.st").read_bytes()
    loaded = mlxq.load_safetensors(tmp_path / "m.st")
    assert {k: v.tolist() for k, v in loaded.items()} == {k: v.tolist() for k, v in t.items()}
