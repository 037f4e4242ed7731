"""The multimodal containers (mlx-lm's gemma3, mistral3/llava, pixtral, qwen2_vl, qwen3_vl,
qwen3_vl_moe, lfm2-vl, llama4, gemma4, kimi_k25, ...) on the layouts and configs their
releases come in besides the one transformers 5 saves: each variant is made from a fixture
with MLX itself (renamed tensors, an edited config), converted by mlx_lm.convert and by
mlxq with the same flags, and the folders compared (tensors and config.json byte for
byte). Where mlx-lm 0.32.2 refuses a faithful input, the test says with which error, and
checks that mlxq refuses it too, writing nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("mlx_lm")

import mlxq.errors  # noqa: E402
from mlxq import convert  # noqa: E402
from support import assert_same_folder, mlx_lm_convert  # noqa: E402

FIXTURES = Path(os.environ.get("MLXQ_HF_FIXTURES",
                               Path(__file__).resolve().parent / "fixtures" / "hf"))
FLAGS = {
    "q": {"quantize": True},
    "mixed_3_6": {"quantize": True, "quant_predicate": "mixed_3_6"},
    "f16": {"dtype": "float16"},
}


def variant(name: str, dst: Path, *, rename=(), config=None, tensors=None) -> Path:
    """Fixture ``name`` copied to ``dst`` with its tensors renamed (``(regex, repl)``, the
    first that matches), changed by ``tensors(name, array) -> array`` (MLX arrays), and
    its config.json edited in place by ``config(dict)``."""
    import mlx.core as mx

    src = FIXTURES / name
    shutil.copytree(src, dst)
    w = mx.load(str(src / "model.safetensors"))
    out = {}
    for k, v in w.items():
        for pat, repl in rename:
            if re.search(pat, k):
                k = re.sub(pat, repl, k)
                break
        out[k] = tensors(k, v) if tensors else v
    mx.save_safetensors(str(dst / "model.safetensors"), out, metadata={"format": "pt"})
    if config is not None:
        cfg = json.loads((dst / "config.json").read_text())
        config(cfg)
        (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


def same_as_mlx_lm(src: Path, tmp_path: Path, flags: str) -> None:
    """The same folder as mlx_lm.convert's, or, where mlx-lm refuses (mixed recipes need a
    down_proj), a typed refusal writing nothing."""
    try:
        mlx_lm_convert(src, tmp_path / f"ref-{flags}", **FLAGS[flags])
    except Exception:
        with pytest.raises(mlxq.errors.MlxqError):
            convert(src, tmp_path / f"mlxq-{flags}", quiet=True, **FLAGS[flags])
        assert not (tmp_path / f"mlxq-{flags}").exists()
        return
    convert(src, tmp_path / f"mlxq-{flags}", quiet=True, **FLAGS[flags])
    assert_same_folder(tmp_path / f"mlxq-{flags}", tmp_path / f"ref-{flags}")


def both_refuse(src: Path, tmp_path: Path, mlx_lm_error: str) -> mlxq.errors.MlxqError:
    with pytest.raises(Exception, match=mlx_lm_error):
        mlx_lm_convert(src, tmp_path / "ref", quantize=True)
    with pytest.raises(mlxq.errors.MlxqError) as e:
        convert(src, tmp_path / "mlxq", quiet=True, quantize=True)
    assert not (tmp_path / "mlxq").exists()
    return e.value


# ---- what ModelArgs writes into text_config, which convert saves -------------------------

def _drop_text_key(key):
    def edit(cfg):
        del cfg["text_config"][key]
    return edit


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_llava_without_a_text_tie_flag_gets_mistral3s_false(flags, tmp_path):
    src = variant("llava", tmp_path / "src", config=_drop_text_key("tie_word_embeddings"))
    same_as_mlx_lm(src, tmp_path, flags)
    out = json.loads((tmp_path / f"mlxq-{flags}" / "config.json").read_text())
    assert out["text_config"]["tie_word_embeddings"] is False


def test_pixtral_always_unties_and_says_so(tmp_path):
    def edit(cfg):
        cfg["text_config"]["tie_word_embeddings"] = True
    src = variant("pixtral", tmp_path / "src", config=edit)
    same_as_mlx_lm(src, tmp_path, "q")
    out = json.loads((tmp_path / "mlxq-q" / "config.json").read_text())
    assert out["text_config"]["tie_word_embeddings"] is False


def test_gemma3_writes_the_top_level_vocab_size_into_text_config(tmp_path):
    def edit(cfg):
        cfg["text_config"]["vocab_size"] = 5  # overwritten by the top level's 128
    src = variant("gemma3", tmp_path / "src", config=edit)
    same_as_mlx_lm(src, tmp_path, "q")
    out = json.loads((tmp_path / "mlxq-q" / "config.json").read_text())
    assert out["text_config"]["vocab_size"] == 128


# ---- the other layouts of the releases ----------------------------------------------------

def test_mistral3_in_the_nested_layout(tmp_path):
    """Newer saves: model.language_model.*, model.vision_tower.*, a top-level lm_head."""
    src = variant("mistral3", tmp_path / "src", rename=[
        (r"^language_model\.model\.", "model.language_model."),
        (r"^language_model\.lm_head\.", "lm_head."),
        (r"^(vision_tower|multi_modal_projector)\.", r"model.\1.")])
    for flags in FLAGS:
        same_as_mlx_lm(src, tmp_path, flags)


def test_qwen2_vl_in_the_nested_layout_and_qwen3_vl_in_the_flat_one(tmp_path):
    src = variant("qwen2_vl", tmp_path / "q2", rename=[
        (r"^model\.", "model.language_model."), (r"^visual\.", "model.visual.")])
    same_as_mlx_lm(src, tmp_path / "a", "q")
    src = variant("qwen3_vl", tmp_path / "q3", rename=[
        (r"^model\.language_model\.", "model."), (r"^model\.visual\.", "visual.")])
    same_as_mlx_lm(src, tmp_path / "b", "q")


def test_qwen2_vl_with_the_releases_flat_config(tmp_path):
    """Qwen2-VL's releases have no text_config: the config itself is the text model's."""
    def flatten(cfg):
        cfg.update(cfg.pop("text_config"))
        cfg["model_type"] = "qwen2_vl"
    src = variant("qwen2_vl", tmp_path / "src", config=flatten)
    for flags in FLAGS:
        same_as_mlx_lm(src, tmp_path, flags)


def test_qwen3_vl_moe_in_the_language_model_layout(tmp_path):
    """language_model.model.* and language_model.lm_head (no top-level model)."""
    src = variant("qwen3_vl_moe", tmp_path / "src", rename=[
        (r"^model\.language_model\.", "language_model.model."),
        (r"^lm_head\.", "language_model.lm_head."), (r"^model\.visual\.", "visual.")])
    for flags in FLAGS:
        same_as_mlx_lm(src, tmp_path, flags)


def test_lfm2_vl_as_its_releases_have_it_is_refused_by_both(tmp_path):
    """LiquidAI's LFM2-VL releases (what transformers saves): model.language_model.*,
    model.vision_tower.*, conv kernels [C, 1, K]. mlx-lm's lfm2-vl sanitize only drops the
    top-level towers, so its strict load finds the language model's names not in its
    model: 'Received N parameters not in model'."""
    e = both_refuse(FIXTURES / "lfm2-vl", tmp_path, "parameters not in model")
    assert isinstance(e, mlxq.errors.FormatError) and e.key.startswith("model.")


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_lfm2_vl_in_mlx_vlms_layout(flags, tmp_path):
    """What mlx-lm's lfm2-vl does convert: language_model.model.*, top-level towers, conv
    kernels already in MLX's [C, K, 1] (as mlx-vlm's conversions of LFM2-VL have them)."""
    src = variant("lfm2-vl", tmp_path / "src", rename=[
        (r"^model\.language_model\.", "language_model.model."),
        (r"^model\.(vision_tower|multi_modal_projector)\.", r"\1.")],
        tensors=lambda k, v: v.moveaxis(2, 1) if k.endswith("conv.conv.weight") else v)
    same_as_mlx_lm(src, tmp_path, flags)


# ---- generation ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gemma3", "qwen3_vl_moe"])
def test_mlx_lm_generates_the_same_from_both_folders(name, tmp_path):
    """A multimodal container (and one whose experts are fused on the Hub): greedy
    generation from mlxq's folder equals generation from mlx_lm.convert's."""
    from mlx_lm import generate, load

    src = FIXTURES / name
    convert(src, tmp_path / "mlxq", quiet=True, quantize=True)
    mlx_lm_convert(src, tmp_path / "ref", quantize=True)
    texts = []
    for d in ("mlxq", "ref"):
        model, tok = load(str(tmp_path / d))
        texts.append(generate(model, tok, prompt="the a of to", max_tokens=8, verbose=False))
    assert texts[0] == texts[1] and texts[0]


# ---- Kimi K2.5's compressed-tensors INT4 release -------------------------------------------

CT_K25 = FIXTURES / "compressed_tensors" / "kimi_k25"


@pytest.mark.parametrize("flags", ["plain", "q", "f16"])
def test_kimi_k25_int4_experts_kept_as_mlx_lm_keeps_them(flags, tmp_path):
    """quantization_config in text_config (as the release has it): the packed experts are
    remapped by deepseek_v3's sanitize inside kimi_k25's, through the same source-format
    path as Kimi-K2-Thinking's."""
    kw = {"plain": {}, "q": {"quantize": True}, "f16": {"dtype": "float16"}}[flags]
    with pytest.warns(mlxq.MlxqWarning) if flags == "q" else _no_warning():
        r = convert(CT_K25, tmp_path / "mlxq", quiet=True, **kw)
    assert r.repacked_layers == 3
    mlx_lm_convert(CT_K25, tmp_path / "ref", **kw)
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_kimi_k25_int4_experts_requantized_to_the_bits_asked(tmp_path):
    """-q --q-bits 3 quantizes the experts to 3 bits (mlx-lm 0.32 keeps them at 4 and
    records 3: its issue #907): the folder is mlx-lm's for a copy dequantized with
    compressed-tensors' own formula, (code - 8) * scale rounded once to bf16."""
    import mlx.core as mx
    import numpy as np

    src = tmp_path / "copy"
    shutil.copytree(CT_K25, src)
    w = mx.load(str(CT_K25 / "model.safetensors"))
    out = {}
    for k, v in w.items():
        if k.endswith(("weight_scale", "weight_shape")):
            continue
        if k.endswith("weight_packed"):
            base = k[: -len("_packed")]
            words = np.array(v).view(np.uint32)
            codes = (words[..., None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15
            q = codes.reshape(words.shape[0], -1).astype(np.float32) - 8
            s = np.array(w[base + "_scale"].astype(mx.float32))
            out[base] = mx.array(q * np.repeat(s, q.shape[1] // s.shape[1], axis=1)).astype(
                mx.bfloat16)
            continue
        out[k] = v
    mx.save_safetensors(str(src / "model.safetensors"), out, metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text())
    del cfg["text_config"]["quantization_config"]
    (src / "config.json").write_text(json.dumps(cfg, indent=2))
    convert(CT_K25, tmp_path / "mlxq", quiet=True, quantize=True, q_bits=3)
    mlx_lm_convert(src, tmp_path / "ref", quantize=True, q_bits=3)
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


# ---- Kimi-VL: mlx-lm 0.32.2 cannot convert it ------------------------------------------------

def test_mlx_lm_refuses_kimi_vl_for_the_kv_b_proj_its_sanitize_leaves(tmp_path):
    with pytest.raises(ValueError, match=r"parameters not in model.*\n.*kv_b_proj"):
        mlx_lm_convert(FIXTURES / "kimi_vl", tmp_path / "ref", quantize=True)


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_kimi_vl_converts_into_the_folder_kimi_k25s_sanitize_gives(flags, tmp_path):
    """kimi_k25's sanitize is kimi_vl's plus deepseek_v3's (the kv_b_proj split among its
    steps) on the same language_model. layout: mlx-lm converting the checkpoint relabelled
    kimi_k25 gives mlxq's kimi_vl tensors; the configs differ in model_type alone. The
    folder loads in mlx-lm as kimi_vl."""
    from mlx_lm.utils import load_model

    def relabel(cfg):
        cfg["model_type"] = "kimi_k25"
    as_k25 = variant("kimi_vl", tmp_path / "k25", config=relabel)
    mlx_lm_convert(as_k25, tmp_path / "ref", **FLAGS[flags])
    convert(FIXTURES / "kimi_vl", tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    from mlxq.testing import assert_checkpoints_equal

    assert_checkpoints_equal(tmp_path / "mlxq", tmp_path / "ref", check_config=False)
    got = json.loads((tmp_path / "mlxq" / "config.json").read_text())
    want = json.loads((tmp_path / "ref" / "config.json").read_text())
    assert got.pop("model_type") == "kimi_vl" and want.pop("model_type") == "kimi_k25"
    assert got == want
    load_model(tmp_path / "mlxq")  # strict


# ---- Ministral 3 (mistral3 over a ministral3 text model) -------------------------------------

def _as_ministral3(cfg):
    """The mistral3 fixture's text config as Ministral 3's: model_type ministral3 and its
    YaRN rope with the Llama-4 attention scaling (as transformers wrote them for the
    ministral3 fixture)."""
    text = json.loads((FIXTURES / "ministral3" / "config.json").read_text())
    cfg["text_config"]["model_type"] = "ministral3"
    for k in ("rope_parameters", "rope_scaling", "rope_theta"):
        cfg["text_config"][k] = text[k]


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_mistral3_builds_ministral3s_language_model_when_the_text_config_says_so(flags,
                                                                                 tmp_path):
    src = variant("mistral3", tmp_path / "src", config=_as_ministral3)
    same_as_mlx_lm(src, tmp_path, flags)


def test_a_ministral3_fp8_release_through_mistral3_gives_its_dequantized_copys_folder(tmp_path):
    """Ministral 3's releases: per-tensor E4M3 weights with a scalar weight_scale_inv and
    activation_scale in the language model's layers. mlx-lm's ministral3 sanitize (called
    by mistral3's) multiplies the raw byte codes (see tests/test_models_fp8_families.py);
    mlxq decodes them, so its folder is mlx-lm's for a copy dequantized by numpy."""
    import numpy as np

    import mlxq
    from test_models_fp8_families import dequantize, quantize_blocks

    base = variant("mistral3", tmp_path / "base", config=_as_ministral3)
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(base).items()}
    fp8, dense = {}, {}
    for k, v in w.items():
        if k.startswith("language_model.model.layers.") and k.endswith(".weight") and v.ndim == 2:
            codes, scale = quantize_blocks(v, v.shape)
            fp8[k], fp8[k + "_scale_inv"] = codes, scale.reshape(())
            fp8[k[: -len(".weight")] + ".activation_scale"] = np.array(0.0625, np.float32)
            dense[k] = dequantize(codes, scale.reshape(()))
        else:
            fp8[k] = dense[k] = v
    cfg = json.loads((base / "config.json").read_text())
    for folder, tensors, qc in ((tmp_path / "fp8", fp8, True), (tmp_path / "copy", dense, False)):
        shutil.copytree(base, folder)
        mlxq.save_safetensors(folder / "model.safetensors", tensors, metadata={"format": "pt"})
        c = dict(cfg)
        if qc:
            c["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "static",
                                        "weight_block_size": None, "dequantize": False}
        (folder / "config.json").write_text(json.dumps(c, indent=2))
    with pytest.warns(mlxq.MlxqWarning, match="FP8 activation scales"):
        convert(tmp_path / "fp8", tmp_path / "mlxq", quiet=True, quantize=True)
    mlx_lm_convert(tmp_path / "copy", tmp_path / "ref", quantize=True)
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


def test_gemma4s_shared_layers_lose_their_key_value_projections(tmp_path):
    import mlxq

    out = tmp_path / "mlxq"
    convert(FIXTURES / "gemma4", out, quiet=True)
    src = mlxq.load_checkpoint(FIXTURES / "gemma4")
    assert "model.language_model.layers.2.self_attn.k_proj.weight" in src
    got = mlxq.load_checkpoint(out)
    assert not any(k.startswith("language_model.model.layers.2.self_attn.k") for k in got)
    assert "language_model.model.layers.1.self_attn.k_proj.weight" in got
