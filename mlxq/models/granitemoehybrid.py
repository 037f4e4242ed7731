"""mlx-lm's ``models/granitemoehybrid.py`` (IBM Granite 4.0 hybrid: Mamba-2 and attention
layers, each followed by a shared MLP and a MoE, or by a dense MLP when the config has no
experts).

Its ``Model.sanitize``: each ``conv1d`` weight's kernel axis moved last; with experts
(``num_local_experts``), every layer's fused ``block_sparse_moe.input_linear``
(``[experts, 2 x inter, hidden]``) is cut in half on axis 1 into the switch
``gate_proj``/``up_proj`` and ``output_linear`` becomes the switch ``down_proj``; without
experts, ``shared_mlp.input_linear`` is split in two on axis 0 into a dense
``mlp.gate_proj``/``mlp.up_proj`` and ``output_linear`` becomes ``mlp.down_proj``; a
redundant ``lm_head.weight`` goes when the embeddings are tied. ``Model.quant_predicate``
keeps the MoE router (``router.layer``) at 8 bits, group 64.

>>> FAMILY.model_quant("model.layers.0.block_sparse_moe.router.layer", {"num_local_experts": 4})
{'group_size': 64, 'bits': 8}
>>> FAMILY.model_quant("model.layers.0.block_sparse_moe.router.layer", {})
True
"""

from __future__ import annotations

from . import mx
from ._shared import tied
from .base import Family, Order
from .common import REQUIRED, Args, Weights, move_conv_axis


def model_args(config) -> Args:
    return Args(config, num_hidden_layers=REQUIRED, num_local_experts=None,
                tie_word_embeddings=True)


def use_moe(args: Args) -> bool:
    """ModelArgs.use_moe: a MoE model when the config gives experts."""
    return bool(args.num_local_experts)


def sanitize(weights: Weights, config) -> Weights:
    args = model_args(config)
    # Handle conv1d weights
    move_conv_axis(weights)

    # Handle MoE weight transformation to SwitchGLU format (only for MoE models)
    if use_moe(args) and "model.layers.0.block_sparse_moe.input_linear.weight" in weights:
        for l in range(args.num_hidden_layers):
            prefix = f"model.layers.{l}.block_sparse_moe"

            input_weight = weights.pop(f"{prefix}.input_linear.weight")
            _, expert_hidden, _ = input_weight.shape

            # Split into gate and up projections (each half of expert_hidden)
            gate_proj = input_weight[:, : expert_hidden // 2, :]
            up_proj = input_weight[:, expert_hidden // 2:, :]
            weights[f"{prefix}.switch_mlp.gate_proj.weight"] = gate_proj
            weights[f"{prefix}.switch_mlp.up_proj.weight"] = up_proj

            weights[f"{prefix}.switch_mlp.down_proj.weight"] = weights.pop(
                f"{prefix}.output_linear.weight")

    # Handle dense MLP weight transformation (for dense models)
    elif not use_moe(args) and "model.layers.0.shared_mlp.input_linear.weight" in weights:
        for l in range(args.num_hidden_layers):
            prefix = f"model.layers.{l}.shared_mlp"

            # Transform shared_mlp weights to standard mlp weights
            input_weight = weights.pop(f"{prefix}.input_linear.weight")
            # Split into gate and up projections (each half)
            gate_proj, up_proj = mx.split(input_weight, 2, axis=0)
            weights[f"model.layers.{l}.mlp.gate_proj.weight"] = gate_proj
            weights[f"model.layers.{l}.mlp.up_proj.weight"] = up_proj

            weights[f"model.layers.{l}.mlp.down_proj.weight"] = weights.pop(
                f"{prefix}.output_linear.weight")

    # Some checkpoints ship a redundant lm_head.weight even though
    # embeddings are tied and this model never instantiates lm_head.
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    return weights


def quant_predicate(path: str, config) -> bool | dict:
    if use_moe(model_args(config)) and path.endswith("router.layer"):
        return {"group_size": 64, "bits": 8}
    return True


def _order(config) -> Order:
    # GraniteMoeHybridLayer: the mixer (mamba or self_attn, one per layer), then a MoE
    # layer's shared_mlp and block_sparse_moe or a dense layer's mlp
    head = "" if tied(config, True) else " lm_head"
    return Order("model(embed_tokens layers*(input_layernorm mamba(conv1d in_proj dt_bias "
                 "A_log D norm out_proj) self_attn(q_proj k_proj v_proj o_proj) "
                 "shared_mlp(input_linear output_linear) block_sparse_moe(switch_mlp(gate_proj "
                 "up_proj down_proj) router(layer)) mlp(gate_proj down_proj up_proj) "
                 f"post_attention_layernorm) norm){head}")


FAMILY = Family("granitemoehybrid", ("granitemoehybrid",), sanitize, _order,
                quant_predicate=quant_predicate)
