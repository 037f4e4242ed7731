"""OLMo 1 (model_type ``olmo``) in AI2's own ``hf_olmo`` layout, as allenai/OLMo-7B ships it:
the names of ``hf_olmo``'s ``OLMoForCausalLM`` (``model.transformer.wte``,
``model.transformer.blocks.N.att_proj`` (fused q, k, v), ``attn_out``, ``ff_proj`` (both
SwiGLU halves, ``mlp_hidden_size`` wide) and ``ff_out`` (half that wide in), and the output
head ``model.transformer.ff_out`` as OLMo-7B does not tie it; its layer norms are
non-parametric, so they hold no tensors). The config keys are OLMo-7B's ``OLMoConfig`` at
tiny sizes (its ``auto_map`` left out). transformers' own OLMo layout, model_type ``olmo``
too, is the ``olmo_hf`` fixture."""

from ._shapes import BF16

CONFIG = {
    "activation_type": "swiglu",
    "alibi": False,
    "alibi_bias_max": 8.0,
    "architectures": ["OLMoForCausalLM"],
    "attention_dropout": 0.0,
    "attention_layer_norm": False,
    "attention_layer_norm_with_affine": False,
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "block_type": "sequential",
    "clip_qkv": None,
    "d_model": 64,
    "embedding_dropout": 0.0,
    "embedding_size": 128,
    "eos_token_id": 2,
    "flash_attention": False,
    "include_bias": False,
    "init_device": "meta",
    "init_fn": "mitchell",
    "init_std": 0.02,
    "layer_norm_type": "default",
    "layer_norm_with_affine": False,
    "max_sequence_length": 256,
    "mlp_hidden_size": 128,
    "mlp_ratio": 4,
    "model_type": "olmo",
    "multi_query_attention": False,
    "n_heads": 4,
    "n_layers": 2,
    "pad_token_id": 0,
    "precision": "amp_bf16",
    "residual_dropout": 0.0,
    "rope": True,
    "rope_full_precision": True,
    "scale_logits": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
    "weight_tying": False,
}


def tensors(config):
    d, e, m = config["d_model"], config["embedding_size"], config["mlp_hidden_size"]
    t = {"model.transformer.wte.weight": ((e, d), BF16)}
    for n in range(config["n_layers"]):
        p = f"model.transformer.blocks.{n}"
        t.update({
            f"{p}.att_proj.weight": ((3 * d, d), BF16),
            f"{p}.attn_out.weight": ((d, d), BF16),
            f"{p}.ff_proj.weight": ((m, d), BF16),
            f"{p}.ff_out.weight": ((d, m // 2), BF16),
        })
    if not config["weight_tying"]:
        t["model.transformer.ff_out.weight"] = ((e, d), BF16)
    return t
