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


# ---- hunyuan: fused projections, cross-layer attention ---------------------------------------

def write_variant(name: str, dst: Path, edit) -> Path:
    """A copy of fixture ``name`` whose tensors and config ``edit(tensors, config)`` changes
    (numpy only)."""
    shutil.copytree(ROOT / name, dst)
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(dst).items()}
    cfg = json.loads((dst / "config.json").read_text())
    edit(w, cfg)
    (dst / "model.safetensors").unlink()
    mlxq.save_safetensors(dst / "model.safetensors", w, metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))
    return dst


def fused_dense(w: dict, cfg: dict) -> None:
    """Hunyuan's dense layout with fused projections (``num_experts`` 1): per layer a
    ``qkv_proj`` laid out per KV group as [its query heads, k, v] and a
    ``gate_and_up_proj`` holding up then gate; the shared MLP's weights serve as the MLP."""
    heads, kv, h = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    hd, groups = h // heads, heads // kv
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        q, k, v = (w.pop(f"{p}.self_attn.{n}_proj.weight") for n in "qkv")
        parts = []
        for g in range(kv):
            parts += [q[g * groups * hd:(g + 1) * groups * hd], k[g * hd:(g + 1) * hd],
                      v[g * hd:(g + 1) * hd]]
        w[f"{p}.self_attn.qkv_proj.weight"] = np.concatenate(parts)
        for k_ in [k_ for k_ in w if k_.startswith(f"{p}.mlp.")]:
            if ".shared_mlp." not in k_:
                del w[k_]
        up = w.pop(f"{p}.mlp.shared_mlp.up_proj.weight")
        gate = w.pop(f"{p}.mlp.shared_mlp.gate_proj.weight")
        w[f"{p}.mlp.gate_and_up_proj.weight"] = np.concatenate([up, gate])
        w[f"{p}.mlp.down_proj.weight"] = w.pop(f"{p}.mlp.shared_mlp.down_proj.weight")
    cfg.update(num_experts=1, use_mixed_mlp_moe=False, moe_topk=[1, 1],
               architectures=["HunYuanForCausalLM"])


def cross_layer_attention(w: dict, cfg: dict) -> None:
    """Hunyuan-Large's CLA: only every ``cla_share_factor``-th layer has k/v projections."""
    for n in ("k_proj", "v_proj"):
        del w[f"model.layers.1.self_attn.{n}.weight"]
    cfg.update(use_cla=True, cla_share_factor=2)


@pytest.mark.parametrize("flags", sorted(FLAGS))
@pytest.mark.parametrize("edit", [fused_dense, cross_layer_attention])
def test_hunyuan_variants_are_mlx_lms(edit, flags, tmp_path):
    src = write_variant("hunyuan", tmp_path / "src", edit)
    mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    same_folder(tmp_path / "mlxq", tmp_path / "ref")
    if edit is fused_dense:
        names = mlxq.load_checkpoint(tmp_path / "mlxq")
        assert "model.layers.0.self_attn.k_proj.weight" in names or \
            "model.layers.0.self_attn.k_proj.scales" in names


# ---- Qwen3.5 FP8: dequantized before sanitize, as for any family mlx-lm does not ------------

@pytest.mark.parametrize("flags", ["q", "f16", "mxfp4"])
def test_a_qwen3_5_fp8_release_is_mlx_lm_on_its_dequantized_copy(flags, tmp_path):
    """Qwen3.5's FP8 releases (128x128 block E4M3, ``weight_scale_inv``): mlx-lm's qwen3_5
    sanitize has no FP8 step (it refuses them: the scales are parameters not in its model),
    so mlxq's source-format path dequantizes them first, bit for bit as mlx-lm's ``dequant``
    would; the folder is mlx-lm's conversion of the copy dequantized by an independent numpy
    formula."""
    from test_models_fp8_families import block_fp8_variant
    from test_source_formats import dequantized_fp8_copy

    src = block_fp8_variant("qwen3_5", tmp_path / "src")
    with pytest.raises(ValueError, match="parameters not in model"):
        mlx_lm_convert(src, tmp_path / "refuses")
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(dequantized_fp8_copy(src, tmp_path / "copy"), tmp_path / "ref", **FLAGS[flags])
    same_folder(tmp_path / "mlxq", tmp_path / "ref")


# ---- row blocks -----------------------------------------------------------------------------

def _head_normed(name):
    return lambda tmp: variant(name, tmp / "src", norm_head=True)


@pytest.mark.parametrize("name,make", [
    ("qwen3_5_moe", None), ("bailing_hybrid", None), ("baichuan_m1", None), ("rwkv7", None),
    ("plamo2", None), ("bailing_moe+norm_head", _head_normed("bailing_moe")),
    ("hunyuan+fused", lambda tmp: write_variant("hunyuan", tmp / "src", fused_dense)),
])
def test_tiny_row_blocks_give_the_same_folder(name, make, tmp_path, monkeypatch):
    """Every tensor evaluated a few rows at a time (split experts, a head normalised over
    its whole vocabulary axis or row by row, per-group q/k/v cuts) gives the folder whole
    tensors give."""
    import mlxq.conversion.execute as ex
    from mlxq.testing import assert_checkpoints_equal

    src = make(tmp_path) if make else ROOT / name
    for flags in ("q", "f16"):
        convert(src, tmp_path / f"whole-{flags}", quiet=True, **FLAGS[flags])
        with monkeypatch.context() as m:
            m.setattr(ex, "BLOCK_BYTES", 300)
            convert(src, tmp_path / f"rows-{flags}", quiet=True, **FLAGS[flags])
        assert_checkpoints_equal(tmp_path / f"rows-{flags}", tmp_path / f"whole-{flags}",
                                 check_config=True, check_index=True)


