"""Step 3.5 Flash (``model_type`` "step3p5"; stepfun-ai/Step-3.5-Flash).

transformers 5.25 has no text-only Step 3.5 class (only the Step 3.7 vision-language model,
whose text decoder is the same architecture under a ``model_type`` of its own), so the
release runs on StepFun's remote code. Tensor names are the release's, as transformers'
weight-conversion rules for that decoder spell them (``conversion_mapping.py``, "step3p7":
the source patterns are the checkpoint's names): per layer ``self_attn.{q,k,v,o}_proj``,
``self_attn.{q,k}_norm``, the head-wise gate ``self_attn.g_proj`` (``[heads, hidden]``),
``input_layernorm``, ``post_attention_layernorm``; a dense layer's ``mlp.{gate,up,down}_proj``;
a MoE layer's ``moe.gate.weight`` (``[experts, hidden]``), ``moe.router_bias``, the experts
already stacked per layer as ``moe.gate_proj.weight`` / ``moe.up_proj.weight``
(``[experts, moe_intermediate_size, hidden]``) and ``moe.down_proj.weight``, and the shared
expert ``share_expert.{gate,up,down}_proj``. Norm weights are stored zero-centered. The
multi-token-prediction layer is appended as ``model.layers.{num_hidden_layers}`` (the
config's ``num_nextn_predict_layers``), with ``eh_proj``, ``enorm``, ``hnorm`` and a decoder
block of its own; the fixture keeps a few of its tensors. Config keys are the release's
(``num_attention_groups``, ``attention_other_setting`` for the sliding layers,
``moe_layers_enum``, per-layer ``rope_theta`` / ``partial_rotary_factors`` /
``swiglu_limits``), at tiny sizes: layer 0 sliding-window and dense, layer 1 full attention
and MoE.
"""

CONFIG = {
    "architectures": ["Step3p5ForCausalLM"],
    "attention_other_setting": {"attention_type": "sliding_attention",
                                "num_attention_heads": 2, "num_attention_groups": 1,
                                "head_dim": 16},
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": 16,
    "hidden_size": 64,
    "intermediate_size": 128,
    "layer_types": ["sliding_attention", "full_attention"],
    "max_position_embeddings": 256,
    "model_type": "step3p5",
    "moe_intermediate_size": 64,
    "moe_layers_enum": "1",
    "moe_num_experts": 4,
    "moe_router_activation": "sigmoid",
    "moe_router_scaling_factor": 3.0,
    "moe_top_k": 2,
    "norm_expert_weight": True,
    "num_attention_groups": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_nextn_predict_layers": 1,
    "partial_rotary_factors": [0.5, 1.0, 1.0],
    "rms_norm_eps": 1e-05,
    "rope_theta": [10000.0, 5000000.0, 5000000.0],
    "share_expert_dim": 64,
    "sliding_window": 16,
    "swiglu_limits": [0.0, 7.0, 0.0],
    "swiglu_limits_shared": [0.0, 16.0, 0.0],
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_head_wise_attn_gate": True,
    "vocab_size": 128,
}


def tensors(config: dict) -> dict:
    h, v, hd = config["hidden_size"], config["vocab_size"], config["head_dim"]
    out = {"model.embed_tokens.weight": ((v, h), "bfloat16"),
           "model.norm.weight": ((h,), "bfloat16"),
           "lm_head.weight": ((v, h), "bfloat16")}
    moe_layers = {int(i) for i in config["moe_layers_enum"].split(",")}
    other = config["attention_other_setting"]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        sliding = config["layer_types"][i] == "sliding_attention"
        heads = other["num_attention_heads"] if sliding else config["num_attention_heads"]
        kv = other["num_attention_groups"] if sliding else config["num_attention_groups"]
        out.update({f"{p}.self_attn.q_proj.weight": ((heads * hd, h), "bfloat16"),
                    f"{p}.self_attn.k_proj.weight": ((kv * hd, h), "bfloat16"),
                    f"{p}.self_attn.v_proj.weight": ((kv * hd, h), "bfloat16"),
                    f"{p}.self_attn.o_proj.weight": ((h, heads * hd), "bfloat16"),
                    f"{p}.self_attn.q_norm.weight": ((hd,), "bfloat16"),
                    f"{p}.self_attn.k_norm.weight": ((hd,), "bfloat16"),
                    f"{p}.self_attn.g_proj.weight": ((heads, h), "bfloat16"),
                    f"{p}.input_layernorm.weight": ((h,), "bfloat16"),
                    f"{p}.post_attention_layernorm.weight": ((h,), "bfloat16")})
        if i not in moe_layers:
            inter = config["intermediate_size"]
            out.update({f"{p}.mlp.gate_proj.weight": ((inter, h), "bfloat16"),
                        f"{p}.mlp.up_proj.weight": ((inter, h), "bfloat16"),
                        f"{p}.mlp.down_proj.weight": ((h, inter), "bfloat16")})
            continue
        e, inter, sh = (config["moe_num_experts"], config["moe_intermediate_size"],
                        config["share_expert_dim"])
        out.update({f"{p}.moe.gate.weight": ((e, h), "bfloat16"),
                    f"{p}.moe.router_bias": ((e,), "bfloat16"),
                    f"{p}.moe.gate_proj.weight": ((e, inter, h), "bfloat16"),
                    f"{p}.moe.up_proj.weight": ((e, inter, h), "bfloat16"),
                    f"{p}.moe.down_proj.weight": ((e, h, inter), "bfloat16"),
                    f"{p}.share_expert.gate_proj.weight": ((sh, h), "bfloat16"),
                    f"{p}.share_expert.up_proj.weight": ((sh, h), "bfloat16"),
                    f"{p}.share_expert.down_proj.weight": ((h, sh), "bfloat16")})
    mtp = f"model.layers.{config['num_hidden_layers']}"
    out.update({f"{mtp}.eh_proj.weight": ((h, 2 * h), "bfloat16"),
                f"{mtp}.enorm.weight": ((h,), "bfloat16"),
                f"{mtp}.hnorm.weight": ((h,), "bfloat16"),
                f"{mtp}.self_attn.q_proj.weight": ((config["num_attention_heads"] * hd, h),
                                                   "bfloat16")})
    return out
