"""TeleChat3 (model_type ``telechat3``), as Tele-AI's Telechat3-36B ships it: llama names
(``Telechat3ForCausalLM``: ``model.embed_tokens``, ``model.layers.N.self_attn.q/k/v/o_proj``,
``mlp.gate/up/down_proj``, ``input_layernorm``, ``post_attention_layernorm``, ``model.norm``,
an untied ``lm_head``). The config keys are Telechat3-36B's ``config.json`` at tiny sizes,
its ``telechat3-yarn`` rope scaling included."""

from ._shapes import llama

CONFIG = {
    "architectures": ["Telechat3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.0048,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
    "mlp_bias": False,
    "model_type": "telechat3",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_token_id": 3,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 4.0,
                     "original_max_position_embeddings": 64, "rope_type": "telechat3-yarn",
                     "type": "telechat3-yarn"},
    "rope_theta": 1000000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    return llama(config)
