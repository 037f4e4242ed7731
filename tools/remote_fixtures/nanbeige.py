"""Nanbeige 4.2 (model_type ``nanbeige``), as Nanbeige/Nanbeige4.2-3B ships it: a looped
transformer whose llama blocks run ``num_loops`` times with shared weights, so the checkpoint
holds llama names once (``NanbeigeForCausalLM`` of the publisher's ``modeling_nanbeige.py``:
``model.embed_tokens``, ``model.layers.N.*``, ``model.norm``, an untied ``lm_head``; the rotary
``inv_freq`` is not persistent). The config keys are Nanbeige4.2-3B's at tiny sizes (its
``auto_map`` left out)."""

from ._shapes import llama

CONFIG = {
    "architectures": ["NanbeigeForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "intermediate_size": 64,
    "kv_channels": 16,
    "loop_loss_weights": [],
    "max_position_embeddings": 256,
    "model_type": "nanbeige",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "num_loops": 2,
    "pad_token_id": 0,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 70000000,
    "skip_loop_final_norm": False,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
}


def tensors(config):
    return llama(config)
