"""The MoE / MLA flagship families' own pieces, against mlx-lm's where mlx-lm has them: the
architecture routing of Ling 2.5, MLX's float32 sigmoid (Muse Spark's residual gates),
DeepSeek-V4.1's repacking of FP8/FP4 scales, and the typed refusals of inputs mlx-lm fails
on with a bare exception."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import mlxq
from mlxq import convert
from mlxq.conversion import graph
from mlxq.errors import FormatError, MlxqError, ParseError, UnsupportedFormatError
from mlxq.models import family_for

ROOT = Path(__file__).resolve().parent / "fixtures" / "hf"


def test_ling_25_is_routed_by_its_architecture_as_mlx_lm_routes_it():
    cfg = json.loads((ROOT / "bailing_moe_v3" / "config.json").read_text())
    assert cfg["model_type"] == "bailing_hybrid"
    assert family_for(cfg).module == "bailing_moe_v3"
    assert family_for({**cfg, "architectures": "BailingMoeV3ForCausalLM"}).module == \
        "bailing_moe_v3"
    mlx_lm = pytest.importorskip("mlx_lm")
    from mlx_lm.utils import _get_classes

    assert _get_classes(cfg)[0].__module__ == "mlx_lm.models.bailing_moe_v3"
    assert mlx_lm  # the pair is mlx-lm's MODEL_ARCHITECTURE_REMAPPING entry


def test_the_emulated_sigmoid_is_mlx_bit_for_bit():
    mx = pytest.importorskip("mlx.core")
    from mlxq.models.muse_spark import mlx_exp, mlx_sigmoid

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(200_000).astype(np.float32) * s
                        for s in (np.float32(0.01), np.float32(1), np.float32(30))])
    x = np.concatenate([x, np.array([0, -0.0, np.inf, -np.inf, np.nan, 88, 88.5, -88, -88.5,
                                     1e-38, -1e-38, 3.4e38, -3.4e38], np.float32)])
    for ours, theirs in ((mlx_sigmoid, mx.sigmoid), (mlx_exp, mx.exp)):
        want = np.array(theirs(mx.array(x)))
        np.testing.assert_array_equal(ours(x).view(np.uint32), want.view(np.uint32))


def test_deepseek_v41_float_scales_repack_as_mlx_lm_repacks_them():
    """A float32 power-of-two tile scale becomes its E8M0 byte and covers its 32 rows."""
    mx = pytest.importorskip("mlx.core")
    from mlx_lm.models.deepseek_v41 import _repack as mlx_repack

    from mlxq.models.deepseek_v41 import _repack

    rng = np.random.default_rng(1)
    w = rng.integers(0, 256, (70, 64), dtype=np.uint8)  # 70 rows: a partial last tile
    s = np.exp2(rng.integers(-12, 3, (3, 2))).astype(np.float32)
    gw, gs = _repack(graph.constant(w), graph.constant(s), "x.weight")
    ww, ws = mlx_repack(mx.array(w), mx.array(s))
    np.testing.assert_array_equal(gw.numpy(), np.array(ww))
    np.testing.assert_array_equal(gs.numpy(), np.array(ws))
    assert gs.numpy().dtype == np.uint8 and gs.shape == (70, 2)


def _copy(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    w = {k: np.array(v) for k, v in mlxq.load_checkpoint(dst).items()}
    cfg = json.loads((dst / "config.json").read_text())
    w, cfg = edit(w, cfg)
    (dst / "model.safetensors").unlink()
    mlxq.save_safetensors(dst / "model.safetensors", w, metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_a_deepseek_v41_layer_missing_an_expert_is_refused_by_name(tmp_path):
    def edit(w, cfg):
        return {k: v for k, v in w.items() if ".experts.3." not in k}, cfg
    src = _copy(ROOT / "deepseek_v41", tmp_path / "src", edit)
    with pytest.raises(FormatError, match="3 w1 expert weights, but the config declares 4"):
        convert(src, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_a_quantized_ling_kv_b_proj_is_refused_as_mlx_lm_refuses_it(tmp_path):
    def edit(w, cfg):
        k = "model.layers.1.attention.kv_b_proj"
        w[k + ".scales"] = np.ones((w[k + ".weight"].shape[0], 1), w[k + ".weight"].dtype)
        return w, cfg
    src = _copy(ROOT / "bailing_moe_v3", tmp_path / "src", edit)
    with pytest.raises(UnsupportedFormatError, match="kv_b_proj is quantized"):
        convert(src, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_mistral4_refuses_an_fp8_scale_it_cannot_broadcast():
    from mlxq.models.mistral4 import dequant

    codes = graph.constant(np.zeros((2, 4, 8), np.uint8))
    with pytest.raises(MlxqError, match="experts.w"):
        dequant(codes, graph.constant(np.ones((2, 4, 1), np.float32)), "experts.w")


def test_kimi_linear_needs_kda_layers_to_be_layer_numbers(tmp_path):
    def edit(w, cfg):
        cfg["linear_attn_config"]["kda_layers"] = "1"
        return w, cfg
    src = _copy(ROOT / "kimi_linear", tmp_path / "src", edit)
    with pytest.raises(ParseError, match="kda_layers"):
        convert(src, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_a_text_only_deepseek_v41_export_converts_as_mlx_lm_converts_it(tmp_path):
    """``deepseek_v41_text`` (MODEL_REMAPPING's alias): the text config at the top level."""
    pytest.importorskip("mlx_lm")
    from support import assert_same_folder, mlx_lm_convert

    def edit(w, cfg):
        text = {**cfg.pop("text_config"), "model_type": "deepseek_v41_text"}
        cfg.pop("vision_config")
        return {k: v for k, v in w.items() if not k.startswith("vision.")}, {**cfg, **text}
    src = _copy(ROOT / "deepseek_v41", tmp_path / "src", edit)
    convert(src, tmp_path / "mlxq", quiet=True)
    mlx_lm_convert(src, tmp_path / "ref")
    assert_same_folder(tmp_path / "mlxq", tmp_path / "ref")


def test_a_minimax_m3_indexer_on_a_full_attention_layer_is_refused_by_name(tmp_path):
    """mlx-lm's model builds the lightning indexer only on sparse layers, and its strict load
    refuses the folder otherwise: mlxq refuses the checkpoint, naming the tensor."""
    def edit(w, cfg):
        cfg["text_config"]["layer_types"] = ["full_attention", "full_attention"]
        return w, cfg
    src = _copy(ROOT / "minimax_m3_vl", tmp_path / "src", edit)
    with pytest.raises(FormatError, match="layers.1.self_attn.index_.*full attention"):
        convert(src, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()
