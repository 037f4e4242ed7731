"""A Prism ML Hadamard pack (prism-ml/Ternary-Bonsai-2-27B-mlx-2bit, model_type
``prism_hadamard_qwen35``): a Qwen3.5 checkpoint already in MLX's layout whose projections
and embedding are 2-bit affine codes in groups of 128 with a signed Walsh-Hadamard rotation
folded into their input axis. Every record of the config's ``modules`` manifest names one
packed ``nn.Linear``/``nn.Embedding`` of the text model (``path``, ``embedding``, ``dtype``
"float16" for its scales and biases, ``block``: the rotation's block width, 0 for none);
a packed module holds ``weight`` (uint32 ``[out, in / 16]``), ``scales`` and ``biases``
(float16 ``[out, in / 128]``) and, when rotated, ``signs`` (float32 ``[in]``, each +1 or
-1). The recurrent layers' ``in_proj_a``/``in_proj_b`` stay dense in float32.

Names from the pack's schema 2 (``tensor_namespace`` "mlx-vlm-qwen3_5": mlx-vlm's qwen3_5
names, the text model under ``language_model.``, the vision tower under
``vision_tower.``, already sanitized: MLX conv layout, norms stored with their +1), the
config keys from the published config.json as loaders of the pack quote it
(``schema_version`` 2, ``requires_runtime``, ``hadamard_config``, ``tensor_namespace``,
``gdn_activation_layout`` "grouped", ``base_model_type`` "qwen3_5", ``quantization``
{bits 2, group_size 128, mode affine}, ``modules``), and mlx-lm's
``models/prism_hadamard_qwen35.py``, which reads them. The release rotates in blocks of
1024 over a 5120-wide model; this 512-wide fixture uses blocks of 512 (one of the widths
mlx-lm accepts) where the input is 512 wide and none where it is 128.
"""

import numpy as np

_TEXT = {
    "model_type": "qwen3_5_text", "vocab_size": 128, "hidden_size": 512,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 32, "linear_num_key_heads": 2,
    "linear_num_value_heads": 2, "linear_key_head_dim": 16, "linear_value_head_dim": 64,
    "linear_conv_kernel_dim": 4, "layer_types": ["linear_attention", "full_attention"],
    "full_attention_interval": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-06,
    "tie_word_embeddings": False, "attention_bias": False, "dtype": "bfloat16",
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0,
                        "partial_rotary_factor": 0.25, "mrope_section": [2, 1, 1],
                        "mrope_interleaved": True},
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
}

_LINEAR = ["linear_attn.in_proj_qkv", "linear_attn.in_proj_z", "linear_attn.out_proj"]
_FULL = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]
_MLP = ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def _in_width(path, t):
    if path.endswith(("out_proj", "o_proj")):
        return t["linear_num_value_heads"] * t["linear_value_head_dim"] if "linear" in path \
            else t["num_attention_heads"] * t["head_dim"]
    if path.endswith("down_proj"):
        return t["intermediate_size"]
    return t["hidden_size"]


def _modules(t):
    paths = ["model.embed_tokens"]
    for i, kind in enumerate(t["layer_types"]):
        own = _LINEAR if kind == "linear_attention" else _FULL
        paths += [f"model.layers.{i}.{p}" for p in own + _MLP]
    paths.append("lm_head")
    return [{"path": p, "embedding": p.endswith("embed_tokens"), "dtype": "float16",
             "block": 512 if _in_width(p, t) == 512 else 0} for p in paths]


