"""FP8 releases of the families whose mlx-lm ``sanitize`` dequantizes them itself, built here
from the bf16 fixtures (tests/fixtures/hf/) with an independent numpy quantizer:

- block-scaled E4M3 (128x128 ``weight_scale_inv``; DeepSeek-V3.2, GLM-5, MiMo-V2-Flash):
  mlxq's folder is ``mlx_lm.convert``'s, byte for byte, multi-token-prediction weights
  dropped as mlx-lm drops them;
- per-tensor E4M3 (one ``weight_scale_inv`` and one ``activation_scale`` per Linear;
  Ministral 3): mlx-lm 0.32 multiplies the raw byte codes by the scale (MLX loads
  ``F8_E4M3`` as uint8); mlxq decodes them first, and its folder is the one mlx-lm makes
  from a copy dequantized by the numpy formula.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq import convert
from mlxq._dtypes import bfloat16, float8_e4m3fn
from support import assert_same_folder, mlx_lm_convert

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"
E4M3_MAX = np.float32(448.0)
BLOCK = 128
FLAGS = {
    "plain": {},
    "q": {"quantize": True},
    "mxfp4": {"quantize": True, "q_mode": "mxfp4"},
    "f16": {"dtype": "float16"},
}


# ---- an independent numpy FP8 quantizer and dequantizer ------------------------------------

def fp8_linear(name: str, shape) -> bool:
    """The Linear weights an FP8 release stores in E4M3: all but embeddings, the output head
    and the bare-parameter routers."""
    return (len(shape) == 2 and name.endswith(".weight") and "embed_tokens" not in name
            and not name.startswith("lm_head") and not re.search(r"\.mlp\.gate\.weight$", name))


def quantize_blocks(w: np.ndarray, block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """E4M3 codes and float32 ``weight_scale_inv`` (amax / 448 per block, edge blocks
    partial; a block of zeros gets scale 1)."""
    w = w.astype(np.float32)
    rows, cols = w.shape
    br, bc = -(-rows // block[0]), -(-cols // block[1])
    scale = np.ones((br, bc), np.float32)
    q = np.empty_like(w)
    for i in range(br):
        for j in range(bc):
            sl = np.s_[i * block[0]:(i + 1) * block[0], j * block[1]:(j + 1) * block[1]]
            amax = np.float32(np.abs(w[sl]).max())
            if amax > 0:
                scale[i, j] = amax / E4M3_MAX
            q[sl] = np.clip(w[sl] / scale[i, j], -E4M3_MAX, E4M3_MAX)
    return q.astype(float8_e4m3fn), scale


def dequantize(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """E4M3 decoded exactly, times a float32 scale that broadcasts over it (per tensor, row
    or column) in float32, rounded once to bfloat16 (round to nearest even)."""
    prod = codes.astype(np.float32) * np.asarray(scale, np.float32)
    bits = prod.view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16).view(bfloat16)


def write_folder(src: Path, dst: Path, tensors: dict, config: dict) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and f.name not in (
                "config.json", "model.safetensors.index.json"):
            shutil.copy(f, dst / f.name)
    mlxq.save_safetensors(dst / "model.safetensors", tensors, metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    return dst


def block_fp8_variant(name: str, dst: Path, extra: dict | None = None) -> Path:
    """The fixture ``name`` as an FP8 block release (DeepSeek-V3's layout), plus ``extra``
    bf16 tensors (multi-token-prediction weights, say) quantized the same way."""
    src = ROOT / name
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(src).items()}
    w.update(extra or {})
    out = {}
    for k, v in w.items():
        if fp8_linear(k, v.shape):
            out[k], out[k + "_scale_inv"] = quantize_blocks(v, (BLOCK, BLOCK))
        else:
            out[k] = v
    cfg = json.loads((src / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3",
                                  "activation_scheme": "dynamic",
                                  "weight_block_size": [BLOCK, BLOCK]}
    return write_folder(src, dst, out, cfg)


def mtp_weights(name: str) -> dict:
    """Multi-token-prediction weights as each release names them (both mlx-lm sanitizes
    drop them): DeepSeek-V3.2/GLM-5 append layer ``num_hidden_layers``, MiMo has
    ``model.mtp``."""
    rng = np.random.default_rng(0)
    cfg = json.loads((ROOT / name / "config.json").read_text())
    h = cfg["hidden_size"]
    prefix = (f"model.layers.{cfg['num_hidden_layers']}" if name != "mimo_v2_flash"
              else "model.mtp.layers.0")
    return {f"{prefix}.eh_proj.weight": rng.standard_normal((h, 2 * h)).astype(bfloat16),
            f"{prefix}.enorm.weight": np.ones(h, bfloat16)}


# ---- block FP8: the families' own sanitize, as mlx-lm's -------------------------------------

BLOCK_FAMILIES = ["deepseek_v32", "glm_moe_dsa", "mimo_v2_flash"]


@pytest.mark.parametrize("name", BLOCK_FAMILIES)
def test_their_family_dequantizes_block_fp8_itself(name):
    from mlxq.models import family_for

    cfg = json.loads((ROOT / name / "config.json").read_text())
    assert "fp8" in family_for(cfg).source_formats


@pytest.mark.parametrize("flags", sorted(FLAGS))
@pytest.mark.parametrize("name", BLOCK_FAMILIES)
def test_a_block_fp8_release_gives_mlx_lms_folder(name, flags, tmp_path):
    src = block_fp8_variant(name, tmp_path / "src", mtp_weights(name))
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")
    names = mlxq.load_checkpoint(tmp_path / "mlxq")
    assert not any(".mtp." in k or ".eh_proj" in k for k in names)


def test_mimo_scales_beyond_the_blocks_only_multiply_padding(tmp_path):
    """mimo_v2_flash's dequant pads the weight to as many blocks as the scales give: extra
    scale rows and columns scale only padding, and the weight is the one of the ceil-shaped
    scales — in mlx-lm and mlxq alike."""
    src = block_fp8_variant("mimo_v2_flash", tmp_path / "src")
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(src).items()}
    k = "model.layers.0.mlp.down_proj.weight_scale_inv"
    w[k] = np.pad(w[k], ((0, 1), (0, 2)), constant_values=7.0)
    for f in src.glob("*.safetensors"):
        f.unlink()
    mlxq.save_safetensors(src / "model.safetensors", w, metadata={"format": "pt"})
    convert(src, tmp_path / "mlxq", quiet=True)
    mlx_lm_convert(src, tmp_path / "ref")
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


def test_a_block_fp8_weight_with_too_few_scales_is_refused_by_name(tmp_path):
    src = block_fp8_variant("deepseek_v32", tmp_path / "src")
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(src).items()}
    k = "model.layers.0.self_attn.kv_b_proj.weight_scale_inv"  # [256, 64]: two block rows
    w[k] = w[k][:1]
    for f in src.glob("*.safetensors"):
        f.unlink()
    mlxq.save_safetensors(src / "model.safetensors", w)
    with pytest.raises(mlxq.errors.MlxqError, match="kv_b_proj"):
        convert(src, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


# ---- Ministral 3: per-tensor FP8 ------------------------------------------------------------

MINISTRAL = ROOT / "ministral3"


def per_tensor_fp8_variant(dst: Path) -> tuple[Path, dict]:
    """Ministral 3's FP8 release: each Linear's E4M3 ``weight`` with a scalar float32
    ``weight_scale_inv`` and a scalar ``activation_scale`` (transformers' fine-grained FP8
    with ``weight_block_size: null``, static activations). Returns the folder and the
    tensors."""
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(MINISTRAL).items()}
    out = {}
    for k, v in w.items():
        if fp8_linear(k, v.shape):
            codes, scale = quantize_blocks(v, v.shape)
            out[k], out[k + "_scale_inv"] = codes, scale.reshape(())
            out[k[: -len(".weight")] + ".activation_scale"] = np.array(0.0625, np.float32)
        else:
            out[k] = v
    cfg = json.loads((MINISTRAL / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "static",
                                  "weight_block_size": None, "dequantize": False,
                                  "modules_to_not_convert": ["lm_head"]}
    return write_folder(MINISTRAL, dst, out, cfg), out


def test_mlx_lm_ministral3_multiplies_the_raw_fp8_byte_codes(tmp_path):
    """What mlx-lm 0.32's ministral3 sanitize really computes: MLX loads E4M3 as uint8, and
    ``weight * scale_inv`` scales the byte codes (0x38, 1.0 in E4M3, gives 56 x scale)."""
    pytest.importorskip("mlx_lm")
    import mlx.core as mx
    from mlx_lm.utils import _get_classes

    src, tensors = per_tensor_fp8_variant(tmp_path / "src")
    cfg = json.loads((src / "config.json").read_text())
    model_class, args_class = _get_classes(cfg)
    got = model_class(args_class.from_dict(cfg)).sanitize(mx.load(str(src / "model.safetensors")))
    k = "model.layers.0.mlp.down_proj.weight"
    codes = tensors[k].view(np.uint8)
    scale = tensors[k + "_scale_inv"]
    assert got[k].dtype == mx.float32
    np.testing.assert_array_equal(np.array(got[k]), codes.astype(np.float32) * scale)
    # the byte codes are unsigned: every weight's sign is lost
    assert (np.array(got[k]) >= 0).all() and (tensors[k].astype(np.float32) < 0).any()


def test_ministral3_decodes_fp8_before_scaling_and_drops_activation_scales(tmp_path):
    from mlxq.conversion.source import SourceCheckpoint
    from mlxq.models import family_for

    src, tensors = per_tensor_fp8_variant(tmp_path / "src")
    with SourceCheckpoint(src) as ck:
        got = family_for(ck.config).sanitize(dict(ck.tensors), ck.config)
        assert sorted(got) == sorted(k for k in tensors if not k.endswith(
            ("_scale_inv", "activation_scale")))
        n = 0
        for k, v in tensors.items():
            if k + "_scale_inv" in tensors:
                want = dequantize(v, tensors[k + "_scale_inv"])
                n += 1
            elif k in got:
                want = v
            else:
                continue
            g = got[k].numpy()
            assert g.dtype == want.dtype and g.shape == want.shape, k
            np.testing.assert_array_equal(g.view(np.uint8), want.view(np.uint8), k)
        assert n == 14


@pytest.mark.parametrize("shape,ok", [((), True), ((1,), True), ((64, 1), True), ((64,), True),
                                      ((2, 1), False), ((1, 1, 1), False)])
def test_ministral3_scales_broadcast_as_mlx_multiplies_them_or_are_refused(shape, ok):
    from mlxq.conversion import graph
    from mlxq.models.ministral3 import dequant

    rng = np.random.default_rng(1)
    codes = rng.standard_normal((64, 64)).astype(np.float32).astype(float8_e4m3fn)
    scale = (rng.random(shape) + 0.5).astype(np.float32)
    if not ok:
        with pytest.raises(mlxq.errors.FormatError, match="w.weight_scale_inv"):
            dequant(graph.constant(codes), graph.constant(scale), "w.weight")
        return
    got = dequant(graph.constant(codes), graph.constant(scale), "w.weight").numpy()
    np.testing.assert_array_equal(got.view(np.uint16), dequantize(codes, scale).view(np.uint16))


@pytest.mark.parametrize("flags", ["plain", "q"])
def test_a_ministral3_fp8_release_gives_the_folder_of_its_dequantized_copy(flags, tmp_path):
    src, tensors = per_tensor_fp8_variant(tmp_path / "src")
    with pytest.warns(mlxq.MlxqWarning, match="dropped 14 FP8 activation scales"):
        convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    dense = {k: dequantize(v, tensors[k + "_scale_inv"]) if k + "_scale_inv" in tensors else v
             for k, v in tensors.items() if not k.endswith(("_scale_inv", "activation_scale"))}
    cfg = json.loads((MINISTRAL / "config.json").read_text())
    mlx_lm_convert(write_folder(MINISTRAL, tmp_path / "copy", dense, cfg), tmp_path / "ref",
                   **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


# ---- Mistral Small 4: per-tensor FP8, fused experts with one scale per expert ---------------

MISTRAL4 = ROOT / "mistral4"


def mistral4_fp8_variant(dst: Path) -> tuple[Path, dict]:
    """The mistral4 fixture as transformers' fine-grained FP8 without blocks writes it: each
    Linear's E4M3 ``weight`` with a scalar float32 ``weight_scale_inv`` and a static
    ``activation_scale``; the fused experts (``mlp.experts.gate_up_proj`` / ``down_proj``,
    ``[E, out, in]``) in E4M3 with ``{name}_scale_inv`` of shape ``[E, 1, 1]`` and an
    ``{name}_activation_scale``. Router, embeddings and output head stay bf16."""
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(MISTRAL4).items()}
    out = {}
    for k, v in w.items():
        if fp8_linear(k, v.shape):
            codes, scale = quantize_blocks(v, v.shape)
            out[k], out[k + "_scale_inv"] = codes, scale.reshape(())
            out[k[: -len(".weight")] + ".activation_scale"] = np.array(0.0625, np.float32)
        elif k.endswith(("mlp.experts.gate_up_proj", "mlp.experts.down_proj")):
            per = [quantize_blocks(e, e.shape) for e in v]
            out[k] = np.stack([c for c, _ in per])
            out[k + "_scale_inv"] = np.stack([s for _, s in per]).reshape(-1, 1, 1)
            out[k + "_activation_scale"] = np.full((v.shape[0], 1, 1), 0.125, np.float32)
        else:
            out[k] = v
    cfg = json.loads((MISTRAL4 / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "static",
                                  "weight_block_size": None, "dequantize": False,
                                  "modules_to_not_convert": ["lm_head", "mlp.gate"]}
    return write_folder(MISTRAL4, dst, out, cfg), out


def test_mistral4_dequantizes_per_tensor_and_per_expert_fp8_itself():
    from mlxq.models import family_for

    cfg = json.loads((MISTRAL4 / "config.json").read_text())
    assert "fp8-scaled" in family_for(cfg).source_formats


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_a_mistral4_fp8_release_gives_mlx_lms_folder(flags, tmp_path):
    src, tensors = mistral4_fp8_variant(tmp_path / "src")
    assert tensors["model.layers.1.mlp.experts.gate_up_proj_scale_inv"].shape[1:] == (1, 1)
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


def test_mistral4_fp8_experts_are_decoded_before_scaling(tmp_path):
    """The independent formula agrees with mlxq's sanitize on the fused experts: E4M3
    decoded, times the expert's scale in float32, rounded once to bfloat16."""
    from mlxq.conversion.source import SourceCheckpoint
    from mlxq.models import family_for

    src, tensors = mistral4_fp8_variant(tmp_path / "src")
    with SourceCheckpoint(src) as ck:
        got = family_for(ck.config).sanitize(dict(ck.tensors), ck.config)
        g = got["model.layers.1.mlp.switch_mlp.down_proj.weight"].numpy()
    k = "model.layers.1.mlp.experts.down_proj"
    want = np.stack([dequantize(c, s) for c, s in zip(tensors[k], tensors[k + "_scale_inv"])])
    np.testing.assert_array_equal(g.view(np.uint16), want.view(np.uint16))


# ---- LongCat-Flash-Chat-FP8: block FP8 its mlx-lm sanitize does not undo -------------------

def block_dequantized_copy(src: Path, dst: Path) -> Path:
    """``src`` with every ``X.weight`` + ``X.weight_scale_inv`` replaced by the bf16 weight of
    the numpy formula (codes times their 128x128 block's scale, rounded once) and the FP8
    ``quantization_config`` removed."""
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(src).items()}
    out = {}
    for k, v in w.items():
        if k.endswith("_scale_inv"):
            continue
        if k + "_scale_inv" in w:
            s = w[k + "_scale_inv"]
            rows = np.repeat(np.arange(s.shape[0]), BLOCK)[: v.shape[0]]
            cols = np.repeat(np.arange(s.shape[1]), BLOCK)[: v.shape[1]]
            v = dequantize(v, s[rows][:, cols])
        out[k] = v
    cfg = json.loads((src / "config.json").read_text())
    cfg.pop("quantization_config")
    return write_folder(src, dst, out, cfg)


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_longcat_block_fp8_gives_the_folder_of_its_dequantized_copy(flags, tmp_path):
    src = ROOT / "fp8" / "longcat_flash"
    with pytest.raises(ValueError, match="parameters not in model"):  # mlx-lm cannot
        mlx_lm_convert(src, tmp_path / "direct", **FLAGS[flags])
    convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(block_dequantized_copy(src, tmp_path / "copy"), tmp_path / "ref",
                   **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


# ---- Kimi K3: compressed-tensors MXFP4 routed experts ---------------------------------------

KIMI_K3 = ROOT / "kimi_k3"
MXFP4_CT = {
    "quant_method": "compressed-tensors", "format": "mxfp4-pack-quantized",
    "quantization_status": "compressed", "kv_cache_scheme": None,
    "config_groups": {"group_0": {
        "targets": ["Linear"], "input_activations": None, "output_activations": None,
        "weights": {"num_bits": 4, "type": "float", "symmetric": True, "strategy": "group",
                    "group_size": 32, "dynamic": False, "observer": "minmax",
                    "observer_kwargs": {}, "actorder": None, "block_structure": None}}},
    "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", "re:.*res_proj",
               "re:.*routed_expert_(down|up)_proj", "re:.*mlp\\.(gate|up|down)_proj.*",
               "re:vision_tower.*", "re:mm_projector.*"],
}