def narrow_v_lora(w: dict, cfg: dict) -> None:
    """RWKV7-Goose-Pile-168M's widths: ``v_lora`` 32 wide (the others 64)."""
    for k in list(w):
        if ".v_lora.lora.0." in k:
            w[k] = w[k][:32]
        elif k.endswith(".v_lora.lora.2.weight"):
            w[k] = np.ascontiguousarray(w[k][:, :32])
    cfg["v_low_rank_dim"] = 32


@pytest.mark.parametrize("flags", ["q", "q8g32", "mxfp4"])
def test_rwkv7_lora_narrower_than_its_8_bit_group_is_refused_as_mlx_lm_refuses(flags, tmp_path):
    """rwkv7's quant_predicate gives ``lora.2`` 8 bits without a group size, so
    ``to_quantized`` takes 64: a 32-wide ``v_lora.lora.2`` that the global group size of 32
    lets through cannot be quantized. mlx-lm fails inside MLX; mlxq refuses by name. At
    groups of 64 the layer is skipped and both convert it."""
    src = write_variant("rwkv7", tmp_path / "src", narrow_v_lora)
    if flags == "q":
        convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
        mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
        same_folder(tmp_path / "mlxq", tmp_path / "ref")
        return
    with pytest.raises(ValueError):
        mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
    with pytest.raises(mlxq.errors.InvalidArgumentError, match="v_lora.lora.2"):
        convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    assert not (tmp_path / "mlxq").exists()


# ---- prism_hadamard_qwen35: what mlx-lm's pack model refuses ---------------------------------

SIGNS = "language_model.model.layers.0.linear_attn.in_proj_qkv.signs"


def _bad_sign(w, c):
    w[SIGNS] = w[SIGNS].copy()
    w[SIGNS][3] = 0.5


def _no_sign(w, c):
    del w[SIGNS]


def _namespace(w, c):
    c["tensor_namespace"] = "mlx-lm-text"


def _four_bit(w, c):
    c["quantization"] = {"bits": 4, "group_size": 128, "mode": "affine"}


def _twice(w, c):
    c["modules"].append(dict(c["modules"][0]))


def _not_a_linear(w, c):
    c["modules"][1]["path"] = "model.layers.0.linear_attn.norm"


@pytest.mark.parametrize("edit,match", [
    (_bad_sign, "only -1 and \\+1"), (_no_sign, "Missing Hadamard sign vector"),
    (_namespace, "Unsupported Hadamard pack"), (_four_bit, "2-bit affine"),
    (_twice, "Duplicate packed module"), (_not_a_linear, "Unknown or unsupported packed"),
])
def test_a_pack_mlx_lm_refuses_is_refused_with_a_typed_error(edit, match, tmp_path):
    src = write_variant("prism_hadamard_qwen35", tmp_path / "src", edit)
    with pytest.raises(ValueError, match=match):
        mlx_lm_convert(src, tmp_path / "ref")
    with pytest.raises(mlxq.errors.MlxqError, match=match):
        convert(src, tmp_path / "mlxq", quiet=True)
    assert not (tmp_path / "mlxq").exists()


def test_bailing_hybrid_with_the_v3_architecture_is_not_converted_as_bailing_hybrid():
    """mlx-lm's MODEL_ARCHITECTURE_REMAPPING: model_type bailing_hybrid with architecture
    BailingMoeV3ForCausalLM (Ling 3's KDA model) is its bailing_moe_v3 module, not
    bailing_hybrid (Ling/Ring 2.5's lightning attention)."""
    from mlx_lm.utils import MODEL_ARCHITECTURE_REMAPPING

    from mlxq.models import family_for

    config = {"model_type": "bailing_hybrid", "architectures": ["BailingMoeV3ForCausalLM"]}
    assert MODEL_ARCHITECTURE_REMAPPING[("bailing_hybrid", "BailingMoeV3ForCausalLM")] == \
        "bailing_moe_v3"
    try:
        assert family_for(config).module == "bailing_moe_v3"
    except mlxq.errors.UnknownEnumValueError as e:
        assert "bailing_moe_v3" in str(e)
    assert family_for({"model_type": "bailing_hybrid",
                       "architectures": ["BailingMoeV2_5ForCausalLM"]}).module == "bailing_hybrid"


def test_dequantizing_a_pack_is_refused(tmp_path):
    """mlx-lm's dequantize keeps the rotated 2-bit modules packed but drops the config's
    quantization, writing a folder its own loader refuses; mlxq says so instead."""
    from mlx_lm.utils import load_model

    src = ROOT / "prism_hadamard_qwen35"
    mlx_lm_convert(src, tmp_path / "ref", dequantize=True)
    with pytest.raises(ValueError, match="2-bit affine"):
        load_model(tmp_path / "ref")
    with pytest.raises(mlxq.errors.InvalidArgumentError, match="Hadamard"):
        convert(src, tmp_path / "mlxq", quiet=True, dequantize=True)
    assert not (tmp_path / "mlxq").exists()
