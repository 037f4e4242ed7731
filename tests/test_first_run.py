"""What a new user runs into first, each rule with the case that broke it: a typo of a local
folder, arguments of the wrong type, a group size MLX cannot take, ``-d`` on an FP8 release,
``threads`` for one call, the install hints and the demo's notes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq.errors import (
    ArgumentTypeError,
    HubNetworkError,
    HubRepoNotFoundError,
    MissingDependencyError,
    MlxqWarning,
    OutOfRangeError,
)
from mlxq.synthetic import make_checkpoint

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hf"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first-run")
    return Path(make_checkpoint(str(root / "small"), layers=2, hidden=64, intermediate=128,
                                vocab=64))


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxq", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


# ---- a typo of a local folder ------------------------------------------------------------

def test_a_typo_of_a_local_folder_says_there_is_no_such_folder_and_why_the_hub_failed(
        small, tmp_path):
    """``smal`` for ``small``: not a folder, so (as in mlx-lm) a Hub repository id; the Hub
    cannot be reached, and the message says both, and which folder was probably meant."""
    env = {"HF_ENDPOINT": "http://127.0.0.1:1", "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_OFFLINE": "0"}
    r = cli("convert", "smal", str(tmp_path / "out"), "-q", cwd=small.parent, env=env)
    assert r.returncode == 1, r.stderr
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("mlxq convert: error: smal: no local folder of that name exists "
                           "(did you mean the folder small?), and as a Hugging Face Hub "
                           "repository id it could not be read: "), line
    assert "Connection refused" in line
    assert not (tmp_path / "out").exists()


def test_a_name_the_hub_does_not_have_is_not_a_local_folder_either(hub, small, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(small.parent)
    with pytest.raises(HubRepoNotFoundError) as e:
        mlxq.convert("smal", tmp_path / "out", quantize=True, quiet=True)
    assert e.value.message.startswith("smal: no local folder of that name exists (did you "
                                      "mean the folder small?), and as a Hugging Face Hub "
                                      "repository id it could not be read: ")
    assert e.value.repo_id == "smal"
    with pytest.raises(HubRepoNotFoundError, match=r"^org/nothing: no local folder of that "
                       r"name exists, and as a Hugging Face Hub repository id"):
        mlxq.convert("org/nothing", tmp_path / "out", quiet=True)


def test_without_huggingface_hub_a_missing_folder_still_says_both(small, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(small.parent)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(MissingDependencyError) as e:
        mlxq.convert("smal", tmp_path / "out", quiet=True)
    msg = e.value.message
    assert msg.startswith("smal: no local folder of that name exists (did you mean the "
                          "folder small?)"), msg
    assert "pip install 'mlxq[hub]' (from a checkout of mlxq: pip install '.[hub]'), or " \
           "pip install huggingface_hub" in msg


def test_a_network_failure_keeps_its_type(small, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    with pytest.raises(HubNetworkError, match="^nope/nothing: no local folder"):
        mlxq.convert("nope/nothing", tmp_path / "out", quiet=True)


# ---- arguments of the wrong type -----------------------------------------------------------

WRONG_TYPES = [
    ("q_bits", "4", "q_bits='4': expected an int or None, got str"),
    ("q_group_size", 64.0, "q_group_size=64.0: expected an int or None, got float"),
    ("quantize", "yes", "quantize='yes': expected True or False, got str"),
    ("dequantize", 1, "dequantize=1: expected True or False, got int"),
    ("report", None, "report=None: expected True or False, got NoneType"),
    ("q_mode", 4, "q_mode=4: expected a str, got int"),
    ("dtype", 16, "dtype=16: expected a str or None, got int"),
    ("max_shard_size", [1], "max_shard_size=[1]: expected a number of bytes or a size"),
    ("target_bpw", "4", "target_bpw='4': expected a number of bits per weight or None"),
    ("revision", 3, "revision=3: expected a str or None, got int"),
    ("imatrix", 5, "imatrix=5: expected a path (str or os.PathLike), got int"),
    ("stream", "stderr", "stream='stderr': expected a text stream"),
    ("threads", "2", "threads='2': expected an int (at least 1) or None, got str"),
]


@pytest.mark.parametrize("name,value,message", WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_an_argument_of_the_wrong_type_is_named(small, tmp_path, name, value, message):
    kw = {"quantize": True, name: value} if name not in ("quantize", "dequantize") else \
        {name: value}
    with pytest.raises(ArgumentTypeError) as e:
        mlxq.convert(small, tmp_path / "out", quiet=name != "quiet", **kw)
    assert e.value.message.startswith(message), e.value.message
    assert e.value.key == name
    assert not (tmp_path / "out").exists()


def test_integers_of_other_integral_types_are_taken(small, tmp_path):
    r = mlxq.convert(small, tmp_path / "a", quantize=True, q_bits=np.int64(8),
                     q_group_size=np.int32(32), quiet=True)
    cfg = mlxq.parse_quantization(tmp_path / "a" / "config.json").quantization
    assert (cfg.bits, cfg.group_size) == (8, 32) and r.quantized_layers


# ---- a group size MLX cannot quantize with ------------------------------------------------

@pytest.mark.parametrize("flags,message", [
    (["--q-group-size", "48"], "--q-group-size 48 is not supported by mode 'affine'; "
                               "supported group sizes are 32, 64 and 128"),
    (["--q-group-size", "16"], "--q-group-size 16 is not supported by mode 'affine'"),
    (["--q-bits", "7"], "--q-bits 7 is not supported by mode 'affine'; supported bits are "
                        "2, 3, 4, 5, 6 and 8"),
    (["--q-mode", "mxfp4", "--q-group-size", "64"], "--q-group-size 64 is not supported by "
                                                    "mode 'mxfp4'"),
    (["--target-bpw", "3", "--q-group-size", "48"], "--q-group-size 48 is not supported"),
])
def test_a_group_size_mlx_cannot_take_is_refused_before_anything_is_read(
        small, tmp_path, flags, message):
    """48 divides no width of this model: mlx-lm would write a 16-bit model with a
    quantization block (exit 0), with another width fail at the first layer. Refused up
    front: the shard is not even read (a broken one does not change the answer)."""
    src = tmp_path / "src"
    src.mkdir()
    for f in small.iterdir():
        (src / f.name).write_bytes(f.read_bytes())
    (src / "model.safetensors").write_bytes(b"not a safetensors file at all")
    r = cli("convert", str(src), str(tmp_path / "out"), "-q", *flags, cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith(f"mlxq convert: error: {message}"), r.stderr
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_the_api_names_the_argument_for_a_group_size_mlx_cannot_take(small, tmp_path):
    with pytest.raises(OutOfRangeError, match=r"^q_group_size=48 is not supported by mode "
                       r"'affine'; supported group sizes are 32, 64 and 128$"):
        mlxq.convert(small, tmp_path / "out", quantize=True, q_group_size=48)


# ---- -d on an FP8 release ------------------------------------------------------------------

def test_dequantize_on_an_fp8_release_says_the_fp8_weights_are_dequantized_anyway(tmp_path):
    src = FIXTURES / "fp8" / "qwen3"
    with pytest.warns(MlxqWarning) as rec:
        r = mlxq.convert(src, tmp_path / "out", dequantize=True, quiet=True)
    (w,) = [str(x.message) for x in rec]
    assert "has no quantized layers" not in w
    assert w == (f"dequantize=True had nothing to do: the 14 FP8 weights of {src} are "
                 "dequantized with or without it (as mlx_lm.convert does), and it has no "
                 "MLX-quantized layers")
    assert r.fp8_dequantized == 14
    assert "14 FP8 weights dequantized" in r.summary()


# ---- threads for one call ------------------------------------------------------------------

def test_threads_apply_to_the_one_call_and_are_restored(small, tmp_path):
    before = mlxq.get_num_threads()
    seen = []

    def predicate(path, spec):
        seen.append(mlxq.get_num_threads())
        return True

    mlxq.convert(small, tmp_path / "a", quantize=True, quant_predicate=predicate, threads=1,
                 quiet=True)
    assert seen and set(seen) == {1}
    assert mlxq.get_num_threads() == before
    with pytest.raises(OutOfRangeError, match=r"^threads=0 must be at least 1"):
        mlxq.convert(small, tmp_path / "b", threads=0)
    assert mlxq.get_num_threads() == before


# ---- the demo ------------------------------------------------------------------------------

def test_the_demo_says_where_it_works_and_that_the_folder_goes(monkeypatch):
    import mlxq.demo as demo

    # only the first lines matter here: stop once the model is generated
    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr("mlxq.synthetic.make_checkpoint", stop)
    out = io.StringIO()
    with pytest.raises(Stop):
        demo.run_convert_demo(None, out=out)
    first = out.getvalue().splitlines()[0]
    assert first.startswith("mlxq demo: working in ")
    assert first.endswith("(a temporary folder, removed at the end; --dir DIR keeps the "
                          "models)")
    folder = first.split("working in ", 1)[1].split(" (", 1)[0]
    assert not os.path.exists(folder)  # removed, even when the demo stopped early
