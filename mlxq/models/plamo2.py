"""mlx-lm's ``models/plamo2.py`` (PFN's PLaMo 2): Mamba-2 mixers alternating with
attention (``mamba_step``), each followed by a fused ``gate_up_proj`` MLP, with four
offset RMS norms per layer; the decoder list lives at ``model.layers.layers``. Its
``sanitize`` moves each ``conv1d`` kernel axis last."""

from __future__ import annotations

from ._shared import tied
from .base import Family, Order
from .common import Weights, move_conv_axis


def sanitize(weights: Weights, config) -> Weights:
    move_conv_axis(weights)
    return weights


def order(config) -> Order:
    head = "" if tied(config, True) else " lm_head"
    # Mamba: in_proj, conv1d, bcdt_proj, dt_proj, dt_bias, A_log, D, the three bare norm
    # weights, out_proj; Attention: qkv_proj, o_proj, q_weight, k_weight
    return Order("model(embed_tokens layers(layers*(mixer(in_proj conv1d bcdt_proj dt_proj "
                 "dt_bias A_log D dt_norm_weight B_norm_weight C_norm_weight out_proj "
                 "qkv_proj o_proj q_weight k_weight) mlp(gate_up_proj down_proj) "
                 "pre_mixer_norm post_mixer_norm pre_mlp_norm post_mlp_norm)) norm)" + head)


FAMILY = Family("plamo2", ("plamo2",), sanitize, order)
