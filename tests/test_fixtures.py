"""The transformers-built checkpoints in tests/fixtures/hf are complete and in the layouts
their README promises (written by tools/gen_hf_fixtures.py; no torch needed here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq._dtypes import bfloat16, float8_e4m3fn

ROOT = Path(__file__).parent / "fixtures" / "hf"
FIXTURES = sorted(p.parent.relative_to(ROOT).as_posix() for p in ROOT.rglob("config.json"))
# Fixtures tools/gen_remote_fixtures.py writes from tools/remote_fixtures/<name>.py (types only
# a publisher's remote code defines); the others are transformers'.
REMOTE_DIR = Path(__file__).resolve().parent.parent / "tools" / "remote_fixtures"
REMOTE = sorted(p.stem for p in REMOTE_DIR.glob("*.py") if not p.stem.startswith("_"))
FP8 = [f for f in FIXTURES if f.startswith("fp8/")]
CT = [f for f in FIXTURES if f.startswith("compressed_tensors/")]

# The model types the converter must cover first (Hub model_type; MiniMax-M2 is minimax_m2).
REQUIRED = """llama mistral qwen2 qwen3 qwen2_moe qwen3_moe qwen3_next mixtral gemma gemma2
gemma3_text phi phi3 starcoder2 cohere olmo2 olmoe granite granitemoe glm4 glm4_moe deepseek_v2
deepseek_v3 minimax_m2 gpt_oss gpt2 gpt_neox stablelm exaone4 smollm3 ernie4_5 hunyuan_v1_dense
seed_oss internlm3 falcon_h1 mamba2 nemotron_h lfm2""".split()


def _config(name: str) -> dict:
    return json.loads((ROOT / name / "config.json").read_text(encoding="utf-8"))


def test_every_required_model_type_has_a_fixture():
    have = {_config(f)["model_type"] for f in FIXTURES if "/" not in f}
    assert sorted(set(REQUIRED) - have) == []


def test_every_fixture_folder_has_a_config():
    folders = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/") if p.is_dir()}
    folders = {f for f in folders if f not in ("fp8", "compressed_tensors", "logits")}
    folders |= {p.relative_to(ROOT).as_posix() for sub in ("fp8", "compressed_tensors")
                for p in (ROOT / sub).glob("*/")}
    assert sorted(folders - set(FIXTURES)) == []


@pytest.mark.parametrize("name", FIXTURES)
def test_config_names_model_type_and_bf16(name):
    cfg = _config(name)
    assert isinstance(cfg.get("model_type"), str) and cfg["model_type"]
    if name in REMOTE:  # the publisher's keys, which test_remote_fixture_is_its_description checks
        return
    assert cfg.get("architectures"), "transformers writes the architecture"
    # real Hub checkpoints are bf16 and say so: under torch_dtype (the key mlx-lm reads), or,
    # written by transformers 5 (Gemma 4), under dtype
    assert cfg.get("torch_dtype", cfg.get("dtype")) == "bfloat16"


def _remote(name):
    """The description module tools/remote_fixtures/<name>.py."""
    import importlib
    import sys

    tools = str(REMOTE_DIR.parent)
    if tools not in sys.path:
        sys.path.append(tools)
    return importlib.import_module(f"remote_fixtures.{name}")


@pytest.mark.parametrize("name", REMOTE)
def test_remote_fixture_is_its_description(name):
    """The committed folder holds exactly the config and the tensors (names, shapes, dtypes)
    its description in tools/remote_fixtures/ states."""
    mod = _remote(name)
    assert _config(name) == json.loads(json.dumps(mod.CONFIG))
    tensors = mlxq.load_checkpoint(ROOT / name)
    want = mod.tensors(mod.CONFIG)
    assert sorted(tensors) == sorted(want)
    for k, (shape, dtype) in want.items():
        assert tensors[k].shape == tuple(shape), k
        assert tensors[k].dtype.name == dtype, k


@pytest.mark.parametrize("name", FIXTURES)
def test_weights_parse_and_are_bf16_where_not_quantized(name):
    tensors = mlxq.load_checkpoint(ROOT / name)
    assert tensors
    floats = {k: a.dtype for k, a in tensors.items()
              if a.dtype.kind == "f" or a.dtype in (bfloat16, float8_e4m3fn)}
    assert bfloat16 in set(floats.values())


@pytest.mark.parametrize("name", FIXTURES)
def test_tokenizer_loads(name):
    d = ROOT / name
    assert (d / "tokenizer.json").is_file() and (d / "tokenizer_config.json").is_file()
    transformers = pytest.importorskip("transformers")
    # transformers validates the config of a model type it does not know, and rejects gear's
    # "conv_mixer" layer_types (tests/test_families_hybrid.py): its tokenizer files are read
    # beside a neutral config
    kw = {"config": transformers.PretrainedConfig()} if name == "gear" else {}
    tok = transformers.AutoTokenizer.from_pretrained(str(d), **kw)
    vocab = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert tok.convert_tokens_to_ids(["the", "water"]) == [vocab["the"], vocab["water"]]
    assert max(vocab.values()) < _config(name).get("vocab_size", len(vocab))
    assert tok.eos_token == "</s>"


@pytest.mark.parametrize("name", FP8)
def test_fp8_block_layout(name):
    cfg = _config(name)
    assert cfg["quantization_config"] == {"quant_method": "fp8", "fmt": "e4m3",
                                          "activation_scheme": "dynamic",
                                          "weight_block_size": [128, 128]}
    t = mlxq.load_checkpoint(ROOT / name)
    fp8 = [k for k, a in t.items() if a.dtype == float8_e4m3fn]
    assert fp8
    partial = False
    for k in fp8:
        rows, cols = t[k].shape
        s = t[k + "_scale_inv"]
        assert s.dtype == np.float32
        assert s.shape == (math.ceil(rows / 128), math.ceil(cols / 128))
        partial |= rows % 128 != 0 or cols % 128 != 0
        # saturating e4m3fn: no NaN codes, and the largest |code| of a block is 448
        assert not np.isnan(t[k].astype(np.float32)).any()
    assert partial, "some Linear must have a partial 128-block"
    for k in t:
        if k.endswith(".weight") and t[k].dtype != float8_e4m3fn:
            assert ("embed_tokens" in k or k.startswith("lm_head") or t[k].ndim == 1
                    or k.endswith(("mlp.gate.weight", "block_sparse_moe.gate.weight")))


@pytest.mark.parametrize("name", CT)
def test_compressed_tensors_pack_quantized_layout(name):
    cfg = _config(name)
    # top level, or (Kimi K2.5) in text_config, where mlx-lm also looks
    q = cfg.get("quantization_config") or cfg["text_config"]["quantization_config"]
    assert q["quant_method"] == "compressed-tensors" and q["format"] == "pack-quantized"
    w = q["config_groups"]["group_0"]["weights"]
    assert (w["num_bits"], w["type"], w["symmetric"], w["strategy"], w["group_size"]) == (
        4, "int", True, "group", 32)
    t = mlxq.load_checkpoint(ROOT / name)
    packed = [k for k in t if k.endswith(".weight_packed")]
    assert packed and all(".mlp.experts." in k for k in packed)
    for k in packed:
        base = k[: -len("_packed")]
        out_f, in_f = (int(x) for x in t[base + "_shape"])
        assert t[base + "_shape"].dtype == np.int32
        assert t[k].dtype == np.int32 and t[k].shape == (out_f, in_f // 8)
        assert t[base + "_scale"].dtype == bfloat16
        assert t[base + "_scale"].shape == (out_f, in_f // 32)
        assert base not in t


def test_fixtures_stay_small():
    # every model type mlx-lm converts (about 140) at under ~400 KB each, with the
    # pre-quantized variants
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 48 * 2**20
    for d in ROOT.iterdir():
        if (d / "config.json").is_file():
            assert sum(p.stat().st_size for p in d.iterdir()) < 450 * 2**10, d.name


def test_every_bf16_fixture_has_transformers_logits():
    import numpy as np

    remote = Path(__file__).resolve().parent.parent / "tools" / "remote_fixtures"
    for name in FIXTURES:
        if "/" in name or name in REMOTE:  # transformers cannot run the publishers' models
            continue
        logits = np.load(ROOT / "logits" / f"{name}.npy")
        assert logits.dtype == np.float32 and logits.ndim >= 2 and np.isfinite(logits).all(), name
