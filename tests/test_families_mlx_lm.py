"""Every family, end to end: each checkpoint transformers built (tests/fixtures/hf/) is
converted by mlxq and by mlx_lm.convert itself with the same flags, and the folders must
be identical — tensors (names, dtypes, shapes, bytes), the quantization blocks, config.json
byte for byte. mlx-lm runs in this process (skipped without it)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

mlx_lm = pytest.importorskip("mlx_lm")

import mlxq.errors  # noqa: E402
import mlxq.models  # noqa: E402
from mlxq import convert  # noqa: E402
from mlxq.errors import MlxqWarning  # noqa: E402
from mlxq.testing import assert_checkpoints_equal  # noqa: E402
from support import mlx_lm_convert

FIXTURES = Path(os.environ.get("MLXQ_HF_FIXTURES",
                               Path(__file__).resolve().parent / "fixtures" / "hf"))

FLAGS = {
    "q": {"quantize": True},
    "q8g32": {"quantize": True, "q_bits": 8, "q_group_size": 32},
    "mxfp4": {"quantize": True, "q_mode": "mxfp4"},
    "mixed_3_6": {"quantize": True, "quant_predicate": "mixed_3_6"},
    "f16": {"dtype": "float16"},
}

# Layouts mlx-lm 0.32.2 itself cannot convert and mlxq does (found by running it on these
# fixtures): the reason, per fixture; mlxq's output for these must load in mlx-lm, and
# tests/test_families_logits.py checks it against transformers' logits.
MLX_LM_FAILS: dict[str, str] = {
    "gpt2": "transformers saves GPT-2 under 'transformer.', mlx-lm expects the Hub's bare names",
    "gpt_oss": "the Hub's bf16 expert layout: mlx-lm's sanitize handles only the MXFP4 one",
    # fam-dense
    "muse_glimmer": "transformers keeps the vision tower under 'model.', which mlx-lm's sanitize "
                    "does not drop",
    "talkie": "the publisher's names lack the 'model.' mlx-lm's model has",
    # fam-vl
    "kimi_vl": "mlx-lm's kimi_vl sanitize leaves kv_b_proj, which its DeepseekV3Model has "
               "split into embed_q/unembed_out ('Received 2 parameters not in model'): see "
               "tests/test_families_multimodal.py",
    # --- fam-hybrid (tests/test_families_hybrid.py compares these with mlx-lm's weights path)
    "gear": "transformers 5.25's AutoTokenizer rejects the config's 'conv_mixer' layer_types "
            "(StrictDataclassClassValidationError), so mlx_lm.convert fails "
            "before converting any weight",
}

# Faithful checkpoints mlx-lm 0.32.2 itself fails on (fixture -> the flag sets, None for all;
# the exception mlx_lm.convert raises; a pattern of its message): each case is an xfail that
# checks mlx-lm still fails so (when it converts the layout, the case fails and goes). mlxq
# refuses these with a typed error (test_same_folder_as_mlx_lm_convert), or, for the
# MLX_LM_FAILS above, writes the folder mlx-lm writes for the layout it expects.
_NOT_IN_MODEL = r"parameters not in model"
MLX_LM_XFAIL: dict[str, tuple] = {
    "afm7": (("q", "q8g32", "mxfp4", "mixed_3_6"), TypeError,
             r"FusedLinear\.to_quantized\(\) got an unexpected keyword argument 'mode'"),
    "bitnet_bf16": (None, ValueError, r"Missing \d+ parameters"),  # BitLinear's weight_scale
    "muse_glimmer": (None, ValueError, _NOT_IN_MODEL),
    "nanochat_hf": (None, ValueError, _NOT_IN_MODEL),
    # NVIDIA's linear_attn / linear_mlp, mlx-lm's linear
    "nemotron_nas_linear": (None, ValueError, _NOT_IN_MODEL),
    "olmo_hf": (None, TypeError, r"missing 5 required positional arguments: 'd_model'"),
    "talkie": (None, ValueError, _NOT_IN_MODEL),
}
# Fixtures already quantized in MLX's layout: -q keeps their layers and says so
ALREADY_QUANTIZED = {"prism_hadamard_qwen35"}


def fixtures() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(d for d in FIXTURES.iterdir() if (d / "config.json").is_file()
                  and has_family(json.loads((d / "config.json").read_text())))


def has_family(config: dict) -> bool:
    """Whether mlxq routes this config to a family (by model_type and architectures)."""
    try:
        mlxq.models.family_for(config)
    except mlxq.errors.UnknownEnumValueError:
        return False
    return True


CASES = [pytest.param(d, name, id=f"{d.name}-{name}") for d in fixtures() for name in FLAGS]


XFAIL_CASES = [pytest.param(d, name, id=f"{d.name}-{name}") for d in fixtures()
               if d.name in MLX_LM_XFAIL for name in FLAGS
               if MLX_LM_XFAIL[d.name][0] is None or name in MLX_LM_XFAIL[d.name][0]]


@pytest.mark.parametrize("folder,flags", XFAIL_CASES)
def test_mlx_lm_fails_on_a_faithful_checkpoint(folder, flags, tmp_path):
    _, exc, pattern = MLX_LM_XFAIL[folder.name]
    with pytest.raises(exc, match=pattern):
        mlx_lm_convert(folder, tmp_path / "ref", **FLAGS[flags])
    pytest.xfail(f"mlx_lm.convert fails on {folder.name}: {exc.__name__} ({pattern})")


@pytest.mark.parametrize("folder,flags", CASES)
def test_same_folder_as_mlx_lm_convert(folder, flags, tmp_path):
    kw = FLAGS[flags]
    if folder.name in MLX_LM_FAILS:
        pytest.skip(f"mlx-lm cannot convert this layout ({MLX_LM_FAILS[folder.name]}): "
                    "see the tests below and tests/test_families_logits.py")
    try:
        mlx_lm_convert(folder, tmp_path / "ref", **kw)
    except Exception:  # mlx-lm refuses: so must mlxq, with a typed error, writing nothing
        with pytest.raises(mlxq.errors.MlxqError):
            convert(folder, tmp_path / "mlxq", quiet=True, **kw)
        assert not (tmp_path / "mlxq").exists()
        return
    cfg = json.loads((folder / "config.json").read_text())
    # (BitNet's packed ternary layers are mlx-lm's own BitLinear modules, not MLX-quantized
    # layers: nothing to say about them)
    method = (cfg.get("quantization_config") or {}).get("quant_method")
    prequantized = (method is not None and method != "bitnet"
                    or folder.name in ALREADY_QUANTIZED)
    with (pytest.warns(MlxqWarning, match="already quantized and kept") if prequantized
          and kw.get("quantize") else contextlib.nullcontext()):  # a release in MLX's layout
        convert(folder, tmp_path / "mlxq", quiet=True, **kw)
    a, b = tmp_path / "mlxq", tmp_path / "ref"
    assert_checkpoints_equal(a, b, check_config=True, check_index=False)
    ca, cb = json.loads((a / "config.json").read_text()), json.loads((b / "config.json").read_text())
    assert ca.get("quantization") == cb.get("quantization")
    assert ca.get("quantization_config") == cb.get("quantization_config")
    assert (a / "config.json").read_text() == (b / "config.json").read_text()


def test_gpt2_in_the_hubs_layout_is_mlx_lms_folder_and_the_same_as_transformers_layout(tmp_path):
    """The Hub's gpt2 checkpoint has the base model's names (h.0.attn.c_attn.weight), which
    mlx-lm converts; transformers' save adds 'transformer.'. Both give one folder."""
    src = FIXTURES / "gpt2"
    hub = tmp_path / "hub"
    hub.mkdir()
    for f in src.iterdir():
        if f.suffix != ".safetensors":
            (hub / f.name).write_bytes(f.read_bytes())
    w = mlxq.load_checkpoint(src)
    mlxq.save_safetensors(hub / "model.safetensors",
                          {k.removeprefix("transformer."): v for k, v in w.items()
                           if k != "lm_head.weight"}, metadata={"format": "pt"})
    for name, kw in FLAGS.items():
        if name == "mixed_3_6":  # no down_proj: both refuse
            with pytest.raises(mlxq.errors.MissingKeyError, match="down_proj"):
                convert(src, tmp_path / f"tf-{name}", quiet=True, **kw)
            with pytest.raises(ValueError, match="expected keys for mixed quant"):
                mlx_lm_convert(hub, tmp_path / f"ref-{name}", **kw)
            continue
        convert(hub, tmp_path / f"hub-{name}", quiet=True, **kw)
        mlx_lm_convert(hub, tmp_path / f"ref-{name}", **kw)
        assert_checkpoints_equal(tmp_path / f"hub-{name}", tmp_path / f"ref-{name}",
                                 check_config=True, check_index=False)
        convert(src, tmp_path / f"tf-{name}", quiet=True, **kw)
        assert_checkpoints_equal(tmp_path / f"tf-{name}", tmp_path / f"ref-{name}",
                                 check_config=True, check_index=False)


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_gpt_oss_in_the_hubs_bf16_layout_converts_into_what_mlx_lm_loads(flags, tmp_path):
    from mlx_lm.utils import load_model

    convert(FIXTURES / "gpt_oss", tmp_path / "out", quiet=True, **FLAGS[flags])
    load_model(tmp_path / "out")  # strict: every parameter, nothing extra
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    if "quantization" in cfg and "quant_predicate" not in FLAGS[flags]:
        # the router stays at 8 bits, as gpt_oss's quant_predicate says (a recipe replaces it)
        router = [k for k in cfg["quantization"] if k.endswith("mlp.router")]
        assert router and all(cfg["quantization"][k] == {"group_size": 64, "bits": 8}
                              for k in router)


