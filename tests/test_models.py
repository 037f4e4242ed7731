"""Each family of mlxq.models against mlx-lm's own model class for the same config
(skipped without mlx-lm): the parameter order (tree_flatten(model.parameters())), which
modules can be quantized (those with to_quantized), and sanitize — the port, run on lazy
tensors, gives the names and bytes mlx-lm's Model.sanitize gives on MLX arrays."""

from __future__ import annotations

import importlib
import importlib.metadata

import numpy as np
import pytest

from mlxq.conversion import graph
from mlxq.models import FAMILIES, family_for, supported_model_types
from mlxq._sort import natural_key
from support import as_bits

CONFIGS = {
    "llama": dict(model_type="llama", hidden_size=64, num_hidden_layers=3, intermediate_size=128,
                  num_attention_heads=4, rms_norm_eps=1e-5, vocab_size=128,
                  num_key_value_heads=2, tie_word_embeddings=False),
    "mistral": dict(model_type="mistral", hidden_size=64, num_hidden_layers=2,
                    intermediate_size=128, num_attention_heads=4, rms_norm_eps=1e-5,
                    vocab_size=128, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2": dict(model_type="qwen2", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
                  num_attention_heads=4, rms_norm_eps=1e-5, vocab_size=128,
                  num_key_value_heads=2, tie_word_embeddings=False),
    "qwen3": dict(model_type="qwen3", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
                  num_attention_heads=4, rms_norm_eps=1e-5, vocab_size=128,
                  num_key_value_heads=2, tie_word_embeddings=False, head_dim=16,
                  max_position_embeddings=128, rope_theta=10000.0),
    "mixtral": dict(model_type="mixtral", hidden_size=64, num_hidden_layers=2,
                    intermediate_size=128, num_attention_heads=4, rms_norm_eps=1e-5,
                    vocab_size=128, num_key_value_heads=2, num_local_experts=4,
                    num_experts_per_tok=2),
    "qwen3_moe": dict(model_type="qwen3_moe", hidden_size=64, num_hidden_layers=3,
                      intermediate_size=128, num_attention_heads=4, rms_norm_eps=1e-5,
                      vocab_size=128, num_key_value_heads=2, num_experts=4,
                      num_experts_per_tok=2, decoder_sparse_step=1, mlp_only_layers=[1],
                      moe_intermediate_size=64, head_dim=16, max_position_embeddings=128,
                      rope_theta=10000.0, tie_word_embeddings=False, norm_topk_prob=True),
}


def mlx_model(config):
    from mlx_lm.utils import _get_classes

    model_class, args_class = _get_classes(config)
    return model_class(args_class.from_dict(config))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parameter_order_matches_mlx_lm(name):
    pytest.importorskip("mlx_lm")
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    config = CONFIGS[name]
    fam = family_for(config)
    model = mlx_model(config)
    dense = [k for k, _ in tree_flatten(model.parameters())]
    assert sorted(dense, key=fam.order_for(config).key) == dense
    fam.check_parameters(dense, config)
    nn.quantize(model, 64, 4, class_predicate=lambda p, m: hasattr(m, "to_quantized"))
    quant = [k for k, _ in tree_flatten(model.parameters())]
    assert sorted(quant, key=fam.order_for(config).key) == quant


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_quantizable_modules_are_those_with_to_quantized(name):
    pytest.importorskip("mlx_lm")
    import mlx.nn as nn

    config = CONFIGS[name]
    fam = family_for(config)
    model = mlx_model(config)
    for path, m in model.named_modules():
        w = m.get("weight") if isinstance(m, nn.Module) else None
        if w is None or not hasattr(w, "shape") or not path:
            continue
        assert fam.quantizable(path, w.shape) == hasattr(m, "to_quantized"), path


