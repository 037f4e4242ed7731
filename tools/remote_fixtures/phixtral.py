"""Phixtral (model_type ``phi-msft``, which mlx-lm routes to its ``phixtral`` module), as
mlabonne/phixtral-4x2_8 ships it: the names of the ``phi-msft`` remote code it uses
(``PhiForCausalLM``: ``transformer.embd.wte``, parallel blocks ``transformer.h.N`` of ``ln``,
``mixer.Wqkv`` and ``mixer.out_proj`` with biases, and a ``moe`` of a ``gate`` and experts
``moe.mlp.E.fc1/fc2`` with biases, four times the hidden width; the head
``lm_head.ln`` / ``lm_head.linear`` with biases). The config keys are phixtral-4x2_8's
(``n_embd``, ``n_layer``, ...) at tiny sizes, one layer of two experts, plus the names
mlx-lm's ``ModelArgs`` reads instead (``model_dim``, ``num_heads``, ``num_layers``,
``num_vocab``): without them mlx-lm builds phixtral-4x2_8's own sizes, its defaults (its
``auto_map`` left out)."""

from ._shapes import BF16

CONFIG = {
    "activation_function": "gelu_new",
    "architecture": {"block_cls": "parallel", "mixer": {}, "mlp": {"mlp_cls": "fused_mlp"}},
    "architectures": ["PhiForCausalLM"],
    "attn_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "flash_attn": False,
    "flash_rotary": False,
    "fused_dense": False,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_dim": 64,
    "model_type": "phi-msft",
    "n_embd": 64,
    "n_head": 4,
    "n_head_kv": None,
    "n_inner": None,
    "n_layer": 1,
    "n_positions": 256,
    "num_experts_per_tok": 2,
    "num_heads": 4,
    "num_layers": 1,
    "num_local_experts": 2,
    "num_vocab": 128,
    "resid_pdrop": 0.1,
    "rotary_dim": 8,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128,
}


def tensors(config):
    d, v = config["n_embd"], config["vocab_size"]
    ff = 4 * d
    t = {"transformer.embd.wte.weight": ((v, d), BF16),
         "lm_head.ln.weight": ((d,), BF16), "lm_head.ln.bias": ((d,), BF16),
         "lm_head.linear.weight": ((v, d), BF16), "lm_head.linear.bias": ((v,), BF16)}
    for n in range(config["n_layer"]):
        p = f"transformer.h.{n}"
        t.update({
            f"{p}.ln.weight": ((d,), BF16), f"{p}.ln.bias": ((d,), BF16),
            f"{p}.mixer.Wqkv.weight": ((3 * d, d), BF16), f"{p}.mixer.Wqkv.bias": ((3 * d,), BF16),
            f"{p}.mixer.out_proj.weight": ((d, d), BF16), f"{p}.mixer.out_proj.bias": ((d,), BF16),
            f"{p}.moe.gate.weight": ((config["num_local_experts"], d), BF16),
        })
        for e in range(config["num_local_experts"]):
            q = f"{p}.moe.mlp.{e}"
            t.update({f"{q}.fc1.weight": ((ff, d), BF16), f"{q}.fc1.bias": ((ff,), BF16),
                      f"{q}.fc2.weight": ((d, ff), BF16), f"{q}.fc2.bias": ((d,), BF16)})
    return t
