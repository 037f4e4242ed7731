"""The hybrid, linear-attention and recurrent families and the mid-size MoEs (qwen3_5,
qwen3_5_moe, olmo_hybrid, rwkv7, the bailing line, plamo2, baichuan_m1, Klear, hunyuan,
spark2_5, gear) beyond the per-fixture identity tests of tests/test_families_mlx_lm.py:
generation from mlx-lm on both folders, and the sanitize steps the committed fixtures do
not reach (a normalised output head, fused projections), each against mlx_lm.convert."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlx_lm")

import mlxq  # noqa: E402
from mlxq import convert  # noqa: E402
from mlxq.testing import assert_checkpoints_equal  # noqa: E402
from support import mlx_lm_convert  # noqa: E402

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"


def same_folder(a: Path, b: Path) -> None:
    assert_checkpoints_equal(a, b, check_config=True, check_index=False)
    assert (a / "config.json").read_text() == (b / "config.json").read_text()


@pytest.mark.parametrize("name", ["qwen3_5", "rwkv7"])
def test_mlx_lm_generates_the_same_from_both_folders(name, tmp_path):
    """A hybrid gated-delta / attention model in a multimodal container (Qwen3.5) and a
    recurrent one (RWKV-7): greedy generation from mlxq's folder equals generation from
    mlx_lm.convert's."""
    from mlx_lm import generate, load

    src = ROOT / name
    convert(src, tmp_path / "mlxq", quiet=True, quantize=True)
    mlx_lm_convert(src, tmp_path / "ref", quantize=True)
    texts = []
    for d in ("mlxq", "ref"):
        model, tok = load(str(tmp_path / d))
        texts.append(generate(model, tok, prompt="the a of to", max_tokens=8, verbose=False))
    assert texts[0] == texts[1] and texts[0]


def variant(name: str, dst: Path, **config) -> Path:
    """A copy of fixture ``name`` with config keys changed."""
    shutil.copytree(ROOT / name, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(config)
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


@pytest.mark.parametrize("flags", [{}, {"quantize": True}, {"dtype": "float16"}])
@pytest.mark.parametrize("name", ["bailing_moe", "bailing_moe_linear"])
def test_a_normalised_output_head_is_mlx_lms(name, flags, tmp_path):
    """``norm_head``: the head divided by its column norms over the whole vocabulary
    (float32, MLX's summation order), then cast back, before any quantization."""
    src = variant(name, tmp_path / "src", norm_head=True)
    convert(src, tmp_path / "mlxq", quiet=True, **flags)
    mlx_lm_convert(src, tmp_path / "ref", **flags)
    same_folder(tmp_path / "mlxq", tmp_path / "ref")
    if not flags:  # the step ran: the head is not the checkpoint's
        head = mlxq.load_checkpoint(tmp_path / "mlxq")["lm_head.weight"]
        assert not np.array_equal(head, mlxq.load_checkpoint(ROOT / name)["lm_head.weight"])


# ---- gear: mlx_lm.convert stops at the tokenizer ---------------------------------------------

FLAGS = {
    "q": {"quantize": True},
    "q8g32": {"quantize": True, "q_bits": 8, "q_group_size": 32},
    "mxfp4": {"quantize": True, "q_mode": "mxfp4"},
    "mixed_3_6": {"quantize": True, "quant_predicate": "mixed_3_6"},
    "f16": {"dtype": "float16"},
}


@pytest.mark.xfail(strict=True,
                   reason="transformers 5.25's AutoTokenizer loads the config of a model type it "
                          "does not know as a PreTrainedConfig, whose validation rejects Gear's "
                          "'conv_mixer' layer_types (StrictDataclassClassValidationError: The "
                          "`layer_types` entries must be in ...): mlx_lm.convert fails before "
                          "any weight")
def test_mlx_lm_convert_fails_on_gears_tokenizer(tmp_path):
    try:
        mlx_lm_convert(ROOT / "gear", tmp_path / "ref")
    except Exception as e:
        assert "layer_types" in str(e)
        raise


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_gear_is_what_mlx_lm_writes_with_the_tokenizer_loaded(flags, tmp_path, monkeypatch):
    """mlx-lm's own conversion of Gear, with only its tokenizer loading changed: the
    tokenizer comes from the same tokenizer files beside a config transformers accepts
    (the weights, the config mlx-lm saves and every other step are untouched)."""
    import mlx_lm.utils

    tok_dir = tmp_path / "tok"
    shutil.copytree(ROOT / "gear", tok_dir)
    (tok_dir / "config.json").write_text(json.dumps({"model_type": "llama"}))
    real = mlx_lm.utils.load_tokenizer
    monkeypatch.setattr(mlx_lm.utils, "load_tokenizer",
                        lambda path, *a, **k: real(tok_dir, *a, **k))
    convert(ROOT / "gear", tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(ROOT / "gear", tmp_path / "ref", **FLAGS[flags])
    same_folder(tmp_path / "mlxq", tmp_path / "ref")
