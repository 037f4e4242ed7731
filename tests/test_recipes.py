"""linear_like and the mixed recipes, without MLX (parity with mlx-lm is in
test_weights_mlx_lm.py)."""

from __future__ import annotations

import numpy as np
import pytest

import mlxq
from mlxq import Quantization, linear_like, recipes
from mlxq.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    MissingKeyError,
    UnknownEnumValueError,
)


def arr(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


# ---- linear_like ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, shape",
    [
        ("model.embed_tokens", (128, 64)),
        ("model.layers.0.self_attn.q_proj", (64, 64)),
        ("model.layers.0.mlp.down_proj", (64, 96)),
        ("lm_head", (128, 64)),
        ("model.layers.0.block_sparse_moe.gate", (8, 64)),
        ("model.layers.0.mlp.switch_mlp.gate_proj", (4, 64, 64)),
        ("model.layers.0.mlp.experts.down_proj", (4, 64, 64)),
        ("model.layers.0.self_attn.embed_q", (4, 32, 32)),  # DeepSeek-V3 MultiLinear
        ("transformer.wte", (128, 64)),
    ],
)
def test_linear_like_selects_linear_embedding_and_expert_weights(path, shape):
    assert linear_like(path, arr(*shape))
    assert linear_like(path, arr(*shape, dtype=mlxq.bfloat16))


@pytest.mark.parametrize(
    "path, shape",
    [
        ("model.norm", (64,)),
        ("model.layers.0.input_layernorm", (64,)),
        ("model.layers.0.self_attn.q_norm", (4, 16)),  # Cohere's 2-D LayerNorm2D
        ("transformer.ln_f", (64,)),
        ("model.layers.0.mixer.conv1d", (64, 4, 1)),  # mlx Conv1d: [out, kernel, in]
        ("model.layers.0.conv.conv", (64, 1, 3)),
        ("vision.patch_embed.proj", (64, 3, 14, 14)),  # Conv2d, rank 4
        ("scalar", ()),
    ],
)
def test_linear_like_never_selects_norms_convolutions_or_other_ranks(path, shape):
    assert not linear_like(path, arr(*shape))


def test_linear_like_refuses_integer_weights():
    assert not linear_like("model.layers.0.mlp.up_proj", arr(64, 16, dtype=np.uint8))
    assert not linear_like("model.layers.0.mlp.up_proj", arr(64, 8, dtype=np.uint32))


def test_linear_like_refuses_objects_without_shape_or_dtype():
    assert not linear_like("lm_head", [[1.0]])


def test_default_eligible_says_yes():
    assert mlxq.default_eligible("anything", None) is True


# ---- recipes -------------------------------------------------------------------------------

L = 16  # L // 8 = 2, 7 * L // 8 = 14


