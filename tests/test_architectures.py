"""mlxq.architectures against mlx-lm's own model classes (skipped without mlx-lm)."""

import pytest

from mlxq.architectures import GENERIC, architecture_for, natural_key

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


def _model(config):
    import importlib

    from mlx_lm.utils import MODEL_REMAPPING

    mt = MODEL_REMAPPING.get(config["model_type"], config["model_type"])
    mod = importlib.import_module(f"mlx_lm.models.{mt}")
    return mod.Model(mod.ModelArgs.from_dict(config))


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_parameter_order_matches_mlx_lm(family):
    pytest.importorskip("mlx_lm")
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    config = CONFIGS[family]
    arch = architecture_for(config)
    assert arch is not GENERIC
    model = _model(config)
    dense = [k for k, _ in tree_flatten(model.parameters())]
    assert sorted(dense, key=arch.order_key) == dense
    nn.quantize(model, 64, 4, class_predicate=lambda p, m: hasattr(m, "to_quantized"))
    quant = [k for k, _ in tree_flatten(model.parameters())]
    assert sorted(quant, key=arch.order_key) == quant


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_sanitize_plan_matches_mlx_lm(family):
    pytest.importorskip("mlx_lm")
    import mlx.core as mx
    from mlx.utils import tree_flatten

    config = CONFIGS[family]
    model = _model(config)
    # The Hugging Face names: mlx-lm's names with the switch layers unstacked, plus the
    # rotary buffers some checkpoints carry and a tied lm_head.
    hf = {}
    for name, value in tree_flatten(model.parameters()):
        if ".switch_mlp." in name:
            block, _, rest = name.partition(".switch_mlp.")
            proj, param = rest.split(".")
            if family == "mixtral":
                proj = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}[proj]
            for e in range(value.shape[0]):
                hf[f"{block}.experts.{e}.{proj}.{param}"] = value[e] + e
        else:
            hf[name] = value
    hf["model.layers.0.self_attn.rotary_emb.inv_freq"] = mx.zeros((8,))
    hf.setdefault("lm_head.weight", mx.zeros((128, 64)))
    want = model.sanitize(dict(hf))
    plan = architecture_for(config).sanitize(hf, config)
    assert sorted(plan.output_names()) == sorted(want)
    for out, sources in plan.stack.items():
        got = mx.stack([hf[s] for s in sources])
        assert mx.array_equal(got, want[out]).item(), out


def test_unknown_model_type_falls_back_to_generic():
    arch = architecture_for({"model_type": "somethingnew"})
    assert arch is GENERIC and not arch.exact
    names = ["layers.10.w", "layers.2.w", "emb"]
    assert sorted(names, key=arch.order_key) == ["emb", "layers.2.w", "layers.10.w"]
    assert natural_key("a.10.b") > natural_key("a.9.b")


def test_qwen3_moe_router_override():
    arch = architecture_for({"model_type": "qwen3_moe"})
    assert arch.model_quant_override("model.layers.3.mlp.gate") == {"group_size": 64, "bits": 8}
    assert arch.model_quant_override("model.layers.3.mlp.switch_mlp.gate_proj") is None
