"""RWKV-7 "Goose" in flash-linear-attention's Hugging Face layout (``RWKV7ForCausalLM``,
model_type ``rwkv7``: the fla-hub/RWKV releases, e.g. RWKV/RWKV7-Goose-Pile-168M-HF).

Names and shapes from the publisher's modeling code, fla-org/flash-linear-attention
``fla/models/rwkv7/modeling_rwkv7.py`` (RWKV7Model: ``embeddings``, ``layers.N`` =
RWKV7Block: ``pre_norm`` on layer 0 only, ``attn_norm``, ``attn``, ``ffn_norm``, ``ffn`` =
RWKV7FeedForward ``x_k [hidden]``, ``key``, ``value``; ``norm``) and
``fla/layers/rwkv7.py`` (RWKV7Attention: ``x_r..x_g [1, 1, hidden]``, ``k_k``/``k_a``
``[hidden]``, ``r_k [heads, head_dim]``, ``r/k/v/o_proj``, the low-rank ``w_lora``,
``v_lora`` (not on layer 0), ``a_lora``, ``g_lora`` (no bias) as ``nn.Sequential`` entries
``lora.0``/``lora.2``, and the ``g_norm`` GroupNorm's ``weight``/``bias`` ``[hidden]``);
LayerNorms with biases (``norm_bias``). Config keys are RWKV7Config's
(``fla/models/rwkv7/configuration_rwkv7.py``) as the releases write them. The low-rank
widths are all 64 here (the 168M release has 32 for ``v_lora``), so that every LoRA
up-projection is quantizable at groups of 32 and 64.
"""

CONFIG = {
    "architectures": ["RWKV7ForCausalLM"],
    "model_type": "rwkv7",
    "attn": None,
    "attn_mode": "chunk",
    "a_low_rank_dim": 64,
    "decay_low_rank_dim": 64,
    "gate_low_rank_dim": 64,
    "v_low_rank_dim": 64,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "fuse_cross_entropy": True,
    "fuse_norm": False,
    "head_dim": 32,
    "hidden_act": "sqrelu",
    "hidden_ratio": 2.0,
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "norm_bias": True,
    "norm_eps": 1e-05,
    "norm_first": True,
    "num_heads": None,
    "num_hidden_layers": 2,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 128,
}


def tensors(config):
    h, hd, inter = config["hidden_size"], config["head_dim"], config["intermediate_size"]
    heads = h // hd
    t = {"model.embeddings.weight": ((config["vocab_size"], h), "bfloat16"),
         "model.norm.weight": ((h,), "bfloat16"), "model.norm.bias": ((h,), "bfloat16"),
         "lm_head.weight": ((config["vocab_size"], h), "bfloat16")}
    loras = {"w_lora": ("decay_low_rank_dim", True), "v_lora": ("v_low_rank_dim", True),
             "a_lora": ("a_low_rank_dim", True), "g_lora": ("gate_low_rank_dim", False)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        norms = (["pre_norm"] if i == 0 else []) + ["attn_norm", "ffn_norm"]
        for n in norms:
            t[f"{p}.{n}.weight"] = ((h,), "bfloat16")
            t[f"{p}.{n}.bias"] = ((h,), "bfloat16")
        a = f"{p}.attn"
        for n in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
            t[f"{a}.{n}"] = ((1, 1, h), "bfloat16")
        t[f"{a}.k_k"] = ((h,), "bfloat16")
        t[f"{a}.k_a"] = ((h,), "bfloat16")
        t[f"{a}.r_k"] = ((heads, hd), "bfloat16")
        for n in ("r_proj", "k_proj", "v_proj", "o_proj"):
            t[f"{a}.{n}.weight"] = ((h, h), "bfloat16")
        for n, (key, bias) in loras.items():
            if n == "v_lora" and i == 0:
                continue
            r = config[key]
            t[f"{a}.{n}.lora.0.weight"] = ((r, h), "bfloat16")
            t[f"{a}.{n}.lora.2.weight"] = ((h, r), "bfloat16")
            if bias:
                t[f"{a}.{n}.lora.2.bias"] = ((h,), "bfloat16")
        t[f"{a}.g_norm.weight"] = ((h,), "bfloat16")
        t[f"{a}.g_norm.bias"] = ((h,), "bfloat16")
        t[f"{p}.ffn.x_k"] = ((h,), "bfloat16")
        t[f"{p}.ffn.key.weight"] = ((inter, h), "bfloat16")
        t[f"{p}.ffn.value.weight"] = ((h, inter), "bfloat16")
    return t
