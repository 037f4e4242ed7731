"""mlx-lm's ``models/bailing_hybrid.py`` (Ling / Ring 2.5, ``BailingMoeV2_5ForCausalLM``):
lightning linear-attention layers and, every ``layer_group_size``-th layer, multi-latent
attention, over sparse MoE blocks after ``first_k_dense_replace`` dense ones. (A config
whose architecture is ``BailingMoeV3ForCausalLM`` goes to bailing_moe_v3 instead, as
mlx-lm's ``MODEL_ARCHITECTURE_REMAPPING`` says.)

Its ``sanitize``: a redundant ``lm_head.weight`` goes when the embeddings are tied; in every
layer the experts are stacked into ``switch_mlp`` and ``mlp.gate.weight`` becomes
``mlp.gate.gate_proj.weight``; each MLA ``kv_b_proj`` is split into the per-head
``embed_q`` (its key half, transposed) and ``unembed_out`` (its value half); the
multi-token-prediction layers the checkpoint appends (``model.layers.N`` for ``N >=
num_hidden_layers``) are dropped. ``quant_predicate`` keeps the router at 8 bits and the
absorbed MLA matrices unquantized; ``cast_predicate`` keeps ``expert_bias``."""

from __future__ import annotations

from . import mx
from .bailing_moe import bailing_order
from .base import Family
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED, tie_word_embeddings=False,
                num_experts=REQUIRED, qk_nope_head_dim=REQUIRED, v_head_dim=REQUIRED,
                num_attention_heads=REQUIRED)
    n_layers = args.num_hidden_layers
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    for l in range(n_layers):
        prefix = f"model.layers.{l}"
        for m in ["gate_proj", "down_proj", "up_proj"]:
            for k in ["weight", "scales", "biases"]:
                if f"{prefix}.mlp.experts.0.{m}.{k}" in weights:
                    to_join = [weights.pop(f"{prefix}.mlp.experts.{e}.{m}.{k}")
                               for e in range(args.num_experts)]
                    weights[f"{prefix}.mlp.switch_mlp.{m}.{k}"] = mx.stack(to_join)
        if f"{prefix}.mlp.gate.weight" in weights:
            weights[f"{prefix}.mlp.gate.gate_proj.weight"] = weights.pop(
                f"{prefix}.mlp.gate.weight")

        prefix = f"{prefix}.attention"
        if f"{prefix}.kv_b_proj.weight" in weights:
            v = weights.pop(f"{prefix}.kv_b_proj.weight")
            nope = args.qk_nope_head_dim
            head_dim = nope + args.v_head_dim
            v = v.reshape(args.num_attention_heads, head_dim, -1)
            weights[f"{prefix}.embed_q.weight"] = mx.contiguous(v[:, :nope, :].swapaxes(-1, -2))
            weights[f"{prefix}.unembed_out.weight"] = mx.contiguous(v[:, nope:, :])

    # The checkpoint appends MTP layers after the base ones.
    return Weights({
        k: v for k, v in weights.items()
        if not (k.startswith("model.layers.") and k.split(".")[2].isdigit()
                and int(k.split(".")[2]) >= n_layers)
    })


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("mlp.gate.gate_proj"):
        return {"group_size": 64, "bits": 8}
    # The absorbed MLA matrices stay unquantized, as in bailing_moe_v3.
    if path.endswith(("attention.embed_q", "attention.unembed_out")):
        return False
    return True


def cast_predicate(k: str) -> bool:
    return "expert_bias" not in k


FAMILY = Family(
    "bailing_hybrid", ("bailing_hybrid",), sanitize,
    # MultiLatentAttention: q (or its LoRA pair), kv_a, the absorbed embed_q/unembed_out,
    # dense; LinearAttention: query_key_value, dense, g_proj, g_norm, key/query norms. MLP:
    # gate, up, down; SparseMoeBlock: switch_mlp, gate, shared_experts
    bailing_order("attention(q_proj q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa "
                  "kv_a_layernorm embed_q unembed_out query_key_value dense g_proj g_norm "
                  "key_layernorm query_layernorm) mlp(gate_proj up_proj down_proj "
                  "switch_mlp(gate_proj up_proj down_proj) gate(gate_proj expert_bias) "
                  "shared_experts(gate_proj up_proj down_proj)) input_layernorm "
                  "post_attention_layernorm"),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate)
