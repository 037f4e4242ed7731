#!/usr/bin/env python3
"""Writes tiny Hugging Face checkpoints built by ``transformers`` itself (tests/fixtures/hf/).

The converter's oracle (``mlx_lm.convert``) must see inputs that mlxq did not make, so every
fixture here is a model that ``transformers`` instantiates from a tiny config and saves with
``save_pretrained``: its tensor names, shapes, dtypes and ``config.json`` are what
transformers writes for that family. The tool then adds the few top-level config keys that
real Hub checkpoints of the family carry and transformers 5 no longer writes (see
``HUB_KEYS`` and tests/fixtures/hf/README.md), and a word-level tokenizer.

Pre-quantized variants are derived from the bf16 fixtures with numpy only (no mlxq):
FP8 block checkpoints as DeepSeek-V3/MiniMax-M2/Qwen3-FP8 ship them, and a compressed-tensors
``pack-quantized`` INT4 checkpoint in Kimi-K2-Thinking's layout.

Needs a separate environment with torch (CI does not install it)::

    python3 -m venv /tmp/venv-fixtures
    /tmp/venv-fixtures/bin/pip install torch==2.13.0 transformers==5.25.0 accelerate numpy safetensors ml_dtypes
    # (accelerate: transformers' BitNet quantizer, which reads the packed bitnet fixture back)
    /tmp/venv-fixtures/bin/python tools/gen_hf_fixtures.py            # all, into tests/fixtures/hf
    /tmp/venv-fixtures/bin/python tools/gen_hf_fixtures.py llama qwen3 # some
    /tmp/venv-fixtures/bin/python tools/gen_hf_fixtures.py --out DIR --logits DIR2

``--logits DIR2`` also writes, per fixture, transformers' float32 logits for a fixed prompt
(``DIR2/<name>.npy``), computed from the saved bf16 weights; tools/survey_hf_fixtures.py
compares mlx-lm's logits with them. Output is deterministic: fixed seeds, sorted JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import re
import shutil
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "hf"
PROMPT = [1, 5, 9, 20, 33, 7, 64, 3]

VOCAB = 128
H = 64

# Standard names: applied to a config only where the family's config class knows the key
# (in its defaults or attribute_map), so no family gets a stray attribute.
BASE: dict[str, Any] = {
    "vocab_size": VOCAB,
    "hidden_size": H,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 256,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "moe_intermediate_size": 64,
    "shared_expert_intermediate_size": 64,
    "num_experts_per_tok": 2,
    "num_local_experts": 4,
    "num_experts": 4,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_shared_experts": 1,
    "kv_lora_rank": 64,
    "q_lora_rank": 64,
    "qk_rope_head_dim": 16,
    "qk_nope_head_dim": 32,
    "v_head_dim": 32,
    "n_group": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "sliding_window": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 16,
    "linear_conv_kernel_dim": 4,
    "num_nextn_predict_layers": 0,
}

# DeepSeek-V2's and EXAONE 4's Hub configs use YaRN / llama3 rope scaling
YARN = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0, "beta_fast": 32.0,
        "beta_slow": 1.0, "mscale": 0.707, "mscale_all_dim": 0.707,
        "original_max_position_embeddings": 64}
LLAMA3 = {"rope_type": "llama3", "rope_theta": 1000000.0, "factor": 16.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
# Families whose experts are intermediate_size wide: narrower experts keep fixtures small
EXPERT_FFN = {"intermediate_size": 64}
MLA = {"head_dim": 16, "num_key_value_heads": 4}  # DeepSeek-style: head_dim is qk_rope_head_dim; MLA has no GQA

# Per fixture: (transformers model_type, config overrides). The fixture's name is the key.
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    # --- dense attention --------------------------------------------------------------------
    "llama": ("llama", {}),
    "mistral": ("mistral", {"sliding_window": None}),
    "qwen2": ("qwen2", {}),
    "qwen3": ("qwen3", {}),
    "gemma": ("gemma", {}),
    "gemma2": ("gemma2", {"query_pre_attn_scalar": 16}),
    "gemma3_text": ("gemma3_text", {"num_hidden_layers": 2, "query_pre_attn_scalar": 16,
                                    "layer_types": ["sliding_attention", "full_attention"]}),
    "phi": ("phi", {}),
    "phi3": ("phi3", {"num_key_value_heads": 4}),
    "starcoder2": ("starcoder2", {}),
    "cohere": ("cohere", {}),
    "cohere2": ("cohere2", {"num_hidden_layers": 2,
                            "layer_types": ["sliding_attention", "full_attention"]}),
    "olmo2": ("olmo2", {}),
    "olmo3": ("olmo3", {"layer_types": ["sliding_attention", "full_attention"]}),
    "granite": ("granite", {"embedding_multiplier": 12.0, "logits_scaling": 8.0,
                            "residual_multiplier": 0.22, "attention_multiplier": 0.0625}),
    "glm": ("glm", {}),
    "glm4": ("glm4", {}),
    "gpt2": ("gpt2", {"n_embd": H, "n_layer": 2, "n_head": 4, "n_positions": 256,
                      "bos_token_id": 1, "eos_token_id": 2}),
    # StarCoder Hub configs state n_inner (mlx-lm needs it; transformers defaults it to None)
    "gpt_bigcode": ("gpt_bigcode", {"n_embd": H, "n_layer": 2, "n_head": 4, "n_positions": 256,
                                    "n_inner": 128,
                                    "bos_token_id": 1, "eos_token_id": 2}),
    "gptj": ("gptj", {"n_embd": H, "n_layer": 2, "n_head": 4, "n_positions": 256,
                      "rotary_dim": 8, "bos_token_id": 1, "eos_token_id": 2}),
    "gpt_neox": ("gpt_neox", {"intermediate_size": 4 * H}),  # Pythia's 4x MLP
    "stablelm": ("stablelm", {}),
    "exaone": ("exaone", {}),
    "exaone4": ("exaone4", {"rope_parameters": LLAMA3, "num_hidden_layers": 2, "sliding_window_pattern": "LG",
                            "layer_types": ["sliding_attention", "full_attention"]}),
    "smollm3": ("smollm3", {"num_hidden_layers": 2, "no_rope_layer_interval": 2}),
    "ernie4_5": ("ernie4_5", {}),
    "hunyuan_v1_dense": ("hunyuan_v1_dense", {}),
    "seed_oss": ("seed_oss", {}),
    "internlm3": ("internlm3", {}),
    "helium": ("helium", {}),
    "apertus": ("apertus", {}),
    "nemotron": ("nemotron", {}),
    "ministral3": ("ministral3", {}),
    "iquestcoder": ("iquestcoder", {}),
    # --- mixture of experts -----------------------------------------------------------------
    "mixtral": ("mixtral", EXPERT_FFN),
    "qwen2_moe": ("qwen2_moe", {}),
    "qwen3_moe": ("qwen3_moe", {}),
    "olmoe": ("olmoe", EXPERT_FFN),
    "granitemoe": ("granitemoe", {**EXPERT_FFN, "embedding_multiplier": 12.0, "logits_scaling": 8.0,
                                  "residual_multiplier": 0.22, "attention_multiplier": 0.0625}),
    "phimoe": ("phimoe", {**EXPERT_FFN, "attention_bias": True, "lm_head_bias": True}),
    "dbrx": ("dbrx", {"d_model": H, "n_layers": 2, "n_heads": 4,
                      "attn_config": {"kv_n_heads": 2, "clip_qkv": 8.0, "rope_theta": 10000.0},
                      "ffn_config": {"ffn_hidden_size": 64, "moe_num_experts": 4,
                                     "moe_top_k": 2}}),
    "ernie4_5_moe": ("ernie4_5_moe", {"moe_num_experts": 4, "moe_k": 2,
                                      "moe_num_shared_experts": 1, "moe_layer_start_index": 1,
                                      "moe_layer_end_index": 1}),
    "glm4_moe": ("glm4_moe", {"num_hidden_layers": 2}),
    "deepseek_v2": ("deepseek_v2", {"num_key_value_heads": 4, "kv_lora_rank": 32, "q_lora_rank": None,
                                    "n_group": 1, "topk_group": 1, "rope_parameters": YARN}),
    "deepseek_v3": ("deepseek_v3", MLA),
    "deepseek_v32": ("deepseek_v32", {**MLA, "index_head_dim": 32, "index_n_heads": 2,
                                      "index_topk": 8}),
    "glm4_moe_lite": ("glm4_moe_lite", MLA),
    "glm_moe_dsa": ("glm_moe_dsa", {**MLA, "index_head_dim": 32, "index_n_heads": 2,
                                    "index_topk": 8}),
    "dots1": ("dots1", {}),
    "exaone_moe": ("exaone_moe", {"num_hidden_layers": 2, "sliding_window_pattern": "LG",
                                  "layer_types": ["sliding_attention", "full_attention"]}),
    "minimax_m2": ("minimax_m2", {"intermediate_size": 64}),
    "minimax": ("minimax", {**EXPERT_FFN, "layer_types": ["linear_attention", "full_attention"],
                            "block_size": 16}),
    "gpt_oss": ("gpt_oss", {"intermediate_size": 64,
                            "layer_types": ["sliding_attention", "full_attention"],
                            "rope_parameters": {"rope_type": "yarn", "factor": 32.0,
                                                "beta_fast": 32.0, "beta_slow": 1.0,
                                                "truncate": False, "rope_theta": 150000.0,
                                                "original_max_position_embeddings": 4096}}),
    "solar_open": ("solar_open", {}),
    "afmoe": ("afmoe", {"num_dense_layers": 1, "global_attn_every_n_layers": 2,
                        "num_hidden_layers": 2}),
    "mimo_v2_flash": ("mimo_v2_flash", {"head_dim": 24, "v_head_dim": 16,
                                        "layer_types": ["sliding_attention", "full_attention"]}),
    "mellum": ("mellum", {"layer_types": ["sliding_attention", "full_attention"]}),
    "laguna": ("laguna", {"layer_types": ["sliding_attention", "full_attention"]}),
    "longcat_flash": ("longcat_flash", {**MLA, "num_layers": 1, "ffn_hidden_size": 128,
                                        "expert_ffn_hidden_size": 64, "moe_topk": 2,
                                        "n_routed_experts": 4, "zero_expert_num": 2}),
    "minicpm3": ("minicpm3", {"head_dim": 16, "num_key_value_heads": 4, "v_head_dim": 16, "rope_parameters": {
        "rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": 128,
        "short_factor": [1.0 + i / 8 for i in range(8)],
        "long_factor": [1.5 + i / 4 for i in range(8)]}, "dim_model_base": 32}),
    # --- hybrid / recurrent -----------------------------------------------------------------
    "qwen3_next": ("qwen3_next", {"full_attention_interval": 2,
                                  "layer_types": ["linear_attention", "full_attention"],
                                  "head_dim": 32}),
    "falcon_h1": ("falcon_h1", {"mamba_d_ssm": 128, "mamba_n_heads": 8, "mamba_d_head": 16,
                                "mamba_d_state": 16, "mamba_chunk_size": 16}),
    "mamba": ("mamba", {"state_size": 16, "time_step_rank": 8}),
    "falcon_mamba": ("falcon_mamba", {"state_size": 16, "time_step_rank": 8}),
    "mamba2": ("mamba2", {"num_heads": 8, "head_dim": 16, "state_size": 16, "n_groups": 2,
                          "chunk_size": 16, "expand": 2}),
    "nemotron_h": ("nemotron_h", {"num_hidden_layers": 4,
                                  "layers_block_type": ["mamba", "attention", "mlp", "moe"],
                                  "mamba_num_heads": 8, "mamba_head_dim": 16,
                                  "ssm_state_size": 16, "n_groups": 2, "chunk_size": 16,
                                  "moe_shared_expert_intermediate_size": 64}),
    "lfm2": ("lfm2", {"num_hidden_layers": 2, "layer_types": ["conv", "full_attention"],
                      "block_auto_adjust_ff_dim": False}),
    "lfm2_moe": ("lfm2_moe", {"num_hidden_layers": 2, "num_dense_layers": 1,
                              "layer_types": ["conv", "full_attention"]}),
    "granitemoehybrid": ("granitemoehybrid", {
        "layer_types": ["mamba", "attention"], "mamba_n_heads": 8, "mamba_d_head": 16,
        "mamba_d_state": 16, "mamba_chunk_size": 16, "shared_intermediate_size": 64,
        "embedding_multiplier": 12.0, "logits_scaling": 8.0, "residual_multiplier": 0.22,
        "attention_multiplier": 0.0625}),
    "jamba": ("jamba", {"num_hidden_layers": 2, "attn_layer_period": 2, "attn_layer_offset": 1,
                        "expert_layer_period": 2, "expert_layer_offset": 1,
                        "mamba_d_state": 16, "mamba_dt_rank": 8, "use_mamba_kernels": False}),
    "recurrent_gemma": ("recurrent_gemma", {"num_hidden_layers": 2,
                                            "block_types": ["recurrent", "attention"],
                                            "lru_width": 64, "attention_window_size": 16,
                                            "num_key_value_heads": 1}),
    "kimi_linear": ("kimi_linear", {**MLA, "num_hidden_layers": 2,
                                    "linear_attn_config": {"kda_layers": [1],
                                                           "full_attn_layers": [2],
                                                           "head_dim": 16, "num_heads": 4,
                                                           "short_conv_kernel_size": 4},
                                    "linear_head_dim": 16, "linear_num_heads": 4}),
    # transformers' BailingHybrid is Ling 3's KDA + MLA model, which mlx-lm converts as
    # bailing_moe_v3 (its architecture BailingMoeV3ForCausalLM); tests/fixtures/hf/
    # bailing_hybrid is Ling/Ring 2.5's lightning-attention release (tools/remote_fixtures)
    "bailing_moe_v3": ("bailing_hybrid", {**MLA, "layer_group_size": 2,
                                          "linear_head_dim": 16, "linear_num_heads": 4}),
}

# How a fixture is built when ``AutoModelForCausalLM`` + ``save_pretrained`` is not what the
# real release looks like (the family blocks below fill these):
# - ``MODEL_CLASS``: the transformers class that builds the release's architecture (an auto
#   class such as AutoModelForImageTextToText, built with ``from_config``, or a model class
#   such as Mistral4ForCausalLM, built with ``_from_config``; default AutoModelForCausalLM);
# - ``SAVE_NATIVE``: saved with ``save_original_format=False``: transformers' in-memory names
#   and layouts, where its reverse conversion mapping writes a legacy layout the release does
#   not have (or writes it wrongly);
# - ``POSTPROCESS``: ``fn(folder, model)`` run after saving, for what the release has and
#   transformers' model does not (each documents its source).
MODEL_CLASS: dict[str, str] = {}
SAVE_NATIVE: set[str] = set()
POSTPROCESS: dict[str, Callable[[Path, Any], None]] = {}



# --- fam-dense: the dense and smaller families (bitnet, muse_glimmer, olmo, nanochat, youtu_llm)
# Layouts mlx-lm cannot convert are kept as the faithful inputs they are (the tests record
# mlx-lm's error); the layouts it converts of olmo and nanochat are publishers' own
# (tools/remote_fixtures/).
SPECS.update({
    # BitNet b1.58's bf16 master weights (microsoft/bitnet-b1.58-2B-4T-bf16), unpacked
    "bitnet_bf16": ("bitnet", {"tie_word_embeddings": True}),
    # transformers' OLMo (the allenai/OLMo-*-hf releases, model_type "olmo")
    "olmo_hf": ("olmo", {}),
    # transformers' NanoChat (the nanochat-students/* releases)
    "nanochat_hf": ("nanochat", {}),
    # Youtu-LLM: transformers' port of the remote code (model_type "youtu"); mlx-lm routes
    # youtu_llm, the name of the remote-code release (tencent/Youtu-LLM-2B, loaded with
    # trust_remote_code; vLLM's port is youtu_llm.py too), see fix_values
    "youtu_llm": ("youtu", {"num_key_value_heads": 4, "kv_lora_rank": 32, "q_lora_rank": 48,
                            "qk_rope_head_dim": 16, "qk_nope_head_dim": 16,
                            "v_head_dim": 16}),
})

# --- fam-vl: multimodal containers and the vision-language line ---------------------------
# Vision(-audio)-language checkpoints, saved by the class their Hub releases use
# (MODEL_CLASS). "text_config", "vision_config" and "audio_config" in the overrides are the
# sub-configs' (the text one on top of BASE, as a top-level config is); vision and audio
# towers are as small as their configs allow — mlx-lm drops them, their names are what
# matters. Where transformers 5's save differs from the release (names it no longer nests,
# a model_type it spells differently), RELEASE_NAMES / RELEASE_MODEL_TYPE restore the
# release's (README.md says which, and where they come from).
_TEXT = {"intermediate_size": 64}
_SIGLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
           "num_attention_heads": 2, "image_size": 8, "patch_size": 4}
_PIXTRAL = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "head_dim": 16, "image_size": 8, "patch_size": 4}
_QWEN_VIT = {"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2,
             "intermediate_size": 32, "out_hidden_size": H, "patch_size": 2,
             "spatial_merge_size": 2, "temporal_patch_size": 1}
_MROPE = {"rope_type": "default", "mrope_section": [2, 2, 4], "rope_theta": 1000000.0}
VL_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "gemma3": ("gemma3", {
        "text_config": {"query_pre_attn_scalar": 16, "sliding_window": 16,
                        "layer_types": ["sliding_attention", "full_attention"]},
        "vision_config": {**_SIGLIP, "vision_use_head": False}, "mm_tokens_per_image": 4}),
    "mistral3": ("mistral3", {
        "text_config": {"model_type": "mistral", "sliding_window": None,
                        "tie_word_embeddings": False},
        "vision_config": _PIXTRAL, "tie_word_embeddings": False}),
    "llava": ("llava", {
        "text_config": {"model_type": "mistral", "sliding_window": None,
                        "tie_word_embeddings": False},
        "vision_config": {**_PIXTRAL, "model_type": "pixtral"}, "tie_word_embeddings": False,
        "projector_hidden_act": "gelu", "vision_feature_layer": -1}),
    # mlx-vlm's Pixtral-12B conversions: the llava checkpoint, labelled "pixtral"
    "pixtral": ("llava", {
        "text_config": {"model_type": "mistral", "sliding_window": None,
                        "tie_word_embeddings": False},
        "vision_config": {**_PIXTRAL, "model_type": "pixtral"}, "tie_word_embeddings": False,
        "projector_hidden_act": "gelu", "vision_feature_layer": -1}),
    "qwen2_vl": ("qwen2_vl", {"text_config": {"rope_parameters": _MROPE,
                                              "tie_word_embeddings": False},
                              "vision_config": {**_QWEN_VIT, "hidden_size": H},
                              "tie_word_embeddings": False}),
    "qwen2_5_vl": ("qwen2_5_vl", {"text_config": {"rope_parameters": _MROPE,
                                                  "tie_word_embeddings": False},
                                  "vision_config": {**_QWEN_VIT, "fullatt_block_indexes": [0],
                                                    "window_size": 8},
                                  "tie_word_embeddings": False}),
    "qwen3_vl": ("qwen3_vl", {"text_config": {"rope_parameters": {**_MROPE,
                                                                  "mrope_interleaved": True},
                                              "tie_word_embeddings": False},
                              "vision_config": {**_QWEN_VIT, "deepstack_visual_indexes": [0],
                                                "num_position_embeddings": 16},
                              "tie_word_embeddings": False}),
    "qwen3_vl_moe": ("qwen3_vl_moe", {
        "text_config": {"rope_parameters": {**_MROPE, "mrope_interleaved": True},
                        "decoder_sparse_step": 1, "mlp_only_layers": [0],
                        "tie_word_embeddings": False},
        "vision_config": {**_QWEN_VIT, "deepstack_visual_indexes": [0],
                          "num_position_embeddings": 16},
        "tie_word_embeddings": False}),
    # Llama 4 Scout/Maverick: MoE layers interleaved with dense ones, experts fused as the
    # release stores them ([experts, hidden, 2 x inter]: transformers' own layout)
    "llama4": ("llama4", {
        "text_config": {"intermediate_size_mlp": 128, "intermediate_size": 64,
                        "interleave_moe_layer_step": 2, "no_rope_layer_interval": 2,
                        "attention_chunk_size": 16, "num_experts_per_tok": 1,
                        "rope_parameters": {**LLAMA3, "rope_theta": 500000.0}},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "image_size": 8, "patch_size": 4,
                          "vision_output_dim": 32, "projector_input_dim": 32,
                          "projector_output_dim": 32, "pixel_shuffle_ratio": 0.5}}),
    # MobileLLM-R1 (what mlx-lm's llama4_text is for): dense Llama 4 layers (no MoE layer),
    # tied embeddings; moved here from the MoE list, whose Llama-4-style text layout
    # (routed experts, an lm_head) no mlx-lm converts
    "llama4_text": ("llama4_text", {"intermediate_size_mlp": 128, "moe_layers": [],
                                    "no_rope_layer_interval": 2, "attention_chunk_size": 16,
                                    "tie_word_embeddings": True}),
    # Gemma 4 E2B/E4B: per-layer inputs, the last layer reusing an earlier one's K/V,
    # wider full-attention heads; vision and audio towers
    "gemma4": ("gemma4", {
        "text_config": {"vocab_size_per_layer_input": VOCAB, "num_hidden_layers": 3,
                        "layer_types": ["sliding_attention", "full_attention",
                                        "full_attention"],
                        "global_head_dim": 32, "num_kv_shared_layers": 1,
                        "hidden_size_per_layer_input": 8, "num_experts": None,
                        "moe_intermediate_size": None},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 16,
                          "patch_size": 4, "position_embedding_size": 16},
        "audio_config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "subsampling_conv_channels": [8, 4], "output_proj_dims": 32}}),
    # Gemma 4 26B-A4B's text layers: an MoE block beside the MLP, keys shared as values in
    # full attention (as the text-only class saves them)
    "gemma4_text": ("gemma4_text", {
        "layer_types": ["sliding_attention", "full_attention"], "global_head_dim": 32,
        "num_global_key_value_heads": 1, "attention_k_eq_v": True,
        "hidden_size_per_layer_input": 0, "enable_moe_block": True, "num_experts": 4,
        "top_k_experts": 2, "moe_intermediate_size": 64}),
    # The encoder-free Gemma 4: image patches embedded by vision_embedder.* (the release's
    # names, which transformers' save restores), an audio embedder
    "gemma4_unified": ("gemma4_unified", {
        "text_config": {"layer_types": ["sliding_attention", "full_attention"],
                        "global_head_dim": 32, "hidden_size_per_layer_input": 0},
        "vision_config": {"patch_size": 4, "pooling_kernel_size": 2, "mm_embed_dim": 32,
                          "mm_posemb_size": 4, "output_proj_dims": 32},
        "audio_config": {"audio_embed_dim": 16}}),
    # Kimi K2.5: DeepSeek-V3 (MLA, routed and shared experts) under language_model., a
    # MoonViT tower and its projector
    "kimi_k25": ("kimi_k25", {
        "text_config": {**MLA, "model_type": "deepseek_v3", "moe_intermediate_size": 32},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "patch_size": 4, "pos_emb_height": 4,
                          "pos_emb_width": 4},
        "projection_hidden_size": 32, "tie_word_embeddings": False}),
    # Gemma 3n E2B: AltUp, LAuReL, per-layer inputs, the last layer reusing an earlier
    # one's K/V; an audio tower and embedders (the vision tower: see VISION_STAND_IN)
    "gemma3n": ("gemma3n", {
        "text_config": {"vocab_size_per_layer_input": VOCAB, "num_hidden_layers": 3,
                        "layer_types": ["sliding_attention", "full_attention",
                                        "full_attention"],
                        "num_kv_shared_layers": 1, "hidden_size_per_layer_input": 8,
                        "laurel_rank": 8, "activation_sparsity_pattern": [0.95, 0.0, 0.0],
                        "sliding_window": 16},
        "vision_config": {"hidden_size": 16, "vocab_size": 8, "vocab_offset": VOCAB},
        "audio_config": {"hidden_size": 32, "input_feat_size": 16, "vocab_size": 8,
                         "vocab_offset": VOCAB + 8, "conf_num_attention_heads": 2,
                         "conf_num_hidden_layers": 1, "sscp_conv_channel_size": [8, 4]}}),
    "lfm2-vl": ("lfm2_vl", {
        "text_config": {"num_hidden_layers": 2, "layer_types": ["conv", "full_attention"],
                        "block_auto_adjust_ff_dim": False},
        "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "patch_size": 4, "num_patches": 4,
                          "vision_use_head": False},
        "projector_hidden_size": 64, "downsample_factor": 2}),
}
SPECS.update(VL_SPECS)
MODEL_CLASS.update({n: "AutoModelForImageTextToText" for n in VL_SPECS
                    if not n.endswith("_text")})  # text-only: causal LMs
SUB_CONFIGS = ("text_config", "vision_config", "audio_config")
# Names the release nests where transformers 5 saves them flat: (regex, replacement)
RELEASE_NAMES: dict[str, list[tuple[str, str]]] = {
    # gemma-3's index: the SigLIP tower under vision_tower.vision_model.
    "gemma3": [(r"^vision_tower\.", "vision_tower.vision_model.")],
    # Kimi-K2.5's index: transformers 5.25's save turns its own "layers" back into "blocks"
    # everywhere and leaves two of its renames undone
    "kimi_k25": [(r"^language_model\.model\.blocks\.", "language_model.model.layers."),
                 (r"^model\.mm_projector\.", "mm_projector."),
                 (r"^vision_tower\.encoder\.patch_embed\.", "vision_tower.patch_embed.")],
}
# Fused expert tensors the release stores [experts, in, out] where transformers 5 saves its
# own [experts, out, in] (its conversion mapping transposes them on load, and its save keeps
# them as they are in memory): the tensors whose names match are transposed back
RELEASE_TRANSPOSED: dict[str, str] = {
    "qwen3_vl_moe": r"\.mlp\.experts\.(gate_up|down)_proj$",
}
# Families released with transformers 5 (Gemma 4): their configs are as transformers 5
# writes them (rope_parameters, dtype), so no transformers-4 key is added
TRANSFORMERS5_RELEASES = {"gemma4", "gemma4_text", "gemma4_unified"}
# Gemma 3n and 4 releases hold key/value projections (and the key norm) in the layers that
# reuse an earlier layer's K/V too; transformers 5.25 neither builds nor saves them (it
# ignores them on load: Gemma3nTextModel's _keys_to_ignore_on_load_unexpected). The tool
# adds them, shaped as the producing layer's, under this prefix.
RELEASE_SHARED_KV: dict[str, str] = {"gemma3n": "model.language_model.layers",
                                     "gemma4": "model.language_model.layers"}
# Gemma 3n's vision tower is timm's MobileNetV5 (300M parameters at its smallest, and timm
# is not part of this environment); mlx-lm drops it whole. The fixture holds a few tensors of
# it instead, under the release's names (gemma-3n-E2B's index: model.vision_tower.timm_model.*)
VISION_STAND_IN: dict[str, tuple[str, dict[str, tuple[int, ...]]]] = {
    "gemma3n": ("gemma3n_vision", {
        "conv_stem.conv.weight": (8, 3, 3, 3), "conv_stem.conv.bias": (8,),
        "conv_stem.bn.weight": (8,), "blocks.0.0.conv_exp.weight": (16, 8, 3, 3),
        "msfa.ffn.pw_exp.conv.weight": (16, 8, 1, 1)}),
}
# model_type of the release where transformers 5 spells it otherwise
RELEASE_MODEL_TYPE: dict[str, str] = {
    "pixtral": "pixtral",
    # LiquidAI's LFM2-VL releases say "lfm2-vl" (mlx-lm's module and mlx-vlm's remapping
    # are named after it); transformers' class says "lfm2_vl"
    "lfm2-vl": "lfm2-vl",
}

# --- fam-hybrid: Qwen3.5 (multimodal container), OLMo Hybrid --------------------------------
#
# Qwen3.5 releases are Qwen3_5(Moe)ForConditionalGeneration checkpoints: the text model under
# model.language_model.*, a vision tower under model.visual.*, lm_head.weight, and the
# multi-token-prediction head under mtp.* (which transformers' model does not have); the MoE
# releases store each layer's experts fused (mlp.experts.gate_up_proj [E, 2 x inter, hidden],
# mlp.experts.down_proj [E, hidden, inter]) -- transformers' in-memory layout, which its
# save_pretrained would otherwise split per expert. text_config carries
# full_attention_interval, which mlx-lm reads (transformers reads layer_types).
_Q35_TEXT = {"vocab_size": VOCAB, "hidden_size": H, "intermediate_size": 64,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "head_dim": 16, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
             "linear_key_head_dim": 16, "linear_value_head_dim": 16,
             "linear_conv_kernel_dim": 4, "max_position_embeddings": 256,
             "layer_types": ["linear_attention", "full_attention"],
             "full_attention_interval": 2, "bos_token_id": 1, "eos_token_id": 2,
             "pad_token_id": 0}
_Q35_VISION = {"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2,
               "patch_size": 4, "temporal_patch_size": 2, "spatial_merge_size": 2,
               "out_hidden_size": H, "num_position_embeddings": 16}
SPECS.update({
    "qwen3_5": ("qwen3_5", {"text_config": _Q35_TEXT, "vision_config": _Q35_VISION}),
    "qwen3_5_moe": ("qwen3_5_moe", {
        # 32-wide experts: their down_proj is quantized at group 32, not 64
        "text_config": {**_Q35_TEXT, "num_experts": 4, "num_experts_per_tok": 2,
                        "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64},
        "vision_config": _Q35_VISION}),
    # allenai/Olmo-Hybrid-7B's release (523 tensors for 32 layers): separate q/k/v_conv1d on
    # the gated-delta layers, input_layernorm/post_attention_layernorm on them (see
    # POSTPROCESS below)
    "olmo_hybrid": ("olmo_hybrid", {"layer_types": ["linear_attention", "full_attention"]}),
})
MODEL_CLASS.update({"qwen3_5": "AutoModelForImageTextToText",
                    "qwen3_5_moe": "AutoModelForImageTextToText"})
SAVE_NATIVE.update({"qwen3_5", "qwen3_5_moe", "olmo_hybrid"})


def _rewrite_safetensors(d: Path, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    from safetensors.torch import load_file, save_file

    st = d / "model.safetensors"
    save_file(fn(load_file(str(st))), str(st), metadata={"format": "pt"})


def _qwen3_5_release(d: Path, model: Any) -> None:
    """Adds the multi-token-prediction head Qwen3.5 releases ship (names as in their
    model.safetensors.index.json: mtp.fc, mtp.pre_fc_norm_embedding/hidden, mtp.norm and one
    decoder layer mtp.layers.0.* shaped like a full-attention layer, its experts stored one by
    one), seeded N(0, 0.02) noise; and the bf16 dtype the release's sub-configs state."""
    import torch

    def add_mtp(t: dict[str, Any]) -> dict[str, Any]:
        g = torch.Generator().manual_seed(2)
        full = model.config.text_config.layer_types.index("full_attention")
        src = f"model.language_model.layers.{full}."
        extra: dict[str, Any] = {}
        for k in sorted(t):
            if not k.startswith(src):
                continue
            rest = k[len(src):]
            if rest == "mlp.experts.gate_up_proj":
                e, two_i, h = t[k].shape
                for j in range(e):
                    for n, rows in (("gate_proj", slice(0, two_i // 2)),
                                    ("up_proj", slice(two_i // 2, two_i))):
                        extra[f"mtp.layers.0.mlp.experts.{j}.{n}.weight"] = t[k][j, rows]
            elif rest == "mlp.experts.down_proj":
                for j in range(t[k].shape[0]):
                    extra[f"mtp.layers.0.mlp.experts.{j}.down_proj.weight"] = t[k][j]
            else:
                extra["mtp.layers.0." + rest] = t[k]
        hidden = model.config.text_config.hidden_size
        extra["mtp.fc.weight"] = torch.zeros(hidden, 2 * hidden)
        for n in ("mtp.norm.weight", "mtp.pre_fc_norm_embedding.weight",
                  "mtp.pre_fc_norm_hidden.weight"):
            extra[n] = torch.zeros(hidden)
        for k in sorted(extra):
            v = extra[k]
            noise = torch.randn(v.shape, generator=g, dtype=torch.float32) * 0.02
            extra[k] = (v.float() + noise).to(torch.bfloat16).contiguous()
        return {**t, **extra}

    _rewrite_safetensors(d, add_mtp)
    cfg = json.loads((d / "config.json").read_text())
    for sub in ("text_config", "vision_config"):
        cfg[sub]["dtype"] = "bfloat16"
    _write_json(d / "config.json", cfg)


def _olmo_hybrid_release(d: Path, model: Any) -> None:
    """allenai/Olmo-Hybrid-7B's layout (transformers' convert_olmo_hybrid_weights_to_hf.py
    writes the convolutions one per projection): each gated-delta layer's fused
    linear_attn.conv1d [2 x key_dim + value_dim, 1, k] becomes q_conv1d, k_conv1d (key_dim
    channels each) and v_conv1d (value_dim channels). transformers 5.25 cannot save this
    itself: its reverse mapping cuts the fused kernel in three equal parts and renames the
    norms to OLMo-core's attention_layer_norm/feedforward_layer_norm."""
    c = model.config
    key_dim = c.linear_num_key_heads * c.linear_key_head_dim

    def split(t: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in t.items():
            if k.endswith("linear_attn.conv1d.weight"):
                base = k[: -len("conv1d.weight")]
                out[base + "q_conv1d.weight"] = v[:key_dim].contiguous()
                out[base + "k_conv1d.weight"] = v[key_dim:2 * key_dim].contiguous()
                out[base + "v_conv1d.weight"] = v[2 * key_dim:].contiguous()
            else:
                out[k] = v
        return out

    _rewrite_safetensors(d, split)


POSTPROCESS.update({"qwen3_5": _qwen3_5_release, "qwen3_5_moe": _qwen3_5_release,
                    "olmo_hybrid": _olmo_hybrid_release})
# --- end of fam-hybrid -----------------------------------------------------------------------


# Top-level keys real Hub checkpoints carry that transformers 5 moves, renames or drops; they
# are added to the config.json transformers wrote (never replacing a key it wrote, except
# the value fixes in ``fix_values``). README.md lists them per family.
def hub_keys(name: str, cfg: dict[str, Any], tensors: set[str]) -> dict[str, Any]:
    """The keys added to a transformers-written config.json of fixture ``name``."""
    add: dict[str, Any] = {}
    if cfg.get("dtype") and "torch_dtype" not in cfg and name not in TRANSFORMERS5_RELEASES:
        add["torch_dtype"] = cfg["dtype"]
    if name not in TRANSFORMERS5_RELEASES:
        add.update(_rope_keys(cfg))
    fam = FAMILY_KEYS.get(name)
    if fam is not None:
        add.update(fam(cfg, tensors))
    return {k: v for k, v in add.items() if k not in cfg}


def _rope_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    """rope_theta (and rope_scaling, partial_rotary_factor) from rope_parameters."""
    add: dict[str, Any] = {}
    rp = cfg.get("rope_parameters")
    if isinstance(rp, dict) and "rope_theta" in rp:
        add["rope_theta"] = rp["rope_theta"]
        if "partial_rotary_factor" in rp:
            add["partial_rotary_factor"] = rp["partial_rotary_factor"]
        if rp.get("rope_type", "default") != "default":
            add["rope_scaling"] = {k: v for k, v in rp.items()
                                   if k not in ("rope_theta", "partial_rotary_factor")}
    elif isinstance(rp, dict) and "full_attention" in rp:
        # per-layer-type rope (Gemma 3, OLMo 3, ...): the Hub configs carry the global
        # rope_theta and, for Gemma 3, rope_local_base_freq
        add["rope_theta"] = rp["full_attention"]["rope_theta"]
        if "sliding_attention" in rp:
            add["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
    return add


def text_hub_keys(name: str, cfg: dict[str, Any], tensors: set[str]) -> dict[str, Any]:
    """The keys added to the ``text_config`` of a multimodal fixture: the rope keys, as at
    the top level, and ``tie_word_embeddings``, which transformers 5 writes only at the top
    level and the releases' text configs (written by transformers 4) carry too."""
    text = cfg["text_config"]
    add = _rope_keys(text) if name not in TRANSFORMERS5_RELEASES else {}
    if "tie_word_embeddings" in cfg:
        add["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    fam = TEXT_KEYS.get(name)
    if fam is not None:
        add.update(fam(text, tensors))
    return {k: v for k, v in add.items() if k not in text}


def _head_dim(c: dict[str, Any]) -> int:
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def _mimo_keys(c: dict[str, Any], t: set[str]) -> dict[str, Any]:
    lt = c["layer_types"]
    sink = {kind: any(f"model.layers.{i}.self_attn.attention_sink_bias" in t
                      for i, k in enumerate(lt) if k == kind) for kind in set(lt)}
    rp = c["rope_parameters"]
    return {
        "hybrid_layer_pattern": [1 if k == "sliding_attention" else 0 for k in lt],
        "moe_layer_freq": [1 if k == "sparse" else 0 for k in c["mlp_layer_types"]],
        "add_swa_attention_sink_bias": sink.get("sliding_attention", False),
        "add_full_attention_sink_bias": sink.get("full_attention", False),
        "sliding_window_size": c["sliding_window"], "n_shared_experts": None,
        "topk_method": "noaux_tc", "scoring_func": "sigmoid",
        "layernorm_epsilon": c["rms_norm_eps"],
        "swa_rope_theta": rp["sliding_attention"]["rope_theta"],
        "swa_num_attention_heads": c["num_attention_heads"],
        # transformers' MiMo-V2 doubles the kv heads of its sliding-window layers
        "swa_num_key_value_heads": 2 * c["num_key_value_heads"],
        "swa_head_dim": c["head_dim"], "swa_v_head_dim": c["v_head_dim"],
        "partial_rotary_factor": rp["full_attention"]["partial_rotary_factor"],
    }


FAMILY_KEYS: dict[str, Callable[[dict[str, Any], set[str]], dict[str, Any]]] = {
    # Gemma 3 / Cohere 2 Hub configs state the interleave as a period
    "gemma3_text": lambda c, t: {"sliding_window_pattern": 2},
    "cohere2": lambda c, t: {"sliding_window_pattern": 2},
    # MiniMax-M2's Hub config names its partial rotary width and (absent) shared expert
    "minimax_m2": lambda c, t: {
        "rotary_dim": int(_head_dim(c) * c.get("rope_parameters", {}).get(
            "partial_rotary_factor", 1.0)),
        "shared_intermediate_size": 0, "use_qk_norm": True, "scoring_func": "sigmoid"},
    "minimax": lambda c, t: {"rotary_dim": _head_dim(c), "shared_intermediate_size": 0},
    # Qwen3-MoE Hub configs say num_experts and head_dim (transformers 5: num_local_experts)
    "qwen3_moe": lambda c, t: {"num_experts": c["num_local_experts"], "head_dim": _head_dim(c)},
    "mellum": lambda c, t: {"num_experts": c["num_local_experts"]},
    "apertus": lambda c, t: {"mlp_bias": False, "qk_norm": True, "post_norm": False},
    "exaone": lambda c, t: {"num_layers": c["num_hidden_layers"],
                            "layer_norm_epsilon": c["rms_norm_eps"]},
    "exaone4": lambda c, t: {"head_dim": _head_dim(c)},
    "exaone_moe": lambda c, t: {"head_dim": _head_dim(c), "is_moe_layer": [
        k == "sparse" for k in c["mlp_layer_types"]]},
    "glm4_moe": lambda c, t: {"head_dim": _head_dim(c), "rope_scaling": None},
    "glm_moe_dsa": lambda c, t: {"topk_method": "noaux_tc", "scoring_func": "sigmoid",
                                 "moe_layer_freq": 1},
    "gpt2": lambda c, t: {"n_ctx": c["n_positions"]},
    "gpt_neox": lambda c, t: {"rotary_emb_base": c["rope_parameters"]["rope_theta"],
                              "rotary_pct": c["rope_parameters"]["partial_rotary_factor"]},
    # Kimi-Linear's MLA has no rotary embedding (transformers applies none)
    "lfm2": lambda c, t: {"block_dim": c["hidden_size"], "block_ff_dim": c["intermediate_size"],
                          "full_attn_idxs": [i for i, k in enumerate(c["layer_types"])
                                             if k == "full_attention"]},
    "longcat_flash": lambda c, t: {"attention_method": "MLA", "zero_expert_type": "identity",
                                   "mla_scale_q_lora": True, "mla_scale_kv_lora": True},
    "mamba2": lambda c, t: {"intermediate_size": c["expand"] * c["hidden_size"]},
    "solar_open": lambda c, t: {"intermediate_size": c["moe_intermediate_size"],
                                "first_k_dense_replace": 0, "partial_rotary_factor": 1.0},
    "falcon_h1": lambda c, t: {"head_dim": _head_dim(c)},
    "bailing_moe_v3": lambda c, t: {"num_experts_per_tok": c["num_experts_per_token"],
                                    "n_group": c["num_expert_group"],
                                    "max_position_embeddings": c["model_max_length"],
                                    "group_norm_size": 1},
    "mimo_v2_flash": _mimo_keys,
    # ERNIE-4.5 MoE Hub configs flag the e_score_correction_bias (moe_statics) routing
    "ernie4_5_moe": lambda c, t: {"moe_use_aux_free": any("moe_statics" in k for k in t)},
    "kimi_linear": lambda c, t: {"mla_use_nope": True, "rope_theta": 10000.0,
                                 "first_k_dense_replace": c["mlp_layer_types"].index("sparse")},
}

# --- fam-vl: keys of the multimodal releases ------------------------------------------------
def _gemma4_keys(c: dict[str, Any]) -> dict[str, Any]:
    full = [v for v in (c.get("per_layer_config") or {}).values()]
    add: dict[str, Any] = {}
    if full and "head_dim" in full[0]:
        add["global_head_dim"] = full[0]["head_dim"]
    if full and "num_key_value_heads" in full[0]:
        add["num_global_key_value_heads"] = full[0]["num_key_value_heads"]
    return add


FAMILY_KEYS.update({
    "gemma4_text": lambda c, t: _gemma4_keys(c),
    # mlx-lm's gemma3 ModelArgs sets text_config's vocab_size from the top level's, whose
    # default (262208) is the releases' vocabulary: the tiny one must be stated there
    "gemma3": lambda c, t: {"vocab_size": c["text_config"]["vocab_size"]},
    # ... and gemma4's (262144, Gemma 4's vocabulary)
    "gemma4": lambda c, t: {"vocab_size": c["text_config"]["vocab_size"]},
    "gemma4_unified": lambda c, t: {"vocab_size": c["text_config"]["vocab_size"]},
})
# Per multimodal fixture: keys its release's text_config carries
TEXT_KEYS: dict[str, Callable[[dict[str, Any], set[str]], dict[str, Any]]] = {
    "gemma3": lambda c, t: {"sliding_window_pattern": 2},
    # Qwen3-VL-MoE's text config says num_experts (transformers 5: num_local_experts) and
    # norm_topk_prob (transformers' Qwen3-VL-MoE always normalizes the top-k weights)
    "qwen3_vl_moe": lambda c, t: {"num_experts": c["num_local_experts"], "norm_topk_prob": True},
    # Gemma 4's releases state global_head_dim (and num_global_key_value_heads); transformers
    # 5.25 folds them into per_layer_config
    "gemma4": lambda c, t: _gemma4_keys(c),
    "gemma4_unified": lambda c, t: _gemma4_keys(c),
    # as lfm2's (the text model is LFM2)
    "lfm2-vl": lambda c, t: FAMILY_KEYS["lfm2"](c, t),
}

# Values transformers 5 writes in a form Hub configs do not have.
_HUB_LAYER_TYPES = {"granitemoehybrid": {"linear_attention": "mamba",
                                         "full_attention": "attention"}}


# model_type values transformers 5 writes where the family's releases say another
# (fam-dense): Youtu-LLM shipped with remote code as youtu_llm before transformers took it in
# as youtu (a type mlx-lm 0.32.2 has no module for)
_HUB_MODEL_TYPES = {"youtu_llm": "youtu_llm"}


def fix_values(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """``{"__float__": "Infinity"}`` (transformers 5's JSON for inf) becomes the plain
    ``Infinity`` older writers emit; layer_types get the Hub's vocabulary where it differs;
    a model_type the family's releases spell otherwise gets their spelling."""
    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"__float__"}:
                return float(v["__float__"])
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    cfg = walk(cfg)
    if name in _HUB_LAYER_TYPES and "layer_types" in cfg:
        m = _HUB_LAYER_TYPES[name]
        cfg["layer_types"] = [m.get(k, k) for k in cfg["layer_types"]]
    if name in _HUB_MODEL_TYPES:
        cfg["model_type"] = _HUB_MODEL_TYPES[name]
    return cfg



# --- fam-moe: large MoE / MLA flagships ------------------------------------------------------
# The fixtures of mlx-lm's MoE/MLA flagship modules transformers can build (the others are
# described in tools/remote_fixtures/). README.md lists what is changed and why.
SPECS.update({
    # Kimi-Linear-48B-A3B: no query LoRA (q_lora_rank null), KDA layer then MLA layer, the
    # first layer dense
    "kimi_linear": ("kimi_linear", {**MLA, "num_hidden_layers": 2, "q_lora_rank": None,
                                    "linear_attn_config": {"kda_layers": [1],
                                                           "full_attn_layers": [2],
                                                           "head_dim": 16, "num_heads": 4,
                                                           "short_conv_kernel_size": 4},
                                    "linear_head_dim": 16, "linear_num_heads": 4}),
    # Ling 2.5 (BailingMoeV3ForCausalLM, model_type bailing_hybrid): transformers 5.25's
    # BailingHybrid is this architecture (KDA + gated MLA, sigmoid-routed MoE); mlx-lm routes
    # the pair to its bailing_moe_v3 module
    "bailing_moe_v3": ("bailing_hybrid", {**MLA, "layer_group_size": 2,
                                          "linear_head_dim": 16, "linear_num_heads": 4}),
    # Mistral Small 4 (text): MLA, DeepSeek-V3 MoE with a softmax router, first layer dense
    "mistral4": ("mistral4", {"num_key_value_heads": 4, "num_hidden_layers": 2, "head_dim": 32,
                              "qk_nope_head_dim": 16, "first_k_dense_replace": 1}),
    # MiniMax-M3 (vision-language container; mlx-lm keeps the language model): a dense first
    # layer, then a MoE layer with lightning-indexer sparse attention
    "minimax_m3_vl": ("minimax_m3_vl", {
        "projector_hidden_size": 64,
        "text_config": {"vocab_size": VOCAB, "hidden_size": H, "intermediate_size": 64,
                        "dense_intermediate_size": 64, "shared_intermediate_size": 64,
                        "num_hidden_layers": 2, "num_attention_heads": 4,
                        "num_key_value_heads": 2, "head_dim": 16, "rotary_dim": 8,
                        # transformers rotates head_dim x partial_rotary_factor dims,
                        # mlx-lm rotary_dim: the release states both (half the head)
                        "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                                            "partial_rotary_factor": 0.5},
                        "max_position_embeddings": 256, "num_local_experts": 4,
                        "num_experts_per_tok": 2, "mlp_layer_types": ["dense", "sparse"],
                        "layer_types": ["full_attention", "minimax_m3_sparse"],
                        "index_n_heads": 2, "index_head_dim": 16, "index_block_size": 16,
                        "index_topk_blocks": 2, "bos_token_id": 1, "eos_token_id": 2,
                        "pad_token_id": 0},
        "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "image_size": 56, "patch_size": 14}}),
    # Muse Spark (vision, audio and language; mlx-lm keeps vision and language): three MoE
    # layers with compressed-width experts (its quant_predicate quantizes the middle one's),
    # two sliding with RoPE, the last full without
    "muse_spark": ("muse_spark", {
        "out_hidden_size": 64, "projector_hidden_size": 64,
        "text_config": {"vocab_size": VOCAB, "hidden_size": H, "num_hidden_layers": 3,
                        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                        "max_position_embeddings": 256, "sliding_window": 16,
                        "moe_intermediate_size": 64, "moe_hidden_size": 32,
                        "num_local_experts": 4, "num_experts_per_tok": 2,
                        "intermediate_size": 64, "bos_token_id": 1, "eos_token_id": 2,
                        "pad_token_id": 0},
        "vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                          "num_attention_heads": 2, "patch_size": 2, "pos_emb_height": 4,
                          "pos_emb_width": 4, "max_position_embeddings": 16},
        "audio_config": {"hidden_sizes": [8, 8, 8, 8], "depths": [1, 1, 1, 1],
                         "out_hidden_size": 64}}),
})
# Ling 2.5 configs state the shared expert's width (mlx-lm's default is 512)
FAMILY_KEYS["bailing_moe_v3"] = lambda c, t: {
    **FAMILY_KEYS["bailing_hybrid"](c, t),
    "moe_shared_expert_intermediate_size": c["moe_intermediate_size"]}

# LongCat-Flash-Chat-FP8: DeepSeek-V3's block FP8 (mlx-lm's longcat_flash sanitize does not
# undo it; mlxq dequantizes it before sanitize, as for any such family)
VARIANTS_FAM_MOE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "fp8/longcat_flash": ("fp8", "longcat_flash", SPECS["longcat_flash"][1]),
}

#: config values the release has in another form than transformers writes: fixture -> keys
CONFIG_FIXES: dict[str, dict[str, Any]] = {
    # the Hub release's class (its remote code); transformers 5.25 names it BailingHybrid
    "bailing_moe_v3": {"architectures": ["BailingMoeV3ForCausalLM"]},
}

#: tokenizer_config.json keys the release's tokenizer has: Muse Spark's ships its chat template
#: (mlx-lm 0.32.2 loads a Muse Spark tokenizer that has none with its own template module,
#: which has no apply_chat_template, and fails)
TOKENIZER_KEYS: dict[str, dict[str, Any]] = {
    "muse_spark": {"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"},
}

# transformers classes for fixtures AutoModelForCausalLM does not map
MODEL_CLASS.update({"mistral4": "Mistral4ForCausalLM",
                    "minimax_m3_vl": "MiniMaxM3SparseForConditionalGeneration",
                    "muse_spark": "MuseSparkForConditionalGeneration"})


def _kimi_linear_renames(cfg: dict[str, Any], names: set[str]) -> dict[str, str]:
    """transformers 5.25 saves Kimi-Linear's dense layers under ``block_sparse_moe.`` (the
    reverse of its load-time renaming of the release's MoE blocks to ``mlp.``); the release
    names a dense layer's MLP ``mlp.``, as Moonshot's modeling_kimi.py does."""
    out = {}
    for i, kind in enumerate(cfg["mlp_layer_types"]):
        if kind != "dense":
            continue
        for proj in ("gate_proj", "up_proj", "down_proj"):
            old = f"model.layers.{i}.block_sparse_moe.{proj}.weight"
            if old in names:
                out[old] = f"model.layers.{i}.mlp.{proj}.weight"
    return out


def _bailing_v3_renames(cfg: dict[str, Any], names: set[str]) -> dict[str, str]:
    """transformers 5.25 saves every attention output projection as ``attention.dense`` (the
    reverse of its load-time renaming of the MLA layers' ``dense``); the release's KDA layers
    name theirs ``o_proj`` (vLLM's BailingMoeV3, which keeps the reference names, and
    mlx-lm's BailingKDA)."""
    return {f"model.layers.{i}.attention.dense.weight": f"model.layers.{i}.attention.o_proj.weight"
            for i, kind in enumerate(cfg["layer_types"]) if kind == "linear_attention"
            and f"model.layers.{i}.attention.dense.weight" in names}


#: tensor names transformers saves differently from the release: fixture -> (config, names)
#: -> {old: new}
TENSOR_RENAMES: dict[str, Callable[[dict[str, Any], set[str]], dict[str, str]]] = {
    "kimi_linear": _kimi_linear_renames,
    "bailing_moe_v3": _bailing_v3_renames,
}


def rename_tensors(name: str, d: Path, cfg: dict[str, Any]) -> None:
    """Applies ``TENSOR_RENAMES[name]`` to the saved ``model.safetensors`` (same bytes)."""
    fn = TENSOR_RENAMES.get(name)
    if fn is None:
        return
    from safetensors.torch import load_file, save_file

    st = d / "model.safetensors"
    tensors = load_file(str(st))
    renames = fn(cfg, set(tensors))
    save_file({renames.get(k, k): v for k, v in tensors.items()}, str(st),
              metadata={"format": "pt"})


# ------------------------------------------------------------------------------------------

def _tokenizer_files() -> dict[str, Any]:
    """The word-level tokenizer of mlxq.synthetic, loaded without importing mlxq's C core."""
    if "mlxq" not in sys.modules:
        pkg = types.ModuleType("mlxq")
        pkg.__path__ = [str(REPO / "mlxq")]  # type: ignore[attr-defined]
        sys.modules["mlxq"] = pkg
    spec = importlib.util.spec_from_file_location("mlxq.synthetic", REPO / "mlxq" / "synthetic.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod._tokenizer_files(VOCAB)


def _known_keys(cfg_obj: Any) -> set[str]:
    return set(cfg_obj.to_dict()) | set(getattr(cfg_obj, "attribute_map", {}))


# The families the converter must match first keep the full sizes above; the others get a
# 64-wide MLP (still quantizable at group 64), which keeps the whole set small.
PRIMARY = set("""llama mistral qwen2 qwen3 qwen2_moe qwen3_moe qwen3_next mixtral gemma gemma2
gemma3_text phi phi3 starcoder2 cohere olmo2 olmoe granite granitemoe glm4 glm4_moe deepseek_v2
deepseek_v3 minimax_m2 gpt_oss gpt2 gpt_neox stablelm exaone4 smollm3 ernie4_5 hunyuan_v1_dense
seed_oss internlm3 falcon_h1 mamba2 nemotron_h lfm2""".split())
SECONDARY_MLP = 64


def _base_kwargs(default: Any, model_type: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """BASE's keys the config class knows, with ``overrides`` on top."""
    known = _known_keys(default)
    kwargs = {k: v for k, v in BASE.items() if k in known}
    if model_type not in PRIMARY and "intermediate_size" in kwargs:
        kwargs["intermediate_size"] = SECONDARY_MLP
    amap = getattr(default, "attribute_map", {})
    # an alias and its target must not both be given
    for alias, target in amap.items():
        if alias in kwargs and target in kwargs:
            kwargs.pop(alias)
    kwargs.update(overrides)
    for alias, target in amap.items():
        if alias in overrides and target in kwargs and target not in overrides:
            kwargs.pop(target)
    return kwargs


def build_config(model_type: str, overrides: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    default = AutoConfig.for_model(model_type)
    top = {k: v for k, v in overrides.items() if k not in SUB_CONFIGS}
    kwargs = _base_kwargs(default, model_type, top)
    for sub in SUB_CONFIGS:  # a multimodal config's parts (fam-vl)
        if sub not in overrides:
            continue
        sub_over = dict(overrides[sub])
        sub_default = getattr(default, sub)
        if sub_default is None:  # an optional part (Gemma 4's towers): its class's defaults
            kwargs[sub] = sub_over
            continue
        sub_type = sub_over.get("model_type", sub_default.model_type)
        if sub_type != sub_default.model_type:
            sub_default = AutoConfig.for_model(sub_type)
        if sub == "text_config":
            kwargs[sub] = {"model_type": sub_type,
                           **_base_kwargs(sub_default, model_type, sub_over)}
        else:
            kwargs[sub] = {"model_type": sub_type, **sub_over}
        for k in list(kwargs):  # BASE's keys belong to the text model, not the container
            if sub == "text_config" and k in BASE and k not in top:
                kwargs.pop(k)
    return AutoConfig.for_model(model_type, **kwargs)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _perturb(model: Any, seed: int) -> None:
    """Adds N(0, 0.02) to every floating parameter, so that norms and biases are not all
    ones/zeros and a key read wrongly changes the logits (the init is transformers' own)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.is_floating_point():
                p.add_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * 0.02)


def build_fixture(name: str, model_type: str, overrides: dict[str, Any], d: Path) -> Any:
    """Instantiates the model with transformers, saves it in bf16 to ``d`` with the Hub keys
    and the tokenizer; returns the (bf16) model."""
    import torch
    import transformers

    cfg = build_config(model_type, overrides)
    torch.manual_seed(0)
    cls_name = MODEL_CLASS.get(name, "AutoModelForCausalLM")
    cls = getattr(transformers, cls_name)
    with _vision_stand_in(name, model_type):
        if cls_name.startswith("Auto"):
            model = cls.from_config(cfg, dtype=torch.float32)
        else:
            model = cls._from_config(cfg, dtype=torch.float32)
    _perturb(model, 1)
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    for sub in SUB_CONFIGS:
        if getattr(model.config, sub, None) is not None:
            getattr(model.config, sub).dtype = torch.bfloat16
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d, safe_serialization=True,
                          save_original_format=name not in SAVE_NATIVE)
    (d / "generation_config.json").unlink(missing_ok=True)
    if name in POSTPROCESS:
        POSTPROCESS[name](d, model)
    cfg_path = d / "config.json"
    saved = json.loads(cfg_path.read_text())
    saved.pop("transformers_version", None)
    saved = fix_values(name, saved)
    saved.update(CONFIG_FIXES.get(name, {}))
    from safetensors import safe_open

    if name in RELEASE_NAMES or name in RELEASE_TRANSPOSED:
        _to_release(d / "model.safetensors", RELEASE_NAMES.get(name, []),
                    RELEASE_TRANSPOSED.get(name))
    if name in RELEASE_SHARED_KV:
        _add_shared_kv(d / "model.safetensors", RELEASE_SHARED_KV[name],
                       model.config.get_text_config())
    with safe_open(str(d / "model.safetensors"), "np") as f:
        tensor_names = set(f.keys())
    saved.update(hub_keys(name, saved, tensor_names))
    if isinstance(saved.get("text_config"), dict):
        saved["text_config"].update(text_hub_keys(name, saved, tensor_names))
    if name in RELEASE_MODEL_TYPE:
        saved["model_type"] = RELEASE_MODEL_TYPE[name]
    _write_json(cfg_path, saved)
    rename_tensors(name, d, saved)
    _write_json(d / "generation_config.json",
                {"bos_token_id": 1, "eos_token_id": 2, "do_sample": False})
    for fname, content in _tokenizer_files().items():
        if fname == "tokenizer_config.json":
            content = {**content, **TOKENIZER_KEYS.get(name, {})}
        _write_json(d / fname, content)
    return model


@contextlib.contextmanager
def _vision_stand_in(name: str, model_type: str) -> Any:
    """While building fixture ``name``: the vision tower its model makes with ``AutoModel``
    is a module holding ``VISION_STAND_IN[name]``'s tensors under ``timm_model.``."""
    if name not in VISION_STAND_IN:
        yield
        return
    import importlib as _il

    import torch

    vision_type, params = VISION_STAND_IN[name]
    mod = _il.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    real = mod.AutoModel

    def stand_in() -> Any:
        root = torch.nn.Module()
        root.timm_model = torch.nn.Module()
        for pname, shape in params.items():
            *path, leaf = pname.split(".")
            m = root.timm_model
            for part in path:
                if not hasattr(m, part):
                    m.add_module(part, torch.nn.Module())
                m = getattr(m, part)
            m.register_parameter(leaf, torch.nn.Parameter(torch.zeros(shape)))
        return root

    class _Auto:
        @staticmethod
        def from_config(config: Any, **kw: Any) -> Any:
            if getattr(config, "model_type", None) == vision_type:
                return stand_in()
            return real.from_config(config, **kw)

    mod.AutoModel = _Auto
    try:
        yield
    finally:
        mod.AutoModel = real


def _add_shared_kv(path: Path, prefix: str, text: Any) -> None:
    """Rewrites ``path`` with ``k_proj``, ``v_proj`` and ``k_norm`` weights in each layer
    that reuses an earlier layer's K/V, shaped as those of the last non-shared layer of its
    type (seeded N(0, 0.02), norms around 1)."""
    import torch
    from safetensors.torch import load_file, save_file

    src = load_file(str(path))
    types = text.layer_types
    first = text.num_hidden_layers - text.num_kv_shared_layers
    g = torch.Generator().manual_seed(2)
    for l in range(first, text.num_hidden_layers):
        producer = max(i for i in range(first) if types[i] == types[l])
        for leaf in ("k_proj.weight", "v_proj.weight", "k_norm.weight"):
            like = src.get(f"{prefix}.{producer}.self_attn.{leaf}")
            if like is None:
                continue
            noise = torch.randn(like.shape, generator=g) * 0.02
            src[f"{prefix}.{l}.self_attn.{leaf}"] = (
                noise + (1.0 if "norm" in leaf else 0.0)).to(like.dtype)
    save_file({k: src[k] for k in sorted(src)}, str(path), metadata={"format": "pt"})


def _to_release(path: Path, rules: list[tuple[str, str]], transposed: str | None) -> None:
    """Rewrites ``path`` in the release's layout: each tensor renamed by the first matching
    rule; those whose (new) name matches ``transposed`` with axes 1 and 2 swapped."""
    from safetensors.torch import load_file, save_file

    src = load_file(str(path))
    dst = {}
    for k in sorted(src):
        new = k
        for pat, repl in rules:
            if re.search(pat, k):
                new = re.sub(pat, repl, k)
                break
        t = src[k]
        if transposed and re.search(transposed, new):
            t = t.transpose(1, 2).contiguous()
        dst[new] = t
    save_file(dst, str(path), metadata={"format": "pt"})


def make_fixture(name: str, out: Path, logits_dir: Path | None) -> Path:
    import torch

    if name in VARIANTS:
        return make_variant(name, out)
    if name in BUILDERS:
        return BUILDERS[name](name, out, logits_dir)
    model_type, overrides = SPECS[name]
    d = out / name
    model = build_fixture(name, model_type, overrides, d)
    if logits_dir is not None:
        logits_dir.mkdir(parents=True, exist_ok=True)
        m = model.float().eval()
        with torch.no_grad():
            logits = m(torch.tensor([PROMPT])).logits[0].float().numpy()
        np.save(logits_dir / f"{name}.npy", logits)
    return d


# --- pre-quantized variants (numpy formulas, independent of mlxq) --------------------------

FP8_MAX = 448.0
FP8_BLOCK = 128
FP8_QUANTIZATION_CONFIG = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                           "weight_block_size": [FP8_BLOCK, FP8_BLOCK]}

# Kimi-K2-Thinking's quantization_config (compressed-tensors, pack-quantized INT4 W4A16,
# symmetric, group 32): routed experts only.
CT_GROUP = 32
CT_QUANTIZATION_CONFIG = {
    "config_groups": {"group_0": {
        "input_activations": None, "output_activations": None, "targets": ["Linear"],
        "weights": {"actorder": None, "block_structure": None, "dynamic": False,
                    "group_size": CT_GROUP, "num_bits": 4, "observer": "minmax",
                    "observer_kwargs": {}, "strategy": "group", "symmetric": True,
                    "type": "int"}}},
    "format": "pack-quantized",
    "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*",
               "re:.*mlp\\.(gate|up|gate_up|down)_proj.*"],
    "kv_cache_scheme": None,
    "quant_method": "compressed-tensors",
    "quantization_status": "compressed",
}

# hidden 192 and intermediate 160 are not multiples of the 128 block (partial edge blocks;
# 160 is not a multiple of 64 either, so mlx-lm leaves those down_proj unquantized at g64);
# head and expert widths are
_FP8_DENSE = {"hidden_size": 192, "intermediate_size": 160, "num_attention_heads": 3,
              "num_key_value_heads": 1, "head_dim": 64}
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "fp8/deepseek_v3": ("fp8", "deepseek_v3", {
        "hidden_size": 192, "intermediate_size": 160, "moe_intermediate_size": 128,
        "num_attention_heads": 2, "num_key_value_heads": 2, "q_lora_rank": 128,
        "kv_lora_rank": 64, "qk_rope_head_dim": 32, "qk_nope_head_dim": 64, "v_head_dim": 64,
        "head_dim": 32}),
    "fp8/minimax_m2": ("fp8", "minimax_m2", {**_FP8_DENSE, "intermediate_size": 64}),
    "fp8/qwen3": ("fp8", "qwen3", _FP8_DENSE),
    "compressed_tensors/deepseek_v3": ("int4", "deepseek_v3", MLA),
}
VARIANTS.update(VARIANTS_FAM_MOE)
# --- fam-vl: Kimi K2.5's release is compressed-tensors INT4 experts, its quantization_config
# inside text_config
VARIANTS["compressed_tensors/kimi_k25"] = ("int4", "kimi_k25", VL_SPECS["kimi_k25"][1])
QC_IN_TEXT_CONFIG = {"compressed_tensors/kimi_k25"}


def _is_fp8_linear(name: str, shape: tuple[int, ...]) -> bool:
    """DeepSeek-V3's FP8 release: every Linear weight but embeddings, lm_head and routers."""
    if len(shape) != 2 or not name.endswith(".weight"):
        return False
    if "embed_tokens" in name or name.startswith("lm_head"):
        return False
    return not re.search(r"\.(mlp|block_sparse_moe)\.gate\.weight$", name)


def fp8_block_quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes float8_e4m3fn [out, in], weight_scale_inv float32 [ceil(out/128), ceil(in/128)])``
    with scale = amax(|block|) / 448 and codes = e4m3fn(w / scale), rounded to nearest even
    and saturated at +-448 (edge blocks are partial). A block of zeros gets scale 1."""
    import ml_dtypes

    w = w.astype(np.float32)
    rows, cols = w.shape
    br, bc = -(-rows // FP8_BLOCK), -(-cols // FP8_BLOCK)
    scale = np.empty((br, bc), np.float32)
    q = np.empty_like(w)
    for i in range(br):
        for j in range(bc):
            blk = w[i * FP8_BLOCK:(i + 1) * FP8_BLOCK, j * FP8_BLOCK:(j + 1) * FP8_BLOCK]
            amax = np.float32(np.max(np.abs(blk)))
            s = np.float32(amax / np.float32(FP8_MAX)) if amax > 0 else np.float32(1.0)
            scale[i, j] = s
            q[i * FP8_BLOCK:(i + 1) * FP8_BLOCK, j * FP8_BLOCK:(j + 1) * FP8_BLOCK] = np.clip(
                blk / s, -FP8_MAX, FP8_MAX)
    return q.astype(ml_dtypes.float8_e4m3fn), scale


def _is_routed_expert(name: str) -> bool:
    return bool(re.search(r"\.mlp\.experts\.\d+\.(gate|up|down)_proj\.weight$", name))


def int4_pack_quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """compressed-tensors ``pack-quantized`` symmetric INT4, group 32 along the input dim:
    scale = amax(|group|) / 7.5 (compressed-tensors' calculate_qparams for symmetric int4)
    stored as bf16, q = clamp(round_half_even(w / scale_bf16), -8, 7), and word k of a row
    holds codes q + 8 of inputs 8k..8k+7 at bits 4j (pack_to_int32). Returns
    (weight_packed int32 [out, in/8], weight_scale bf16 [out, in/32], weight_shape int32 [2])."""
    import ml_dtypes

    w = w.astype(np.float32)
    out_f, in_f = w.shape
    g = w.reshape(out_f, in_f // CT_GROUP, CT_GROUP)
    amax = np.max(np.abs(g), axis=-1)
    scale = (amax / np.float32(7.5)).astype(ml_dtypes.bfloat16)
    s32 = scale.astype(np.float32)
    s32 = np.where(s32 == 0, np.float32(np.finfo(ml_dtypes.bfloat16).eps), s32)
    q = np.clip(np.rint(g / s32[..., None]), -8, 7).astype(np.int64).reshape(out_f, in_f)
    codes = (q + 8).astype(np.uint32).reshape(out_f, in_f // 8, 8)
    words = np.zeros((out_f, in_f // 8), np.uint32)
    for j in range(8):
        words |= codes[..., j] << np.uint32(4 * j)
    return (words.view(np.int32), s32.astype(ml_dtypes.bfloat16),
            np.array([out_f, in_f], np.int32))


def make_variant(name: str, out: Path) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    kind, model_type, overrides = VARIANTS[name]
    d = out / name
    build_fixture(model_type, model_type, overrides, d)
    st = d / "model.safetensors"
    src = load_file(str(st))
    dst: dict[str, Any] = {}
    for k in sorted(src):
        t = src[k]
        w = t.float().numpy()
        if kind == "fp8" and _is_fp8_linear(k, tuple(t.shape)):
            codes, sinv = fp8_block_quantize(w)
            dst[k] = torch.from_numpy(codes.view(np.uint8)).view(torch.float8_e4m3fn)
            dst[k + "_scale_inv"] = torch.from_numpy(sinv)
        elif kind == "int4" and _is_routed_expert(k):
            packed, scale, shape = int4_pack_quantize(w)
            base = k[: -len(".weight")]
            dst[base + ".weight_packed"] = torch.from_numpy(packed)
            dst[base + ".weight_scale"] = torch.from_numpy(scale.view(np.uint16)).view(
                torch.bfloat16)
            dst[base + ".weight_shape"] = torch.from_numpy(shape)
        else:
            dst[k] = t
    save_file(dst, str(st), metadata={"format": "pt"})
    cfg = json.loads((d / "config.json").read_text())
    (cfg["text_config"] if name in QC_IN_TEXT_CONFIG else cfg)["quantization_config"] = (
        FP8_QUANTIZATION_CONFIG if kind == "fp8" else CT_QUANTIZATION_CONFIG)
    _write_json(d / "config.json", cfg)
    return d


# --- fam-dense: fixtures with a builder of their own ---------------------------------------

def _save_logits(model: Any, name: str, logits_dir: Path | None) -> None:
    """transformers' logits for ``PROMPT``, as float32 (computed in float32, but in the
    model's own dtype for a quantized model, which refuses ``.float()``)."""
    import torch

    if logits_dir is None:
        return
    logits_dir.mkdir(parents=True, exist_ok=True)
    m = (model if getattr(model, "hf_quantizer", None) else model.float()).eval()
    with torch.no_grad():
        logits = m(torch.tensor([PROMPT])).logits[0].float().numpy()
    np.save(logits_dir / f"{name}.npy", logits)


# microsoft/bitnet-b1.58-2B-4T's quantization_config
BITNET_QUANTIZATION_CONFIG = {"linear_class": "autobitlinear", "quant_method": "bitnet",
                              "quantization_mode": "offline"}


def make_bitnet_packed(name: str, out: Path, logits_dir: Path | None) -> Path:
    """BitNet b1.58 as microsoft/bitnet-b1.58-2B-4T ships it: every projection of a block
    is ternary, packed by transformers' own ``pack_weights`` (four 2-bit codes a uint8,
    code + 1, rows ``i``, ``i + rows/4``, ... of a byte's column), with a one-element bf16
    ``weight_scale`` that multiplies the output (``autobitlinear``, offline). The ternary
    codes are BitNet's absmean quantization of transformers' bf16 weights: scale =
    mean(|W|), codes = clamp(round(W / scale), -1, 1). The tool checks that transformers
    loads the result back (unpacking it) to exactly those codes."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM
    from transformers.integrations.bitnet import pack_weights

    d = out / name
    build_fixture(name, "bitnet", {"tie_word_embeddings": True}, d)
    st = d / "model.safetensors"
    src = load_file(str(st))
    dst: dict[str, Any] = {}
    codes: dict[str, Any] = {}
    proj = re.compile(r"\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$")
    for k in sorted(src):
        t = src[k]
        if not proj.search(k):
            dst[k] = t
            continue
        w = t.float()
        scale = w.abs().mean().clamp(min=1e-5)
        q = (w / scale).round().clamp(-1, 1)
        codes[k] = q.clone()
        dst[k] = pack_weights(q.clone())
        dst[k[: -len("weight")] + "weight_scale"] = scale.reshape(1).to(torch.bfloat16)
    save_file(dst, str(st), metadata={"format": "pt"})
    cfg = json.loads((d / "config.json").read_text())
    cfg["quantization_config"] = BITNET_QUANTIZATION_CONFIG
    _write_json(d / "config.json", cfg)
    model = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.bfloat16)
    got = dict(model.named_parameters())
    for k, q in codes.items():
        if not torch.equal(got[k].float(), q):
            raise AssertionError(f"{k}: transformers unpacks other codes than were packed")
    _save_logits(model, name, logits_dir)
    return d


# Muse Glimmer: text tower at the shared tiny sizes, one sliding-window (RoPE) and one global
# (NoPE) layer, the 64-wide MLP of the secondary families; the smallest vision tower,
# adapter and projection transformers builds
MUSE_TEXT = {"vocab_size": VOCAB, "hidden_size": H, "intermediate_size": SECONDARY_MLP,
             "num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"],
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
             "max_position_embeddings": 256, "sliding_window": 16,
             "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
MUSE_VISION = {"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64,
               "num_attention_heads": 2, "patch_size": 2, "pos_emb_height": 4,
               "pos_emb_width": 4}


def make_muse_glimmer(name: str, out: Path, logits_dir: Path | None) -> Path:
    """Muse Glimmer as transformers' ``MuseGlimmerForConditionalGeneration`` saves it:
    ``model.language_model.*``, ``model.vision_tower.*``, ``model.vision_adapter.*``,
    ``model.vision_projection.*`` and ``lm_head``, the text settings under ``text_config``."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    cfg = AutoConfig.for_model("muse_glimmer", text_config=MUSE_TEXT, vision_config=MUSE_VISION,
                               out_hidden_size=H, projector_hidden_size=H,
                               image_token_id=100, video_token_id=101)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(cfg, dtype=torch.float32)
    _perturb(model, 1)
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    d = out / name
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d, safe_serialization=True)
    (d / "generation_config.json").unlink(missing_ok=True)
    saved = json.loads((d / "config.json").read_text())
    saved.pop("transformers_version", None)
    saved.update(hub_keys(name, saved, set()))
    _write_json(d / "config.json", saved)
    _write_json(d / "generation_config.json",
                {"bos_token_id": 1, "eos_token_id": 2, "do_sample": False})
    for fname, content in _tokenizer_files().items():
        _write_json(d / fname, content)
    _save_logits(model, name, logits_dir)
    return d


BUILDERS: dict[str, Callable[[str, Path, Path | None], Path]] = {
    "bitnet": make_bitnet_packed,
    "muse_glimmer": make_muse_glimmer,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="fixtures to write (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--logits", type=Path, default=None)
    ap.add_argument("--keep-going", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    names = args.names or [*SPECS, *VARIANTS, *BUILDERS]
    failed = []
    for n in names:
        try:
            d = make_fixture(n, args.out, args.logits)
            size = sum(f.stat().st_size for f in d.iterdir())
            print(f"{n:20s} {size / 1024:8.1f} KB")
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on with --keep-going
            failed.append(n)
            print(f"{n:20s} FAILED {type(exc).__name__}: {str(exc)[:300]}")
            if not args.keep_going:
                raise
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
