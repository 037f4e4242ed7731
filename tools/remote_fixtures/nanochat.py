"""nanochat (model_type ``nanochat``) under its own names, as Karpathy's nanochat saves its GPT
(``nanochat/gpt.py`` of the d20/d32 releases: ``transformer.wte``,
``transformer.h.N.attn.c_q/c_k/c_v/c_proj``, ``transformer.h.N.mlp.c_fc/c_proj`` — four times
the width — and an untied ``lm_head``; its RMS norms have no weights and its rotary tables
are not persistent) and as the MLX conversions of those checkpoints carry them, with the
config keys those conversions write (hidden_size, num_hidden_layers, ...) at tiny sizes.
transformers' ``NanoChatForCausalLM`` layout is the ``nanochat_hf`` fixture."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["NanoChatModel"],
    "hidden_size": 64,
    "intermediate_size": 256,
    "max_position_embeddings": 256,
    "model_type": "nanochat",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rope_theta": 10000.0,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
}


def tensors(config):
    h, v, i = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = h // heads
    t = {"transformer.wte.weight": ((v, h), BF16), "lm_head.weight": ((v, h), BF16)}
    for n in range(config["num_hidden_layers"]):
        p = f"transformer.h.{n}"
        t.update({
            f"{p}.attn.c_q.weight": ((heads * hd, h), BF16),
            f"{p}.attn.c_k.weight": ((kv * hd, h), BF16),
            f"{p}.attn.c_v.weight": ((kv * hd, h), BF16),
            f"{p}.attn.c_proj.weight": ((h, h), BF16),
            f"{p}.mlp.c_fc.weight": ((i, h), BF16),
            f"{p}.mlp.c_proj.weight": ((h, i), BF16),
        })
    return t
