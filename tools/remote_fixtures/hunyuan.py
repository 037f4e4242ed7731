"""Hunyuan-A13B (tencent/Hunyuan-A13B-Instruct, ``HunYuanMoEV1ForCausalLM``, model_type
``hunyuan``): per-head ``query_layernorm``/``key_layernorm``, a MoE in every layer with a
shared MLP (``use_mixed_mlp_moe``) and a float32 router ``gate.wg``, per-layer lists for
``moe_topk``/``num_shared_expert``/``moe_intermediate_size``, dynamic NTK-alpha rope, tied
embeddings (no ``lm_head``), no cross-layer attention (``use_cla`` false).

Names and shapes from the publisher's modeling code as transformers carries it
(``transformers/models/hunyuan_v1_moe/modeling_hunyuan_v1_moe.py``: HunYuanMoEV1Attention's
``q/k/v/o_proj`` and the two norms, HunYuanMoEV1Gate's float32 ``wg``, the ``shared_mlp``
and ``gate_proj``/``up_proj``/``down_proj`` MLPs), with the experts one by one
(``mlp.experts.E.*``), as the release stores them (transformers' conversion mapping for
hunyuan_v1_moe merges exactly those per-expert tensors when it loads the release); config
keys as the release's config.json writes them.
"""

CONFIG = {
    "architectures": ["HunYuanMoEV1ForCausalLM"],
    "model_type": "hunyuan",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attention_head_dim": 16,
    "bos_token_id": 1,
    "cla_share_factor": 2,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
    "mlp_bias": False,
    "moe_intermediate_size": [64, 64],
    "moe_topk": [2, 2],
    "num_attention_heads": 4,
    "num_experts": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "num_shared_expert": [1, 1],
    "pad_token_id": 0,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"alpha": 1000.0, "factor": 1.0, "type": "dynamic"},
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_cla": False,
    "use_mixed_mlp_moe": True,
    "use_qk_norm": True,
    "vocab_size": 128,
}


def mlp(t, p, h, inter):
    t[f"{p}.gate_proj.weight"] = ((inter, h), "bfloat16")
    t[f"{p}.up_proj.weight"] = ((inter, h), "bfloat16")
    t[f"{p}.down_proj.weight"] = ((h, inter), "bfloat16")


def tensors(config):
    h, heads, kv = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    hd = h // heads
    t = {"model.embed_tokens.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16")}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        t[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.self_attn.q_proj.weight"] = ((heads * hd, h), "bfloat16")
        t[f"{p}.self_attn.k_proj.weight"] = ((kv * hd, h), "bfloat16")
        t[f"{p}.self_attn.v_proj.weight"] = ((kv * hd, h), "bfloat16")
        t[f"{p}.self_attn.o_proj.weight"] = ((h, heads * hd), "bfloat16")
        t[f"{p}.self_attn.query_layernorm.weight"] = ((hd,), "bfloat16")
        t[f"{p}.self_attn.key_layernorm.weight"] = ((hd,), "bfloat16")
        t[f"{p}.mlp.gate.wg.weight"] = ((config["num_experts"], h), "float32")
        mlp(t, f"{p}.mlp.shared_mlp", h,
            config["intermediate_size"] * config["num_shared_expert"][i])
        for e in range(config["num_experts"]):
            mlp(t, f"{p}.mlp.experts.{e}", h, config["moe_intermediate_size"][i])
    return t
