"""Small random checkpoints in Hugging Face layout, for demos, tests and benchmarks.

No model hub is needed: :func:`make_checkpoint` writes ``config.json``,
``generation_config.json``, a word-level ``tokenizer.json`` (loadable by ``transformers``
and so by ``mlx_lm.load``) and the weights as safetensors, sharded like Hugging Face does
when ``shard_size`` is given. Weights are random normal with a std of 0.02 (norms are ones),
so a model converted from it generates deterministic, if meaningless, text.

>>> import tempfile, os
>>> tmp = tempfile.TemporaryDirectory()
>>> d = make_checkpoint(os.path.join(tmp.name, "tiny"), family="llama", layers=2,
...                     hidden=64, intermediate=128, vocab=64)
>>> sorted(os.listdir(d))[:3]
['config.json', 'generation_config.json', 'model.safetensors']
>>> tmp.cleanup()
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import numpy as np

from ._dtypes import bfloat16

__all__ = ["FAMILIES", "make_checkpoint", "checkpoint_tensors", "checkpoint_config"]

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen3_moe", "deepseek_v3")

_WORDS = ("the a an of to in and is it that was for on are with as I his they be at one "
          "have this from or had by hot word but what some we can out other were all there "
          "when up use your how said each she which do their time if will way about many "
          "then them write would like so these her long make thing see him two has look more "
          "day could go come did number sound no most people my over know water than call "
          "first who may down side been now find").split()


def checkpoint_config(family: str, *, layers: int, hidden: int, intermediate: int, vocab: int,
                      heads: int = 4, kv_heads: int = 2, experts: int = 4,
                      dtype: str = "bfloat16", tie_embeddings: bool = False) -> dict[str, Any]:
    """The ``config.json`` dict of a synthetic model of ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}; expected one of {', '.join(FAMILIES)}")
    arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
            "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
            "deepseek_v3": "DeepseekV3ForCausalLM",
            "mixtral": "MixtralForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM"}[family]
    cfg: dict[str, Any] = {
        "architectures": [arch],
        "model_type": family,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": vocab,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "max_position_embeddings": 512,
        "tie_word_embeddings": tie_embeddings,
        "torch_dtype": dtype,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "_name_or_path": f"synthetic/{family}",
    }
    if family in ("qwen3", "qwen3_moe"):
        cfg["head_dim"] = hidden // heads
    if family == "mixtral":
        cfg.update(num_local_experts=experts, num_experts_per_tok=2)
    if family == "qwen3_moe":
        cfg.update(num_experts=experts, num_experts_per_tok=2, decoder_sparse_step=1,
                   mlp_only_layers=[], moe_intermediate_size=intermediate // 2,
                   norm_topk_prob=True)
    if family == "deepseek_v3":
        # DeepSeek-V3's shape of model (multi-head latent attention, a dense first layer,
        # routed and shared experts), at the sizes asked for
        cfg.update(n_routed_experts=experts, num_experts_per_tok=2, n_shared_experts=1,
                   moe_intermediate_size=intermediate, first_k_dense_replace=min(1, layers - 1),
                   moe_layer_freq=1, n_group=1, topk_group=1, routed_scaling_factor=2.5,
                   norm_topk_prob=True, topk_method="noaux_tc", scoring_func="sigmoid",
                   q_lora_rank=hidden // 2, kv_lora_rank=hidden // 4, qk_nope_head_dim=64,
                   qk_rope_head_dim=32, v_head_dim=64, rope_scaling=None,
                   max_position_embeddings=512)
    return cfg


