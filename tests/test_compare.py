"""mlxq compare (CLI) and mlxq.testing.compare_checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mlxq
from mlxq import cli
from mlxq import convert
from mlxq.synthetic import make_checkpoint
from mlxq.testing import compare_checkpoints

SIZES = dict(layers=2, hidden=64, intermediate=128, vocab=64)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    src = make_checkpoint(root / "hf", **SIZES)
    convert(src, root / "a", quiet=True, quantize=True)
    convert(src, root / "b", quiet=True, quantize=True)
    return src, str(root / "a"), str(root / "b")


def edit(folder: str, dst, fn) -> str:
    """A copy of `folder` whose tensors pass through fn(dict) -> dict."""
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(folder).items()}
    os.makedirs(dst)
    mlxq.save_safetensors(os.path.join(dst, "model.safetensors"), fn(w))
    for f in ("config.json",):
        with open(os.path.join(folder, f)) as s, open(os.path.join(dst, f), "w") as d:
            d.write(s.read())
    return str(dst)


def run(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main(["compare", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_two_conversions_of_the_same_model_are_identical(pair, capsys):
    _, a, b = pair
    rc, out, _ = run(capsys, a, b, "--config", "--index")
    assert rc == 0
    assert "identical" in out and "53 of 53 tensors match" in out


def test_one_flipped_bit(pair, tmp_path, capsys):
    _, a, _ = pair
    name = "model.layers.1.mlp.down_proj.scales"

    def flip(w):
        bits = w[name].view(np.uint16).copy()
        bits[3, 1] ^= 1
        w[name] = bits.view(mlxq.bfloat16)
        return w
    b = edit(a, tmp_path / "b", flip)
    rc, out, _ = run(capsys, a, b)
    assert rc == 1
    line = next(line for line in out.splitlines() if line.startswith(name))
    assert "1 of 128 elements differ" in line and "first at index (3, 1)" in line
    assert "max ULP diff 1" in line
    assert "DIFFER" in out and "52 of 53 tensors match (1 differs)" in out
    # within one ULP it matches
    assert run(capsys, a, b, "--max-ulp", "1")[0] == 0
    assert run(capsys, a, b, "--rtol", "0.01")[0] == 0
    assert run(capsys, a, b, "--atol", "1e-12")[0] == 1


def test_missing_extra_dtype_and_shape(pair, tmp_path, capsys):
    _, a, _ = pair

    def change(w):
        del w["model.norm.weight"]
        w["extra.weight"] = np.zeros(3, np.float32)
        w["model.layers.0.input_layernorm.weight"] = w[
            "model.layers.0.input_layernorm.weight"].astype(np.float32)
        w["lm_head.scales"] = w["lm_head.scales"][:32].copy()
        return w
    b = edit(a, tmp_path / "b", change)
    rc, out, _ = run(capsys, a, b)
    assert rc == 1
    assert "model.norm.weight" in out and "only in A" in out
    assert "extra.weight" in out and "only in B" in out
    assert "dtype bfloat16 != float32" in out
    line = next(line for line in out.splitlines() if line.startswith("lm_head.scales"))
    assert "shape [64, 1] != [32, 1]" in line
    assert "50 of 54 tensors match (1 dtype, 1 only in A, 1 only in B, 1 shape)" in out


def test_sharded_and_single_file_folders_compare_identical(pair, tmp_path, capsys):
    src, a, _ = pair
    convert(src, tmp_path / "sharded", quiet=True, quantize=True, max_shard_size=10_000)
    assert len([f for f in os.listdir(tmp_path / "sharded") if f.endswith(".safetensors")]) > 3
    assert run(capsys, a, tmp_path / "sharded")[0] == 0
    # the index differs (shard assignment), and --index says so
    rc, out, _ = run(capsys, a, tmp_path / "sharded", "--index")
    assert rc == 1 and "model.safetensors.index.json: differs" in out


def test_config_difference(pair, tmp_path, capsys):
    src, a, _ = pair
    convert(src, tmp_path / "q8", quiet=True, quantize=True, q_bits=8)
    rc, out, _ = run(capsys, a, tmp_path / "q8", "--config", "--quiet")
    assert rc == 1
    assert "config.json: differs: quantization.bits: 4 != 8" in out
    assert "elements differ" not in out  # --quiet: the summary only


def test_single_files(tmp_path, capsys):
    p, q = tmp_path / "p.safetensors", tmp_path / "q.safetensors"
    mlxq.save_safetensors(p, {"w": np.arange(4, dtype=np.int32)})
    mlxq.save_safetensors(q, {"w": np.arange(4, dtype=np.int32)})
    assert run(capsys, p, q)[0] == 0


def test_bad_inputs_exit_2(tmp_path, capsys):
    rc, out, err = run(capsys, tmp_path / "nope", tmp_path)
    assert rc == 2 and err.startswith("mlxq compare: error:") and "Traceback" not in err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{nope")
    rc, _, err = run(capsys, bad, bad)
    assert rc == 2 and "bad.safetensors" in err


def test_json_report(pair, tmp_path, capsys):
    _, a, _ = pair

    def zero(w):
        w["lm_head.biases"] = np.zeros_like(w["lm_head.biases"])
        return w
    b = edit(a, tmp_path / "b", zero)
    rc, out, _ = run(capsys, a, b, "--json")
    assert rc == 1
    report = json.loads(out)
    assert report["matches"] is False and report["rule"].startswith("exact")
    row = next(t for t in report["tensors"] if t["name"] == "lm_head.biases")
    assert row["status"] == "differs" and row["n_diff"] > 0 and row["size"] == 64 * 1
    assert len(row["first_index"]) == 2 and len(row["first_values"]) == 2
    assert {t["status"] for t in report["tensors"]} == {"identical", "differs"}


def test_library_result(pair):
    _, a, b = pair
    r = compare_checkpoints(a, b, check_config=True, check_index=True)
    assert r.matches and not r.differing and r.files == {}


def test_subprocess_entry_point(pair):
    _, a, b = pair
    r = subprocess.run([sys.executable, "-m", "mlxq", "compare", a, b], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "identical" in r.stdout


def test_mlx_lm_conversions_compare_identical(pair, tmp_path, capsys):
    """The self-check of issue 7 against the reference tool: two independent mlx_lm.convert
    runs, and mlxq's conversion, all compare identical (config and index included)."""
    mlx_lm = pytest.importorskip("mlx_lm")
    import contextlib
    import io

    src, a, _ = pair
    for d in ("m1", "m2"):
        with contextlib.redirect_stdout(io.StringIO()):
            mlx_lm.convert(src, str(tmp_path / d), quantize=True)
    assert run(capsys, tmp_path / "m1", tmp_path / "m2", "--config", "--index")[0] == 0
    assert run(capsys, a, tmp_path / "m1", "--config", "--index")[0] == 0
