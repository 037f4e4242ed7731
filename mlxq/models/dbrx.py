"""mlx-lm's ``models/dbrx.py`` (Databricks DBRX): a ``transformer`` of ``blocks``, each a
``norm_attn_norm`` (LayerNorms without bias around a fused ``Wqkv`` attention) and an
``ffn`` whose experts are a plain list of gated MLPs (``v1``, ``w1``, ``w2``), not a
switch layer.

``Model.sanitize`` undoes the checkpoint's fused expert tensors: each
``ffn.experts.mlp.{v1,w1,w2}`` (all experts' rows stacked, ``[experts x ffn, d_model]``)
is split into ``moe_num_experts`` equal parts along axis 0, named
``ffn.experts.<e>.<w>.weight``; ``w2`` parts are transposed (the checkpoint stores the down
projection as ``[ffn, d_model]`` per expert). No quant or cast predicate.

>>> FAMILY.order_for({}).layers
'transformer.blocks'
"""

from __future__ import annotations

from . import mx
from ..errors import ParseError
from .base import Family, Order
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, ffn_config=REQUIRED)
    if not isinstance(args.ffn_config, dict) or "moe_num_experts" not in args.ffn_config:
        raise ParseError("config.json: 'ffn_config' must be an object with "
                         "'moe_num_experts' (mlx-lm's dbrx reads it)", key="ffn_config")
    # Split experts into sub matrices
    num_experts = args.ffn_config["moe_num_experts"]
    if isinstance(num_experts, bool) or not isinstance(num_experts, int) or num_experts <= 0:
        raise ParseError("config.json: 'ffn_config.moe_num_experts' must be a positive "
                         f"integer, got {num_experts!r:.60}", key="ffn_config")

    pattern = "experts.mlp"
    new_weights = Weights({k: v for k, v in weights.items() if pattern not in k})
    for k, v in weights.items():
        if pattern in k:
            experts = [
                (k.replace(".mlp", f".{e}") + ".weight", sv)
                for e, sv in enumerate(mx.split(v, num_experts, axis=0))
            ]
            if k.endswith("w2"):
                experts = [(s, sv.T) for s, sv in experts]
            new_weights.update(experts)
    return new_weights


FAMILY = Family(
    "dbrx", ("dbrx",), sanitize,
    # DecoderLayer defines ffn before norm_attn_norm; the Router wraps its Linear as `layer`
    Order("transformer(wte blocks*(ffn(router(layer) experts*(v1 w1 w2)) "
          "norm_attn_norm(norm_1 norm_2 attn(Wqkv out_proj))) norm_f) lm_head"))