def checkpoint_tensors(cfg: dict[str, Any], seed: int = 0,
                       dtype: np.dtype = bfloat16) -> Iterator[tuple[str, np.ndarray]]:
    """Yields ``(name, array)`` in Hugging Face naming for a config from
    :func:`checkpoint_config`, one tensor at a time (nothing else is held)."""
    rng = np.random.default_rng(seed)
    fam = cfg["model_type"]
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", h // nh)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(dtype)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype)

    yield "model.embed_tokens.weight", rand(v, h)
    if fam == "deepseek_v3":
        yield from _deepseek_v3_layers(cfg, rand, ones)
        yield "model.norm.weight", ones(h)
        yield "lm_head.weight", rand(v, h)
        return
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        yield f"{p}.input_layernorm.weight", ones(h)
        yield f"{p}.post_attention_layernorm.weight", ones(h)
        for name, rows, cols in (("q_proj", nh * hd, h), ("k_proj", nkv * hd, h),
                                 ("v_proj", nkv * hd, h), ("o_proj", h, nh * hd)):
            yield f"{p}.self_attn.{name}.weight", rand(rows, cols)
            if fam == "qwen2" and name != "o_proj":
                yield f"{p}.self_attn.{name}.bias", rand(rows)
        if fam in ("qwen3", "qwen3_moe"):
            yield f"{p}.self_attn.q_norm.weight", ones(hd)
            yield f"{p}.self_attn.k_norm.weight", ones(hd)
        if fam in ("llama", "mistral"):
            # some exported checkpoints still carry rotary buffers; mlx-lm drops them
            yield f"{p}.self_attn.rotary_emb.inv_freq", (
                1.0 / 10000 ** (np.arange(0, hd, 2, dtype=np.float32) / hd)).astype(np.float32)
        if fam == "mixtral":
            yield f"{p}.block_sparse_moe.gate.weight", rand(cfg["num_local_experts"], h)
            for e in range(cfg["num_local_experts"]):
                q = f"{p}.block_sparse_moe.experts.{e}"
                yield f"{q}.w1.weight", rand(inter, h)
                yield f"{q}.w2.weight", rand(h, inter)
                yield f"{q}.w3.weight", rand(inter, h)
        elif fam == "qwen3_moe":
            mi = cfg["moe_intermediate_size"]
            yield f"{p}.mlp.gate.weight", rand(cfg["num_experts"], h)
            for e in range(cfg["num_experts"]):
                q = f"{p}.mlp.experts.{e}"
                yield f"{q}.gate_proj.weight", rand(mi, h)
                yield f"{q}.up_proj.weight", rand(mi, h)
                yield f"{q}.down_proj.weight", rand(h, mi)
        else:
            yield f"{p}.mlp.gate_proj.weight", rand(inter, h)
            yield f"{p}.mlp.up_proj.weight", rand(inter, h)
            yield f"{p}.mlp.down_proj.weight", rand(h, inter)
    yield "model.norm.weight", ones(h)
    if not cfg.get("tie_word_embeddings", False):
        yield "lm_head.weight", rand(v, h)


