"""PLaMo-13B (model_type ``plamo``), as pfnet/plamo-13b ships it: the tensor names of the
publisher's ``modeling_plamo.py`` (``PlamoForCausalLM``: ``model.embed_tokens``, the blocks
one level down in ``model.layers.layers.N`` — ``self_attn.q_proj/k_proj/v_proj/o_proj`` with
keys and values shared by ``n_shared_head`` query heads, ``mlp.gate_proj/up_proj/down_proj``
and a single ``norm`` — then ``model.norm`` and ``lm_head``). The config keys are
plamo-13b's at tiny sizes (``n_shared_head`` 2 rather than 8; its ``auto_map`` and
``tokenizer_class`` left out: the fixture's tokenizer is the shared word-level one)."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["PlamoForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_size": 64,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
    "model_type": "plamo",
    "n_shared_head": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    h, v, i = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    hd = h // heads
    kv = -(-heads // config["n_shared_head"])
    t = {"model.embed_tokens.weight": ((v, h), BF16), "model.norm.weight": ((h,), BF16),
         "lm_head.weight": ((v, h), BF16)}
    for n in range(config["num_hidden_layers"]):
        p = f"model.layers.layers.{n}"
        t.update({
            f"{p}.self_attn.q_proj.weight": ((heads * hd, h), BF16),
            f"{p}.self_attn.k_proj.weight": ((kv * hd, h), BF16),
            f"{p}.self_attn.v_proj.weight": ((kv * hd, h), BF16),
            f"{p}.self_attn.o_proj.weight": ((h, heads * hd), BF16),
            f"{p}.mlp.gate_proj.weight": ((i, h), BF16),
            f"{p}.mlp.up_proj.weight": ((i, h), BF16),
            f"{p}.mlp.down_proj.weight": ((h, i), BF16),
            f"{p}.norm.weight": ((h,), BF16),
        })
    return t
