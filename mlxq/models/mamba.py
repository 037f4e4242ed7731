"""mlx-lm's ``models/mamba.py`` (Mamba 1; also Falcon-Mamba, which ``MODEL_REMAPPING`` sends
here and whose ``ModelArgs.__post_init__`` only switches on the weightless B/C/dt RMS norms).

Its ``Model.sanitize`` moves each ``conv1d`` weight's kernel axis last (transformers'
``[channels, 1, kernel]`` becomes MLX's ``[channels, kernel, 1]``); a weight already in
MLX's layout (last axis 1) is left alone. ``lm_head`` exists only when the embeddings are
not tied (``tie_word_embeddings``, default true).

>>> FAMILY.model_types
('mamba', 'falcon_mamba')
"""

from __future__ import annotations

from ._shared import tied
from .base import Family, Order
from .common import Weights, move_conv_axis


def sanitize(weights: Weights, config) -> Weights:
    move_conv_axis(weights)
    return weights


def _order(config) -> Order:
    head = "" if tied(config, True) else " lm_head"
    return Order("backbone(embeddings layers*(mixer(in_proj conv1d x_proj dt_proj A_log D "
                 f"out_proj) norm) norm_f){head}")


FAMILY = Family("mamba", ("mamba", "falcon_mamba"), sanitize, _order)