def _deepseek_v3_layers(cfg: dict[str, Any], rand: Any, ones: Any
                        ) -> Iterator[tuple[str, np.ndarray]]:
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    qr, kvr = cfg["q_lora_rank"], cfg["kv_lora_rank"]
    nope, rope, vd = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    inter, moe = cfg["intermediate_size"], cfg["moe_intermediate_size"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        yield f"{p}.input_layernorm.weight", ones(h)
        yield f"{p}.post_attention_layernorm.weight", ones(h)
        a = f"{p}.self_attn"
        yield f"{a}.q_a_proj.weight", rand(qr, h)
        yield f"{a}.q_a_layernorm.weight", ones(qr)
        yield f"{a}.q_b_proj.weight", rand(nh * (nope + rope), qr)
        yield f"{a}.kv_a_proj_with_mqa.weight", rand(kvr + rope, h)
        yield f"{a}.kv_a_layernorm.weight", ones(kvr)
        yield f"{a}.kv_b_proj.weight", rand(nh * (nope + vd), kvr)
        yield f"{a}.o_proj.weight", rand(h, nh * vd)
        if i < cfg["first_k_dense_replace"]:
            for name, rows, cols in (("gate_proj", inter, h), ("up_proj", inter, h),
                                     ("down_proj", h, inter)):
                yield f"{p}.mlp.{name}.weight", rand(rows, cols)
            continue
        yield f"{p}.mlp.gate.weight", rand(cfg["n_routed_experts"], h)
        # DeepSeek-V3 keeps the router's correction bias in float32
        yield f"{p}.mlp.gate.e_score_correction_bias", np.zeros(cfg["n_routed_experts"],
                                                                np.float32)
        for e in range(cfg["n_routed_experts"]):
            for name, rows, cols in (("gate_proj", moe, h), ("up_proj", moe, h),
                                     ("down_proj", h, moe)):
                yield f"{p}.mlp.experts.{e}.{name}.weight", rand(rows, cols)
        sh = moe * cfg["n_shared_experts"]
        for name, rows, cols in (("gate_proj", sh, h), ("up_proj", sh, h), ("down_proj", h, sh)):
            yield f"{p}.mlp.shared_experts.{name}.weight", rand(rows, cols)


def fp8_blocks(w: np.ndarray, block: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``w`` as a DeepSeek-V3 FP8 release stores it: E4M3 codes and one float32 scale per
    ``block x block`` block (``amax / 448``, the largest E4M3 value)."""
    from ._dtypes import float8_e4m3fn

    f = w.astype(np.float32)
    rb, cb = -(-f.shape[0] // block), -(-f.shape[1] // block)
    pad = np.zeros((rb * block, cb * block), np.float32)
    pad[: f.shape[0], : f.shape[1]] = f
    blocks = pad.reshape(rb, block, cb, block)
    scale = np.abs(blocks).max(axis=(1, 3)) / 448.0
    scale = np.where(scale == 0, np.float32(1), scale).astype(np.float32)
    q = (blocks / scale[:, None, :, None]).reshape(rb * block, cb * block)
    return q[: f.shape[0], : f.shape[1]].astype(float8_e4m3fn), scale


def _tokenizer_files(vocab: int) -> dict[str, Any]:
    tokens = ["<unk>", "<s>", "</s>"] + list(dict.fromkeys(_WORDS))
    tokens += [f"w{i}" for i in range(max(0, vocab - len(tokens)))]
    tokens = tokens[:vocab]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, t in enumerate(tokens[:3])
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(tokens)},
                  "unk_token": "<unk>"},
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": 512,
        "clean_up_tokenization_spaces": False,
    }
    return {"tokenizer.json": tokenizer, "tokenizer_config.json": config,
            "special_tokens_map.json": {"bos_token": "<s>", "eos_token": "</s>",
                                        "unk_token": "<unk>"}}


def make_checkpoint(path: str | os.PathLike, *, family: str = "llama", layers: int = 4,
                    hidden: int = 256, intermediate: int = 512, vocab: int = 512,
                    experts: int = 4, seed: int = 0, dtype: str = "bfloat16",
                    tie_embeddings: bool = False, shard_size: int | None = None,
                    heads: int = 4, kv_heads: int = 2, fp8: bool = False) -> str:
    """Writes a random ``family`` checkpoint in Hugging Face layout to ``path`` (created;
    must not exist) and returns the path. ``shard_size`` (bytes) shards it
    ``model-0000i-of-0000N.safetensors`` with an index, as ``transformers`` does. ``fp8``
    stores every Linear weight (not embeddings, norms, routers, the output head) as an FP8
    release does: E4M3 with a 128x128-block ``weight_scale_inv``, and the config's
    ``quantization_config`` says so."""
    from .io import save_safetensors

    path = os.fspath(path)
    os.makedirs(path)
    cfg = checkpoint_config(family, layers=layers, hidden=hidden, intermediate=intermediate,
                            vocab=vocab, heads=heads, kv_heads=kv_heads, experts=experts,
                            dtype=dtype,
                            tie_embeddings=tie_embeddings)
    np_dtype = {"bfloat16": bfloat16, "float16": np.dtype(np.float16),
                "float32": np.dtype(np.float32)}[dtype]
    # Shards are written as they fill (so a checkpoint of several GB never sits in memory)
    # under provisional names, renamed once their count is known.
    shard: dict[str, np.ndarray] = {}
    written: list[tuple[str, list[str], int]] = []

    def flush() -> None:
        tmp = os.path.join(path, f".shard-{len(written)}.safetensors")
        save_safetensors(tmp, shard, metadata={"format": "pt"})
        written.append((tmp, list(shard), sum(a.nbytes for a in shard.values())))
        shard.clear()

    size = 0

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for name, arr in checkpoint_tensors(cfg, seed, np_dtype):
            if fp8 and arr.ndim == 2 and name.endswith("proj.weight") and "mlp.gate." not in name:
                q, s = fp8_blocks(arr)
                yield name, q
                yield name + "_scale_inv", s
            else:
                yield name, arr

    for name, arr in tensors():
        if shard_size and shard and size + arr.nbytes > shard_size:
            flush()
            size = 0
        shard[name] = arr
        size += arr.nbytes
    flush()
    if len(written) == 1:
        os.rename(written[0][0], os.path.join(path, "model.safetensors"))
    else:
        weight_map = {}
        for i, (tmp, names, _) in enumerate(written):
            fname = f"model-{i + 1:05d}-of-{len(written):05d}.safetensors"
            os.rename(tmp, os.path.join(path, fname))
            weight_map.update({k: fname for k in names})
        total = sum(n for _, _, n in written)
        with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    if fp8:
        cfg["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3",
                                      "activation_scheme": "dynamic",
                                      "weight_block_size": [128, 128]}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(path, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": False}, f, indent=2)
    for name, content in _tokenizer_files(vocab).items():
        with open(os.path.join(path, name), "w") as f:
            json.dump(content, f, indent=2)
    return path
