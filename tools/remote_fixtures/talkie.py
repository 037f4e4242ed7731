"""Talkie 13B (model_type ``talkie``), under the names its publisher's code gives it:
``talkie-lm/talkie``'s ``src/talkie/model.py`` (``TalkieModel``: ``embed``,
``blocks.N.attn.attn_query/attn_key/attn_value/attn_resid``, ``blocks.N.attn.head_gain.head_g``,
``blocks.N.attn_gain.a_g``, ``blocks.N.mlp.mlp_gate/mlp_linear/mlp_resid`` —
``round(8/3 * n_embd / 128) * 128`` wide — ``blocks.N.mlp_gain.a_g``, ``blocks.N.embed_skip.a_g``,
the bare ``lm_head`` parameter and ``lm_head_gain.w_g``; its rotary tables are not
persistent), which the publisher's ``scripts/convert_to_mlx.py`` writes to safetensors as
they are (the release itself is a PyTorch pickle). Its norms have no weights. The config
keys are those an HF-style conversion of the release writes (hidden_size,
num_hidden_layers, ...), at tiny sizes.

mlx-lm's model keeps all but the head under ``model.``; its sanitize does not add the
prefix, so ``mlx_lm.convert`` refuses these names."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["TalkieForCausalLM"],
    "eos_token_id": 2,
    "head_dim": 16,
    "hidden_size": 64,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "model_type": "talkie",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
}


def tensors(config):
    h, v, i = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    t = {"embed.weight": ((v, h), BF16), "lm_head": ((v, h), BF16),
         "lm_head_gain.w_g": ((1,), BF16)}
    for n in range(config["num_hidden_layers"]):
        p = f"blocks.{n}"
        t.update({
            f"{p}.attn.attn_query.weight": ((h, h), BF16),
            f"{p}.attn.attn_key.weight": ((h, h), BF16),
            f"{p}.attn.attn_value.weight": ((h, h), BF16),
            f"{p}.attn.attn_resid.weight": ((h, h), BF16),
            f"{p}.attn.head_gain.head_g": ((heads,), BF16),
            f"{p}.attn_gain.a_g": ((1,), BF16),
            f"{p}.mlp.mlp_gate.weight": ((i, h), BF16),
            f"{p}.mlp.mlp_linear.weight": ((i, h), BF16),
            f"{p}.mlp.mlp_resid.weight": ((h, i), BF16),
            f"{p}.mlp_gain.a_g": ((1,), BF16),
            f"{p}.embed_skip.a_g": ((1,), BF16),
        })
    return t
