"""Qwen (1) (model_type ``qwen``), as Qwen/Qwen-1_8B ships it: the tensor names of the
publisher's ``modeling_qwen.py`` (``QWenLMHeadModel``: ``transformer.wte``,
``transformer.h.N.ln_1``, ``attn.c_attn`` (fused q, k, v, with a bias), ``attn.c_proj``,
``ln_2``, ``mlp.w1``/``mlp.w2`` (each half of ``intermediate_size``) and ``mlp.c_proj``,
``transformer.ln_f``, ``lm_head``; ``no_bias`` leaves the other projections without one;
the rotary ``inv_freq`` is not persistent). The config keys are Qwen-1_8B's at tiny sizes
(its ``auto_map`` and ``tokenizer_class`` left out)."""

from ._shapes import BF16

CONFIG = {
    "architectures": ["QWenLMHeadModel"],
    "attn_dropout_prob": 0.0,
    "bf16": False,
    "emb_dropout_prob": 0.0,
    "fp16": False,
    "fp32": False,
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "kv_channels": 16,
    "layer_norm_epsilon": 1e-06,
    "max_position_embeddings": 256,
    "model_type": "qwen",
    "no_bias": True,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "onnx_safe": None,
    "rotary_emb_base": 10000,
    "rotary_pct": 1.0,
    "scale_attn_weights": True,
    "seq_length": 256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_dynamic_ntk": True,
    "use_flash_attn": "auto",
    "use_logn_attn": True,
    "vocab_size": 128,
}


def tensors(config):
    h, v = config["hidden_size"], config["vocab_size"]
    proj = config["kv_channels"] * config["num_attention_heads"]
    ff = config["intermediate_size"] // 2
    t = {"transformer.wte.weight": ((v, h), BF16), "transformer.ln_f.weight": ((h,), BF16),
         "lm_head.weight": ((v, h), BF16)}
    for n in range(config["num_hidden_layers"]):
        p = f"transformer.h.{n}"
        t.update({
            f"{p}.ln_1.weight": ((h,), BF16),
            f"{p}.attn.c_attn.weight": ((3 * proj, h), BF16),
            f"{p}.attn.c_attn.bias": ((3 * proj,), BF16),
            f"{p}.attn.c_proj.weight": ((h, proj), BF16),
            f"{p}.ln_2.weight": ((h,), BF16),
            f"{p}.mlp.w1.weight": ((ff, h), BF16),
            f"{p}.mlp.w2.weight": ((ff, h), BF16),
            f"{p}.mlp.c_proj.weight": ((h, ff), BF16),
        })
    return t
