"""PLaMo 3 (model_type ``plamo3``), as pfnet's PLaMo 3 releases ship it: the tensor names of
the publisher's ``modeling_plamo3.py`` (``Plamo3ForCausalLM``: ``model.embed_tokens``, the
blocks one level down in ``model.layers.layers.N`` — ``mixer.qkv_proj`` (fused), ``mixer.o_proj``,
per-head ``mixer.q_norm``/``mixer.k_norm``, ``mlp.gate_up_proj`` (both halves) and
``mlp.down_proj``, and ``pre_mixer_norm``, ``post_mixer_norm``, ``pre_mlp_norm``,
``post_mlp_norm`` — then ``model.norm``; the head is tied to the embeddings and not saved).
The config keys are the release's at tiny sizes, two layers with a sliding-window pattern
of 2 (a sliding-window layer, then a full-attention one; its ``auto_map`` left out)."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["Plamo3ForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": 16,
    "hidden_size": 64,
    "image_feature_size": None,
    "image_proj_type": "linear",
    "image_token_id": None,
    "intermediate_size": 64,
    "linear_type": "normal",
    "max_position_embeddings": 256,
    "model_type": "plamo3",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_token_id": 0,
    "rms_norm_eps": 1e-06,
    "rope_local_theta": 10000,
    "rope_theta": 1000000,
    "sliding_window_pattern": 2,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
    "window_size": 16,
}


def tensors(config):
    h, v, i = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    heads, kv, hd = (config["num_attention_heads"], config["num_key_value_heads"],
                     config["head_dim"])
    t = {"model.embed_tokens.weight": ((v, h), BF16), "model.norm.weight": ((h,), BF16)}
    for n in range(config["num_hidden_layers"]):
        p = f"model.layers.layers.{n}"
        t.update({
            f"{p}.mixer.qkv_proj.weight": (((heads + 2 * kv) * hd, h), BF16),
            f"{p}.mixer.o_proj.weight": ((h, heads * hd), BF16),
            f"{p}.mixer.q_norm.weight": ((hd,), BF16),
            f"{p}.mixer.k_norm.weight": ((hd,), BF16),
            f"{p}.mlp.gate_up_proj.weight": ((2 * i, h), BF16),
            f"{p}.mlp.down_proj.weight": ((h, i), BF16),
            f"{p}.pre_mixer_norm.weight": ((h,), BF16),
            f"{p}.post_mixer_norm.weight": ((h,), BF16),
            f"{p}.pre_mlp_norm.weight": ((h,), BF16),
            f"{p}.post_mlp_norm.weight": ((h,), BF16),
        })
    if not config["tie_word_embeddings"]:
        t["lm_head.weight"] = ((v, h), BF16)
    return t
