"""DeepSeek-V4.1 (``model_type`` "deepseek_v41"; deepseek-ai), in its release format: FP8
weights with power-of-two (UE8M0) scales over 32x32 tiles and FP4 routed experts.

transformers 5.25 has DeepSeek-V4 but not V4.1, and DeepSeek's own inference code for V4.1
could not be consulted here, so the names are DeepSeek's checkpoint naming as the loaders
written against the release read it: transformers' DeepSeek-V4 weight-conversion rules
(``conversion_mapping.py``, "deepseek_v4": the source patterns are the release's names —
``embed``, ``head``, ``layers.N.attn.{wq_a,wq_b,wkv,wo_a,wo_b,q_norm,kv_norm,attn_sink}``,
``layers.N.{attn_norm,ffn_norm}``, ``layers.N.hc_{attn,ffn}_{fn,base,scale}``,
``layers.N.ffn.gate.{weight,bias}``, ``layers.N.ffn.experts.E.w{1,2,3}``,
``layers.N.ffn.shared_experts.w{1,2,3}``, ``compressor.{wkv,wgate,norm}``,
``indexer.{wq_b,weights_proj}``) and mlx-lm's ``deepseek_v41`` (``_rename``, its
``_EXPERT_KEY``, the ``X.scale`` beside an ``X.weight``, V4.1's ``indexer.wk`` /
``indexer.k_norm`` on the layers that compress their own keys, the prefixes it drops:
``mtp.``, ``vision.``, ``aligner.``, ``image_``, ``.engram.``, ``gate.bias_vl``).
transformers' FP8 integration for this family gives the storage: FP8 weights
``float8_e4m3fn`` with ``float8_e8m0fnu`` scales (``scale_fmt`` "ue8m0") one per 32x32 tile,
FP4 experts ``int8`` ``[out, in / 2]`` (two E2M1 codes a byte) with one UE8M0 scale per 32
inputs (``expert_dtype`` "fp4"). Embeddings, head, norms, routers, sinks and the
hyper-connection mixers stay in bf16/float32. The text model sits in ``text_config`` of a
container whose vision tensors (``vision.``) mlx-lm drops. Layer 0 compresses its keys
(ratio 4: a compressor with a gate and an indexer of its own); layer 1 attends to its
window only.
"""

CONFIG = {
    "architectures": ["DeepseekV41ForConditionalGeneration"],
    "model_type": "deepseek_v41",
    "torch_dtype": "bfloat16",
    "quantization_config": {"activation_scheme": "dynamic", "expert_dtype": "fp4",
                            "fmt": "e4m3", "quant_method": "fp8", "scale_fmt": "ue8m0",
                            "weight_block_size": [32, 32]},
    "text_config": {
        "model_type": "deepseek_v41_text",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "candidate_source_layer_id": -1,
        "compress_ratios": [4, 0],
        "compress_rope_theta": 160000.0,
        "hc_eps": 1e-06,
        "hc_mult": 4,
        "hc_sinkhorn_iters": 20,
        "head_dim": 32,
        "hidden_size": 64,
        "index_head_dim": 32,
        "index_n_heads": 2,
        "index_source_layer_ids": [0],
        "index_topk": 8,
        "kv_source_layer_ids": [0],
        "max_position_embeddings": 256,
        "moe_intermediate_size": 64,
        "n_routed_experts": 4,
        "norm_topk_prob": True,
        "num_attention_heads": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 2,
        "o_groups": 2,
        "o_lora_rank": 32,
        "q_lora_rank": 32,
        "qk_rope_head_dim": 16,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "routed_scaling_factor": 1.5,
        "scoring_func": "sqrtsoftplus",
        "sliding_window": 16,
        "swiglu_limit": 10.0,
        "vocab_size": 128,
    },
    "vision_config": {"hidden_size": 16},
}


