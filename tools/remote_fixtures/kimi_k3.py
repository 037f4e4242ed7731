"""Kimi K3 (``model_type`` "kimi_k3", ``KimiK3ForConditionalGeneration``; moonshotai).

transformers 5.25 has no Kimi K3 class and neither the publisher's modeling code nor the
release's ``model.safetensors.index.json`` could be consulted here, so the names below are
those the loaders written against the release read: mlx-lm's ``kimi_k3`` (``sanitize`` and
the module tree it loads into) and, for everything the two share, Moonshot's Kimi-Linear
release (``modeling_kimi.py``: ``self_attn.{q,k,v}_proj``, ``{q,k,v}_conv1d`` ``[C, 1, K]``,
``A_log`` ``[1, 1, heads, 1]``, ``f_a/f_b/g_a/g_b/b_proj``, ``o_norm``; MLA ``q_proj``,
``kv_a_proj_with_mqa``, ``kv_a_layernorm``, ``kv_b_proj``; ``block_sparse_moe.experts.E.w{1,2,3}``,
``block_sparse_moe.gate`` with its ``e_score_correction_bias``, ``shared_experts``; dense
layers' ``mlp``). K3 adds the MLA output gate (``self_attn.g_proj``), block attention
residuals (``self_attention_res.{proj,norm}_weight``, ``mlp_res.*``,
``model.output_attn_res.*``) and latent experts (``block_sparse_moe.routed_expert_{down,up}_proj``,
``routed_expert_norm``). As in Kimi K2.5's release, the language model sits under
``language_model.`` beside a ``vision_tower`` and an ``mm_projector`` (a token tensor of each
here). The routed experts are bf16 in this fixture; the compressed-tensors MXFP4 form of
the release is built in tests/test_models_fp8_families.py. Layer 0 is KDA and dense, layer 1
MLA and MoE; a multi-token-prediction tensor of each naming (``mtp.*``, an appended layer)
is included.
"""

CONFIG = {
    "architectures": ["KimiK3ForConditionalGeneration"],
    "model_type": "kimi_k3",
    "torch_dtype": "bfloat16",
    "text_config": {
        "attn_res_block_size": 1,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "first_k_dense_replace": 1,
        "hidden_act": "situ",
        "activation_situ_beta": 1.0,
        "hidden_size": 64,
        "intermediate_size": 64,
        "kv_lora_rank": 64,
        "latent_moe_use_norm": True,
        "linear_attn_config": {"full_attn_layers": [2], "head_dim": 16, "kda_layers": [1],
                               "num_heads": 4, "short_conv_kernel_size": 4},
        "max_position_embeddings": 256,
        "mla_use_nope": True,
        "mla_use_output_gate": True,
        "model_type": "kimi_linear",
        "moe_intermediate_size": 64,
        "moe_layer_freq": 1,
        "moe_renormalize": True,
        "moe_router_activation_func": "sigmoid",
        "num_attention_heads": 4,
        "num_expert_group": 1,
        "num_experts": 4,
        "num_experts_per_token": 2,
        "num_hidden_layers": 2,
        "num_key_value_heads": 4,
        "num_nextn_predict_layers": 1,
        "num_shared_experts": 1,
        "q_lora_rank": None,
        "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 16,
        "rms_norm_eps": 1e-05,
        "routed_expert_hidden_size": 32,
        "routed_scaling_factor": 2.5,
        "tie_word_embeddings": False,
        "topk_group": 1,
        "use_grouped_topk": True,
        "v_head_dim": 32,
        "vocab_size": 128,
    },
    "vision_config": {"hidden_size": 16, "patch_size": 2},
}


def _mlp(prefix: str, h: int, inter: int, names=("gate_proj", "up_proj", "down_proj")) -> dict:
    g, u, d = names
    return {f"{prefix}.{g}.weight": ((inter, h), "bfloat16"),
            f"{prefix}.{u}.weight": ((inter, h), "bfloat16"),
            f"{prefix}.{d}.weight": ((h, inter), "bfloat16")}


