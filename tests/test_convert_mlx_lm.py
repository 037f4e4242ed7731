"""mlxq convert against mlx_lm.convert itself: the same folders, bit for bit, for several
model families and flag sets, and the same greedy generation after mlx_lm.load."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os

import pytest

mlx_lm = pytest.importorskip("mlx_lm")

import mlxq  # noqa: E402
from mlxq import convert  # noqa: E402
from mlxq.synthetic import make_checkpoint  # noqa: E402
from mlxq.testing import assert_checkpoints_equal  # noqa: E402
from support import mlx_lm_convert

SIZES = dict(layers=4, hidden=128, intermediate=256, vocab=256)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    made: dict[str, str] = {}

    def get(family: str, **kw) -> str:
        key = family + json.dumps(kw, sort_keys=True)
        if key not in made:
            made[key] = make_checkpoint(root / f"{family}-{len(made)}", family=family,
                                        **{**SIZES, **kw})
        return made[key]
    return get


def assert_same_folder(a: str, b: str) -> None:
    assert_checkpoints_equal(a, b, check_config=True, check_index=True)
    # config.json byte for byte (key order, indent=4, tagged floats), as mlx-lm writes it
    assert open(os.path.join(a, "config.json")).read() == open(os.path.join(b, "config.json")).read()
    assert open(os.path.join(a, "README.md")).read() == open(os.path.join(b, "README.md")).read()
    for name in ("generation_config.json", "tokenizer.json"):
        assert os.path.exists(os.path.join(a, name)), name
    # the same files, except that mlx-lm re-saves the tokenizer through transformers (which
    # drops special_tokens_map.json) where mlxq copies the source's files verbatim
    extra = set(os.listdir(a)) ^ set(os.listdir(b))
    assert extra <= {"special_tokens_map.json"}, extra


CASES = [
    ("llama", {}, {"quantize": True}),
    ("llama", {}, {"quantize": True, "q_bits": 8}),
    ("llama", {}, {"quantize": True, "q_bits": 3, "q_group_size": 32}),
    ("llama", {}, {"quantize": True, "quant_predicate": "mixed_3_6"}),
    ("llama", {}, {"quantize": True, "quant_predicate": "mixed_2_6", "q_group_size": 128}),
    ("llama", {}, {"quantize": True, "q_mode": "mxfp4"}),
    ("llama", {}, {"quantize": True, "q_mode": "nvfp4"}),
    ("llama", {}, {"quantize": True, "q_mode": "mxfp8"}),
    ("llama", {}, {"dtype": "float16"}),
    ("llama", {"dtype": "float32"}, {"quantize": True, "q_bits": 6}),
    ("llama", {"tie_embeddings": True}, {"quantize": True}),
    ("mistral", {}, {"quantize": True, "dtype": "float32"}),
    ("qwen2", {}, {"quantize": True}),
    ("qwen3", {}, {"quantize": True, "quant_predicate": "mixed_4_6"}),
    ("mixtral", {}, {"quantize": True}),
    ("qwen3_moe", {}, {"quantize": True}),
    ("qwen3_moe", {}, {"quantize": True, "quant_predicate": "mixed_3_4"}),
]


@pytest.mark.parametrize("family,make,flags", CASES,
                         ids=[f"{f}-{'-'.join(f'{k}={v}' for k, v in {**m, **fl}.items())}"
                              for f, m, fl in CASES])
def test_same_folder_as_mlx_lm_convert(models, tmp_path, family, make, flags):
    src = models(family, **make)
    convert(src, tmp_path / "mlxq", quiet=True, **flags)
    mlx_lm_convert(src, str(tmp_path / "mlx_lm"), **flags)
    assert_same_folder(str(tmp_path / "mlxq"), str(tmp_path / "mlx_lm"))


@pytest.mark.parametrize("family", ["llama", "qwen3_moe"])
def test_mlx_quantized_inputs(models, tmp_path, family):
    """MLX folders in: dequantize (with a dtype), keep as is, and -q on an already
    quantized model (mlx-lm keeps its layers), each as mlx_lm.convert does."""
    src = models(family)
    q = str(tmp_path / "q")
    mlx_lm_convert(src, q, quantize=True, quant_predicate="mixed_3_6")
    for i, flags in enumerate([{"dequantize": True}, {"dequantize": True, "dtype": "float32"},
                               {}, {"quantize": True, "q_bits": 8}]):
        if flags.get("quantize"):  # every layer is quantized already: kept, and said so
            with pytest.warns(mlxq.MlxqWarning, match="already quantized and kept"):
                convert(q, tmp_path / f"a{i}", quiet=True, **flags)
        else:
            convert(q, tmp_path / f"a{i}", quiet=True, **flags)
        mlx_lm_convert(q, str(tmp_path / f"b{i}"), **flags)
        assert_same_folder(str(tmp_path / f"a{i}"), str(tmp_path / f"b{i}"))


def test_sharded_source_and_output(models, tmp_path):
    src = make_checkpoint(tmp_path / "sharded", family="llama", **SIZES, shard_size=150_000)
    assert len([f for f in os.listdir(src) if f.endswith(".safetensors")]) > 3
    convert(src, tmp_path / "a", quiet=True, quantize=True)
    mlx_lm_convert(src, str(tmp_path / "b"), quantize=True)
    assert_same_folder(str(tmp_path / "a"), str(tmp_path / "b"))
    # mlx-lm's make_shards rule with a small limit, over mlx-lm's own parameter order
    convert(src, tmp_path / "c", quiet=True, quantize=True, max_shard_size=100_000)
    ref = mlxq.load_checkpoint(tmp_path / "b")
    order = list(json.load(open(tmp_path / "c" / "model.safetensors.index.json"))["weight_map"])
    index = json.load(open(tmp_path / "c" / "model.safetensors.index.json"))
    shards = {}
    for name, f in index["weight_map"].items():
        shards.setdefault(f, set()).add(name)
    model, _ = mlx_lm.utils.load_model(tmp_path / "b", lazy=True)
    from mlx.utils import tree_flatten

    params = dict(tree_flatten(model.parameters()))
    sizes = [(k, ref[k].nbytes) for k in params]
    expected, size = [], 0
    for k, nb in sizes:
        if not expected or size + nb > 100_000:
            expected.append(set())
            size = 0
        expected[-1].add(k)
        size += nb
    names = mlxq.io.shard_file_names(len(expected))
    assert shards == dict(zip(names, expected))
    assert sorted(order) == order and len(order) == len(ref)


def test_generation_matches_mlx_lm(models, tmp_path):
    """mlx_lm.load of the mlxq folder generates what mlx-lm's own conversion generates."""
    for family in ("llama", "qwen3_moe"):
        src = models(family)
        a, b = tmp_path / f"{family}-a", tmp_path / f"{family}-b"
        convert(src, a, quiet=True, quantize=True)
        mlx_lm_convert(src, str(b), quantize=True)
        texts = []
        for d in (a, b):
            model, tok = mlx_lm.load(str(d))
            texts.append(mlx_lm.generate(model, tok, prompt="the time of day", max_tokens=12))
        assert texts[0] == texts[1]
        assert len(texts[0]) > 0


