"""mlx-lm's ``models/hunyuan.py`` (Tencent Hunyuan: Hunyuan-A13B's MoE, Hunyuan-7B's dense
layers; optional cross-layer attention, CLA, where only every ``cla_share_factor``-th layer
has k/v projections): per-head ``query_layernorm``/``key_layernorm``, a MoE with a shared
MLP and the router ``gate.wg``. The model has no output head of its own (it reads the
embeddings).

Its ``sanitize``: a checkpoint with fused projections (``mlp.gate_and_up_proj`` in layer 0)
has each ``qkv_proj`` cut per KV group into q, k and v (``[kv_heads, groups + 2, head_dim,
hidden]`` split ``[groups, 1, 1]`` on the group axis, flattened back) and each
``gate_and_up_proj`` cut in half into ``up_proj`` and ``gate_proj`` (that order); then, when
layer 0 has per-expert weights, every layer's experts are stacked into ``switch_mlp``."""

from __future__ import annotations

from . import mx
from .base import Family, Order
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, hidden_size=REQUIRED, num_key_value_heads=REQUIRED,
                num_attention_heads=REQUIRED, num_hidden_layers=REQUIRED,
                num_experts=REQUIRED)

    if "model.layers.0.mlp.gate_and_up_proj.weight" in weights:
        new_weights = Weights()
        D = args.hidden_size
        n_kv_heads = args.num_key_value_heads
        n_kv_groups = args.num_attention_heads // n_kv_heads
        head_dim = D // args.num_attention_heads
        for k, v in weights.items():
            if "qkv_proj" in k:
                v = v.reshape(n_kv_heads, n_kv_groups + 2, head_dim, -1)
                splits = v.split([n_kv_groups, n_kv_groups + 1], axis=1)
                for k_up, v_new in zip(["q_proj", "k_proj", "v_proj"], splits):
                    k_new = k.replace("qkv_proj", k_up)
                    new_weights[k_new] = mx.flatten(v_new, 0, 2)
            elif "gate_and_up_proj" in k:
                splits = v.split(2, axis=0)
                for k_up, v_new in zip(["up_proj", "gate_proj"], splits):
                    k_new = k.replace("gate_and_up_proj", k_up)
                    new_weights[k_new] = v_new
            else:
                new_weights[k] = v
        weights = new_weights

    if "model.layers.0.mlp.experts.0.up_proj.weight" not in weights:
        return weights
    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"
        for n in ["up_proj", "down_proj", "gate_proj"]:
            for k in ["weight", "scales", "biases"]:
                if f"{prefix}.mlp.experts.0.{n}.{k}" in weights:
                    to_join = [weights.pop(f"{prefix}.mlp.experts.{e}.{n}.{k}")
                               for e in range(args.num_experts)]
                    weights[f"{prefix}.mlp.switch_mlp.{n}.{k}"] = mx.stack(to_join)
    return weights


FAMILY = Family(
    "hunyuan", ("hunyuan",), sanitize,
    # Attention: q, (k, v on CLA's sharing layers only), o, the per-head norms; MLP: gate,
    # down, up; MoeBlock: shared_mlp, gate(wg), switch_mlp. No lm_head: the embeddings are
    # the output head
    Order("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj query_layernorm "
          "key_layernorm) mlp(gate_proj down_proj up_proj shared_mlp(gate_proj down_proj "
          "up_proj) gate(wg) switch_mlp(gate_proj up_proj down_proj)) input_layernorm "
          "post_attention_layernorm) norm)"))