def _renamed_copy(src: Path, dst: Path, rename) -> Path:
    """``src`` with its tensors renamed by ``rename(name)`` (None drops one), written by
    mlxq's safetensors writer (a layout only, the bytes unchanged)."""
    dst.mkdir()
    for f in src.iterdir():
        if f.suffix != ".safetensors":
            (dst / f.name).write_bytes(f.read_bytes())
    w = mlxq.load_checkpoint(src)
    out = {rename(k): v for k, v in w.items() if rename(k) is not None}
    mlxq.save_safetensors(dst / "model.safetensors", out, metadata={"format": "pt"})
    return dst


# fam-dense: what mlx-lm's sanitize would have had to do for the layouts it fails on
_MLX_LM_LAYOUT = {
    "talkie": lambda k: f"model.{k}" if k.startswith(("embed.", "blocks.")) else k,
    "muse_glimmer": lambda k: None if k.startswith(
        ("model.vision_tower.", "model.vision_adapter.", "model.vision_projection.")) else k,
}


@pytest.mark.parametrize("name", sorted(_MLX_LM_LAYOUT))
@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_a_layout_mlx_lm_fails_on_gives_its_folder_for_the_layout_it_expects(
        name, flags, tmp_path):
    """talkie under its publisher's names, Muse Glimmer as transformers saves it: mlxq's
    folder is the one mlx_lm.convert writes for the same checkpoint renamed as mlx-lm's
    sanitize expects, and so is mlxq's own conversion of that layout."""
    src = FIXTURES / name
    if not src.is_dir():
        pytest.skip(f"no {name} fixture")
    hub = _renamed_copy(src, tmp_path / "expected-layout", _MLX_LM_LAYOUT[name])
    kw = FLAGS[flags]
    try:
        mlx_lm_convert(hub, tmp_path / "ref", **kw)
    except ValueError as e:  # talkie has no down_proj for the mixed recipes
        assert "expected keys for mixed quant" in str(e)
        for folder in (src, hub):
            with pytest.raises(mlxq.errors.MlxqError):
                convert(folder, tmp_path / "mlxq", quiet=True, **kw)
        return
    for folder, out in ((src, "mlxq"), (hub, "mlxq-expected-layout")):
        convert(folder, tmp_path / out, quiet=True, **kw)
        assert_checkpoints_equal(tmp_path / out, tmp_path / "ref", check_config=True,
                                 check_index=False)
        assert (tmp_path / out / "config.json").read_text() == \
            (tmp_path / "ref" / "config.json").read_text()


