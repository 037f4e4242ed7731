"""Apple's on-device Foundation Model (model_type ``afm7``), as the AFM-to-MLX weight converter
for the Foundation Models adapter toolkit writes it (Apple publishes no safetensors
release): its ``map_model_keys`` renames the toolkit's PyTorch checkpoint
(``layers.segment_0.layer_N...`` / ``segment_1``) into exactly mlx-lm's names —
``model.embedding``, ``model.layers.N.self_attn.qkv_proj`` / ``out_proj`` / ``q_norm`` /
``k_norm``, ``model.layers.N.mlp.gate_proj`` / ``up_proj`` / ``down_proj``
(``int(hidden_dim * 3.25)`` wide), ``input_layernorm``, ``post_attention_layernorm``, the
KV-reuse blocks ``model.kv_reuse_layers.N`` (``self_attn.q_proj`` / ``out_proj`` / ``q_norm``),
``model.output_norm`` — drops the output transform tied to the embedding, and adds the
KV-quantizer ranges as 0-d ``quant_key_scale`` / ``quant_value_scale`` tensors per block.
Its config.json holds only the keys below (no ``architectures``, no ``torch_dtype``), at
tiny sizes; the weights are bfloat16 (its ``--dtype bfloat16``)."""

from ._shapes import BF16

CONFIG = {
    "model_type": "afm7",
    "vocab_size": 128,
    "hidden_dim": 64,
    "num_layers": 2,
    "num_kv_reuse_layers": 1,
    "num_heads": 4,
    "num_kv_heads": 2,
    "hidden_dim_scale_factor": 3.25,
    "rope_theta": 500000.0,
}


def tensors(config):
    d, v = config["hidden_dim"], config["vocab_size"]
    heads, kv = config["num_heads"], config["num_kv_heads"]
    hd = d // heads
    ff = int(d * config["hidden_dim_scale_factor"])
    mlp = {"mlp.gate_proj.weight": ((ff, d), BF16), "mlp.up_proj.weight": ((ff, d), BF16),
           "mlp.down_proj.weight": ((d, ff), BF16),
           "input_layernorm.weight": ((d,), BF16),
           "post_attention_layernorm.weight": ((d,), BF16)}
    t = {"model.embedding.weight": ((v, d), BF16), "model.output_norm.weight": ((d,), BF16)}
    for n in range(config["num_layers"] - config["num_kv_reuse_layers"]):
        p = f"model.layers.{n}"
        t.update({f"{p}.{k}": s for k, s in mlp.items()})
        t.update({
            f"{p}.self_attn.qkv_proj.weight": (((heads + 2 * kv) * hd, d), BF16),
            f"{p}.self_attn.out_proj.weight": ((d, d), BF16),
            f"{p}.self_attn.q_norm.weight": ((hd,), BF16),
            f"{p}.self_attn.k_norm.weight": ((hd,), BF16),
            f"{p}.self_attn.quant_key_scale": ((), BF16),
            f"{p}.self_attn.quant_value_scale": ((), BF16),
        })
    for n in range(config["num_kv_reuse_layers"]):
        p = f"model.kv_reuse_layers.{n}"
        t.update({f"{p}.{k}": s for k, s in mlp.items()})
        t.update({
            f"{p}.self_attn.q_proj.weight": ((d, d), BF16),
            f"{p}.self_attn.out_proj.weight": ((d, d), BF16),
            f"{p}.self_attn.q_norm.weight": ((hd,), BF16),
        })
    return t
