"""Spark-X2.5 (XHToken/Spark-X2.5-4B, ``Spark2_5ForCausalLM``, model_type ``spark2_5``):
three sliding-window layers then one full-attention layer, a fused ``q_k_v_proj``, a
per-head sigmoid output gate ``g_proj``, per-layer-type rope (``rope_parameters``), GELU
MLP, tied embeddings (the release ships no ``lm_head.weight``: its 4 112 079 360
parameters are the layers and the embedding alone).

Names and shapes from the publisher's modeling code (the release's ``modeling_spark.py``:
Spark2_5Model's ``embedding``, ``layers``, ``norm``; Spark2_5Attention's ``q_k_v_proj``,
``g_proj [heads, hidden]``, ``out_proj``; Spark2_5MLP's ``gate_proj``/``up_proj``/
``down_proj``; ``input_layernorm``, ``post_attention_layernorm``) and the release's
config.json keys. Layer 0 slides, layer 1 is full attention (partial rotary 0.25).
"""

CONFIG = {
    "architectures": ["Spark2_5ForCausalLM"],
    "model_type": "spark2_5",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "gate_attn_act_mode": "sigmoid",
    "head_dim": 16,
    "headwise_attn_output_gate": True,
    "hidden_act": "gelu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "layer_types": ["sliding_attention", "full_attention"],
    "max_position_embeddings": 256,
    "mlp_bias": False,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_token_id": 0,
    "rms_norm_eps": 1e-06,
    "rope_parameters": {
        "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 5000000},
        "sliding_attention": {"partial_rotary_factor": 1, "rope_theta": 10000},
    },
    "sliding_window": 16,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    h, hd = config["hidden_size"], config["head_dim"]
    heads, kv, inter = (config["num_attention_heads"], config["num_key_value_heads"],
                        config["intermediate_size"])
    t = {"model.embedding.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16")}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        t[f"{p}.self_attn.q_k_v_proj.weight"] = (((heads + 2 * kv) * hd, h), "bfloat16")
        t[f"{p}.self_attn.g_proj.weight"] = ((heads, h), "bfloat16")
        t[f"{p}.self_attn.out_proj.weight"] = ((h, heads * hd), "bfloat16")
        t[f"{p}.mlp.gate_proj.weight"] = ((inter, h), "bfloat16")
        t[f"{p}.mlp.up_proj.weight"] = ((inter, h), "bfloat16")
        t[f"{p}.mlp.down_proj.weight"] = ((h, inter), "bfloat16")
        t[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
    return t