@pytest.mark.parametrize("name", ["deepseek_v3", "qwen3_next", "falcon_h1", "nemotron_h",
                                  "gpt_oss", "granitemoe", "lfm2", "fp8/deepseek_v3",
                                  "compressed_tensors/deepseek_v3", "deepseek_v41", "mistral4",
                                  "kimi_k3",
                                  # fam-vl: fused experts transposed one at a time, split
                                  "qwen3_vl_moe", "llama4", "gemma4_text",
                                  "compressed_tensors/kimi_k25"])
def test_tiny_row_blocks_give_the_same_folder(name, tmp_path, monkeypatch):
    """Every tensor evaluated a few rows at a time (across experts, through dequantization,
    transposes and multipliers) gives the folder whole tensors give."""
    import mlxq.conversion.execute as ex

    src = FIXTURES / name

    def warns(flags):  # -q on pre-quantized INT4 layers keeps them, and says so
        if flags == "q" and name.startswith("compressed_tensors/"):
            return pytest.warns(MlxqWarning, match="of the compressed-tensors checkpoint "
                                "keep their own quantization")
        if flags == "q" and name == "deepseek_v41":  # FP8/FP4 in MLX's layout: kept
            return pytest.warns(MlxqWarning, match="already quantized and kept")
        return contextlib.nullcontext()
    for flags in ("q", "f16"):
        with warns(flags):
            convert(src, tmp_path / f"whole-{flags}", quiet=True, **FLAGS[flags])
        with monkeypatch.context() as m, warns(flags):
            m.setattr(ex, "BLOCK_BYTES", 300)
            convert(src, tmp_path / f"rows-{flags}", quiet=True, **FLAGS[flags])
        assert_checkpoints_equal(tmp_path / f"rows-{flags}", tmp_path / f"whole-{flags}",
                                 check_config=True, check_index=True)


@pytest.mark.parametrize("name", ["llama", "qwen3_moe", "nemotron_h", "kimi_linear",
                                  "deepseek_v41"])
def test_mlx_lm_generates_the_same_from_both_folders(name, tmp_path):
    """A dense, a MoE, a state-space (Mamba-2 hybrid), a linear-attention MoE (Kimi-Linear)
    and a MoE released in MLX's microscaling layout (DeepSeek-V4.1's FP8/FP4): greedy
    generation from mlxq's folder equals generation from mlx_lm.convert's."""
    from mlx_lm import generate, load

    src = FIXTURES / name
    with (pytest.warns(MlxqWarning, match="already quantized and kept")
          if name == "deepseek_v41" else contextlib.nullcontext()):
        convert(src, tmp_path / "mlxq", quiet=True, quantize=True)
    mlx_lm_convert(src, tmp_path / "ref", quantize=True)
    texts = []
    for d in ("mlxq", "ref"):
        model, tok = load(str(tmp_path / d))
        texts.append(generate(model, tok, prompt="the a of to", max_tokens=8, verbose=False))
    assert texts[0] == texts[1] and texts[0]
