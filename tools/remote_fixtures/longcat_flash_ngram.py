"""LongCat-Flash-Lite (``model_type`` "longcat_flash_ngram"; meituan-longcat/LongCat-Flash-Lite).

transformers has no class for it: the release runs on Meituan's remote code. The tensor names
are those of the release's ``model.safetensors.index.json`` as a public audit of that index
lists them (checkpoint-verified families): ``model.embed_tokens.weight``,
``model.ngram_embeddings.embedders.{i}.weight`` (``[m + 2i + 1, emb_dim]`` with
``m = ngram_vocab_size_ratio * vocab_size`` and ``emb_dim = hidden / (emb_split_num *
(emb_neighbor_num - 1))``), ``model.ngram_embeddings.post_projs.{i}.weight``
(``[hidden, emb_dim]``), ``lm_head.weight``, ``model.norm.weight``, and per layer the
LongCat-Flash block: two MLA sub-blocks ``self_attn.{0,1}`` (``q_a_proj``,
``q_a_layernorm``, ``q_b_proj``, ``kv_a_proj_with_mqa``, ``kv_a_layernorm``, ``kv_b_proj``,
``o_proj``), two dense MLPs ``mlps.{0,1}``, norms ``input_layernorm.{0,1}`` and
``post_attention_layernorm.{0,1}``, and the MoE: ``mlp.router.classifier.weight`` over
``n_routed_experts + zero_expert_num`` classes, ``mlp.router.e_score_correction_bias``,
``mlp.experts.{e}.{gate,up,down}_proj.weight`` for the learned experts only (the zero
experts are identities). The release also carries ``model.mtp.*`` (one multi-token-prediction
layer), represented here by its ``eh_proj`` and ``enorm``. Sizes are tiny
(``ngram_vocab_size_ratio`` 1, two tables), config keys those of mlx-lm's ``ModelArgs``
with the release's values where the sizes allow.
"""

CONFIG = {
    "architectures": ["LongcatFlashNgramForCausalLM"],
    "attention_bias": False,
    "attention_method": "MLA",
    "bos_token_id": 1,
    "emb_neighbor_num": 2,
    "emb_split_num": 2,
    "eos_token_id": 2,
    "expert_ffn_hidden_size": 64,
    "ffn_hidden_size": 64,
    "hidden_size": 64,
    "kv_lora_rank": 64,
    "max_position_embeddings": 256,
    "mla_scale_kv_lora": True,
    "mla_scale_q_lora": True,
    "model_type": "longcat_flash_ngram",
    "moe_topk": 2,
    "n_routed_experts": 4,
    "ngram_vocab_size_ratio": 1,
    "num_attention_heads": 4,
    "num_layers": 1,
    "q_lora_rank": 64,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 16,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000000.0,
    "routed_scaling_factor": 6.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "v_head_dim": 16,
    "vocab_size": 128,
    "zero_expert_num": 2,
    "zero_expert_type": "identity",
}


def _mlp(prefix: str, h: int, inter: int) -> dict:
    return {f"{prefix}.gate_proj.weight": ((inter, h), "bfloat16"),
            f"{prefix}.up_proj.weight": ((inter, h), "bfloat16"),
            f"{prefix}.down_proj.weight": ((h, inter), "bfloat16")}


def tensors(config: dict) -> dict:
    h, v = config["hidden_size"], config["vocab_size"]
    heads = config["num_attention_heads"]
    nope, rope, vd = (config["qk_nope_head_dim"], config["qk_rope_head_dim"],
                      config["v_head_dim"])
    ql, kvl = config["q_lora_rank"], config["kv_lora_rank"]
    tables = config["emb_split_num"] * (config["emb_neighbor_num"] - 1)
    emb_dim = h // tables
    m = config["ngram_vocab_size_ratio"] * v
    out = {"model.embed_tokens.weight": ((v, h), "bfloat16"),
           "model.norm.weight": ((h,), "bfloat16"),
           "lm_head.weight": ((v, h), "bfloat16")}
    for i in range(tables):
        out[f"model.ngram_embeddings.embedders.{i}.weight"] = ((m + 2 * i + 1, emb_dim),
                                                               "bfloat16")
        out[f"model.ngram_embeddings.post_projs.{i}.weight"] = ((h, emb_dim), "bfloat16")
    for l in range(config["num_layers"]):
        p = f"model.layers.{l}"
        for i in range(2):
            a = f"{p}.self_attn.{i}"
            out.update({f"{a}.q_a_proj.weight": ((ql, h), "bfloat16"),
                        f"{a}.q_a_layernorm.weight": ((ql,), "bfloat16"),
                        f"{a}.q_b_proj.weight": ((heads * (nope + rope), ql), "bfloat16"),
                        f"{a}.kv_a_proj_with_mqa.weight": ((kvl + rope, h), "bfloat16"),
                        f"{a}.kv_a_layernorm.weight": ((kvl,), "bfloat16"),
                        f"{a}.kv_b_proj.weight": ((heads * (nope + vd), kvl), "bfloat16"),
                        f"{a}.o_proj.weight": ((h, heads * vd), "bfloat16"),
                        f"{p}.input_layernorm.{i}.weight": ((h,), "bfloat16"),
                        f"{p}.post_attention_layernorm.{i}.weight": ((h,), "bfloat16")})
            out.update(_mlp(f"{p}.mlps.{i}", h, config["ffn_hidden_size"]))
        classes = config["n_routed_experts"] + config["zero_expert_num"]
        out[f"{p}.mlp.router.classifier.weight"] = ((classes, h), "bfloat16")
        out[f"{p}.mlp.router.e_score_correction_bias"] = ((classes,), "bfloat16")
        for e in range(config["n_routed_experts"]):
            out.update(_mlp(f"{p}.mlp.experts.{e}", h, config["expert_ffn_hidden_size"]))
    out["model.mtp.layers.0.eh_proj.weight"] = ((h, 2 * h), "bfloat16")
    out["model.mtp.layers.0.enorm.weight"] = ((h,), "bfloat16")
    return out
