"""Ling 2.0 (inclusionAI/Ling-mini-2.0, ``BailingMoeV2ForCausalLM``, model_type
``bailing_moe``): Bailing-MoE v2, a fused ``query_key_value`` attention with per-head q/k
norms and partial rotary, one dense first layer, then sparse layers with sigmoid routing
over expert groups, an ``expert_bias`` (float32), one shared expert.

Names and shapes from the publisher's modeling code, inclusionAI/Ling-V2
``models/modeling_bailing_moe_v2.py`` (BailingMoeV2Model: ``word_embeddings``, ``layers.N``
with ``attention.query_key_value``/``dense``/``query_layernorm``/``key_layernorm``,
``mlp`` = a dense MLP ``gate_proj``/``up_proj``/``down_proj`` below
``first_k_dense_replace``, else ``gate.weight`` + ``gate.expert_bias``, ``experts.E.*`` and
``shared_experts.*``; ``input_layernorm``, ``post_attention_layernorm``; ``norm``;
``lm_head``), and the config keys Ling-mini-2.0's config.json has (``rotary_dim``,
``score_function``, ``n_group``/``topk_group``, ``routed_scaling_factor``,
``moe_shared_expert_intermediate_size``, ...).
"""

CONFIG = {
    "architectures": ["BailingMoeV2ForCausalLM"],
    "model_type": "bailing_moe",
    "attention_dropout": 0.0,
    "embedding_dropout": 0.0,
    "eos_token_id": 2,
    "first_k_dense_replace": 1,
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "max_window_layers": 2,
    "moe_intermediate_size": 64,
    "moe_router_enable_expert_bias": True,
    "moe_shared_expert_intermediate_size": 64,
    "mtp_loss_scaling_factor": 0,
    "n_group": 2,
    "norm_head": False,
    "norm_softmax": False,
    "norm_topk_prob": True,
    "num_attention_heads": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "num_nextn_predict_layers": 0,
    "num_shared_experts": 1,
    "output_dropout": 0.0,
    "output_router_logits": False,
    "pad_token_id": 0,
    "partial_rotary_factor": 0.5,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 600000,
    "rotary_dim": 8,
    "routed_scaling_factor": 2.5,
    "score_function": "sigmoid",
    "scoring_func": "sigmoid",
    "tie_word_embeddings": False,
    "topk_group": 1,
    "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16",
    "use_bias": False,
    "use_cache": True,
    "use_qk_norm": True,
    "use_qkv_bias": False,
    "vocab_size": 128,
}


def mlp(t, prefix, hidden, inter):
    t[f"{prefix}.gate_proj.weight"] = ((inter, hidden), "bfloat16")
    t[f"{prefix}.up_proj.weight"] = ((inter, hidden), "bfloat16")
    t[f"{prefix}.down_proj.weight"] = ((hidden, inter), "bfloat16")


def tensors(config):
    h = config["hidden_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = h // heads
    t = {"model.word_embeddings.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16"),
         "lm_head.weight": ((config["vocab_size"], h), "bfloat16")}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        t[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.attention.query_key_value.weight"] = (((heads + 2 * kv) * hd, h), "bfloat16")
        t[f"{p}.attention.dense.weight"] = ((h, heads * hd), "bfloat16")
        t[f"{p}.attention.query_layernorm.weight"] = ((hd,), "bfloat16")
        t[f"{p}.attention.key_layernorm.weight"] = ((hd,), "bfloat16")
        if i < config["first_k_dense_replace"]:
            mlp(t, f"{p}.mlp", h, config["intermediate_size"])
            continue
        t[f"{p}.mlp.gate.weight"] = ((config["num_experts"], h), "bfloat16")
        t[f"{p}.mlp.gate.expert_bias"] = ((config["num_experts"],), "float32")
        for e in range(config["num_experts"]):
            mlp(t, f"{p}.mlp.experts.{e}", h, config["moe_intermediate_size"])
        mlp(t, f"{p}.mlp.shared_experts", h,
            config["moe_shared_expert_intermediate_size"] * config["num_shared_experts"])
    return t
