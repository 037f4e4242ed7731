"""Klear (Kwai-Klear/Klear-46B-A2.5B-Instruct, ``KlearMoeForCausalLM``, model_type
``Klear`` -- capitalised, as the release writes it): qwen3-style attention, sparse layers
whose routed and shared experts are blended by a learned 2-way ``coefficient`` (a Linear
with a bias), with a float32 ``expert_bias`` for the selection.

The publisher's modeling code (the release's remote ``modeling_klear.py``) is not in reach
here; the names and shapes are those that loaders of the release read (mlx-lm's
``models/Klear.py``, whose sanitize and strict load take the release as it is) -- the
``mlp.gate.weight``, ``mlp.experts.E.{gate,up,down}_proj.weight`` (stacked by its
sanitize), ``mlp.shared_experts.*``, ``mlp.coefficient.weight``/``.bias``,
``mlp.expert_bias``; ``self_attn.{q,k,v,o}_proj``, ``q_norm``, ``k_norm``;
``input_layernorm``, ``post_attention_layernorm``; ``model.norm``, an untied ``lm_head``
-- and the config keys of the release's config.json (``mlp_only_layers``,
``decoder_sparse_step``, ``n_shared_experts``, ``moe_intermediate_size``, ...). Layer 0
is dense (``mlp_only_layers``), layer 1 sparse.
"""

CONFIG = {
    "architectures": ["KlearMoeForCausalLM"],
    "model_type": "Klear",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "decoder_sparse_step": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "mlp_only_layers": [0],
    "moe_aux_loss_coeff": 0.0001,
    "moe_intermediate_size": 64,
    "n_shared_experts": 1,
    "norm_topk_prob": True,
    "num_attention_heads": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "output_router_logits": False,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 500000.0,
    "routed_scaling_factor": 2.5,
    "router_aux_loss_coef": 0.001,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
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
         "model.norm.weight": ((h,), "bfloat16"),
         "lm_head.weight": ((config["vocab_size"], h), "bfloat16")}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        t[f"{p}.self_attn.q_proj.weight"] = ((heads * hd, h), "bfloat16")
        t[f"{p}.self_attn.k_proj.weight"] = ((kv * hd, h), "bfloat16")
        t[f"{p}.self_attn.v_proj.weight"] = ((kv * hd, h), "bfloat16")
        t[f"{p}.self_attn.o_proj.weight"] = ((h, heads * hd), "bfloat16")
        t[f"{p}.self_attn.q_norm.weight"] = ((hd,), "bfloat16")
        t[f"{p}.self_attn.k_norm.weight"] = ((hd,), "bfloat16")
        t[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        t[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
        sparse = (i not in config["mlp_only_layers"] and config["num_experts"] > 0
                  and (i + 1) % config["decoder_sparse_step"] == 0)
        if not sparse:
            mlp(t, f"{p}.mlp", h, config["intermediate_size"])
            continue
        t[f"{p}.mlp.gate.weight"] = ((config["num_experts"], h), "bfloat16")
        for e in range(config["num_experts"]):
            mlp(t, f"{p}.mlp.experts.{e}", h, config["moe_intermediate_size"])
        mlp(t, f"{p}.mlp.shared_experts", h,
            config["moe_intermediate_size"] * config["n_shared_experts"])
        t[f"{p}.mlp.coefficient.weight"] = ((2, h), "bfloat16")
        t[f"{p}.mlp.coefficient.bias"] = ((2,), "bfloat16")
        t[f"{p}.mlp.expert_bias"] = ((config["num_experts"],), "float32")
    return t
