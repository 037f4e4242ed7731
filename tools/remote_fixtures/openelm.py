"""OpenELM (model_type ``openelm``), as apple/OpenELM-270M ships it: the tensor names of the
publisher's ``modeling_openelm.py`` (``OpenELMForCausalLM``: ``transformer.token_embeddings``,
``transformer.layers.N.attn.qkv_proj`` with ``attn.q_norm``/``attn.k_norm`` and
``attn.out_proj``, the GLU ``ffn.proj_1`` (both halves) and ``ffn.proj_2``, ``ffn_norm``,
``attn_norm``, ``transformer.norm``; no head, ``share_input_output_layers``). Head counts
and MLP widths vary per layer, as in the releases; the config keys are OpenELM-270M's at
tiny sizes (``ffn_dim_divisor`` 32 rather than 256 so that the two layers' MLP widths, 32
and 64, stay tiny and differ). The release's tensors are float32; here bfloat16, like every
fixture."""

CONFIG = {
    "activation_fn_name": "swish",
    "architectures": ["OpenELMForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "ffn_dim_divisor": 32,
    "ffn_multipliers": [0.5, 1.0],
    "ffn_with_glu": True,
    "head_dim": 16,
    "initializer_range": 0.02,
    "max_context_length": 256,
    "model_dim": 64,
    "model_type": "openelm",
    "normalization_layer_name": "rms_norm",
    "normalize_qk_projections": True,
    "num_gqa_groups": 4,
    "num_kv_heads": [1, 2],
    "num_query_heads": [4, 4],
    "num_transformer_layers": 2,
    "qkv_multipliers": [0.5, 1.0],
    "rope_freq_constant": 10000,
    "rope_max_length": 512,
    "share_input_output_layers": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def _make_divisible(v, divisor):
    # OpenELM's make_divisible (min_value = divisor)
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def tensors(config):
    d, v, hd = config["model_dim"], config["vocab_size"], config["head_dim"]
    t = {"transformer.token_embeddings.weight": ((v, d), "bfloat16"),
         "transformer.norm.weight": ((d,), "bfloat16")}
    for n in range(config["num_transformer_layers"]):
        q, kv = config["num_query_heads"][n], config["num_kv_heads"][n]
        inter = int(_make_divisible(config["ffn_multipliers"][n] * d, config["ffn_dim_divisor"]))
        p = f"transformer.layers.{n}"
        t.update({
            f"{p}.attn.qkv_proj.weight": (((q + 2 * kv) * hd, d), "bfloat16"),
            f"{p}.attn.q_norm.weight": ((hd,), "bfloat16"),
            f"{p}.attn.k_norm.weight": ((hd,), "bfloat16"),
            f"{p}.attn.out_proj.weight": ((d, q * hd), "bfloat16"),
            f"{p}.ffn.proj_1.weight": ((2 * inter, d), "bfloat16"),
            f"{p}.ffn.proj_2.weight": ((d, inter), "bfloat16"),
            f"{p}.ffn_norm.weight": ((d,), "bfloat16"),
            f"{p}.attn_norm.weight": ((d,), "bfloat16"),
        })
    return t