def test_bits_per_weight_matches_mlx_lm(models, tmp_path):
    src = models("llama")
    r = convert(src, tmp_path / "a", quiet=True, quantize=True, quant_predicate="mixed_3_6")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        mlx_lm.convert(src, str(tmp_path / "b"), quantize=True, quant_predicate="mixed_3_6")
    assert f"{r.bits_per_weight:.3f} bits per weight" in out.getvalue()


@pytest.mark.parametrize("family", ["llama", "mixtral"])
def test_row_blocks_give_the_same_result(models, tmp_path, monkeypatch, family):
    """Large weights are read and quantized (or copied and cast) in row blocks, across
    experts for stacked MoE weights; with tiny blocks every tensor of rank >= 2 takes that
    path and the folders are unchanged."""
    import mlxq.conversion.execute as ex

    monkeypatch.setattr(ex, "BLOCK_BYTES", 3 * 128 * 2 + 10)  # 3 rows, odd boundaries
    src = models(family)
    r = convert(src, tmp_path / "a", quiet=True, quantize=True, report=True)
    mlx_lm_convert(src, str(tmp_path / "b"), quantize=True)
    assert_same_folder(str(tmp_path / "a"), str(tmp_path / "b"))
    convert(src, tmp_path / "d", quiet=True, dtype="float32")
    mlx_lm_convert(src, str(tmp_path / "e"), dtype="float32")
    assert_same_folder(str(tmp_path / "d"), str(tmp_path / "e"))
    monkeypatch.undo()
    whole = convert(src, tmp_path / "c", quiet=True, quantize=True, report=True)
    for a, b in zip(r.report, whole.report):  # the same figures, summed in another order
        assert a.layer == b.layer
        assert dataclasses.astuple(a.error) == pytest.approx(dataclasses.astuple(b.error))
