"""InternLM2 / InternLM2.5 (model_type ``internlm2``), as internlm/internlm2-chat-1_8b and
internlm2_5-7b-chat ship it: the tensor names of the publisher's ``modeling_internlm2.py``
(``InternLM2ForCausalLM``: ``model.tok_embeddings``, ``model.layers.N.attention.wqkv`` (q, k
and v of each key/value group fused), ``attention.wo``, ``feed_forward.w1/w3/w2``,
``attention_norm``, ``ffn_norm``, ``model.norm``, and the untied ``output`` head; the rotary
``inv_freq`` buffer is not persistent, so not saved). The config keys are those of
internlm2-chat-1_8b's ``config.json`` at tiny sizes (its ``auto_map`` left out: nothing in a
conversion reads it, and a tokenizer loader would try to follow it)."""

CONFIG = {
    "architectures": ["InternLM2ForCausalLM"],
    "attn_implementation": "eager",
    "bias": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
    "model_type": "internlm2",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_token_id": 2,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"type": "dynamic", "factor": 2.0},
    "rope_theta": 1000000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    h, v, i = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = h // heads
    t = {"model.tok_embeddings.weight": ((v, h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16"),
         "output.weight": ((v, h), "bfloat16")}
    for n in range(config["num_hidden_layers"]):
        p = f"model.layers.{n}"
        t.update({
            f"{p}.attention.wqkv.weight": (((heads + 2 * kv) * hd, h), "bfloat16"),
            f"{p}.attention.wo.weight": ((h, heads * hd), "bfloat16"),
            f"{p}.feed_forward.w1.weight": ((i, h), "bfloat16"),
            f"{p}.feed_forward.w3.weight": ((i, h), "bfloat16"),
            f"{p}.feed_forward.w2.weight": ((h, i), "bfloat16"),
            f"{p}.attention_norm.weight": ((h,), "bfloat16"),
            f"{p}.ffn_norm.weight": ((h,), "bfloat16"),
        })
    return t
