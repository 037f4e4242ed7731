"""Kimi-VL (``moonshotai/Kimi-VL-A3B-Instruct``, ``-Thinking``): ``model_type`` "kimi_vl",
defined only by the publisher's remote code (``configuration_kimi_vl.py``,
``modeling_kimi_vl.py``), which transformers 5.25 does not ship.

Tensor names follow the publisher's ``modeling_kimi_vl.py``: ``KimiVLForConditionalGeneration``
holds ``vision_tower`` (``MoonVitPretrainedModel``: ``patch_embed.proj`` a Conv2d with bias,
``patch_embed.pos_emb.weight`` ``[height, width, hidden]``, ``encoder.blocks.N`` with
``norm0``/``norm1`` LayerNorms, a fused ``wqkv`` and ``wo`` with biases, ``mlp.fc0``/``mlp.fc1``,
then ``encoder.final_layernorm``), ``multi_modal_projector`` (``pre_norm`` LayerNorm over the
vision width, ``linear_1`` and ``linear_2`` with biases over the 2x2-merged width) and
``language_model`` (DeepSeek-V3's ``DeepseekV3ForCausalLM``: ``model.*`` and ``lm_head``;
no query LoRA — ``q_lora_rank`` is null, so ``self_attn.q_proj`` —, the first layer dense,
then routed experts one module each, a shared expert and the sigmoid router with its
``e_score_correction_bias``, kept in float32 as DeepSeek-V3's releases keep it). The module
names were read in ports that cite that file (vLLM's ``kimi_vl.py``, "Adapted from
https://huggingface.co/moonshotai/Kimi-VL-A3B-Instruct/blob/main/modeling_kimi_vl.py", and
NVIDIA NeMo Automodel's ``kimivl``). Config keys: the release's ``config.json`` layout
(``text_config`` with DeepSeek-V3's keys, ``vision_config`` with MoonViT's), tiny sizes.
"""

from __future__ import annotations

H = 64
VOCAB = 128
VISION = 32

