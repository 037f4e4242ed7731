"""Phi-3-small (model_type ``phi3small``), as microsoft/Phi-3-small-8k-instruct ships it: the
tensor names of the publisher's ``modeling_phi3_small.py`` (``Phi3SmallForCausalLM``:
``model.embed_tokens``, ``model.layers.N.self_attn.query_key_value`` and ``self_attn.dense``
with biases, the GEGELU ``mlp.up_proj`` (twice ``ff_intermediate_size`` wide) and
``mlp.down_proj`` with biases, ``input_layernorm``/``post_attention_layernorm`` layer norms
with biases, ``model.final_layernorm``; the head is tied to the embeddings and not saved).
The config keys are Phi-3-small-8k-instruct's at tiny sizes (its ``auto_map`` left out)."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["Phi3SmallForCausalLM"],
    "attention_dropout_prob": 0.0,
    "blocksparse_block_size": 64,
    "blocksparse_homo_head_pattern": False,
    "blocksparse_num_local_blocks": 16,
    "blocksparse_triton_kernel_block_size": 64,
    "blocksparse_vert_stride": 8,
    "bos_token_id": 1,
    "dense_attention_every_n_layers": 2,
    "embedding_dropout_prob": 0.1,
    "eos_token_id": 2,
    "ff_dim_multiplier": None,
    "ff_intermediate_size": 64,
    "ffn_dropout_prob": 0.1,
    "gegelu_limit": 20.0,
    "gegelu_pad_to_256": True,
    "hidden_act": "gegelu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "max_position_embeddings": 256,
    "model_type": "phi3small",
    "mup_attn_multiplier": 1.0,
    "mup_embedding_multiplier": 10.0,
    "mup_use_scaling": True,
    "mup_width_multiplier": 8.0,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_sequence_to_multiple_of_64": True,
    "reorder_and_upcast_attn": False,
    "rope_embedding_base": 1000000,
    "rope_position_scale": 1.0,
    "rope_scaling": None,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
}


def tensors(config):
    h, v, i = config["hidden_size"], config["vocab_size"], config["ff_intermediate_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = h // heads
    t = {"model.embed_tokens.weight": ((v, h), BF16),
         "model.final_layernorm.weight": ((h,), BF16),
         "model.final_layernorm.bias": ((h,), BF16)}
    for n in range(config["num_hidden_layers"]):
        p = f"model.layers.{n}"
        qkv = (heads + 2 * kv) * hd
        t.update({
            f"{p}.self_attn.query_key_value.weight": ((qkv, h), BF16),
            f"{p}.self_attn.query_key_value.bias": ((qkv,), BF16),
            f"{p}.self_attn.dense.weight": ((h, h), BF16),
            f"{p}.self_attn.dense.bias": ((h,), BF16),
            f"{p}.mlp.up_proj.weight": ((2 * i, h), BF16),
            f"{p}.mlp.up_proj.bias": ((2 * i,), BF16),
            f"{p}.mlp.down_proj.weight": ((h, i), BF16),
            f"{p}.mlp.down_proj.bias": ((h,), BF16),
            f"{p}.input_layernorm.weight": ((h,), BF16),
            f"{p}.input_layernorm.bias": ((h,), BF16),
            f"{p}.post_attention_layernorm.weight": ((h,), BF16),
            f"{p}.post_attention_layernorm.bias": ((h,), BF16),
        })
    return t
