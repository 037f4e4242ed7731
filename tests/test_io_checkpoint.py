"""Checkpoint folders: mlx-lm's shard rule, names and index, streaming, and loading."""

from __future__ import annotations

import json
import os
import weakref

import numpy as np
import pytest

import mlxq
from mlxq.errors import KeyCollisionError, MissingKeyError, MlxqIOError, SafetensorsError
from mlxq.io import INDEX_FILE, _count_parameters, shard_file_names


def tensors(sizes: list[int], dtype=np.uint8) -> list[tuple[str, np.ndarray]]:
    return [(f"t{i:03d}", np.full(n, i % 251, dtype)) for i, n in enumerate(sizes)]


def mlx_lm_shards(sizes: list[int], limit: int) -> list[list[str]]:
    """mlx_lm.utils.make_shards on stand-ins whose nbytes are scaled so that its GiB limit
    equals `limit` bytes (its only input is v.nbytes)."""
    utils = pytest.importorskip("mlx_lm.utils")
    scale = (1 << 30) // limit
    assert scale * limit == 1 << 30

    class Fake:
        def __init__(self, n):
            self.nbytes = n * scale

    weights = {name: Fake(arr.size) for name, arr in tensors(sizes)}
    return [list(s) for s in utils.make_shards(weights, max_file_size_gb=1)]


@pytest.mark.parametrize(
    "sizes",
    [[100], [600, 500], [512, 512, 1], [2000, 10, 10], [10, 2000, 10], [1024] * 3,
     [300, 300, 300, 300, 300], [0, 1024, 0, 1]],
)
def test_shards_close_before_the_tensor_that_would_overflow_them(tmp_path, sizes):
    limit = 1024
    index = mlxq.save_checkpoint(tmp_path, tensors(sizes), max_shard_size=limit)
    expected = mlx_lm_shards(sizes, limit)
    names = shard_file_names(len(expected))
    assert {k: v for k, v in index["weight_map"].items()} == {
        t: names[i] for i, shard in enumerate(expected) for t in shard}
    assert sorted(os.listdir(tmp_path)) == sorted(names + [INDEX_FILE])
    for i, shard in enumerate(expected):
        f = mlxq.open_safetensors(tmp_path / names[i])
        assert sorted(f) == sorted(shard) and f.metadata == {"format": "mlx"}


def test_shard_names_follow_mlx_lm():
    assert shard_file_names(1) == ["model.safetensors"]
    assert shard_file_names(3) == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert shard_file_names(12)[-1] == "model-00012-of-00012.safetensors"


def test_index_matches_mlx_lm_save_model_byte_for_byte(tmp_path):
    mx = pytest.importorskip("mlx.core")
    nn = pytest.importorskip("mlx.nn")
    utils = pytest.importorskip("mlx_lm.utils")
    from mlx.utils import tree_flatten

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(32, 64)
            self.layers = [nn.Linear(64, 64, bias=i == 0) for i in range(3)]
            self.norm = nn.RMSNorm(64)
            self.head = nn.Linear(64, 32, bias=False)

    for quantize in (False, True):
        model = Tiny()
        quant = None
        if quantize:
            nn.quantize(model, group_size=32, bits=4, class_predicate=lambda p, m: p != "layers.1" and hasattr(m, "to_quantized"))
            quant = {"group_size": 32, "bits": 4, "layers.1": False}
        mx.eval(model.parameters())
        ref = tmp_path / f"ref{quantize}"
        utils.save_model(ref, model)
        ours = tmp_path / f"ours{quantize}"
        flat = [(k, np.array(v)) for k, v in tree_flatten(model.parameters())]
        mlxq.save_checkpoint(ours, flat, quantization=quant)
        assert (ours / INDEX_FILE).read_text() == (ref / INDEX_FILE).read_text()
        ref_t, our_t = mx.load(str(ref / "model.safetensors")), mlxq.load_checkpoint(ours)
        assert sorted(ref_t) == list(our_t)
        assert all(np.array_equal(np.array(ref_t[k]), our_t[k]) for k in our_t)


def test_total_parameters_counts_quantized_weights_unpacked():
    sizes = {"a.weight": 64 * 8, "a.scales": 64 * 2, "a.biases": 64 * 2, "a.bias": 64,
             "b.weight": 100, "norm.weight": 10}
    assert _count_parameters(sizes, None) == sum(sizes.values())
    assert _count_parameters(sizes, {"bits": 4, "group_size": 32}) == 64 * 8 * 8 + 64 + 110
    assert _count_parameters(sizes, {"bits": 4, "a": {"bits": 8, "group_size": 32}}) == 64 * 8 * 4 + 64 + 110


def test_explicit_total_parameters_and_metadata(tmp_path):
    index = mlxq.save_checkpoint(tmp_path, {"a": np.zeros(3, np.float16)}, metadata={"format": "pt"}, total_parameters=7)
    assert index["metadata"] == {"total_size": 6, "total_parameters": 7}
    assert mlxq.safetensors_metadata(tmp_path / "model.safetensors") == {"format": "pt"}
    mlxq.save_checkpoint(tmp_path / "n", {"a": np.zeros(3)}, metadata=None)
    assert not mlxq.open_safetensors(tmp_path / "n" / "model.safetensors").has_metadata


def test_empty_checkpoint_writes_only_the_index(tmp_path):
    index = mlxq.save_checkpoint(tmp_path / "e", {})
    assert os.listdir(tmp_path / "e") == [INDEX_FILE]
    assert index == {"metadata": {"total_size": 0, "total_parameters": 0}, "weight_map": {}}


