"""PLaMo 2 (pfnet/plamo-2-1b, ``Plamo2ForCausalLM``, model_type ``plamo2``): Mamba-2 mixers
alternating with attention (``mamba_step`` 2: even layers Mamba), a fused ``gate_up_proj``
MLP and four offset RMS norms per layer, the decoder list nested at ``model.layers.layers``,
tied embeddings.

Names and shapes from the publisher's modeling code (the release's ``modeling_plamo.py``:
Plamo2Model's ``embed_tokens``, ``layers`` = Plamo2Decoder with its own ``layers`` list,
``norm``; each Plamo2DecoderLayer's ``mixer`` -- Mamba: ``in_proj``, a depthwise
``conv1d [inner, 1, d_conv]``, ``bcdt_proj``, ``dt_proj``, ``dt_bias``, ``A_log``, ``D``,
``dt_norm_weight``, ``B_norm_weight``, ``C_norm_weight``, ``out_proj``; Attention:
``qkv_proj``, ``o_proj``, per-head ``q_weight``/``k_weight`` -- then ``mlp.gate_up_proj``,
``mlp.down_proj``, ``pre_mixer_norm``, ``post_mixer_norm``, ``pre_mlp_norm``,
``post_mlp_norm``) and the release's config keys.
"""

CONFIG = {
    "architectures": ["Plamo2ForCausalLM"],
    "model_type": "plamo2",
    "attention_window_size": 32,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "fp32_residual": False,
    "full_attention_idx": [],
    "hidden_size": 64,
    "hidden_size_per_head": 16,
    "image_feature_size": None,
    "image_proj_type": "linear",
    "image_token_id": None,
    "intermediate_size": 64,
    "mamba_chunk_size": 16,
    "mamba_d_conv": 4,
    "mamba_d_state": 16,
    "mamba_enabled": True,
    "mamba_num_heads": 4,
    "mamba_step": 2,
    "max_position_embeddings": 256,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_token_id": 0,
    "rms_norm_eps": 1e-06,
    "sliding_window": 32,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    h, hd = config["hidden_size"], config["hidden_size_per_head"]
    heads, kv, inter = (config["num_attention_heads"], config["num_key_value_heads"],
                        config["intermediate_size"])
    mh, d_state, d_conv = config["mamba_num_heads"], config["mamba_d_state"], config["mamba_d_conv"]
    inner = mh * hd
    dt_dim = max(64, h // 16)
    t = {"model.embed_tokens.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16")}
    step = config["mamba_step"]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.layers.{i}"
        if i % step != step // 2:  # Mamba
            m = f"{p}.mixer"
            t[f"{m}.in_proj.weight"] = ((2 * inner, h), "bfloat16")
            t[f"{m}.conv1d.weight"] = ((inner, 1, d_conv), "bfloat16")
            t[f"{m}.bcdt_proj.weight"] = ((dt_dim + 2 * d_state, inner), "bfloat16")
            t[f"{m}.dt_proj.weight"] = ((mh, dt_dim), "bfloat16")
            t[f"{m}.dt_bias"] = ((mh,), "bfloat16")
            t[f"{m}.A_log"] = ((mh,), "bfloat16")
            t[f"{m}.D"] = ((mh,), "bfloat16")
            t[f"{m}.dt_norm_weight"] = ((dt_dim,), "bfloat16")
            t[f"{m}.B_norm_weight"] = ((d_state,), "bfloat16")
            t[f"{m}.C_norm_weight"] = ((d_state,), "bfloat16")
            t[f"{m}.out_proj.weight"] = ((h, inner), "bfloat16")
        else:
            m = f"{p}.mixer"
            t[f"{m}.qkv_proj.weight"] = (((heads + 2 * kv) * hd, h), "bfloat16")
            t[f"{m}.o_proj.weight"] = ((h, heads * hd), "bfloat16")
            t[f"{m}.q_weight"] = ((heads, hd), "bfloat16")
            t[f"{m}.k_weight"] = ((kv, hd), "bfloat16")
        t[f"{p}.mlp.gate_up_proj.weight"] = ((2 * inter, h), "bfloat16")
        t[f"{p}.mlp.down_proj.weight"] = ((h, inter), "bfloat16")
        for n in ("pre_mixer_norm", "post_mixer_norm", "pre_mlp_norm", "post_mlp_norm"):
            t[f"{p}.{n}.weight"] = ((h,), "bfloat16")
    return t
