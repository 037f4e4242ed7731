"""Config types and parse_quantization: one test per decoding rule (docs/weights.md)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

import mlxq
from mlxq import SKIP, PerLayerQuantization, Quantization, QuantMode, parse_quantization
from mlxq.config import RESERVED_KEYS
from mlxq.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    MlxqIOError,
    ParseError,
    UnknownEnumValueError,
)

Q64 = Quantization(64, 4)


def block(**extra) -> dict:
    return {"quantization": {"group_size": 64, "bits": 4, **extra}}


# ---- Quantization ------------------------------------------------------------------------


def test_quantization_mode_defaults_to_affine():
    assert Quantization(64, 4).mode is QuantMode.AFFINE


def test_quantization_mode_accepts_strings_and_rejects_unknown_modes():
    assert Quantization(32, 4, "mxfp4").mode is QuantMode.MXFP4
    with pytest.raises(UnknownEnumValueError):
        Quantization(32, 4, "int4")


def test_quantization_requires_ints():
    with pytest.raises(ArgumentTypeError):
        Quantization(64.0, 4)
    with pytest.raises(ArgumentTypeError):
        Quantization(64, True)


def test_quantization_is_frozen_and_hashable():
    q = Quantization(64, 4)
    with pytest.raises(AttributeError):
        q.bits = 8
    assert {q: 1}[Quantization(64, 4, "affine")] == 1


def test_quantization_for_mode_uses_mlx_defaults():
    assert Quantization.for_mode("mxfp8") == Quantization(32, 8, "mxfp8")
    assert Quantization.for_mode() == Quantization(64, 4)


def test_skip_is_a_singleton_through_copy_and_pickle():
    assert copy.deepcopy(SKIP) is SKIP
    assert pickle.loads(pickle.dumps(SKIP)) is SKIP
    assert repr(SKIP) == "SKIP"


# ---- PerLayerQuantization.quantization_for ------------------------------------------------


def test_quantization_for_override_wins_over_global():
    cfg = PerLayerQuantization(Q64, {"lm_head": Quantization(32, 8)})
    assert cfg.quantization_for("lm_head") == Quantization(32, 8)


def test_quantization_for_skip_gives_none():
    assert PerLayerQuantization(Q64, {"lm_head": SKIP}).quantization_for("lm_head") is None


def test_quantization_for_unlisted_layer_gets_global():
    assert PerLayerQuantization(Q64, {"lm_head": SKIP}).quantization_for("x") == Q64


def test_quantization_for_without_global_only_listed_layers():
    cfg = PerLayerQuantization(None, {"a": Q64})
    assert cfg.quantization_for("a") == Q64
    assert cfg.quantization_for("b") is None


def test_per_layer_is_copied_and_read_only():
    layers = {"a": SKIP}
    cfg = PerLayerQuantization(Q64, layers)
    layers["b"] = SKIP
    assert "b" not in cfg.per_layer
    with pytest.raises(TypeError):
        cfg.per_layer["c"] = SKIP  # type: ignore[index]


def test_per_layer_quantization_equality_and_hash():
    a = PerLayerQuantization(Q64, {"x": SKIP, "y": Quantization(32, 8)})
    b = PerLayerQuantization(Q64, {"y": Quantization(32, 8), "x": SKIP})
    assert a == b and hash(a) == hash(b)
    assert a != PerLayerQuantization(Q64)


def test_per_layer_quantization_pickles_and_copies():
    cfg = PerLayerQuantization(Q64, {"x": SKIP, "y": Quantization(32, 8, "mxfp8")})
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert copy.deepcopy(cfg) == cfg and copy.copy(cfg) == cfg


def test_per_layer_values_must_be_quantization_or_skip():
    with pytest.raises(ArgumentTypeError) as e:
        PerLayerQuantization(Q64, {"lm_head": False})
    assert e.value.layer == "lm_head"
    with pytest.raises(ArgumentTypeError):
        PerLayerQuantization({"group_size": 64, "bits": 4})  # type: ignore[arg-type]


def test_per_layer_keys_cannot_be_reserved():
    with pytest.raises(InvalidArgumentError):
        PerLayerQuantization(Q64, {"bits": SKIP})


# ---- to_dict ------------------------------------------------------------------------------


def test_to_dict_global_block_matches_mlx_lm_form():
    assert PerLayerQuantization(Q64).to_dict() == {"group_size": 64, "bits": 4, "mode": "affine"}


def test_to_dict_writes_skip_as_false_and_overrides_as_objects_in_order():
    cfg = PerLayerQuantization(
        Quantization(32, 4, "mxfp4"), {"b": SKIP, "a": Quantization(64, 8)}
    )
    d = cfg.to_dict()
    assert list(d) == ["group_size", "bits", "mode", "b", "a"]
    assert d["b"] is False
    assert d["a"] == {"group_size": 64, "bits": 8, "mode": "affine"}
    json.dumps(d)  # plain JSON types only


def test_to_dict_round_trips_through_parse_quantization():
    cfg = PerLayerQuantization(
        Quantization(64, 3), {"lm_head": Quantization(64, 6), "model.embed_tokens": SKIP,
                              "x": Quantization(16, 4, "nvfp4")}
    )
    text = json.dumps({"model_type": "llama", "quantization": cfg.to_dict()})
    assert parse_quantization(text) == cfg


def test_to_dict_without_global_is_an_error():
    with pytest.raises(InvalidArgumentError):
        PerLayerQuantization(None, {"a": Q64}).to_dict()


# ---- parse_quantization: sources -------------------------------------------------------


def test_parse_returns_none_without_quantization_block():
    assert parse_quantization({"model_type": "llama"}) is None


def test_parse_returns_none_for_null_block():
    # mlx-lm: config.get("quantization", None) is None -> not quantized.
    assert parse_quantization({"quantization": None}) is None


def test_parse_ignores_legacy_quantization_config_alone():
    assert parse_quantization({"quantization_config": {"quant_method": "awq", "bits": 4}}) is None


def test_parse_accepts_json_text_dict_bytes_path_and_directory(tmp_path):
    doc = block(lm_head=False)
    expected = PerLayerQuantization(Q64, {"lm_head": SKIP})
    text = json.dumps(doc)
    (tmp_path / "config.json").write_text(text)
    assert parse_quantization(doc) == expected
    assert parse_quantization(text) == expected
    assert parse_quantization("  \n" + text) == expected
    assert parse_quantization(text.encode()) == expected
    assert parse_quantization(tmp_path / "config.json") == expected
    assert parse_quantization(str(tmp_path / "config.json")) == expected
    assert parse_quantization(tmp_path) == expected


def test_parse_missing_file_is_an_io_error(tmp_path):
    with pytest.raises(MlxqIOError) as e:
        parse_quantization(tmp_path / "nope.json")
    assert isinstance(e.value, OSError)


def test_parse_invalid_json_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_quantization('{"quantization": ')


def test_parse_config_must_be_an_object():
    with pytest.raises(ParseError):
        parse_quantization("[1, 2]")


def test_parse_rejects_other_argument_types():
    with pytest.raises(ArgumentTypeError):
        parse_quantization(42)  # type: ignore[arg-type]


# ---- parse_quantization: decoding rules -------------------------------------------------


def test_block_must_be_an_object():
    with pytest.raises(ParseError):
        parse_quantization({"quantization": [64, 4]})


@pytest.mark.parametrize("missing", ["group_size", "bits"])
def test_global_group_size_and_bits_are_required(missing):
    b = {"group_size": 64, "bits": 4}
    del b[missing]
    with pytest.raises(ParseError) as e:
        parse_quantization({"quantization": b})
    assert e.value.key == missing


@pytest.mark.parametrize("value", [None, "64", 64.0, True])
def test_global_group_size_must_be_an_integer(value):
    with pytest.raises(ParseError):
        parse_quantization({"quantization": {"group_size": value, "bits": 4}})


def test_mode_defaults_to_affine():
    assert parse_quantization(block()).quantization == Q64


def test_mode_is_read():
    cfg = parse_quantization({"quantization": {"group_size": 16, "bits": 4, "mode": "nvfp4"}})
    assert cfg.quantization == Quantization(16, 4, "nvfp4")


def test_unknown_mode_is_an_unknown_enum_value():
    with pytest.raises(UnknownEnumValueError) as e:
        parse_quantization(block(mode="int4"))
    assert e.value.key == "mode" and isinstance(e.value, ValueError)


def test_reserved_keys_are_not_layers():
    assert RESERVED_KEYS == {"group_size", "bits", "mode", "quant_method", "linear_class",
                             "quantization_mode"}
    cfg = parse_quantization(block(quant_method="bitnet", linear_class="autobitlinear",
                                   quantization_mode="offline"))
    assert dict(cfg.per_layer) == {}


def test_layer_false_means_skip():
    cfg = parse_quantization(block(**{"model.layers.0.self_attn.q_norm": False}))
    assert cfg.per_layer == {"model.layers.0.self_attn.q_norm": SKIP}


def test_layer_true_is_ignored():
    assert dict(parse_quantization(block(lm_head=True)).per_layer) == {}


def test_layer_object_is_an_override_with_mode_defaulting_to_affine():
    # qwen3_moe's quant_predicate makes mlx-lm write {"group_size": 64, "bits": 8}, no mode.
    cfg = parse_quantization(block(**{"model.layers.0.mlp.gate": {"group_size": 64, "bits": 8}}))
    assert cfg.per_layer == {"model.layers.0.mlp.gate": Quantization(64, 8)}


def test_layer_object_extra_keys_are_ignored():
    entry = {"group_size": 16, "bits": 4, "mode": "nvfp4", "global_scale": True}
    cfg = parse_quantization(block(x=entry))
    assert cfg.per_layer == {"x": Quantization(16, 4, "nvfp4")}


def test_layer_object_null_means_the_modes_default():
    # mlx-lm 0.32 writes this for `convert --quant-predicate mixed_3_6` without --q-group-size.
    cfg = parse_quantization(block(v={"group_size": None, "bits": 6, "mode": "affine"},
                                   w={"group_size": None, "bits": None, "mode": "mxfp8"}))
    assert cfg.per_layer == {"v": Quantization(64, 6), "w": Quantization(32, 8, "mxfp8")}


@pytest.mark.parametrize("missing", ["group_size", "bits"])
def test_layer_object_missing_key_is_a_parse_error_naming_the_layer(missing):
    entry = {"group_size": 64, "bits": 4}
    del entry[missing]
    with pytest.raises(ParseError) as e:
        parse_quantization(block(lm_head=entry))
    assert e.value.layer == "lm_head" and e.value.key == missing
    assert str(e.value).startswith("lm_head: ")


def test_layer_object_unknown_mode_names_the_layer():
    with pytest.raises(UnknownEnumValueError) as e:
        parse_quantization(block(lm_head={"group_size": 64, "bits": 4, "mode": "fp4"}))
    assert e.value.layer == "lm_head"


@pytest.mark.parametrize("value", [0, 4, "false", None, [64, 4]])
def test_layer_other_values_are_errors(value):
    with pytest.raises(ParseError) as e:
        parse_quantization(block(lm_head=value))
    assert e.value.layer == "lm_head"
    assert str(e.value).startswith("lm_head: ")


def test_parse_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_quantization("{")


def test_public_names_exported():
    for name in ("SKIP", "PerLayerQuantization", "Quantization", "parse_quantization",
                 "quantize_weights", "dequantize_weights", "linear_like", "default_eligible",
                 "recipes"):
        assert name in mlxq.__all__ and hasattr(mlxq, name)
