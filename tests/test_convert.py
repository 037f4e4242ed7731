"""mlxq convert without MLX: argument and input errors, atomicity, the memory bound, the
CLI, inspect, and --report."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mlxq
from mlxq import cli
from mlxq import convert
from mlxq.conversion import parse_size
from mlxq.errors import (
    FormatError,
    InvalidArgumentError,
    KeyCollisionError,
    MissingKeyError,
    MlxqError,
    MlxqWarning,
    OutOfRangeError,
    ParseError,
    UnknownEnumValueError,
)
from mlxq.synthetic import make_checkpoint

SIZES = dict(layers=2, hidden=64, intermediate=128, vocab=64)


@pytest.fixture
def src(tmp_path):
    return make_checkpoint(tmp_path / "hf", **SIZES)


def tree_digest(path) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            out[os.path.relpath(p, path)] = (hashlib.sha256(open(p, "rb").read()).hexdigest(),
                                             st.st_mtime_ns)
    return out


def siblings(tmp_path) -> list[str]:
    return sorted(os.listdir(tmp_path))


# ---- arguments ------------------------------------------------------------------------------

def test_dst_must_not_exist(src, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(InvalidArgumentError, match="already exists"):
        convert(src, tmp_path / "out", quiet=True)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"quantize": True, "dequantize": True}, InvalidArgumentError,
         "either quantize=True or dequantize=True"),
    ({"quantize": True, "quant_predicate": "mixed_9_9"}, UnknownEnumValueError, "mixed_9_9"),
    ({"quantize": True, "quant_predicate": "mixed_3_6", "q_mode": "mxfp4"},
     InvalidArgumentError, "only support 'affine'"),
    ({"quant_predicate": "mixed_3_6"}, InvalidArgumentError, "needs quantize"),
    ({"quantize": True, "q_mode": "int4"}, UnknownEnumValueError, "int4"),
    ({"dtype": "float64"}, UnknownEnumValueError, "float64"),
    ({"max_shard_size": "lots"}, InvalidArgumentError, "cannot read size"),
    ({"max_shard_size": 0}, InvalidArgumentError, "positive"),
    ({"quantize": True, "q_bits": 7}, MlxqError, "bits"),
])
def test_bad_arguments(src, tmp_path, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        convert(src, tmp_path / "out", quiet=True, **kwargs)
    assert siblings(tmp_path) == ["hf"]


def test_kernel_errors_name_the_layer(src, tmp_path):
    """Parameters a quant predicate chose for one layer are that layer's fault."""
    def seven_bits(path, spec):
        return {"bits": 7} if path.endswith("mlp.up_proj") else True
    with pytest.raises(MlxqError) as e:
        convert(src, tmp_path / "out", quiet=True, quantize=True, quant_predicate=seven_bits)
    assert e.value.layer is not None and e.value.layer.endswith("mlp.up_proj")
    assert siblings(tmp_path) == ["hf"]


def test_unsupported_global_bits_are_blamed_on_the_argument(src, tmp_path):
    with pytest.raises(OutOfRangeError, match=r"^q_bits=7 is not supported by mode 'affine'"
                       ) as e:
        convert(src, tmp_path / "out", quiet=True, quantize=True, q_bits=7)
    assert e.value.layer is None and e.value.key == "q_bits"
    with pytest.raises(OutOfRangeError, match=r"^q_group_size=16 is not supported"):
        convert(src, tmp_path / "out", quiet=True, quantize=True, q_group_size=16)
    with pytest.raises(OutOfRangeError, match=r"^q_group_size=64 is not supported by mode "
                       "'mxfp8'"):
        convert(src, tmp_path / "out", quiet=True, quantize=True, q_mode="mxfp8",
                q_group_size=64)
    assert siblings(tmp_path) == ["hf"]


def test_dst_inside_src_is_refused(src, tmp_path):
    before = tree_digest(src)
    with pytest.raises(InvalidArgumentError, match="inside the source"):
        convert(src, os.path.join(src, "mlx"), quiet=True)
    assert tree_digest(src) == before


def test_parse_size():
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("5GiB") == 5 << 30
    assert parse_size("1.5M") == 1_500_000
    assert parse_size(" 64 kib ") == 65536


# ---- inputs ---------------------------------------------------------------------------------

def test_missing_source(tmp_path):
    with pytest.raises(InvalidArgumentError, match="nope: does not exist"):
        convert(tmp_path / "nope", tmp_path / "out", quiet=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="file: not a folder"):
        convert(tmp_path / "file", tmp_path / "out", quiet=True)


def test_pickles_are_refused(tmp_path):
    d = tmp_path / "pt"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(FormatError, match="pickle.*arbitrary code"):
        convert(d, tmp_path / "out", quiet=True)


