"""Lille 130M (model_type ``lille-130m``; fixture ``lille_130m``), as Nikity/lille-130m-instruct
ships it: the publisher's ``model_hf.py`` wraps its GPT as ``transformer``
(``LilleForCausalLM``), so the names are ``transformer.tok_embeddings``,
``transformer.layers.N.attention.qkv_proj`` (fused q, k, v) / ``out_proj`` / ``norm``,
``transformer.layers.N.feed_forward.norm`` / ``gate_proj`` / ``up_proj`` / ``down_proj``
(``256 * round(8 * n_embd / 3 / 256)`` wide), ``transformer.norm``; the head is tied to the
embeddings (``transformer.lm_head``, not saved). Each attention's rotary ``inv_freq``
buffer is saved too, as mlx-lm's sanitize (which drops every ``rotary_emb`` name) expects.
The config keys are ``LilleConfig``'s at tiny sizes."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["LilleForCausalLM"],
    "block_size": 256,
    "bos_token_id": 1,
    "dropout": 0.1,
    "eos_token_id": 2,
    "layer_norm_eps": 1e-05,
    "model_type": "lille-130m",
    "n_embd": 64,
    "n_head": 4,
    "n_kv_heads": 2,
    "n_layer": 2,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
}


def tensors(config):
    d, v = config["n_embd"], config["vocab_size"]
    heads, kv = config["n_head"], config["n_kv_heads"]
    hd = d // heads
    ff = 256 * round(int(8 * d / 3) / 256)
    t = {"transformer.tok_embeddings.weight": ((v, d), BF16),
         "transformer.norm.weight": ((d,), BF16)}
    for n in range(config["n_layer"]):
        p = f"transformer.layers.{n}"
        t.update({
            f"{p}.attention.qkv_proj.weight": (((heads + 2 * kv) * hd, d), BF16),
            f"{p}.attention.out_proj.weight": ((d, heads * hd), BF16),
            f"{p}.attention.norm.weight": ((d,), BF16),
            f"{p}.attention.rotary_emb.inv_freq": ((hd // 2,), "float32"),
            f"{p}.feed_forward.norm.weight": ((d,), BF16),
            f"{p}.feed_forward.gate_proj.weight": ((ff, d), BF16),
            f"{p}.feed_forward.up_proj.weight": ((ff, d), BF16),
            f"{p}.feed_forward.down_proj.weight": ((d, ff), BF16),
        })
    return t
