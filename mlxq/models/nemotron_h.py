"""mlx-lm's ``models/nemotron_h.py`` (Nemotron-H, Nemotron 3 Nano): a ``backbone`` of
blocks whose single ``mixer`` is Mamba-2, attention, an MLP or a MoE, chosen by the
``hybrid_override_pattern``. Its ``sanitize`` drops the multi-token-prediction weights,
moves each ``conv1d`` kernel axis, and stacks the MoE experts' ``up_proj``/``down_proj``
into ``switch_mlp.fc1``/``fc2``. The MoE router ``mixer.gate`` is a bare parameter; its
``e_score_correction_bias`` and the Mamba ``A_log`` keep the source dtype."""

from __future__ import annotations

from . import mx
from .base import Family, Order
from ..errors import ParseError
from .common import Args, Weights, move_conv_axis


def num_hidden_layers(config) -> int:
    """ModelArgs.__post_init__: the layer count is the length of the block pattern
    (``hybrid_override_pattern``, else ``layers_block_type`` / ``layer_types``)."""
    args = Args(config, hybrid_override_pattern=None, layers_block_type=None, layer_types=None)
    pattern = args.hybrid_override_pattern or args.layers_block_type or args.layer_types
    if not isinstance(pattern, (list, str)):
        raise ParseError("config.json needs hybrid_override_pattern or layers_block_type to "
                         "describe the layer stack (mlx-lm's nemotron_h reads it)",
                         key="hybrid_override_pattern")
    return len(pattern)


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, n_routed_experts=0)
    weights = Weights({k: v for (k, v) in weights.items() if not k.startswith("mtp.")})
    move_conv_axis(weights)
    # Stack experts
    for l in range(num_hidden_layers(config)):
        prefix = f"backbone.layers.{l}.mixer"
        for m, n in [("down_proj", "fc2"), ("up_proj", "fc1")]:
            if f"{prefix}.experts.0.{m}.weight" in weights:
                to_join = [weights.pop(f"{prefix}.experts.{e}.{m}.weight")
                           for e in range(args.n_routed_experts)]
                weights[f"{prefix}.switch_mlp.{n}.weight"] = mx.stack(to_join)
    return weights


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k and "A_log" not in k


FAMILY = Family(
    "nemotron_h", ("nemotron_h",), sanitize,
    Order("backbone(embeddings layers*(norm mixer(conv1d in_proj dt_bias A_log D norm "
          "out_proj q_proj k_proj v_proj o_proj up_proj down_proj switch_mlp(fc1 fc2) "
          "gate(weight e_score_correction_bias) shared_experts(up_proj down_proj))) norm_f) "
          "lm_head"),
    cast_predicate=cast_predicate, not_quantized=(r"\.mixer\.gate$",))