def test_other_safetensors_names_are_refused(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    mlxq.save_safetensors(d / "consolidated.safetensors", {"a": np.zeros(2, np.float32)})
    with pytest.raises(FormatError, match="model\\*.safetensors"):
        convert(d, tmp_path / "out", quiet=True)


def test_no_config(src, tmp_path):
    os.remove(os.path.join(src, "config.json"))
    with pytest.raises(MissingKeyError, match="config.json"):
        convert(src, tmp_path / "out", quiet=True)


def test_bad_config_json(src, tmp_path):
    with open(os.path.join(src, "config.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(ParseError, match="config.json"):
        convert(src, tmp_path / "out", quiet=True)


def test_corrupt_shard_names_the_file(src, tmp_path):
    p = os.path.join(src, "model.safetensors")
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 10)
    with pytest.raises(mlxq.errors.SafetensorsError, match="model.safetensors.*truncated"):
        convert(src, tmp_path / "out", quiet=True)
    assert siblings(tmp_path) == ["hf"]


def test_duplicate_tensor_across_shards(src, tmp_path):
    mlxq.save_safetensors(os.path.join(src, "model-extra.safetensors"),
                          {"model.norm.weight": np.ones(64, mlxq.bfloat16)})
    with pytest.raises(KeyCollisionError, match="model.norm.weight"):
        convert(src, tmp_path / "out", quiet=True)


def test_unsupported_external_format(src, tmp_path):
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    json.dump(cfg, open(os.path.join(src, "config.json"), "w"))
    with pytest.raises(UnknownEnumValueError, match="bitsandbytes"):
        convert(src, tmp_path / "out", quiet=True)


def test_quantized_tensors_without_config_block(src, tmp_path):
    q = tmp_path / "q"
    convert(src, q, quiet=True, quantize=True)
    cfg = json.load(open(q / "config.json"))
    del cfg["quantization"], cfg["quantization_config"]
    json.dump(cfg, open(q / "config.json", "w"))
    with pytest.raises(FormatError, match="no 'quantization' block"):
        convert(q, tmp_path / "out", quiet=True)


def test_an_unknown_architecture_is_refused_with_the_supported_list(tmp_path):
    src = make_checkpoint(tmp_path / "hf", **SIZES)
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["model_type"] = "brand_new_arch"
    json.dump(cfg, open(os.path.join(src, "config.json"), "w"))
    with pytest.raises(UnknownEnumValueError, match="brand_new_arch.*supported: .*llama.*"
                                                    "--allow-unknown-architecture"):
        convert(src, tmp_path / "out", quantize=True, quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["hf"]


def test_allow_unknown_architecture_uses_the_generic_rules(tmp_path, capsys):
    src = make_checkpoint(tmp_path / "hf", **SIZES)
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["model_type"] = "brand_new_arch"
    json.dump(cfg, open(os.path.join(src, "config.json"), "w"))
    with pytest.warns(MlxqWarning, match="model_type 'brand_new_arch' is not one mlx-lm "
                      "supports"):
        r = convert(src, tmp_path / "out", quantize=True, allow_unknown_architecture=True)
    w = mlxq.load_checkpoint(tmp_path / "out")
    assert r.architecture == "generic"
    assert "model.layers.0.mlp.up_proj.scales" in w
    assert w["model.norm.weight"].dtype == mlxq.bfloat16  # norms stay dense
    # no sanitize step for an unknown model: the rotary buffer is carried over
    assert "model.layers.0.self_attn.rotary_emb.inv_freq" in w
    assert cli.main(["convert", src, str(tmp_path / "cli"), "--allow-unknown-architecture",
                     "--quiet"]) == 0


# ---- nothing lost ---------------------------------------------------------------------------

def test_source_untouched(src, tmp_path):
    before = tree_digest(src)
    convert(src, tmp_path / "out", quiet=True, quantize=True, dtype="float32")
    assert tree_digest(src) == before


def test_failure_midway_leaves_nothing(src, tmp_path, monkeypatch):
    import mlxq.conversion.execute as mc

    calls = {"n": 0}
    real = mc.quantize

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise mlxq.errors.InvariantViolationError("injected failure")
        return real(*a, **k)

    monkeypatch.setattr(mc, "quantize", flaky)
    with pytest.raises(mlxq.errors.InvariantViolationError) as e:
        convert(src, tmp_path / "out", quiet=True, quantize=True)
    assert e.value.layer  # the layer being quantized is named
    assert siblings(tmp_path) == ["hf"]  # no DST, no temporary sibling


def test_ctrl_c_leaves_nothing(src, tmp_path, monkeypatch):
    from mlxq.io import SafetensorsWriter

    real = SafetensorsWriter.put_part
    calls = {"n": 0}

    def put(self, *args):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(SafetensorsWriter, "put_part", put)
    with pytest.raises(KeyboardInterrupt):
        convert(src, tmp_path / "out", quiet=True, quantize=True)
    assert siblings(tmp_path) == ["hf"]


def test_cli_interrupt_exit_code(src, tmp_path, monkeypatch, capsys):
    import mlxq.conversion.execute as mc

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(mc, "quantize", boom)
    assert cli.main(["convert", src, str(tmp_path / "out"), "-q"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert siblings(tmp_path) == ["hf"]


# ---- output ---------------------------------------------------------------------------------

def test_output_layout(src, tmp_path):
    convert(src, tmp_path / "out", quiet=True, quantize=True, max_shard_size=20_000)
    files = sorted(os.listdir(tmp_path / "out"))
    shards = [f for f in files if f.endswith(".safetensors")]
    n = len(shards)
    assert n > 2 and shards == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    for f in ("config.json", "model.safetensors.index.json", "tokenizer.json",
              "tokenizer_config.json", "generation_config.json", "README.md"):
        assert f in files
    assert not [f for f in files if f.startswith(".")]
    for s in shards:
        assert mlxq.safetensors_metadata(tmp_path / "out" / s) == {"format": "mlx"}
    index = json.load(open(tmp_path / "out" / "model.safetensors.index.json"))
    assert list(index["weight_map"]) == sorted(index["weight_map"])
    w = mlxq.load_checkpoint(tmp_path / "out")
    assert index["metadata"]["total_size"] == sum(a.nbytes for a in w.values())
    cfg = json.load(open(tmp_path / "out" / "config.json"))
    assert cfg["quantization"] == cfg["quantization_config"] == {
        "group_size": 64, "bits": 4, "mode": "affine"}
    assert "_name_or_path" not in cfg
    assert cfg["eos_token_id"] == 2  # from generation_config.json, as mlx-lm's load_config
    assert list(cfg) == sorted(cfg)


def test_non_finite_config_floats_round_trip(src, tmp_path):
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["some_limit"] = {"__float__": "Infinity"}
    json.dump(cfg, open(os.path.join(src, "config.json"), "w"))
    convert(src, tmp_path / "out", quiet=True)
    assert json.load(open(tmp_path / "out" / "config.json"))["some_limit"] == {
        "__float__": "Infinity"}


def test_moe_experts_are_stacked(tmp_path):
    src = make_checkpoint(tmp_path / "hf", family="mixtral", experts=3, **SIZES)
    convert(src, tmp_path / "out", quiet=True)
    w = mlxq.load_checkpoint(tmp_path / "out")
    ref = mlxq.load_checkpoint(src)
    stacked = w["model.layers.1.block_sparse_moe.switch_mlp.down_proj.weight"]
    assert stacked.shape == (3, 64, 128)
    for e in range(3):
        np.testing.assert_array_equal(
            stacked[e].view(np.uint16),
            ref[f"model.layers.1.block_sparse_moe.experts.{e}.w2.weight"].view(np.uint16))
    assert not [k for k in w if ".experts." in k]


def test_dequantize_round_trip_shapes(src, tmp_path):
    convert(src, tmp_path / "q", quiet=True, quantize=True, q_bits=8)
    convert(tmp_path / "q", tmp_path / "d", quiet=True, dequantize=True)
    d, ref = mlxq.load_checkpoint(tmp_path / "d"), mlxq.load_checkpoint(src)
    cfg = json.load(open(tmp_path / "d" / "config.json"))
    assert "quantization" not in cfg and "quantization_config" not in cfg
    for k, v in d.items():
        assert v.shape == ref[k].shape and v.dtype == ref[k].dtype
        # 8-bit affine: within half a step of the source
        err = np.abs(v.astype(np.float32) - ref[k].astype(np.float32)).max()
        assert err <= 0.02 * 4 / 255 + 1e-3


def test_report_matches_an_independent_error(src, tmp_path):
    r = convert(src, tmp_path / "out", quiet=True, quantize=True, report=True)
    assert len(r.report) == r.quantized_layers == 16
    q, ref = mlxq.load_checkpoint(tmp_path / "out"), mlxq.load_checkpoint(src)
    for row in r.report:
        # affine dequantization written out in numpy: w = q * scale + bias per group
        wq = q[f"{row.layer}.weight"]
        codes = ((wq[..., None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15).reshape(
            wq.shape[0], -1).astype(np.float32)
        s = np.repeat(q[f"{row.layer}.scales"].astype(np.float32), 64, axis=-1)
        b = np.repeat(q[f"{row.layer}.biases"].astype(np.float32), 64, axis=-1)
        # as MLX dequantizes with bf16 scales: q * s rounded to bf16, + b rounded to bf16
        # (checked against mx.dequantize in test_golden); the report measures that
        bf = mlxq.bfloat16
        hat = ((codes * s).astype(bf).astype(np.float32) + b).astype(bf).astype(np.float64)
        dense = ref[f"{row.layer}.weight"].astype(np.float64)
        rmse = np.sqrt(np.mean((hat - dense) ** 2))
        assert row.error.rmse == pytest.approx(rmse, rel=1e-3)
        assert row.error.max_abs == pytest.approx(np.abs(hat - dense).max(), rel=1e-2)
        assert 15 < row.error.snr_db < 30
    assert "SNR dB" in r.report_table() and "all layers" in r.report_table()


# ---- CLI ------------------------------------------------------------------------------------

def test_cli_convert_and_inspect(src, tmp_path, capsys):
    assert cli.main(["convert", src, str(tmp_path / "out"), "-q", "--q-bits", "8",
                     "--report"]) == 0
    out = capsys.readouterr().out
    assert "16 layers quantized" in out and "bits per weight" in out and "SNR dB" in out
    assert cli.main(["inspect", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "affine 8-bit g64" in out and "16 quantized layers" in out
    assert "model.layers.1.mlp.down_proj.weight" in out


def test_cli_errors_are_one_line(src, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert cli.main(["convert", src, str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlxq convert: error:") and "already exists" in err
    assert "Traceback" not in err


def test_cli_quiet_prints_nothing(src, tmp_path, capsys):
    assert cli.main(["convert", src, str(tmp_path / "out"), "-q", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""


def test_cli_help_is_usable():
    r = subprocess.run([sys.executable, "-m", "mlxq", "convert", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0
    for flag in ("-q", "--q-bits", "--q-group-size", "--q-mode", "--quant-predicate", "--dtype",
                 "-d", "--max-shard-size", "--threads", "--quiet", "--report", "examples:"):
        assert flag in r.stdout
    r = subprocess.run([sys.executable, "-m", "mlxq", "convert"], capture_output=True, text=True)
    assert r.returncode == 2 and "SRC" in r.stderr


def test_progress_bar_only_on_a_terminal(src, tmp_path):
    import io

    from mlxq._progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    t = Tty()
    p = Progress(10, 1000, stream=t, min_interval=0)
    p.update(5, 500)
    p.close()
    assert "5/10 tensors" in t.getvalue() and "ETA" in t.getvalue()
    s = io.StringIO()
    convert(src, tmp_path / "out", quantize=True, stream=s)
    assert "tensors" not in s.getvalue()  # not a terminal: no bar


# ---- memory ---------------------------------------------------------------------------------

MEMORY_CHILD = textwrap.dedent("""
    import resource, sys, json
    limit = int(sys.argv[3])
    import mlxq
    from mlxq import convert
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if sys.argv[4] == "convert":
        convert(sys.argv[1], sys.argv[2], quantize=True, quiet=True)
    else:  # the control: mapping the whole checkpoint cannot fit under the same limit
        w = mlxq.load_checkpoint(sys.argv[1])
        sum(float(a.reshape(-1)[-1].astype("float32")) for a in w.values())
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    print(json.dumps({"hwm_kib": int(hwm)}))
""")


def test_converts_a_checkpoint_larger_than_its_address_space_limit(tmp_path):
    """The converter reads each tensor into its own buffer and writes it before the next:
    under an address-space limit smaller than the checkpoint it still converts, while
    mapping the checkpoint (the control) fails under the same limit."""
    src = make_checkpoint(tmp_path / "hf", layers=12, hidden=1024, intermediate=4096,
                          vocab=8192, shard_size=100 << 20)
    size = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src))
    largest = 8192 * 1024 * 2
    limit = 256 << 20
    assert size > limit + (100 << 20)
    script = tmp_path / "child.py"
    script.write_text(MEMORY_CHILD)
    # glibc reserves 64 MiB of address space per thread arena: an address-space limit
    # counts reservations, not memory, so share one arena as one would under ulimit -v
    env = dict(os.environ, MLXQ_NUM_THREADS="2", MALLOC_ARENA_MAX="1")
    run = subprocess.run([sys.executable, str(script), src, str(tmp_path / "out"), str(limit),
                          "convert"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    hwm = json.loads(run.stdout.strip().splitlines()[-1])["hwm_kib"] * 1024
    assert hwm < 2 * largest + (200 << 20)
    control = subprocess.run([sys.executable, str(script), src, str(tmp_path / "c"),
                              str(limit), "load"], capture_output=True, text=True, env=env)
    assert control.returncode != 0
    assert "Cannot allocate memory" in control.stderr or "MemoryError" in control.stderr
    out = mlxq.load_checkpoint(tmp_path / "out")
    assert out["lm_head.weight"].dtype == np.uint32