CONFIG = {
    "architectures": ["KimiVLForConditionalGeneration"],
    "auto_map": {
        "AutoConfig": "configuration_kimi_vl.KimiVLConfig",
        "AutoModel": "modeling_kimi_vl.KimiVLForConditionalGeneration",
        "AutoModelForCausalLM": "modeling_kimi_vl.KimiVLForConditionalGeneration",
    },
    "ignore_index": -100,
    "media_placeholder_token_id": 100,
    "model_type": "kimi_vl",
    "pad_token_id": 0,
    "torch_dtype": "bfloat16",
    "text_config": {
        "architectures": ["DeepseekV3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "hidden_size": H,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "kv_lora_rank": 32,
        "max_position_embeddings": 256,
        "model_type": "deepseek_v3",
        "moe_intermediate_size": 64,
        "moe_layer_freq": 1,
        "n_group": 1,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "norm_topk_prob": True,
        "num_attention_heads": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 2,
        "num_key_value_heads": 4,
        "num_nextn_predict_layers": 0,
        "pad_token_id": 0,
        "q_lora_rank": None,
        "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 16,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 800000.0,
        "routed_scaling_factor": 2.446,
        "scoring_func": "sigmoid",
        "tie_word_embeddings": False,
        "topk_group": 1,
        "topk_method": "noaux_tc",
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "v_head_dim": 32,
        "vocab_size": VOCAB,
    },
    "vision_config": {
        "hidden_size": VISION,
        "init_pos_emb_height": 4,
        "init_pos_emb_width": 4,
        "intermediate_size": 64,
        "merge_kernel_size": [2, 2],
        "model_type": "moonvit",
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
        "patch_size": 4,
        "torch_dtype": "bfloat16",
    },
}


def tensors(config: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    t = config["text_config"]
    v = config["vision_config"]
    bf = "bfloat16"
    out: dict[str, tuple[tuple[int, ...], str]] = {}

    # MoonViT
    vh = v["hidden_size"]
    p = v["patch_size"]
    out["vision_tower.patch_embed.proj.weight"] = ((vh, 3, p, p), bf)
    out["vision_tower.patch_embed.proj.bias"] = ((vh,), bf)
    out["vision_tower.patch_embed.pos_emb.weight"] = (
        (v["init_pos_emb_height"], v["init_pos_emb_width"], vh), bf)
    for b in range(v["num_hidden_layers"]):
        pre = f"vision_tower.encoder.blocks.{b}"
        for n in ("norm0", "norm1"):
            out[f"{pre}.{n}.weight"] = ((vh,), bf)
            out[f"{pre}.{n}.bias"] = ((vh,), bf)
        out[f"{pre}.wqkv.weight"] = ((3 * vh, vh), bf)
        out[f"{pre}.wqkv.bias"] = ((3 * vh,), bf)
        out[f"{pre}.wo.weight"] = ((vh, vh), bf)
        out[f"{pre}.wo.bias"] = ((vh,), bf)
        out[f"{pre}.mlp.fc0.weight"] = ((v["intermediate_size"], vh), bf)
        out[f"{pre}.mlp.fc0.bias"] = ((v["intermediate_size"],), bf)
        out[f"{pre}.mlp.fc1.weight"] = ((vh, v["intermediate_size"]), bf)
        out[f"{pre}.mlp.fc1.bias"] = ((vh,), bf)
    out["vision_tower.encoder.final_layernorm.weight"] = ((vh,), bf)
    out["vision_tower.encoder.final_layernorm.bias"] = ((vh,), bf)

    # the projector over 2x2-merged patches
    merged = vh * v["merge_kernel_size"][0] * v["merge_kernel_size"][1]
    out["multi_modal_projector.pre_norm.weight"] = ((vh,), bf)
    out["multi_modal_projector.pre_norm.bias"] = ((vh,), bf)
    out["multi_modal_projector.linear_1.weight"] = ((merged, merged), bf)
    out["multi_modal_projector.linear_1.bias"] = ((merged,), bf)
    out["multi_modal_projector.linear_2.weight"] = ((t["hidden_size"], merged), bf)
    out["multi_modal_projector.linear_2.bias"] = ((t["hidden_size"],), bf)

    # DeepSeek-V3 under language_model.
    h, heads = t["hidden_size"], t["num_attention_heads"]
    nope, rope, vd, kv = (t["qk_nope_head_dim"], t["qk_rope_head_dim"], t["v_head_dim"],
                          t["kv_lora_rank"])
    lm = "language_model.model"
    out[f"{lm}.embed_tokens.weight"] = ((t["vocab_size"], h), bf)
    for l in range(t["num_hidden_layers"]):
        pre = f"{lm}.layers.{l}"
        out[f"{pre}.input_layernorm.weight"] = ((h,), bf)
        out[f"{pre}.post_attention_layernorm.weight"] = ((h,), bf)
        out[f"{pre}.self_attn.q_proj.weight"] = ((heads * (nope + rope), h), bf)
        out[f"{pre}.self_attn.kv_a_proj_with_mqa.weight"] = ((kv + rope, h), bf)
        out[f"{pre}.self_attn.kv_a_layernorm.weight"] = ((kv,), bf)
        out[f"{pre}.self_attn.kv_b_proj.weight"] = ((heads * (nope + vd), kv), bf)
        out[f"{pre}.self_attn.o_proj.weight"] = ((h, heads * vd), bf)
        if l < t["first_k_dense_replace"]:
            inter = t["intermediate_size"]
            out[f"{pre}.mlp.gate_proj.weight"] = ((inter, h), bf)
            out[f"{pre}.mlp.up_proj.weight"] = ((inter, h), bf)
            out[f"{pre}.mlp.down_proj.weight"] = ((h, inter), bf)
            continue
        e_inter = t["moe_intermediate_size"]
        for e in range(t["n_routed_experts"]):
            out[f"{pre}.mlp.experts.{e}.gate_proj.weight"] = ((e_inter, h), bf)
            out[f"{pre}.mlp.experts.{e}.up_proj.weight"] = ((e_inter, h), bf)
            out[f"{pre}.mlp.experts.{e}.down_proj.weight"] = ((h, e_inter), bf)
        s_inter = e_inter * t["n_shared_experts"]
        out[f"{pre}.mlp.shared_experts.gate_proj.weight"] = ((s_inter, h), bf)
        out[f"{pre}.mlp.shared_experts.up_proj.weight"] = ((s_inter, h), bf)
        out[f"{pre}.mlp.shared_experts.down_proj.weight"] = ((h, s_inter), bf)
        out[f"{pre}.mlp.gate.weight"] = ((t["n_routed_experts"], h), bf)
        out[f"{pre}.mlp.gate.e_score_correction_bias"] = ((t["n_routed_experts"],), "float32")
    out[f"{lm}.norm.weight"] = ((h,), bf)
    out["language_model.lm_head.weight"] = ((t["vocab_size"], h), bf)
    return out
