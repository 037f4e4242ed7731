"""Parity with the real mlx-lm: quantize_weights / dequantize_weights / recipes / to_dict
against quantize_model / dequantize_model / mixed_quant_predicate_builder on tiny models
built in the test (no hub access). Skipped, with a reason, when mlx-lm is missing."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core", reason="mlx is the oracle for these parity tests")
pytest.importorskip("mlx_lm", reason="mlx-lm is the oracle for these parity tests")

from mlx.utils import tree_flatten  # noqa: E402
from mlx_lm.convert import mixed_quant_predicate_builder  # noqa: E402
from mlx_lm.utils import dequantize_model, load_model, quantize_model, save_config  # noqa: E402

import mlxq  # noqa: E402
from mlxq import (  # noqa: E402
    PerLayerQuantization,
    Quantization,
    linear_like,
    parse_quantization,
    recipes,
)

# Tiny models: 8 layers so the mixed rule (L // 8 = 1) has both kinds of layer; the MLP's
# 96 columns are divisible by 32 but not 64, so down_proj exercises the divisibility gate.
CONFIGS = {
    "llama": dict(model_type="llama", hidden_size=64, num_hidden_layers=8, intermediate_size=96,
                  num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                  vocab_size=128, tie_word_embeddings=False),
    "mixtral": dict(model_type="mixtral", hidden_size=64, num_hidden_layers=2,
                    intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                    rms_norm_eps=1e-5, vocab_size=128, num_local_experts=4,
                    num_experts_per_tok=2),
    "qwen3_moe": dict(model_type="qwen3_moe", hidden_size=64, num_hidden_layers=3,
                      intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                      rms_norm_eps=1e-5, vocab_size=128, num_experts=4, num_experts_per_tok=2,
                      decoder_sparse_step=1, mlp_only_layers=[1], moe_intermediate_size=64,
                      head_dim=16, max_position_embeddings=128, rope_theta=10000.0,
                      tie_word_embeddings=False, norm_topk_prob=True),
    "deepseek_v3": dict(model_type="deepseek_v3", vocab_size=128, hidden_size=64,
                        intermediate_size=128, moe_intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4,
                        n_shared_experts=1, num_experts_per_tok=2, kv_lora_rank=32,
                        q_lora_rank=32, qk_rope_head_dim=16, v_head_dim=32,
                        qk_nope_head_dim=32, first_k_dense_replace=1, moe_layer_freq=1,
                        n_group=1, topk_group=1, max_position_embeddings=128,
                        rms_norm_eps=1e-5, rope_theta=10000.0),
}

MODES = [Quantization(64, 4), Quantization(32, 8), Quantization(64, 3), Quantization(32, 2),
         Quantization(32, 4, "mxfp4"), Quantization(32, 8, "mxfp8"),
         Quantization(16, 4, "nvfp4")]


def qid(q: Quantization) -> str:
    return f"{q.mode.value}-g{q.group_size}-b{q.bits}"


def build(family: str):
    mod = importlib.import_module(f"mlx_lm.models.{family}")
    mx.random.seed(0)
    model = mod.Model(mod.ModelArgs.from_dict(CONFIGS[family]))
    model.set_dtype(mx.bfloat16)  # what `mlx_lm.convert --dtype bfloat16` does first
    return model


def to_numpy(a) -> np.ndarray:
    if a.dtype == mx.bfloat16:  # numpy has no bfloat16 buffer format: go through the bits
        return np.array(a.view(mx.uint16)).view(mlxq.bfloat16)
    return np.array(a)


def to_mlx(a: np.ndarray):
    if a.dtype == mlxq.bfloat16:
        return mx.array(a.view(np.uint16)).view(mx.bfloat16)
    return mx.array(a)


def params(model) -> dict[str, np.ndarray]:
    return {k: to_numpy(v) for k, v in tree_flatten(model.parameters())}


def assert_maps_identical(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs)  # same names, and in tree_flatten order
    for k in theirs:
        a, b = ours[k], theirs[k]
        assert (a.dtype, a.shape) == (b.dtype, b.shape), k
        assert a.tobytes() == b.tobytes(), f"{k} differs from mlx-lm"


def mlx_lm_quantize(model, q: Quantization, predicate=None, **kw):
    _, config = quantize_model(model, {}, q.group_size, q.bits, mode=q.mode.value,
                               quant_predicate=predicate, **kw)
    return params(model), config


@pytest.mark.parametrize("q", MODES, ids=qid)
def test_quantize_weights_matches_quantize_model(q):
    model = build("llama")
    dense = params(model)
    cfg = PerLayerQuantization(q)
    ours = quantize_weights_checked(dense, cfg)
    theirs, config = mlx_lm_quantize(model, q)
    assert_maps_identical(ours, theirs)
    assert cfg.to_dict() == config["quantization"]
    assert parse_quantization(config) == cfg


def quantize_weights_checked(dense, cfg, eligible=linear_like):
    """quantize_weights, also checking it left its input alone."""
    before = {k: v.tobytes() for k, v in dense.items()}
    out = mlxq.quantize_weights(dense, cfg, eligible)
    assert {k: v.tobytes() for k, v in dense.items()} == before
    return out


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
@pytest.mark.parametrize("group_size", [32, 64])
def test_mixed_recipe_matches_mlx_lm(name, group_size):
    model = build("llama")
    dense = params(model)
    cfg = recipes.recipe(name)(dense, group_size=group_size)
    ours = quantize_weights_checked(dense, cfg)
    pred = mixed_quant_predicate_builder(name, model, group_size)
    theirs, config = mlx_lm_quantize(model, Quantization(group_size, 4), pred)
    assert_maps_identical(ours, theirs)
    # The very text mlx-lm writes into config.json, key order included.
    assert json.dumps(cfg.to_dict()) == json.dumps(config["quantization"])


def test_mixed_recipe_without_group_size_reads_back_as_mlx_lm_means_it():
    # `mlx_lm.convert --quant-predicate mixed_3_6` without --q-group-size records
    # "group_size": null per layer; mlx-lm loads that as the affine default, 64.
    model = build("llama")
    dense = params(model)
    theirs, config = quantize_model(model, {}, None, None,
                                    quant_predicate=mixed_quant_predicate_builder(
                                        "mixed_3_6", model, None))
    assert config["quantization"]["lm_head"]["group_size"] is None
    cfg = recipes.mixed_3_6(dense)
    assert parse_quantization(config) == cfg
    assert_maps_identical(quantize_weights_checked(dense, cfg), params(theirs))


@pytest.mark.parametrize("q", [Quantization(32, 4), Quantization(16, 4, "nvfp4")], ids=qid)
def test_moe_expert_weights_match_quantize_model(q):
    model = build("mixtral")
    dense = params(model)
    assert dense["model.layers.0.block_sparse_moe.switch_mlp.up_proj.weight"].ndim == 3
    ours = quantize_weights_checked(dense, PerLayerQuantization(q))
    theirs, _ = mlx_lm_quantize(model, q)
    assert_maps_identical(ours, theirs)


def test_linear_like_without_the_deepseek_router_matches_quantize_model():
    # DeepSeek-V3: MultiLinear (3-D embed_q/unembed_out) and switch experts are quantized;
    # its MoEGate router is a plain parameter that mlx-lm leaves dense (docs/weights.md).
    model = build("deepseek_v3")
    dense = params(model)
    assert dense["model.layers.0.self_attn.embed_q.weight"].ndim == 3

    def eligible(path, w):
        return linear_like(path, w) and not path.endswith("mlp.gate")

    ours = quantize_weights_checked(dense, PerLayerQuantization(Quantization(32, 4)), eligible)
    theirs, _ = mlx_lm_quantize(model, Quantization(32, 4))
    assert_maps_identical(ours, theirs)


def test_model_quant_predicate_overrides_round_trip_through_the_config():
    # qwen3_moe's own quant_predicate keeps the router at 8 bits; mlx-lm records it per
    # layer, and that block alone reproduces the checkpoint.
    model = build("qwen3_moe")
    dense = params(model)
    theirs, config = mlx_lm_quantize(model, Quantization(32, 4))
    cfg = parse_quantization(config)
    assert cfg.quantization_for("model.layers.0.mlp.gate") == Quantization(64, 8)
    assert_maps_identical(quantize_weights_checked(dense, cfg), theirs)


@pytest.mark.parametrize("q", MODES, ids=qid)
def test_dequantize_weights_matches_dequantize_model(q):
    model = build("llama")
    quantized, config = mlx_lm_quantize(model, q)
    before = {k: v.tobytes() for k, v in quantized.items()}
    ours = mlxq.dequantize_weights(quantized, parse_quantization(config))
    assert {k: v.tobytes() for k, v in quantized.items()} == before
    assert_maps_identical(ours, params(dequantize_model(model)))


@pytest.mark.parametrize("family", ["mixtral", "qwen3_moe"])
def test_dequantize_weights_matches_dequantize_model_with_experts_and_overrides(family):
    model = build(family)
    quantized, config = mlx_lm_quantize(model, Quantization(32, 4))
    ours = mlxq.dequantize_weights(quantized, parse_quantization(config))
    assert_maps_identical(ours, params(dequantize_model(model)))


def test_dequantize_weights_matches_dequantize_model_for_a_mixed_recipe():
    model = build("llama")
    pred = mixed_quant_predicate_builder("mixed_2_6", model, 32)
    quantized, config = mlx_lm_quantize(model, Quantization(32, 4), pred)
    ours = mlxq.dequantize_weights(quantized, parse_quantization(config))
    assert_maps_identical(ours, params(dequantize_model(model)))


def test_mlx_lm_loads_our_checkpoint_unchanged(tmp_path):
    # Write quantize_weights' output and to_dict() the way mlx_lm.convert saves, then let
    # mlx-lm's own loader rebuild the model from them.
    model = build("llama")
    dense = params(model)
    cfg = recipes.mixed_4_6(dense, group_size=32)
    ours = mlxq.quantize_weights(dense, cfg, linear_like)
    mx.save_safetensors(str(tmp_path / "model.safetensors"),
                        {k: to_mlx(v) for k, v in ours.items()}, metadata={"format": "mlx"})
    save_config({**CONFIGS["llama"], "quantization": cfg.to_dict()},
                config_path=tmp_path / "config.json")
    assert parse_quantization(tmp_path) == cfg
    loaded, _ = load_model(tmp_path)
    assert_maps_identical(params(loaded), ours)