def _hf_weights(name, model):
    """mlx-lm's names with switch layers unstacked, plus a rotary buffer and an lm_head:
    what a Hugging Face checkpoint of the family holds."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    hf = {}
    for key, value in tree_flatten(model.parameters()):
        if ".switch_mlp." in key:
            block, _, rest = key.partition(".switch_mlp.")
            proj, param = rest.split(".")
            if name == "mixtral":
                proj = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}[proj]
            for e in range(value.shape[0]):
                hf[f"{block}.experts.{e}.{proj}.{param}"] = value[e] + e
        else:
            hf[key] = value
    hf["model.layers.0.self_attn.rotary_emb.inv_freq"] = mx.zeros((8,))
    hf.setdefault("lm_head.weight", mx.zeros((128, 64)))
    return hf


def _np(x):
    import mlx.core as mx

    if x.dtype == mx.bfloat16:
        from mlxq import bfloat16
        return np.array(x.view(mx.uint16)).view(bfloat16)
    return np.array(x)


def assert_sanitize_matches(fam, config, hf, model):
    want = model.sanitize(dict(hf))
    got = fam.sanitize({k: graph.constant(_np(v)) for k, v in hf.items()}, config)
    assert sorted(got, key=natural_key) == sorted(want, key=natural_key)
    for k in want:
        w = _np(want[k])
        g = got[k].numpy()
        assert g.shape == w.shape and g.dtype == w.dtype, k
        np.testing.assert_array_equal(as_bits(g), as_bits(w), k)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sanitize_matches_mlx_lm(name):
    pytest.importorskip("mlx_lm")
    config = CONFIGS[name]
    model = mlx_model(config)
    assert_sanitize_matches(family_for(config), config, _hf_weights(name, model), model)


# mlx-lm's modules that are shared building blocks, not models (no Model class of a
# model_type): attention, caches, layers, rope, the pipeline mixin
_MLX_LM_NOT_MODELS = {"activations", "base", "bitlinear_layers", "cache", "gated_delta", "mla",
                      "pipeline", "rope_utils", "ssm", "switch_layers"}


def test_every_model_type_mlx_lm_converts_is_supported():
    """mlx-lm's ``_get_classes`` takes a model_type to ``models/<MODEL_REMAPPING[t] or t>``:
    the types it converts are its model modules and its remapped aliases. mlxq supports
    exactly those (138 with mlx-lm 0.32.2): a new mlx-lm module, or alias, fails here until
    its family is written."""
    mlx_lm = pytest.importorskip("mlx_lm")
    from mlx_lm.utils import MODEL_REMAPPING

    folder = Path(mlx_lm.__file__).parent / "models"
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    for name in sorted(modules):  # what _get_classes needs of a model module
        mod = importlib.import_module(f"mlx_lm.models.{name}")
        is_model = hasattr(mod, "Model") and hasattr(mod, "ModelArgs")
        assert is_model == (name not in _MLX_LM_NOT_MODELS), name
    theirs = (modules - _MLX_LM_NOT_MODELS) | set(MODEL_REMAPPING)
    ours = set(supported_model_types())
    assert not theirs - ours, f"mlx-lm converts, mlxq does not: {sorted(theirs - ours)}"
    assert not ours - theirs, f"mlxq claims, mlx-lm has no such type: {sorted(ours - theirs)}"
    if importlib.metadata.version("mlx-lm") == "0.32.2":
        assert len(ours) == 138


def test_every_family_module_is_registered_once():
    types = [t for f in FAMILIES.values() for t in f.model_types]
    assert len(types) == len(set(types)) == len(supported_model_types())
    for fam in FAMILIES.values():
        mod = importlib.import_module(f"mlxq.models.{fam.python_module}")
        assert mod.FAMILY is fam


def test_the_generic_fallback_sorts_naturally():
    fam = family_for({"model_type": "somethingnew"}, allow_unknown=True)
    assert fam.generic
    names = ["layers.10.w", "layers.2.w", "emb"]
    assert sorted(names, key=fam.order_for({}).key) == ["emb", "layers.2.w", "layers.10.w"]


def test_qwen3_moe_keeps_its_router_at_8_bits():
    fam = family_for({"model_type": "qwen3_moe"})
    assert fam.model_quant("model.layers.3.mlp.gate", {}) == {"group_size": 64, "bits": 8}
    assert fam.model_quant("model.layers.3.mlp.switch_mlp.gate_proj", {}) is True


# ---- every fixture checkpoint built by transformers ----------------------------------------

import os  # noqa: E402
from pathlib import Path  # noqa: E402

FIXTURES = Path(os.environ.get("MLXQ_HF_FIXTURES",
                               Path(__file__).resolve().parent / "fixtures" / "hf"))


def fixture_dirs(supported=True):
    if not FIXTURES.is_dir():
        return []
    return sorted(d for d in FIXTURES.iterdir() if (d / "config.json").is_file()
                  and _has_family(d) == supported)


def _has_family(d):
    import json

    from mlxq.errors import UnknownEnumValueError

    try:
        family_for(json.loads((d / "config.json").read_text()))
    except UnknownEnumValueError:
        return False
    return True


@pytest.mark.parametrize("folder", fixture_dirs(supported=False), ids=lambda d: d.name)
def test_a_model_type_mlxq_has_no_family_for_is_refused_with_the_list(folder, tmp_path):
    from mlxq import convert
    from mlxq.errors import UnknownEnumValueError

    with pytest.raises(UnknownEnumValueError, match="supported: .*llama"):
        convert(folder, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def _mlx_lm_view(folder):
    """mlx-lm's model for a fixture, and its sanitized weights (as load_model has them)."""
    import glob as _glob

    import mlx.core as mx
    from mlx_lm.utils import load_config

    config = load_config(folder)
    model = mlx_model(config)
    weights = {}
    for f in sorted(_glob.glob(str(folder / "model*.safetensors"))):
        weights.update(mx.load(f))
    raw = dict(weights)
    if hasattr(model, "sanitize"):
        weights = model.sanitize(weights)
    return config, model, raw, weights


