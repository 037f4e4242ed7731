"""Ring-linear 2.0 (inclusionAI/Ring-mini-linear-2.0, ``BailingMoeLinearV2ForCausalLM``,
model_type ``bailing_moe_linear``): Bailing-MoE v2 with lightning linear attention; every
``layer_group_size``-th layer is softmax attention.

Names and shapes from the publisher's modeling code, inclusionAI/Ring
``hybrid_linear/models/modeling_bailing_moe_linear.py`` (the linear-attention layer's
``query_key_value`` over all heads, ``g_proj``, ``dense``, ``g_norm`` of width heads x
head_dim; the softmax layer's ``query_key_value``/``dense``; the MoE block's
``gate.weight``, ``experts.E.*``, ``shared_experts.*``), with the Ring-linear 2.0 release's
additions its config states: per-head ``query_layernorm``/``key_layernorm``
(``use_qk_norm``), the router's float32 ``gate.expert_bias``
(``moe_router_enable_expert_bias``), ``group_norm_size``. Here layer 0 is linear attention
with the dense MLP (``first_k_dense_replace`` 1) and layer 1 softmax attention with the MoE.
"""

from .bailing_moe import mlp

CONFIG = {
    "architectures": ["BailingMoeLinearV2ForCausalLM"],
    "model_type": "bailing_moe_linear",
    "attention_dropout": 0.0,
    "embedding_dropout": 0.0,
    "eos_token_id": 2,
    "first_k_dense_replace": 1,
    "group_norm_size": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "layer_group_size": 2,
    "linear_silu": False,
    "max_position_embeddings": 256,
    "moe_intermediate_size": 64,
    "moe_router_enable_expert_bias": True,
    "moe_shared_expert_intermediate_size": 64,
    "n_group": 2,
    "norm_head": False,
    "norm_topk_prob": True,
    "num_attention_heads": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "num_shared_experts": 1,
    "output_dropout": 0.0,
    "pad_token_id": 0,
    "partial_rotary_factor": 0.5,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 600000,
    "routed_scaling_factor": 2.5,
    "score_function": "sigmoid",
    "tie_word_embeddings": False,
    "topk_group": 1,
    "torch_dtype": "bfloat16",
    "use_bias": False,
    "use_cache": True,
    "use_qk_norm": True,
    "use_qkv_bias": False,
    "vocab_size": 128,
}


def tensors(config):
    h = config["hidden_size"]
    heads, kv, group = (config["num_attention_heads"], config["num_key_value_heads"],
                        config["layer_group_size"])
    n = config["num_hidden_layers"]
    hd = h // heads
    t = {"model.word_embeddings.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16"),
         "lm_head.weight": ((config["vocab_size"], h), "bfloat16")}
    for i in range(n):
        p = f"model.layers.{i}"
        t[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
        is_global = (i + 1) % group == 0 or i >= n // group * group
        kv_heads = kv if is_global else heads
        t[f"{p}.attention.query_key_value.weight"] = (((heads + 2 * kv_heads) * hd, h),
                                                      "bfloat16")
        t[f"{p}.attention.dense.weight"] = ((h, heads * hd), "bfloat16")
        t[f"{p}.attention.query_layernorm.weight"] = ((hd,), "bfloat16")
        t[f"{p}.attention.key_layernorm.weight"] = ((hd,), "bfloat16")
        if not is_global:
            t[f"{p}.attention.g_proj.weight"] = ((heads * hd, h), "bfloat16")
            t[f"{p}.attention.g_norm.weight"] = ((heads * hd,), "bfloat16")
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
