"""MiniCPM (model_type ``minicpm``), as openbmb/MiniCPM-2B-sft-bf16 ships it: llama names from
the publisher's ``modeling_minicpm.py`` (``MiniCPMForCausalLM``: ``model.embed_tokens``,
``model.layers.N.self_attn.q/k/v/o_proj``, ``mlp.gate/up/down_proj``, the two norms,
``model.norm``) and no ``lm_head`` tensor: MiniCPM-2B shares its output head with the
embeddings (scaled by ``dim_model_base``), and its config says nothing of
``tie_word_embeddings``, which mlx-lm reads as untied, copying the embeddings into the head
in its sanitize. The config keys are MiniCPM-2B-sft-bf16's at tiny sizes (its ``auto_map``
left out)."""

from ._shapes import llama

CONFIG = {
    "architectures": ["MiniCPMForCausalLM"],
    "bos_token_id": 1,
    "dim_model_base": 256,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.1,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
    "model_type": "minicpm",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "scale_depth": 1.4,
    "scale_emb": 12,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    return llama(config, head=False)