@pytest.mark.parametrize("folder", fixture_dirs(), ids=lambda d: d.name)
def test_a_fixture_sanitizes_orders_and_quantizes_like_mlx_lm(folder):
    pytest.importorskip("mlx_lm")
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from mlxq.conversion.source import SourceCheckpoint

    try:
        config, model, raw, want = _mlx_lm_view(folder)
    except (TypeError, ValueError) as e:  # mlx-lm cannot build a model for this config
        pytest.skip(f"mlx-lm cannot build a model for this layout: {type(e).__name__}: {e}")
    shapes = {k: v.shape for k, v in tree_flatten(model.parameters())}
    params = set(shapes)
    # a release already in MLX's quantized layout: its scales belong to quantized modules
    extra = {k for k in set(want) - params if not (
        k.endswith((".scales", ".biases")) and k.rsplit(".", 1)[0] + ".weight" in params)}
    if extra:  # mlx-lm cannot load its own sanitize of this layout
        pytest.skip(f"mlx-lm's sanitize leaves {sorted(extra)[:2]} (not parameters "
                    "of its model): a layout mlx-lm cannot convert")
    wrong = sorted(k for k in want if k in shapes and tuple(want[k].shape) != tuple(shapes[k]))
    if wrong:  # load_weights refuses the shapes
        pytest.skip(f"mlx-lm's model cannot load {wrong[0]} {tuple(want[wrong[0]].shape)}: a "
                    "layout mlx-lm cannot convert")
    fam = family_for(config)
    with SourceCheckpoint(folder) as src:
        got = fam.sanitize(dict(src.tensors), src.config)
        assert sorted(got, key=natural_key) == sorted(want, key=natural_key)
        for k in want:
            w, g = _np(want[k]), got[k].numpy()
            assert g.shape == w.shape and g.dtype == w.dtype, k
            np.testing.assert_array_equal(as_bits(g), as_bits(w), k)
    order = fam.order_for(config)
    params = [k for k, _ in tree_flatten(model.parameters())]
    names = [k for k in params if k in want]
    assert sorted(names, key=order.key) == names
    fam.check_parameters(list(want), config)
    for path, m in model.named_modules():
        w = m.get("weight") if isinstance(m, nn.Module) else None
        if w is None or not hasattr(w, "shape") or not path or f"{path}.weight" not in want:
            continue
        # with the checkpoint's dtype: a layer it stores packed (uint32) is not one to quantize
        dtype = _np(want[f"{path}.weight"]).dtype
        assert fam.quantizable(path, w.shape, dtype) == hasattr(m, "to_quantized"), path


def test_docs_quote_the_families_table_of_the_registry():
    from mlxq.models import families_table

    docs = (Path(__file__).resolve().parent.parent / "docs" / "convert.md").read_text()
    start = docs.index("<!-- families table: generated by mlxq.models.families_table() -->")
    end = docs.index("<!-- end of families table -->")
    assert docs[start:end].split("\n", 1)[1].strip() == families_table()
