"""mlx-lm's ``models/phixtral.py`` (Phixtral, Phi-2 experts; ``phi-msft`` checkpoints are
routed here by ``MODEL_REMAPPING``): Phi-2's ``transformer.embd.wte``, parallel blocks of
``mixer`` (``Wqkv``, ``out_proj``), ``ln`` and a mixture of experts whose ``moe.mlp.E.fc1/fc2``
(with biases) the sanitize stacks into ``moe.switch_mlp``; the head is ``lm_head.ln`` and
``lm_head.linear``.

mlx-lm's ``ModelArgs`` reads only its own names (``model_dim``, ``num_layers``,
``num_local_experts``, ...), defaulting to phixtral-4x2_8's sizes."""

from __future__ import annotations

from .base import Family, Order
from .common import Args, Weights
from . import mx


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, num_layers=32, num_local_experts=4)
    if "transformer.h.0.moe.mlp.0.fc1.weight" not in weights:
        return weights
    # (mlxq) a layer past the number of tensors has none to stack: bounded by it, so that a
    # config's absurd num_layers cannot stall the loop
    for l in range(min(args.num_layers, len(weights))):
        prefix = f"transformer.h.{l}"
        for n in ["fc1", "fc2"]:
            for k in ["weight", "scales", "biases", "bias"]:
                if f"{prefix}.moe.mlp.0.{n}.{k}" in weights:
                    to_join = [
                        weights.pop(f"{prefix}.moe.mlp.{e}.{n}.{k}")
                        for e in range(args.num_local_experts)
                    ]
                    weights[f"{prefix}.moe.switch_mlp.{n}.{k}"] = mx.stack(to_join)
    return weights


FAMILY = Family(
    "phixtral", ("phixtral", "phi-msft"), sanitize,
    Order("transformer(embd(wte) h*(mixer(Wqkv out_proj) ln moe(switch_mlp(fc1 fc2) gate))) "
          "lm_head(ln linear)"))