def _fp8(out: dict, name: str, rows: int, cols: int) -> None:
    out[f"{name}.weight"] = ((rows, cols), "float8_e4m3fn")
    out[f"{name}.scale"] = ((-(-rows // 32), cols // 32), "float8_e8m0fnu")


def _fp4(out: dict, name: str, rows: int, cols: int) -> None:
    out[f"{name}.weight"] = ((rows, cols // 2), "int8")
    out[f"{name}.scale"] = ((rows, cols // 32), "float8_e8m0fnu")


def tensors(config: dict) -> dict:
    t = config["text_config"]
    h, v, hd = t["hidden_size"], t["vocab_size"], t["head_dim"]
    heads, ql = t["num_attention_heads"], t["q_lora_rank"]
    hc = t["hc_mult"]
    mix = (2 + hc) * hc
    out = {"embed.weight": ((v, h), "bfloat16"),
           "head.weight": ((v, h), "bfloat16"),
           "norm.weight": ((h,), "bfloat16"),
           "vision.patch_embed.weight": ((16, 12), "bfloat16"),
           "mtp.0.eh_proj.weight": ((h, 2 * h), "bfloat16")}
    for i in range(t["num_hidden_layers"]):
        p = f"layers.{i}"
        a = f"{p}.attn"
        _fp8(out, f"{a}.wq_a", ql, h)
        _fp8(out, f"{a}.wq_b", heads * hd, ql)
        _fp8(out, f"{a}.wkv", hd, h)
        _fp8(out, f"{a}.wo_a", t["o_groups"] * t["o_lora_rank"], heads * hd // t["o_groups"])
        _fp8(out, f"{a}.wo_b", h, t["o_groups"] * t["o_lora_rank"])
        out.update({f"{a}.q_norm.weight": ((ql,), "bfloat16"),
                    f"{a}.kv_norm.weight": ((hd,), "bfloat16"),
                    f"{a}.attn_sink": ((heads,), "float32"),
                    f"{p}.attn_norm.weight": ((h,), "bfloat16"),
                    f"{p}.ffn_norm.weight": ((h,), "bfloat16")})
        for kind in ("attn", "ffn"):
            out.update({f"{p}.hc_{kind}_fn": ((mix, hc * h), "float32"),
                        f"{p}.hc_{kind}_base": ((mix,), "float32"),
                        f"{p}.hc_{kind}_scale": ((3,), "float32")})
        ratio = t["compress_ratios"][i]
        if i in t["kv_source_layer_ids"]:
            _fp8(out, f"{a}.compressor.wkv", hd, h)
            if ratio > 1:
                _fp8(out, f"{a}.compressor.wgate", hd, h)
            out[f"{a}.compressor.norm.weight"] = ((hd,), "bfloat16")
        if i in t["index_source_layer_ids"]:
            _fp8(out, f"{a}.indexer.wq_b", t["index_n_heads"] * t["index_head_dim"], ql)
            out[f"{a}.indexer.weights_proj.weight"] = ((t["index_n_heads"], h), "bfloat16")
            if i in t["kv_source_layer_ids"]:
                _fp8(out, f"{a}.indexer.wk", t["index_head_dim"], hd)
                out[f"{a}.indexer.k_norm.weight"] = ((t["index_head_dim"],), "bfloat16")
        f = f"{p}.ffn"
        e, inter = t["n_routed_experts"], t["moe_intermediate_size"]
        out.update({f"{f}.gate.weight": ((e, h), "bfloat16"),
                    f"{f}.gate.bias": ((e,), "float32"),
                    f"{f}.gate.bias_vl": ((e,), "float32")})
        for x in range(e):
            _fp4(out, f"{f}.experts.{x}.w1", inter, h)
            _fp4(out, f"{f}.experts.{x}.w2", h, inter)
            _fp4(out, f"{f}.experts.{x}.w3", inter, h)
        _fp8(out, f"{f}.shared_experts.w1", inter, h)
        _fp8(out, f"{f}.shared_experts.w2", h, inter)
        _fp8(out, f"{f}.shared_experts.w3", inter, h)
    return out
