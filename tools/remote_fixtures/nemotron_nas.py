"""Llama-Nemotron Super (model_type ``nemotron-nas``; fixture ``nemotron_nas``), as
nvidia/Llama-3_3-Nemotron-Super-49B-v1 ships it: llama names (``DeciLMForCausalLM`` of the
publisher's ``modeling_decilm.py``) in blocks that ``block_configs`` makes heterogeneous: a
block whose attention is ``no_op`` has neither ``input_layernorm`` nor ``self_attn``, and the
MLP width is ``ffn_mult`` of the hidden size rounded up to a multiple of 256. (Blocks with
``replace_with_linear``, which the 49B release does not have, are left out: NVIDIA names
their module ``self_attn.linear_attn`` / ``mlp.linear_mlp``, mlx-lm ``linear``.) The config
keys are Super-49B's at tiny sizes, without its ``auto_map`` and its llama3
``rope_scaling``: for a model type it does not know, transformers 5.25 (which mlx-lm's
tokenizer loading asks for the config) cannot read a llama3 ``rope_scaling`` (an
AttributeError on ``max_position_embeddings``), a limit of tokenizer loading that has
nothing to do with the weights."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["DeciLMForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "block_configs": [
        {"attention": {"n_heads_in_group": 2, "no_op": False, "num_sink_tokens": None,
                       "replace_with_linear": False, "sparsify": None,
                       "unshifted_sink": False, "use_prefill_window_in_sink_attention": False,
                       "window_length": None},
         "ffn": {"ffn_mult": 2.625, "no_op": False, "replace_with_linear": False,
                 "sparsify": None}},
        {"attention": {"n_heads_in_group": None, "no_op": True, "num_sink_tokens": None,
                       "replace_with_linear": False, "sparsify": None,
                       "unshifted_sink": False, "use_prefill_window_in_sink_attention": False,
                       "window_length": None},
         "ffn": {"ffn_mult": 1.3125, "no_op": False, "replace_with_linear": False,
                 "sparsify": None}},
    ],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": None,
    "max_position_embeddings": 256,
    "mlp_bias": False,
    "model_type": "nemotron-nas",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": None,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def _ffn_width(mult, hidden):
    n = int(2 * mult * hidden / 3)
    return n if n % 256 == 0 else n + 256 - n % 256


def tensors(config):
    h, v, heads = config["hidden_size"], config["vocab_size"], config["num_attention_heads"]
    hd = h // heads
    t = {"model.embed_tokens.weight": ((v, h), BF16), "model.norm.weight": ((h,), BF16),
         "lm_head.weight": ((v, h), BF16)}
    for n, block in enumerate(config["block_configs"]):
        p = f"model.layers.{n}"
        attn, ffn = block["attention"], block["ffn"]
        if attn["replace_with_linear"]:  # DeciLMLinearAttention
            t.update({f"{p}.input_layernorm.weight": ((h,), BF16),
                      f"{p}.self_attn.linear_attn.weight": ((h, h), BF16)})
        elif not attn["no_op"]:
            kv = heads // attn["n_heads_in_group"]
            t.update({
                f"{p}.input_layernorm.weight": ((h,), BF16),
                f"{p}.self_attn.q_proj.weight": ((heads * hd, h), BF16),
                f"{p}.self_attn.k_proj.weight": ((kv * hd, h), BF16),
                f"{p}.self_attn.v_proj.weight": ((kv * hd, h), BF16),
                f"{p}.self_attn.o_proj.weight": ((h, heads * hd), BF16),
            })
        if ffn["replace_with_linear"]:  # DeciLMLinearMLP
            t.update({f"{p}.post_attention_layernorm.weight": ((h,), BF16),
                      f"{p}.mlp.linear_mlp.weight": ((h, h), BF16)})
        elif not ffn["no_op"]:
            i = _ffn_width(ffn["ffn_mult"], h)
            t.update({
                f"{p}.post_attention_layernorm.weight": ((h,), BF16),
                f"{p}.mlp.gate_proj.weight": ((i, h), BF16),
                f"{p}.mlp.up_proj.weight": ((i, h), BF16),
                f"{p}.mlp.down_proj.weight": ((h, i), BF16),
            })
    return t
