"""MiMo (model_type ``mimo``), as XiaomiMiMo/MiMo-7B-Base ships it: Qwen2's names (biases on
q/k/v) from the publisher's ``modeling_mimo.py`` (``MiMoForCausalLM``) plus its
multi-token-prediction layer ``model.mtp_layers.0`` (``input_layernorm``,
``post_attention_layernorm``, ``token_layernorm``, ``hidden_layernorm``, ``input_proj``
``[hidden, 2 * hidden]``, ``final_layernorm``, and a Qwen2 attention and MLP), which mlx-lm
drops. The config keys are MiMo-7B-Base's at tiny sizes (its ``auto_map`` left out)."""

from ._shapes import BF16, llama, llama_block

CONFIG = {
    "architectures": ["MiMoForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
    "max_window_layers": 2,
    "model_type": "mimo",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "num_nextn_predict_layers": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 640000,
    "sliding_window": 256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_mrope": False,
    "use_sliding_window": False,
    "vocab_size": 128,
}


def tensors(config):
    h = config["hidden_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    t = llama(config, qkv_bias=True)
    for n in range(config["num_nextn_predict_layers"]):
        p = f"model.mtp_layers.{n}"
        t.update(llama_block(p, h, heads, kv, h // heads, config["intermediate_size"],
                             qkv_bias=True))
        t.update({f"{p}.token_layernorm.weight": ((h,), BF16),
                  f"{p}.hidden_layernorm.weight": ((h,), BF16),
                  f"{p}.input_proj.weight": ((h, 2 * h), BF16),
                  f"{p}.final_layernorm.weight": ((h,), BF16)})
    return t
