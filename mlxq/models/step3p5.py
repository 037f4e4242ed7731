"""mlx-lm's ``models/step3p5.py`` (Step 3.5 Flash: interleaved sliding-window and full
attention with per-head gates and zero-centered norms; MoE layers with stacked experts, a
shared expert and a biased sigmoid router).

Its ``Model.sanitize``: multi-token-prediction weights (names containing ``.mtp``, and the
appended ``model.layers.N`` with ``N >= num_hidden_layers``) are dropped; the release's MoE
names move under ``mlp`` (``moe.{gate,up,down}_proj`` — already stacked per layer — to
``mlp.switch_mlp.*``, ``moe.gate`` to ``mlp.gate.gate``, ``moe.router_bias`` to
``mlp.gate.router_bias``, ``share_expert`` to ``mlp.share_expert``); and when the checkpoint
still has those release names ("vanilla"), every norm weight (a ``.weight`` whose name
contains ``norm``) is stored zero-centered and gets 1 added. The router's ``gate`` stays at
8 bits (``quant_predicate``), its ``router_bias`` in the source dtype (``cast_predicate``).

>>> FAMILY.model_quant("model.layers.1.mlp.gate.gate", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

from .base import Family, Order
from .common import REQUIRED, Args, Weights

REMAPPINGS = [
    (".moe.gate_proj.", ".mlp.switch_mlp.gate_proj."),
    (".moe.up_proj.", ".mlp.switch_mlp.up_proj."),
    (".moe.down_proj.", ".mlp.switch_mlp.down_proj."),
    (".moe.gate.", ".mlp.gate.gate."),
    (".moe.router_bias", ".mlp.gate.router_bias"),
    (".share_expert.", ".mlp.share_expert."),
]


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_hidden_layers=REQUIRED)
    is_vanilla = any(src in k and dst not in k for k in weights for src, dst in REMAPPINGS)

    new_weights = Weights()
    for k, v in weights.items():
        if ".mtp" in k:
            continue
        if "model.layers." in k:
            parts = k.split(".")
            if len(parts) > 2 and parts[2].isdigit():
                if int(parts[2]) >= args.num_hidden_layers:
                    continue

        for src, dst in REMAPPINGS:
            if src in k and dst not in k:
                k = k.replace(src, dst)
                break

        if is_vanilla and k.endswith(".weight") and "norm" in k:
            v = v + 1

        new_weights[k] = v

    return new_weights


def cast_predicate(k: str) -> bool:
    return "router_bias" not in k


def quant_predicate(path: str, config) -> bool | dict:
    if "mlp.gate.gate" in path:
        return {"group_size": 64, "bits": 8}
    return True


FAMILY = Family(
    "step3p5", ("step3p5",), sanitize,
    Order("model(embed_tokens layers*(self_attn(q_proj k_proj v_proj o_proj q_norm k_norm "
          "g_proj) mlp(gate_proj up_proj down_proj gate(gate router_bias) "
          "switch_mlp(gate_proj up_proj down_proj) share_expert(gate_proj up_proj down_proj)) "
          "input_layernorm post_attention_layernorm) norm) lm_head"),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.g_proj": "hidden",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size", "mlp.gate.gate": "hidden",
            "mlp.switch_mlp.gate_proj": "hidden", "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "moe_intermediate_size",
            "mlp.share_expert.gate_proj": "hidden", "mlp.share_expert.up_proj": "hidden",
            "mlp.share_expert.down_proj": "share_expert_dim"})
