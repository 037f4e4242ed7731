"""mlx-lm's ``models/falcon_h1.py``: parallel attention and Mamba-2 mixers. Its
``sanitize`` (for checkpoints whose ``conv1d`` weights are still ``[out, 1, kernel]``) folds
the model's µP multipliers into the weights — each a bfloat16 multiply by a Python float, as
MLX computes it — and moves the conv kernel axis last. The ``in_proj`` multiplier is a
per-row vector built from the Mamba dimensions (``compute_mup_vector``)."""

from __future__ import annotations

import numpy as np

from .base import Family, Order
from .common import Args, Weights
from ..conversion.graph import constant

_DEFAULTS = dict(
    attention_in_multiplier=1.0, attention_out_multiplier=0.9375,
    embedding_multiplier=5.656854249492381, key_multiplier=0.390625,
    lm_head_multiplier=0.0390625, mamba_d_ssm=1536, mamba_d_state=128, mamba_n_groups=1,
    mamba_n_heads=24, mlp_multipliers=[0.8838834764831844, 0.5859375],
    ssm_in_multiplier=1.25,
    ssm_multipliers=[0.3535533905932738, 0.25, 0.3535533905932738, 0.5, 0.3535533905932738],
    ssm_out_multiplier=0.23570226039551587, tie_word_embeddings=True)


def compute_mup_vector(args):
    intermediate_size = args.mamba_d_ssm
    groups_time_state_size = args.mamba_n_groups * args.mamba_d_state
    num_heads = args.mamba_n_heads
    sizes = [intermediate_size, intermediate_size, groups_time_state_size,
             groups_time_state_size, num_heads]
    # mx.broadcast_to(mx.array(m), (s,)) of each multiplier: float32
    return constant(np.concatenate([np.full(s, m, np.float32)
                                    for s, m in zip(sizes, args.ssm_multipliers)]))


def sanitize(weights: Weights, config) -> Weights:
    # Check if needs sanitization
    c1d = weights["model.layers.0.mamba.conv1d.weight"]
    if c1d.shape[-1] <= c1d.shape[1]:
        return weights
    sanitized_weights = Weights()
    args = Args(config, **_DEFAULTS)
    mup_vector = compute_mup_vector(args)
    for name, param in weights.items():
        # Fold-in multipliers
        if name.endswith("embed_tokens.weight"):
            param *= args.embedding_multiplier
        elif name.endswith("lm_head.weight"):
            param *= args.lm_head_multiplier
        elif name.endswith("q_proj.weight") or name.endswith("k_proj.weight"):
            param *= args.attention_in_multiplier
        elif name.endswith("key_proj.weight"):
            param *= args.attention_in_multiplier * args.key_multiplier
        elif name.endswith("o_proj.weight"):
            param *= args.attention_out_multiplier
        elif name.endswith("out_proj.weight"):
            param *= args.ssm_out_multiplier
        elif name.endswith("gate_proj.weight"):
            param *= args.mlp_multipliers[0]
        elif name.endswith("down_proj.weight"):
            param *= args.mlp_multipliers[1]
        elif name.endswith("in_proj.weight"):
            param *= (args.ssm_in_multiplier
                      * mup_vector.astype(param.dtype).reshape(-1, 1))  # [:, None]
        elif "conv1d.weight" in name:
            param = param.transpose(0, 2, 1)
        sanitized_weights[name] = param
    return sanitized_weights


def _order(config) -> Order:
    head = "" if config.get("tie_word_embeddings", True) else " lm_head"
    return Order("model(embed_tokens layers*(feed_forward(gate_proj up_proj down_proj) "
                 "mamba(conv1d in_proj dt_bias A_log norm D out_proj) "
                 "self_attn(q_proj k_proj v_proj o_proj) input_layernorm pre_ff_layernorm) "
                 f"final_layernorm){head}")


FAMILY = Family("falcon_h1", ("falcon_h1",), sanitize, _order)