def tensors(config: dict) -> dict:
    t = config["text_config"]
    h, v = t["hidden_size"], t["vocab_size"]
    lac = t["linear_attn_config"]
    kh, kd = lac["num_heads"], lac["head_dim"]
    proj, k = kh * kd, lac["short_conv_kernel_size"]
    heads, nope, rope, vd = (t["num_attention_heads"], t["qk_nope_head_dim"],
                             t["qk_rope_head_dim"], t["v_head_dim"])
    kvl = t["kv_lora_rank"]
    lm = "language_model."
    out = {f"{lm}model.embed_tokens.weight": ((v, h), "bfloat16"),
           f"{lm}model.norm.weight": ((h,), "bfloat16"),
           f"{lm}lm_head.weight": ((v, h), "bfloat16"),
           f"{lm}model.output_attn_res.proj_weight": ((1, h), "bfloat16"),
           f"{lm}model.output_attn_res.norm_weight": ((h,), "bfloat16"),
           "vision_tower.patch_embed.proj.weight": ((16, 3, 2, 2), "bfloat16"),
           "mm_projector.proj.0.weight": ((h, 16), "bfloat16")}
    for i in range(t["num_hidden_layers"]):
        p = f"{lm}model.layers.{i}"
        a = f"{p}.self_attn"
        out.update({f"{p}.input_layernorm.weight": ((h,), "bfloat16"),
                    f"{p}.post_attention_layernorm.weight": ((h,), "bfloat16"),
                    f"{p}.self_attention_res.proj_weight": ((1, h), "bfloat16"),
                    f"{p}.self_attention_res.norm_weight": ((h,), "bfloat16"),
                    f"{p}.mlp_res.proj_weight": ((1, h), "bfloat16"),
                    f"{p}.mlp_res.norm_weight": ((h,), "bfloat16")})
        if (i + 1) in lac["kda_layers"]:
            out.update({f"{a}.q_proj.weight": ((proj, h), "bfloat16"),
                        f"{a}.k_proj.weight": ((proj, h), "bfloat16"),
                        f"{a}.v_proj.weight": ((proj, h), "bfloat16"),
                        f"{a}.q_conv1d.weight": ((proj, 1, k), "bfloat16"),
                        f"{a}.k_conv1d.weight": ((proj, 1, k), "bfloat16"),
                        f"{a}.v_conv1d.weight": ((proj, 1, k), "bfloat16"),
                        f"{a}.A_log": ((1, 1, kh, 1), "float32"),
                        f"{a}.dt_bias": ((proj,), "float32"),
                        f"{a}.f_a_proj.weight": ((kd, h), "bfloat16"),
                        f"{a}.f_b_proj.weight": ((proj, kd), "bfloat16"),
                        f"{a}.b_proj.weight": ((kh, h), "bfloat16"),
                        f"{a}.g_a_proj.weight": ((kd, h), "bfloat16"),
                        f"{a}.g_b_proj.weight": ((proj, kd), "bfloat16"),
                        f"{a}.o_norm.weight": ((kd,), "bfloat16"),
                        f"{a}.o_proj.weight": ((h, proj), "bfloat16")})
        else:
            out.update({f"{a}.q_proj.weight": ((heads * (nope + rope), h), "bfloat16"),
                        f"{a}.kv_a_proj_with_mqa.weight": ((kvl + rope, h), "bfloat16"),
                        f"{a}.kv_a_layernorm.weight": ((kvl,), "bfloat16"),
                        f"{a}.kv_b_proj.weight": ((heads * (nope + vd), kvl), "bfloat16"),
                        f"{a}.o_proj.weight": ((h, heads * vd), "bfloat16"),
                        f"{a}.g_proj.weight": ((heads * vd, h), "bfloat16")})
        if i < t["first_k_dense_replace"]:
            out.update(_mlp(f"{p}.mlp", h, t["intermediate_size"]))
            continue
        m = f"{p}.block_sparse_moe"
        e, inter = t["num_experts"], t["moe_intermediate_size"]
        lat = t["routed_expert_hidden_size"]
        out.update({f"{m}.gate.weight": ((e, h), "bfloat16"),
                    f"{m}.gate.e_score_correction_bias": ((e,), "float32"),
                    f"{m}.routed_expert_down_proj.weight": ((lat, h), "bfloat16"),
                    f"{m}.routed_expert_up_proj.weight": ((h, lat), "bfloat16"),
                    f"{m}.routed_expert_norm.weight": ((lat,), "bfloat16")})
        for x in range(e):
            out.update(_mlp(f"{m}.experts.{x}", lat, inter, ("w1", "w3", "w2")))
        out.update(_mlp(f"{m}.shared_experts", h, inter * t["num_shared_experts"]))
    n = t["num_hidden_layers"]
    out[f"{lm}model.layers.{n}.eh_proj.weight"] = ((h, 2 * h), "bfloat16")
    out["mtp.layers.0.enorm.weight"] = ((h,), "bfloat16")
    return out
