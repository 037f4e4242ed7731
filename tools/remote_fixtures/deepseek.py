"""DeepSeek-MoE (``model_type`` "deepseek"; deepseek-ai/deepseek-moe-16b-base and -chat).

transformers has no DeepSeek-MoE class: the release runs on DeepSeek's own
``modeling_deepseek.py`` / ``configuration_deepseek.py`` (the release's ``auto_map``; left
out here, as the fixture ships no code and transformers' tokenizer loading would stop to ask
whether to run it). Tensor names follow that modeling code: ``DeepseekForCausalLM`` holds
``model`` (``DeepseekModel``: ``embed_tokens``, ``layers``, ``norm``) and ``lm_head``; a
``DeepseekDecoderLayer`` holds ``self_attn`` (``q_proj``, ``k_proj``, ``v_proj``,
``o_proj``, no biases; the rotary ``inv_freq`` is a non-persistent buffer, not saved),
``mlp``, ``input_layernorm`` and ``post_attention_layernorm``. ``mlp`` is a ``DeepseekMLP``
(``gate_proj``, ``up_proj``, ``down_proj``) for the first ``first_k_dense_replace`` layers
and a ``DeepseekMoE`` after them: ``experts`` (a ModuleList of ``DeepseekMLP`` of width
``moe_intermediate_size``), ``gate`` (``MoEGate``: one bare ``weight`` parameter
``[n_routed_experts, hidden]``) and ``shared_experts`` (a ``DeepseekMLP`` of width
``moe_intermediate_size * n_shared_experts``). The config keys are those of the release's
config.json, at tiny sizes: layer 0 dense, layer 1 MoE with 4 routed experts (top 2) and one
shared expert.
"""

CONFIG = {
    "architectures": ["DeepseekForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "first_k_dense_replace": 1,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "model_type": "deepseek",
    "moe_intermediate_size": 64,
    "moe_layer_freq": 1,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "norm_topk_prob": False,
    "num_attention_heads": 4,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 10000,
    "scoring_func": "softmax",
    "seq_aux": True,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def _mlp(prefix: str, hidden: int, inter: int) -> dict:
    return {f"{prefix}.gate_proj.weight": ((inter, hidden), "bfloat16"),
            f"{prefix}.up_proj.weight": ((inter, hidden), "bfloat16"),
            f"{prefix}.down_proj.weight": ((hidden, inter), "bfloat16")}


def tensors(config: dict) -> dict:
    h, v = config["hidden_size"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = h // heads
    out = {"model.embed_tokens.weight": ((v, h), "bfloat16"),
           "model.norm.weight": ((h,), "bfloat16"),
           "lm_head.weight": ((v, h), "bfloat16")}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        out.update({f"{p}.self_attn.q_proj.weight": ((heads * hd, h), "bfloat16"),
                    f"{p}.self_attn.k_proj.weight": ((kv * hd, h), "bfloat16"),
                    f"{p}.self_attn.v_proj.weight": ((kv * hd, h), "bfloat16"),
                    f"{p}.self_attn.o_proj.weight": ((h, heads * hd), "bfloat16"),
                    f"{p}.input_layernorm.weight": ((h,), "bfloat16"),
                    f"{p}.post_attention_layernorm.weight": ((h,), "bfloat16")})
        moe = (i >= config["first_k_dense_replace"] and i % config["moe_layer_freq"] == 0)
        if not moe:
            out.update(_mlp(f"{p}.mlp", h, config["intermediate_size"]))
            continue
        inter = config["moe_intermediate_size"]
        for e in range(config["n_routed_experts"]):
            out.update(_mlp(f"{p}.mlp.experts.{e}", h, inter))
        out[f"{p}.mlp.gate.weight"] = ((config["n_routed_experts"], h), "bfloat16")
        out.update(_mlp(f"{p}.mlp.shared_experts", h, inter * config["n_shared_experts"]))
    return out