def kimi_k3_mxfp4_variant(dst: Path) -> Path:
    """The kimi_k3 fixture with its routed experts as compressed-tensors
    ``mxfp4-pack-quantized`` writes them: ``weight_packed`` uint8 ``[out, in / 2]`` (two E2M1
    codes a byte) and ``weight_scale`` uint8 ``[out, in / 32]`` (E8M0 exponents), no
    ``weight_shape``. The codes and exponents are seeded noise: any bytes are valid."""
    rng = np.random.default_rng(3)
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(KIMI_K3).items()}
    out = {}
    for k, v in w.items():
        if re.search(r"\.experts\.\d+\.w[123]\.weight$", k):
            base = k[: -len(".weight")]
            rows, cols = v.shape
            out[base + ".weight_packed"] = rng.integers(0, 256, (rows, cols // 2), np.uint8)
            out[base + ".weight_scale"] = rng.integers(118, 128, (rows, cols // 32), np.uint8)
        else:
            out[k] = v
    cfg = json.loads((KIMI_K3 / "config.json").read_text())
    cfg["quantization_config"] = MXFP4_CT
    return write_folder(KIMI_K3, dst, out, cfg)


@pytest.mark.parametrize("flags", ["plain", "q", "mxfp4", "f16"])
def test_a_kimi_k3_mxfp4_release_gives_mlx_lms_folder(flags, tmp_path):
    src = kimi_k3_mxfp4_variant(tmp_path / "src")
    if "quantize" in FLAGS[flags]:  # the packed experts keep their quantization: said so
        with pytest.warns(mlxq.MlxqWarning, match="3 layers of the compressed-tensors "
                          "checkpoint keep their own quantization"):
            convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    else:
        convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")
    cfg = json.loads((tmp_path / "mlxq" / "config.json").read_text())
    assert cfg["quantization"]["mode"] == "mxfp4"


# ---- MiniMax-M3: MXFP8 (E4M3 with one E8M0 exponent per 32 inputs) ---------------------------

MINIMAX_M3 = ROOT / "minimax_m3_vl"


def mxfp8_quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OCP MXFP8 of ``w`` ``[out, in]``: per group of 32 inputs the E8M0 exponent
    ``ceil(log2(amax / 448))`` (bias 127, uint8), codes e4m3fn(w / 2^e) rounded to nearest
    even and saturated."""
    w = w.astype(np.float32)
    g = w.reshape(w.shape[0], -1, 32)
    amax = np.abs(g).max(axis=-1, keepdims=True)
    e = np.ceil(np.log2(np.maximum(amax, np.float32(2.0 ** -120)) / E4M3_MAX))
    codes = np.clip(g / np.exp2(e), -E4M3_MAX, E4M3_MAX).astype(float8_e4m3fn)
    return codes.reshape(w.shape), (e[..., 0] + 127).astype(np.uint8)


def minimax_m3_mxfp8_variant(dst: Path) -> Path:
    """The minimax_m3_vl fixture with its attention, dense MLP and expert Linears in MXFP8 as
    the MiniMax-M3 MXFP8 checkpoints store them (``weight`` F8_E4M3, ``weight_scale_inv``
    U8, one exponent per 32 inputs) and the config in the spelling mlx-lm's ``load_model``
    reads as mxfp8 (``quant_method`` "mxfp8"; the release's own spelling could not be
    checked here)."""
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(MINIMAX_M3).items()}
    out = {}
    for k, v in w.items():
        if (k.startswith("language_model.model.layers.") and v.ndim == 2
                and k.endswith("_proj.weight") or re.search(r"\.experts\.\d+\.w[123]\.weight$", k)):
            out[k], out[k + "_scale_inv"] = mxfp8_quantize(v)
        else:
            out[k] = v
    cfg = json.loads((MINIMAX_M3 / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "mxfp8"}
    return write_folder(MINIMAX_M3, dst, out, cfg)


@pytest.mark.parametrize("flags", sorted(FLAGS))
def test_a_minimax_m3_mxfp8_release_gives_mlx_lms_folder(flags, tmp_path):
    src = minimax_m3_mxfp8_variant(tmp_path / "src")
    if "quantize" in FLAGS[flags]:
        with pytest.warns(mlxq.MlxqWarning, match="already quantized and kept"):
            convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    else:
        convert(src, tmp_path / "mlxq", quiet=True, **FLAGS[flags])
    mlx_lm_convert(src, tmp_path / "ref", **FLAGS[flags])
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")
    assert json.loads((tmp_path / "mlxq" / "config.json").read_text())[
        "quantization"]["mode"] == "mxfp8"