def test_streaming_holds_at_most_one_shard(tmp_path):
    refs: list[weakref.ref] = []
    peak = 0

    def produce():
        nonlocal peak
        for i in range(40):
            arr = np.full(256, i, np.uint8)
            refs.append(weakref.ref(arr))
            peak = max(peak, sum(r() is not None for r in refs))
            yield f"w{i:02d}", arr

    mlxq.save_checkpoint(tmp_path, produce(), max_shard_size=1024)  # 4 tensors a shard
    assert peak <= 4 + 1
    loaded = mlxq.load_checkpoint(tmp_path)
    assert len(loaded) == 40 and all(loaded[f"w{i:02d}"][0] == i for i in range(40))
    assert len(shard_file_names(10)) == len([f for f in os.listdir(tmp_path) if f.startswith("model-")])


def test_a_failing_iterator_leaves_no_files(tmp_path):
    def produce():
        for i in range(10):
            yield f"w{i}", np.zeros(600, np.uint8)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        mlxq.save_checkpoint(tmp_path, produce(), max_shard_size=1024)
    assert os.listdir(tmp_path) == []


def test_duplicate_names_across_shards_are_refused(tmp_path):
    with pytest.raises(KeyCollisionError):
        mlxq.save_checkpoint(tmp_path, [("a", np.zeros(900, np.uint8)), ("b", np.zeros(900, np.uint8)), ("a", np.zeros(1))], max_shard_size=1000)
    assert os.listdir(tmp_path) == []


def test_rewriting_a_folder_replaces_its_files(tmp_path):
    mlxq.save_checkpoint(tmp_path, {"a": np.zeros(2)})
    mlxq.save_checkpoint(tmp_path, {"a": np.ones(2)})
    assert mlxq.load_checkpoint(tmp_path)["a"].tolist() == [1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors", INDEX_FILE]


# ---- loading ---------------------------------------------------------------------------------


def test_load_without_index_reads_every_safetensors_file(tmp_path):
    mlxq.save_safetensors(tmp_path / "a.safetensors", {"x": np.zeros(1), "y": np.ones(1)})
    mlxq.save_safetensors(tmp_path / "b.safetensors", {"z": np.full(1, 2.0)})
    (tmp_path / ".hidden.safetensors").write_bytes(b"junk")
    (tmp_path / "notes.txt").write_text("ignored")
    loaded = mlxq.load_checkpoint(tmp_path)
    assert list(loaded) == ["x", "y", "z"] and loaded["z"][0] == 2.0


def test_load_without_index_refuses_a_name_in_two_files(tmp_path):
    mlxq.save_safetensors(tmp_path / "a.safetensors", {"x": np.zeros(1)})
    mlxq.save_safetensors(tmp_path / "b.safetensors", {"x": np.zeros(1)})
    with pytest.raises(KeyCollisionError, match="'x' is in both"):
        mlxq.load_checkpoint(tmp_path)


def test_load_needs_a_folder_with_weights(tmp_path):
    with pytest.raises(MissingKeyError, match="no \\*.safetensors files"):
        mlxq.load_checkpoint(tmp_path)
    with pytest.raises(MlxqIOError, match="does not exist"):
        mlxq.load_checkpoint(tmp_path / "missing")


def write_index(d, weight_map):
    (d / INDEX_FILE).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def test_index_must_agree_with_the_files(tmp_path):
    mlxq.save_safetensors(tmp_path / "s1.safetensors", {"a": np.zeros(1), "b": np.zeros(1)})
    write_index(tmp_path, {"a": "s1.safetensors", "b": "s1.safetensors"})
    assert list(mlxq.load_checkpoint(tmp_path)) == ["a", "b"]
    write_index(tmp_path, {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s1.safetensors"})
    with pytest.raises(SafetensorsError, match="does not hold tensor 'c'"):
        mlxq.load_checkpoint(tmp_path)
    write_index(tmp_path, {"a": "s1.safetensors"})
    with pytest.raises(SafetensorsError, match="holds tensor 'b' but .*index.json does not list it"):
        mlxq.load_checkpoint(tmp_path)
    write_index(tmp_path, {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"})
    with pytest.raises(SafetensorsError, match="s2.safetensors: missing.*'c'"):
        mlxq.load_checkpoint(tmp_path)


@pytest.mark.parametrize("file", ["../x.safetensors", "/etc/passwd", "a/../../x", 3, ""])
def test_index_cannot_point_outside_the_folder(tmp_path, file):
    write_index(tmp_path, {"a": file})
    with pytest.raises(SafetensorsError, match="weight_map"):
        mlxq.load_checkpoint(tmp_path)


@pytest.mark.parametrize("text", ["{", "[]", '{"weight_map": []}', "\xff"])
def test_malformed_index_is_a_safetensors_error(tmp_path, text):
    (tmp_path / INDEX_FILE).write_bytes(text.encode("latin-1"))
    with pytest.raises(SafetensorsError, match=INDEX_FILE):
        mlxq.load_checkpoint(tmp_path)


def test_malformed_shard_names_its_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x01" + b"\0" * 7 + b"{")
    write_index(tmp_path, {"a": "model.safetensors"})
    with pytest.raises(SafetensorsError, match="model.safetensors: header is not valid JSON"):
        mlxq.load_checkpoint(tmp_path)
