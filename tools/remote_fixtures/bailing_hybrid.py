"""Ling / Ring 2.5 (inclusionAI/Ring-2.5-1T, ``BailingMoeV2_5ForCausalLM``, model_type
``bailing_hybrid``): lightning linear attention interleaved with multi-latent attention
every ``layer_group_size``-th layer, Bailing-MoE v2 blocks, and multi-token-prediction
layers appended after the base ones.

Names and shapes from the publisher's modeling code, inclusionAI/Ring-V2.5
``models/modeling_bailing_moe_v2_5.py``: BailingMoeV2_5LinearAttention
(``query_key_value``, ``query_layernorm``/``key_layernorm``, ``dense``, ``g_proj``,
``g_norm``), BailingMoeV2_5MultiLatentAttention (``q_proj`` when ``q_lora_rank`` is null,
``kv_a_proj_with_mqa``, ``kv_a_layernorm``, ``kv_b_proj``, ``dense``), the MoE block's
``gate.weight``/``gate.expert_bias``, ``experts.E.*``, ``shared_experts.*``, and
BailingMoeV2_5MTPLayer at ``model.layers.{num_hidden_layers + k}`` (``enorm``, ``hnorm``,
``eh_proj``, ``input_layernorm``, an MLA ``attention``, a MoE ``mlp``,
``post_attention_layernorm``, ``final_layernorm``); config keys from the same repository's
``configuration_bailing_moe_v2_5.py``. Here layer 0 is linear attention with the dense MLP,
layer 1 MLA with the MoE, layer 2 the MTP layer. The experts are 32 wide (their
``down_proj`` quantizes at groups of 32, not 64), to keep the fixture small.
"""

from .bailing_moe import mlp

CONFIG = {
    "architectures": ["BailingMoeV2_5ForCausalLM"],
    "model_type": "bailing_hybrid",
    "attention_dropout": 0.0,
    "embedding_dropout": 0.0,
    "eos_token_id": 2,
    "first_k_dense_replace": 1,
    "group_norm_size": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "kv_lora_rank": 32,
    "layer_group_size": 2,
    "linear_silu": False,
    "max_position_embeddings": 256,
    "max_window_layers": 2,
    "moe_intermediate_size": 32,
    "moe_router_enable_expert_bias": True,
    "mtp_loss_scaling_factor": 0,
    "n_group": 2,
    "num_attention_heads": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "num_nextn_predict_layers": 1,
    "num_shared_experts": 1,
    "output_dropout": 0.0,
    "output_router_logits": False,
    "pad_token_id": 0,
    "partial_rotary_factor": 0.5,
    "q_lora_rank": None,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "rms_norm_eps": 1e-06,
    "rope_interleave": True,
    "rope_scaling": None,
    "rope_theta": 600000,
    "routed_scaling_factor": 2.5,
    "router_dtype": "fp32",
    "score_function": "sigmoid",
    "scoring_func": "sigmoid",
    "seq_aux": True,
    "tie_word_embeddings": False,
    "topk_group": 1,
    "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16",
    "use_bias": False,
    "use_cache": True,
    "use_qk_norm": True,
    "use_qkv_bias": False,
    "v_head_dim": 32,
    "vocab_size": 128,
}


def mla(t, p, config):
    h, heads = config["hidden_size"], config["num_attention_heads"]
    nope, rope, v = config["qk_nope_head_dim"], config["qk_rope_head_dim"], config["v_head_dim"]
    rank = config["kv_lora_rank"]
    t[f"{p}.q_proj.weight"] = ((heads * (nope + rope), h), "bfloat16")
    t[f"{p}.kv_a_proj_with_mqa.weight"] = ((rank + rope, h), "bfloat16")
    t[f"{p}.kv_a_layernorm.weight"] = ((rank,), "bfloat16")
    t[f"{p}.kv_b_proj.weight"] = ((heads * (nope + v), rank), "bfloat16")
    t[f"{p}.dense.weight"] = ((h, heads * v), "bfloat16")


def moe(t, p, config):
    h = config["hidden_size"]
    t[f"{p}.gate.weight"] = ((config["num_experts"], h), "bfloat16")
    t[f"{p}.gate.expert_bias"] = ((config["num_experts"],), "float32")
    for e in range(config["num_experts"]):
        mlp(t, f"{p}.experts.{e}", h, config["moe_intermediate_size"])
    mlp(t, f"{p}.shared_experts", h, config["moe_intermediate_size"] * config["num_shared_experts"])


def tensors(config):
    h, heads = config["hidden_size"], config["num_attention_heads"]
    hd, group = config["head_dim"], config["layer_group_size"]
    n = config["num_hidden_layers"]
    t = {"model.word_embeddings.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16"),
         "lm_head.weight": ((config["vocab_size"], h), "bfloat16")}
    for i in range(n):
        p = f"model.layers.{i}"
        t[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
        if (i + 1) % group == 0 or i >= n // group * group:
            mla(t, f"{p}.attention", config)
        else:
            a = f"{p}.attention"
            t[f"{a}.query_key_value.weight"] = ((3 * heads * hd, h), "bfloat16")
            t[f"{a}.query_layernorm.weight"] = ((hd,), "bfloat16")
            t[f"{a}.key_layernorm.weight"] = ((hd,), "bfloat16")
            t[f"{a}.dense.weight"] = ((h, heads * hd), "bfloat16")
            t[f"{a}.g_proj.weight"] = ((heads * hd, h), "bfloat16")
            t[f"{a}.g_norm.weight"] = ((heads * hd,), "bfloat16")
        if i < config["first_k_dense_replace"]:
            mlp(t, f"{p}.mlp", h, config["intermediate_size"])
        else:
            moe(t, f"{p}.mlp", config)
    for k in range(config["num_nextn_predict_layers"]):
        p = f"model.layers.{n + k}"
        for norm in ("input_layernorm", "enorm", "post_attention_layernorm", "hnorm",
                     "final_layernorm"):
            t[f"{p}.{norm}.weight"] = ((h,), "bfloat16")
        t[f"{p}.eh_proj.weight"] = ((h, 2 * h), "bfloat16")
        mla(t, f"{p}.attention", config)
        moe(t, f"{p}.mlp", config)
    return t
