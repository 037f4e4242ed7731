"""mlxq fits the habits of mlx-lm and Python users: mlx_lm.convert's argument names on the
command line and in ``mlxq.convert``, warnings through ``warnings``, messages in the terms
the user typed, flags that do nothing said so, summaries that say what happened, one set
of comparison defaults, and a fast start."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import os
import subprocess
import sys
import warnings

import pytest

import mlxq
from mlxq import cli
from mlxq.errors import InvalidArgumentError, MlxqWarning
from mlxq.synthetic import make_checkpoint
from mlxq.testing import assert_checkpoints_equal, compare_checkpoints

SIZES = dict(layers=2, hidden=64, intermediate=128, vocab=64)


@pytest.fixture(scope="module")
def hf(tmp_path_factory) -> str:
    return make_checkpoint(tmp_path_factory.mktemp("usability") / "hf", **SIZES)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def usage_error(capsys, *argv) -> str:
    """Runs a command that argparse refuses; returns its stderr."""
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in argv])
    assert e.value.code == 2
    return capsys.readouterr().err


# ---- 1. mlx_lm.convert's spellings ------------------------------------------------------------

@pytest.mark.parametrize("spelling", [
    ["--hf-path", "{src}", "--mlx-path", "{dst}"],
    ["--model", "{src}", "--mlx-path", "{dst}"],
    ["--hf-path", "{src}", "{dst}"],
    ["{src}", "--mlx-path", "{dst}"],
])
def test_convert_takes_mlx_lm_convert_spellings_of_src_and_dst(hf, tmp_path, capsys, spelling):
    assert run(capsys, "convert", hf, tmp_path / "positional", "-q")[0] == 0
    argv = [a.format(src=hf, dst=tmp_path / "spelled") for a in spelling]
    assert run(capsys, "convert", *argv, "-q")[0] == 0
    assert_checkpoints_equal(tmp_path / "positional", tmp_path / "spelled", check_index=True)


def test_mlx_path_defaults_to_mlx_model_as_in_mlx_lm(hf, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "convert", "--hf-path", hf)[0] == 0
    assert os.path.isfile(tmp_path / "mlx_model" / "config.json")
    assert inspect.signature(mlxq.convert).parameters["mlx_path"].default == "mlx_model"


def test_src_or_dst_given_twice_is_a_usage_error(hf, tmp_path, capsys):
    err = usage_error(capsys, "convert", "--hf-path", hf, hf, tmp_path / "x")
    assert "SRC is given twice" in err
    err = usage_error(capsys, "convert", hf, tmp_path / "x", "--mlx-path", tmp_path / "y")
    assert "DST is given twice" in err
    err = usage_error(capsys, "convert")
    assert err.startswith("usage: mlxq convert") and "the source folder is required" in err
    assert not os.listdir(tmp_path)


def test_trust_remote_code_is_accepted_and_changes_nothing(hf, tmp_path, capsys):
    assert run(capsys, "convert", hf, tmp_path / "a")[0] == 0
    assert run(capsys, "convert", hf, tmp_path / "b", "--trust-remote-code")[0] == 0
    assert_checkpoints_equal(tmp_path / "a", tmp_path / "b", check_index=True)
    cli.build_parser().commands["convert"].print_help()
    assert "no effect: mlxq runs no model code" in " ".join(capsys.readouterr().out.split())


def test_upload_repo_is_refused_with_the_command_that_uploads(hf, tmp_path, capsys):
    code, _, err = run(capsys, "convert", hf, tmp_path / "out", "--upload-repo", "me/tiny")
    assert code == 1
    assert err.startswith("mlxq convert: error: --upload-repo me/tiny: mlxq does not upload")
    assert f"hf upload me/tiny {tmp_path / 'out'}" in err
    assert not os.listdir(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"^upload_repo='me/tiny': mlxq does not"):
        mlxq.convert(hf, tmp_path / "out", upload_repo="me/tiny")


def test_a_revision_for_a_local_folder_says_it_does_nothing(hf, tmp_path):
    with pytest.warns(MlxqWarning, match=r"^revision='main' has no effect: .* is a local "
                      "folder"):
        mlxq.convert(hf, tmp_path / "out", revision="main")


def test_an_unknown_flag_shows_the_convert_usage_not_the_top_level_one(hf, tmp_path, capsys):
    err = usage_error(capsys, "convert", hf, tmp_path / "out", "--q-bitz", "4")
    assert err.startswith("usage: mlxq convert ")
    assert "mlxq convert: error: unrecognized arguments: --q-bitz" in err
    err = usage_error(capsys, "inspect", hf, "--everything")
    assert err.startswith("usage: mlxq inspect ")


@pytest.mark.parametrize("flags,kwargs", [
    (["--q-method", "mse"], {"q_method": "mse"}),
    (["--target-bpw", "3.5"], {"target_bpw": 3.5}),
])
def test_the_quality_flags_do_what_the_python_arguments_do(hf, tmp_path, capsys, flags, kwargs):
    assert run(capsys, "convert", hf, tmp_path / "cli", "-q", *flags)[0] == 0
    mlxq.convert(hf, tmp_path / "py", quantize=True, **kwargs)
    assert_checkpoints_equal(tmp_path / "cli", tmp_path / "py", check_index=True)


# ---- 2. mlxq.convert, like mlx_lm.convert --------------------------------------------------

def test_mlxq_convert_takes_mlx_lm_convert_keyword_names(hf, tmp_path):
    r = mlxq.convert(hf_path=hf, mlx_path=tmp_path / "out", quantize=True, q_bits=8,
                     q_group_size=32, trust_remote_code=True)
    assert r.quantized_layers == 16
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["quantization"] == {"group_size": 32, "bits": 8, "mode": "affine"}


def test_a_callable_quant_predicate_gets_each_layer_path_and_spec(hf, tmp_path):
    seen = {}

    def predicate(path, spec):
        seen[path] = (spec.shape, str(spec.dtype))
        if path.endswith("mlp.down_proj"):
            return {"group_size": 32, "bits": 8}
        return path.endswith("self_attn.q_proj")
    r = mlxq.convert(hf, tmp_path / "out", quantize=True, quant_predicate=predicate)
    assert seen["model.layers.0.mlp.down_proj"] == ((64, 128), "bfloat16")
    assert r.quantized_layers == 4
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())["quantization"]
    assert cfg["model.layers.1.mlp.down_proj"] == {"group_size": 32, "bits": 8}


def test_a_callable_quant_predicate_makes_what_mlx_lm_makes_with_the_same_rule(hf, tmp_path):
    mlx_lm = pytest.importorskip("mlx_lm")

    def rule(path):
        if path.endswith("mlp.down_proj"):
            return {"group_size": 32, "bits": 8}
        return "self_attn" in path
    mlxq.convert(hf, tmp_path / "mlxq", quantize=True,
                 quant_predicate=lambda path, spec: rule(path))
    with contextlib.redirect_stdout(io.StringIO()):
        mlx_lm.convert(hf, str(tmp_path / "mlx_lm"), quantize=True,
                       quant_predicate=lambda path, module: rule(path))
    assert_checkpoints_equal(tmp_path / "mlxq", tmp_path / "mlx_lm", check_index=True)


# ---- 3. warnings and logging -----------------------------------------------------------------

def test_converter_warnings_are_mlxq_warnings_pointing_at_the_caller(hf, tmp_path):
    with pytest.warns(MlxqWarning, match="q_bits=3 has no effect without quantize=True") as w:
        mlxq.convert(hf, tmp_path / "out", q_bits=3)
    assert w[0].filename == __file__


def test_converter_warnings_can_be_turned_into_errors(hf, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MlxqWarning)
        with pytest.raises(MlxqWarning):
            mlxq.convert(hf, tmp_path / "out", q_bits=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MlxqWarning)
        mlxq.convert(hf, tmp_path / "out2", q_bits=3)


def test_informational_lines_go_to_the_mlxq_logger(hf, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mlxq"):
        mlxq.convert(hf, tmp_path / "out", quantize=True)
    text = [r.getMessage() for r in caplog.records if r.name.startswith("mlxq")]
    assert any(t.startswith(f"converting {hf}") for t in text)
    assert any(t.startswith(f"wrote {tmp_path / 'out'}") for t in text)


def test_the_cli_prints_each_warning_as_one_line(hf, tmp_path, capsys):
    code, out, err = run(capsys, "convert", hf, tmp_path / "out", "--q-bits", "3",
                         "--q-group-size", "32")
    assert code == 0
    assert err.splitlines() == ["mlxq convert: warning: --q-bits 3 and --q-group-size 32 "
                                "have no effect without -q: no layer is quantized"]


def test_the_cli_prints_a_plan_warning_as_one_line(hf, tmp_path, capsys):
    src = tmp_path / "arch"
    import shutil

    shutil.copytree(hf, src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["model_type"] = "brand_new_arch"
    (src / "config.json").write_text(json.dumps(cfg))
    code, _, err = run(capsys, "convert", src, tmp_path / "out", "--allow-unknown-architecture")
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "mlxq convert: warning: model_type 'brand_new_arch' is not one mlx-lm supports")


def test_quiet_silences_warnings_on_the_command_line(hf, tmp_path, capsys):
    code, out, err = run(capsys, "convert", hf, tmp_path / "out", "--q-bits", "3", "--quiet")
    assert (code, out, err) == (0, "", "")


# ---- 4. messages in the CLI's own terms ------------------------------------------------------

@pytest.mark.parametrize("value", ["-2", "0"])
def test_threads_below_one_is_blamed_on_the_flag(hf, tmp_path, capsys, value):
    err = usage_error(capsys, "convert", hf, tmp_path / "out", "--threads", value)
    assert f"mlxq convert: error: argument --threads: must be >= 1, got {int(value)}" in err
    assert "n=" not in err and "None" not in err


def test_unsupported_bits_are_blamed_on_the_flag_not_a_layer(hf, tmp_path, capsys):
    code, _, err = run(capsys, "convert", hf, tmp_path / "out", "-q", "--q-bits", "7")
    assert code == 1
    assert err == ("mlxq convert: error: --q-bits 7 is not supported by mode 'affine'; "
                   "supported bits are 2, 3, 4, 5, 6 and 8\n")


def test_a_bad_size_is_blamed_on_its_flag(hf, tmp_path, capsys):
    code, _, err = run(capsys, "convert", hf, tmp_path / "out", "--max-shard-size", "lots")
    assert code == 1 and err.startswith("mlxq convert: error: --max-shard-size lots: cannot "
                                        "read size 'lots'")
    with pytest.raises(InvalidArgumentError, match=r"^disk_budget='-1GB': cannot read size"):
        mlxq.convert(hf, tmp_path / "out", disk_budget="-1GB")


def test_argument_conflicts_are_named_as_flags(hf, tmp_path, capsys):
    code, _, err = run(capsys, "convert", hf, tmp_path / "out", "-q", "-d")
    assert code == 1 and "choose either -q or -d, not both" in err
    code, _, err = run(capsys, "convert", hf, tmp_path / "out", "--quant-predicate",
                       "mixed_3_6")
    assert code == 1 and "--quant-predicate mixed_3_6 needs -q" in err


@pytest.mark.parametrize("command", [["convert", "{p}", "{out}"], ["inspect", "{p}"],
                                     ["compare", "{p}", "{p}"]])
def test_a_missing_path_does_not_exist_in_every_command(tmp_path, capsys, command):
    missing = tmp_path / "missing"
    code, _, err = run(capsys, *[a.format(p=missing, out=tmp_path / "out") for a in command])
    assert code in (1, 2)
    assert err.startswith(f"mlxq {command[0]}: error: {missing}: does not exist"), err


# ---- 5. flags that do nothing ----------------------------------------------------------------

def test_quantize_that_quantizes_no_layer_says_so(tmp_path, capsys):
    narrow = make_checkpoint(str(tmp_path / "narrow"), layers=1, hidden=64, intermediate=96,
                             vocab=32)
    code, out, err = run(capsys, "convert", narrow, tmp_path / "out", "-q", "--q-group-size",
                         "128")
    assert code == 0
    assert err.splitlines() == ["mlxq convert: warning: -q quantized no layer: "
                                "--q-group-size 128 divides the last axis of no weight matrix "
                                "(widths 64, 96)"]
    assert "  0 layers quantized" in out.splitlines()


def test_quantization_flags_without_quantize_say_they_do_nothing(hf, tmp_path, capsys):
    code, _, err = run(capsys, "convert", hf, tmp_path / "out", "--q-mode", "mxfp4")
    assert code == 0
    assert err == ("mlxq convert: warning: --q-mode mxfp4 has no effect without -q: "
                   "no layer is quantized\n")


def test_dequantize_on_a_dense_folder_says_it_had_nothing_to_do(hf, tmp_path, capsys):
    code, _, err = run(capsys, "convert", hf, tmp_path / "out", "-d")
    assert code == 0
    assert err == f"mlxq convert: warning: -d had nothing to do: {hf} has no quantized layers\n"


def test_quantize_on_a_quantized_folder_says_its_layers_are_kept(hf, tmp_path, capsys):
    assert run(capsys, "convert", hf, tmp_path / "q", "-q")[0] == 0
    code, out, err = run(capsys, "convert", tmp_path / "q", tmp_path / "out", "-q")
    assert code == 0
    assert err.splitlines() == ["mlxq convert: warning: 16 layers are already quantized and "
                                "kept as they are (as mlx_lm.convert does); dequantize first "
                                "(-d) to re-quantize them"]
    assert "  0 layers quantized, 16 already quantized layers kept" in out.splitlines()


# ---- 6. start-up -----------------------------------------------------------------------------

def _modules_after(code: str) -> set[str]:
    r = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                        "print(json.dumps(sorted(sys.modules)))"],
                       capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(os.path.dirname(mlxq.__file__)))
    return set(json.loads(r.stdout.splitlines()[-1]))


def test_import_mlxq_loads_neither_numpy_nor_ml_dtypes():
    mods = _modules_after("import mlxq; mlxq.SafetensorsError, mlxq.MlxqWarning")
    assert "numpy" not in mods and "ml_dtypes" not in mods


def test_mlxq_help_loads_neither_numpy_nor_the_converter():
    mods = _modules_after("import contextlib, io\nfrom mlxq import cli\n"
                          "with contextlib.redirect_stdout(io.StringIO()):\n"
                          "    try: cli.main(['convert', '--help'])\n"
                          "    except SystemExit: pass")
    assert "numpy" not in mods and "ml_dtypes" not in mods
    assert "mlxq.conversion.plan" not in mods and "mlxq.models" not in mods


def test_mlxq_inspect_of_a_dense_folder_does_not_load_ml_dtypes(hf):
    mods = _modules_after("import contextlib, io\nfrom mlxq import cli\n"
                          "with contextlib.redirect_stdout(io.StringIO()):\n"
                          f"    assert cli.main(['inspect', {hf!r}]) == 0")
    assert "ml_dtypes" not in mods and "mlxq.models" not in mods


def test_submodules_are_attributes_of_the_package_as_before():
    _modules_after("import mlxq\n"
                   "assert mlxq.io.load_checkpoint is mlxq.load_checkpoint\n"
                   "assert mlxq.testing.compare_checkpoints and mlxq.errors.MlxqError\n"
                   "try:\n    mlxq.no_such_thing\nexcept AttributeError: pass\n"
                   "else:\n    raise SystemExit('no AttributeError')")


def test_import_mlxq_then_quantize_still_works():
    mods = _modules_after("import numpy as np, mlxq\n"
                          "w = np.ones((2, 64), mlxq.bfloat16)\n"
                          "assert mlxq.quantize(w, 64, 4)[0].shape == (2, 8)")
    assert "ml_dtypes" in mods


# ---- 7. summaries ----------------------------------------------------------------------------

def test_one_of_a_thing_is_singular(hf, tmp_path):
    r = mlxq.convert(hf, tmp_path / "out", quantize=True,
                     quant_predicate=lambda path, spec: path == "lm_head")
    assert "  1 layer quantized" in r.summary().splitlines()
    mlxq.convert(hf, tmp_path / "b", quantize=True)
    (tmp_path / "b" / "config.json").write_text("{}")
    mlxq.convert(hf, tmp_path / "a", quantize=True)
    with pytest.raises(AssertionError, match=r"^checkpoints differ \(1 problem\):"):
        assert_checkpoints_equal(tmp_path / "a", tmp_path / "b")


def test_the_progress_bar_ends_on_the_bytes_the_summary_reports(hf, tmp_path):
    from mlxq._progress import human_bytes

    class Tty(io.StringIO):
        def isatty(self):
            return True
    t = Tty()
    r = mlxq.convert(hf, tmp_path / "out", quantize=True, stream=t)
    written = human_bytes(r.bytes_written)
    bars = [s for s in t.getvalue().split("\r") if "tensors" in s]
    assert f"{written}/{written}" in bars[-1] and f"{r.tensors}/{r.tensors} tensors" in bars[-1]
    assert f"-> {written} written" in r.summary()


def test_the_first_eta_waits_for_a_real_rate():
    from mlxq._progress import ETA_MIN_SECONDS, Progress

    now = [0.0]
    p = Progress(100, 1000, stream=io.StringIO(), clock=lambda: now[0])
    now[0] = 0.3  # a first tensor that paid for starting up
    assert p.line(1, 10).endswith("ETA --:--")
    now[0] = ETA_MIN_SECONDS / 2
    assert p.line(40, 400).endswith("ETA --:--")
    now[0] = 2.0
    assert p.line(50, 500).endswith("250 B/s  ETA 0:02")


# ---- 8. one set of comparison defaults ------------------------------------------------------

def test_every_comparison_checks_config_json_by_default(hf, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    mlxq.convert(hf, a, quantize=True)
    mlxq.convert(hf, b, quantize=True)
    cfg = json.loads((b / "config.json").read_text())
    cfg["tie_word_embeddings"] = not cfg.get("tie_word_embeddings", False)
    (b / "config.json").write_text(json.dumps(cfg))
    defaults = {f.__name__: inspect.signature(f).parameters["check_config"].default
                for f in (compare_checkpoints, assert_checkpoints_equal)}
    assert defaults == {"compare_checkpoints": True, "assert_checkpoints_equal": True}
    assert not compare_checkpoints(a, b).matches
    with pytest.raises(AssertionError, match="config.json: differs"):
        assert_checkpoints_equal(a, b)
    assert run(capsys, "compare", a, b)[0] == 1
    assert compare_checkpoints(a, b, check_config=False).matches
    assert run(capsys, "compare", a, b, "--no-config")[0] == 0


# ---- 13. mlxq bench --------------------------------------------------------------------------

def test_bench_prints_its_own_title(capsys):
    code, out, _ = run(capsys, "bench", "--rows", "4", "--cols", "128")
    assert code == 0 and out.startswith("mlxq bench: 4x128 bfloat16 matrix")