CONFIG = {
    "architectures": ["Qwen3_5ForConditionalGeneration"],
    "model_type": "prism_hadamard_qwen35",
    "base_model_type": "qwen3_5",
    "schema_version": 2,
    "tensor_namespace": "mlx-vlm-qwen3_5",
    "requires_runtime": "runtime/artifact.py",
    "hadamard_config": "hadamard.json",
    "gdn_activation_layout": "grouped",
    "quantization": {"bits": 2, "group_size": 128, "mode": "affine"},
    "modules": _modules(_TEXT),
    "text_config": _TEXT,
    "vision_config": {"model_type": "qwen3_5_vision", "depth": 1, "hidden_size": 16,
                      "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 512,
                      "patch_size": 4, "temporal_patch_size": 2, "spatial_merge_size": 2,
                      "in_channels": 3, "num_position_embeddings": 16},
    "image_token_id": 100,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def _out_width(path, t):
    h = t["hidden_size"]
    kd = t["linear_num_key_heads"] * t["linear_key_head_dim"]
    vd = t["linear_num_value_heads"] * t["linear_value_head_dim"]
    return {"embed_tokens": t["vocab_size"], "lm_head": t["vocab_size"],
            "in_proj_qkv": 2 * kd + vd, "in_proj_z": vd, "out_proj": h,
            "q_proj": 2 * t["num_attention_heads"] * t["head_dim"],
            "k_proj": t["num_key_value_heads"] * t["head_dim"],
            "v_proj": t["num_key_value_heads"] * t["head_dim"], "o_proj": h,
            "gate_proj": t["intermediate_size"], "up_proj": t["intermediate_size"],
            "down_proj": h}[path.rpartition(".")[2]]


def tensors(config):
    t = config["text_config"]
    h = t["hidden_size"]
    out = {}
    for rec in config["modules"]:
        p, i = "language_model." + rec["path"], _in_width(rec["path"], t)
        o = _out_width(rec["path"], t)
        out[f"{p}.weight"] = ((o, i // 16), "uint32")
        out[f"{p}.scales"] = ((o, i // 128), "float16")
        out[f"{p}.biases"] = ((o, i // 128), "float16")
        if rec["block"]:
            out[f"{p}.signs"] = ((i,), "float32")
    m = "language_model.model"
    out[f"{m}.norm.weight"] = ((h,), "bfloat16")
    kd = t["linear_num_key_heads"] * t["linear_key_head_dim"]
    vd = t["linear_num_value_heads"] * t["linear_value_head_dim"]
    for i, kind in enumerate(t["layer_types"]):
        p = f"{m}.layers.{i}"
        out[f"{p}.input_layernorm.weight"] = ((h,), "bfloat16")
        out[f"{p}.post_attention_layernorm.weight"] = ((h,), "bfloat16")
        if kind == "linear_attention":
            a = f"{p}.linear_attn"
            out[f"{a}.conv1d.weight"] = ((2 * kd + vd, t["linear_conv_kernel_dim"], 1), "bfloat16")
            out[f"{a}.in_proj_a.weight"] = ((t["linear_num_value_heads"], h), "float32")
            out[f"{a}.in_proj_b.weight"] = ((t["linear_num_value_heads"], h), "float32")
            out[f"{a}.dt_bias"] = ((t["linear_num_value_heads"],), "float32")
            out[f"{a}.A_log"] = ((t["linear_num_value_heads"],), "float32")
            out[f"{a}.norm.weight"] = ((t["linear_value_head_dim"],), "bfloat16")
        else:
            out[f"{p}.self_attn.q_norm.weight"] = ((t["head_dim"],), "bfloat16")
            out[f"{p}.self_attn.k_norm.weight"] = ((t["head_dim"],), "bfloat16")
    # a sliver of mlx-vlm's vision tower (dropped by mlx-lm's sanitize)
    v = config["vision_config"]
    out["vision_tower.patch_embed.proj.weight"] = ((v["hidden_size"], 2, 4, 4, 3), "bfloat16")
    out["vision_tower.blocks.0.attn.qkv.weight"] = ((3 * v["hidden_size"], v["hidden_size"]),
                                                    "bfloat16")
    out["vision_tower.merger.linear_fc2.weight"] = ((h, 4 * v["hidden_size"]), "bfloat16")
    return out


def fill(name, shape, dtype, rng):
    """Rotation signs are each +1 or -1 (mlx-lm's sanitize refuses anything else); packed
    words take any 32-bit value."""
    if name.endswith(".signs"):
        return np.where(rng.integers(0, 2, size=shape) == 1, 1.0, -1.0).astype(np.float32)
    if dtype == "uint32":
        return rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)
    return None