def llama_like(num_layers=L, hidden=64, inter=128):
    w = {"model.embed_tokens.weight": arr(128, hidden)}
    for i in range(num_layers):
        p = f"model.layers.{i}"
        for name, shape in [("self_attn.q_proj", (hidden, hidden)),
                            ("self_attn.v_proj", (hidden // 2, hidden)),
                            ("mlp.down_proj", (hidden, inter)),
                            ("mlp.up_proj", (inter, hidden))]:
            w[f"{p}.{name}.weight"] = arr(*shape)
        w[f"{p}.input_layernorm.weight"] = arr(hidden)
    w["model.norm.weight"] = arr(hidden)
    w["lm_head.weight"] = arr(128, hidden)
    return w


def more_bits(i, n=L):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def test_recipes_table():
    assert {n: (r.low_bits, r.high_bits) for n, r in recipes.RECIPES.items()} == {
        "mixed_2_6": (2, 6), "mixed_3_4": (3, 4), "mixed_3_6": (3, 6), "mixed_4_6": (4, 6)}
    assert recipes.recipe("mixed_2_6") is recipes.mixed_2_6
    with pytest.raises(UnknownEnumValueError):
        recipes.recipe("mixed_5_8")


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_layer_rule_v_proj_and_down_proj_get_high_bits_on_sensitive_layers(name):
    r = recipes.recipe(name)
    for i in range(L):
        for leaf in ("self_attn.v_proj", "mlp.down_proj"):
            bits = r.bits_for(f"model.layers.{i}.{leaf}", num_layers=L, layer_location=2)
            assert bits == (r.high_bits if more_bits(i) else r.low_bits), (i, leaf)
        bits = r.bits_for(f"model.layers.{i}.mlp.up_proj", num_layers=L, layer_location=2)
        assert bits == r.low_bits


def test_layer_rule_lm_head_always_high_embeddings_low():
    r = recipes.mixed_3_6
    assert r.bits_for("lm_head", num_layers=L, layer_location=2) == 6
    assert r.bits_for("model.embed_tokens", num_layers=L, layer_location=2) == 3


def test_layer_rule_matches_substrings_like_mlx_lm():
    r = recipes.mixed_2_6
    for leaf in ("self_attn.v_a_proj", "self_attn.v_b_proj", "attn.kv_proj",
                 "block_sparse_moe.switch_mlp.down_proj"):
        assert r.bits_for(f"model.layers.0.{leaf}", num_layers=L, layer_location=2) == 6


def test_layer_rule_rejects_a_path_without_an_index_where_one_is_expected():
    with pytest.raises(InvalidArgumentError) as e:
        recipes.mixed_4_6.bits_for("vision.blocks.x.mlp", num_layers=L, layer_location=2)
    assert e.value.layer == "vision.blocks.x.mlp"


def test_layer_layout_reads_location_and_count_from_names():
    assert recipes.layer_layout(llama_like()) == (2, L)
    moe = {"model.layers.0.block_sparse_moe.switch_mlp.down_proj.weight": 0,
           "model.layers.5.input_layernorm.weight": 0}
    assert recipes.layer_layout(moe) == (2, 6)


def test_layer_layout_needs_a_down_proj():
    with pytest.raises(MissingKeyError):
        recipes.layer_layout({"model.layers.0.mlp.up_proj.weight": 0})


def test_recipe_gives_an_override_to_every_layer_quantize_weights_would_quantize():
    w = llama_like()
    w["model.layers.3.mlp.odd.weight"] = arr(64, 96)  # not divisible by 64
    cfg = recipes.mixed_3_6(w)
    assert cfg.quantization == Quantization(64, 4)
    eligible = [k[:-7] for k, v in w.items() if k.endswith(".weight") and linear_like(k[:-7], v)
                and v.shape[-1] % 64 == 0]
    assert list(cfg.per_layer) == eligible
    assert cfg.quantization_for("model.layers.4.mlp.down_proj") == Quantization(64, 6)
    assert cfg.quantization_for("model.layers.3.mlp.down_proj") == Quantization(64, 3)
    out = mlxq.quantize_weights(w, cfg, linear_like)
    assert out["model.layers.3.mlp.odd.weight"] is w["model.layers.3.mlp.odd.weight"]
    assert out["model.layers.4.mlp.down_proj.weight"].shape == (64, 128 * 6 // 32)


def test_recipe_group_size_bits_and_num_layers_arguments():
    w = llama_like(num_layers=4)
    cfg = recipes.mixed_2_6(w, group_size=32, bits=2, num_layers=16)
    assert cfg.quantization == Quantization(32, 2)
    # Layer 3 is low with 16 layers (it would be high with the 4 the names suggest).
    assert cfg.quantization_for("model.layers.3.mlp.down_proj") == Quantization(32, 2)
    assert recipes.mixed_2_6(w).quantization_for("model.layers.3.mlp.down_proj").bits == 6


def test_recipe_skips_layers_already_quantized():
    w = llama_like()
    w["lm_head.scales"] = arr(128, 1)
    assert "lm_head" not in recipes.mixed_4_6(w).per_layer


def test_recipe_respects_the_predicate():
    cfg = recipes.mixed_4_6(llama_like(), eligible=lambda p, a: "mlp" in p)
    assert all("mlp" in p for p in cfg.per_layer)


def test_recipe_bad_predicate():
    with pytest.raises(ArgumentTypeError):
        recipes.mixed_4_6(llama_like(), eligible=None)
