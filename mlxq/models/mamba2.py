"""mlx-lm's ``models/mamba2.py``: each ``conv1d`` weight's kernel axis moved last."""

from __future__ import annotations

from ._shared import tied
from . import mamba
from .base import Family, Order


# mlx-lm's mamba2 sanitize takes the same steps as mamba's; both are checked against mlx-lm
sanitize = mamba.sanitize


def _order(config) -> Order:
    head = "" if tied(config, True) else " lm_head"
    return Order("backbone(embeddings layers*(mixer(conv1d in_proj dt_bias A_log D norm "
                 f"out_proj) norm) norm_f){head}")


FAMILY = Family("mamba2", ("mamba2",), sanitize, _order)
