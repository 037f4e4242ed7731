"""Baichuan-M1 (baichuan-inc/Baichuan-M1-14B-Instruct, ``BaichuanM1ForCausalLM``, model_type
``baichuan_m1``): a fused ``W_pack`` q/k/v projection, a two-tap causal convolution over
keys and values, sliding-window layers with their own head counts, and a NormHead output
layer stored as a plain ``lm_head.weight``.

Names and shapes from the publisher's modeling code (the release's ``modeling_baichuan.py``:
BaichuanAttention's ``W_pack [hidden + 2 x kv_heads x head_dim, hidden]``, ``o_proj``,
``conv_k``/``conv_v`` ``[1, 1, kv_heads, 1, conv_window]``, head counts from
``num_swa_attention_heads``/``num_swa_key_value_heads`` on the ``sliding_window_layers``;
BaichuanMLP's ``gate_proj``/``up_proj``/``down_proj``; the decoder's ``input_layernorm``,
``post_attention_layernorm``; ``model.embed_tokens``, ``model.norm``, ``lm_head``) and the
release's config keys. Layer 0 is a sliding-window layer, layer 1 a global one.
"""

CONFIG = {
    "architectures": ["BaichuanM1ForCausalLM"],
    "model_type": "baichuan_m1",
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "conv_window": 2,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "num_swa_attention_heads": 4,
    "num_swa_key_value_heads": 1,
    "pad_token_id": 0,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 16,
    "sliding_window_layers": [0],
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    h, inter = config["hidden_size"], config["intermediate_size"]
    t = {"model.embed_tokens.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16"),
         "lm_head.weight": ((config["vocab_size"], h), "bfloat16")}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        swa = i in config["sliding_window_layers"]
        heads = config["num_swa_attention_heads"] if swa else config["num_attention_heads"]
        kv = config["num_swa_key_value_heads"] if swa else config["num_key_value_heads"]
        hd = h // heads
        t[f"{p}.self_attn.W_pack.weight"] = ((h + 2 * kv * hd, h), "bfloat16")
        t[f"{p}.self_attn.o_proj.weight"] = ((h, heads * hd), "bfloat16")
        t[f"{p}.self_attn.conv_k"] = ((1, 1, kv, 1, config["conv_window"]), "bfloat16")
        t[f"{p}.self_attn.conv_v"] = ((1, 1, kv, 1, config["conv_window"]), "bfloat16")
        t[f"{p}.mlp.gate_proj.weight"] = ((inter, h), "bfloat16")
        t[f"{p}.mlp.up_proj.weight"] = ((inter, h), "bfloat16")
        t[f"{p}.mlp.down_proj.weight"] = ((h, inter), "bfloat16")
        t[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
    return t
