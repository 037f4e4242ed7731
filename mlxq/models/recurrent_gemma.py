"""mlx-lm's ``models/recurrent_gemma.py`` (RecurrentGemma / Griffin: RG-LRU recurrent blocks
and local attention, in the ``block_types`` pattern).

Its ``Model.sanitize`` moves each ``conv_1d`` weight's kernel axis last (transformers'
``[channels, 1, width]`` becomes ``[channels, width, 1]``); when the checkpoint has no
``lm_head.weight`` the model drops its ``lm_head`` and reads the embeddings as the output
layer, so the head exists in the output exactly when the source has one. The RG-LRU gate
weights (``rg_lru.input_gate_weight``, ``[heads, head_dim, head_dim]``) are bare parameters,
never quantized.

>>> FAMILY.quantizable("model.layers.0.temporal_block.linear_x", (64, 64))
True
"""

from __future__ import annotations

from .base import Family, Order
from .common import Weights, move_conv_axis


def sanitize(weights: Weights, config) -> Weights:
    move_conv_axis(weights, "conv_1d.weight")
    # mlx-lm: `if "lm_head.weight" not in weights: self.pop("lm_head")` — a change to the
    # model, not to the weights
    return weights


FAMILY = Family(
    "recurrent_gemma", ("recurrent_gemma",), sanitize,
    # ResidualBlock: temporal_pre_norm, the temporal block (a RecurrentBlock or a
    # LocalAttentionBlock), channel_pre_norm, mlp_block; Model defines lm_head last
    Order("model(embed_tokens layers*(temporal_pre_norm temporal_block(linear_y linear_x "
          "linear_out conv_1d rg_lru(recurrent_param input_gate_weight input_gate_bias "
          "recurrent_gate_weight recurrent_gate_bias) q_proj k_proj v_proj o_proj) "
          "channel_pre_norm mlp_block(up_proj gate_proj down_proj)) final_norm) lm_head"))
