"""Gear (``GearForCausalLM``, model_type ``gear``): Gemma-style blocks whose mixer is full
attention, sliding attention or a local ``conv_mixer`` (depthwise key/value convolutions),
by ``layer_types``; tied embeddings.

No public release or publisher modeling code is in reach here: the architecture reached
mlx-lm (pull request #1648, "Add Gear model support") from a private checkpoint whose
safetensors keys the author matched one for one against the module. The names and shapes
are therefore those mlx-lm's ``models/gear.py`` loads -- ``model.embed_tokens``,
``model.layers.N.{self_attn|local_mixer}.{q,k,v,o}_proj``, ``q_norm``, ``k_norm``,
``local_mixer.key_conv``/``value_conv`` in PyTorch's ``Conv1d`` layout ``[kv_dim, 1,
conv_L_cache]`` (which its sanitize transposes), ``mlp.{gate,up,down}_proj``, the four
norms, ``model.norm`` -- and the config keys its ModelArgs reads. Layers: full, sliding,
conv_mixer.
"""

CONFIG = {
    "architectures": ["GearForCausalLM"],
    "model_type": "gear",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "conv_L_cache": 3,
    "eos_token_id": 2,
    "head_dim": 16,
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 64,
    "intermediate_size": 128,
    "layer_types": ["full_attention", "sliding_attention", "conv_mixer"],
    "max_position_embeddings": 256,
    "num_attention_heads": 4,
    "num_hidden_layers": 3,
    "num_key_value_heads": 2,
    "pad_token_id": 0,
    "query_pre_attn_scalar": 16,
    "rms_norm_eps": 1e-06,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 16,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_bidirectional_attention": False,
    "vocab_size": 128,
}


def tensors(config):
    h, hd = config["hidden_size"], config["head_dim"]
    heads, kv, inter = (config["num_attention_heads"], config["num_key_value_heads"],
                        config["intermediate_size"])
    t = {"model.embed_tokens.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16")}
    for i, kind in enumerate(config["layer_types"]):
        p = f"model.layers.{i}"
        a = f"{p}.local_mixer" if kind == "conv_mixer" else f"{p}.self_attn"
        t[f"{a}.q_proj.weight"] = ((heads * hd, h), "bfloat16")
        t[f"{a}.k_proj.weight"] = ((kv * hd, h), "bfloat16")
        t[f"{a}.v_proj.weight"] = ((kv * hd, h), "bfloat16")
        t[f"{a}.o_proj.weight"] = ((h, heads * hd), "bfloat16")
        t[f"{a}.q_norm.weight"] = ((hd,), "bfloat16")
        t[f"{a}.k_norm.weight"] = ((hd,), "bfloat16")
        if kind == "conv_mixer":
            t[f"{a}.key_conv.weight"] = ((kv * hd, 1, config["conv_L_cache"]), "bfloat16")
            t[f"{a}.value_conv.weight"] = ((kv * hd, 1, config["conv_L_cache"]), "bfloat16")
        t[f"{p}.mlp.gate_proj.weight"] = ((inter, h), "bfloat16")
        t[f"{p}.mlp.up_proj.weight"] = ((inter, h), "bfloat16")
        t[f"{p}.mlp.down_proj.weight"] = ((h, inter), "bfloat16")
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            t[f"{p}.{n}.weight"] = ((h,), "bfloat16")
    return t
