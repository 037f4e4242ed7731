"""mlx-lm's ``models/talkie.py`` (Talkie 13B): weightless RMS norms, learned gains
(``head_gain.head_g``, ``attn_gain``/``mlp_gain``/``embed_skip`` ``.a_g``,
``lm_head_gain.w_g``) and an output projection that is a bare parameter ``lm_head`` (no
``.weight``, so never quantized). The sanitize drops precomputed rotary tables (any name
containing ``rotary`` or ending in ``cos``/``sin``).

The publisher's code (``talkie-lm/talkie``'s ``model.py``, and its MLX converter) names the
embedding and the blocks ``embed.*`` / ``blocks.*``; mlx-lm's model has them under
``model.``, and its sanitize does not move them, so ``mlx_lm.convert`` refuses the
publisher's checkpoints ("parameters not in model"). mlxq moves them, and writes the folder
mlx-lm writes for the same checkpoint under its own names."""

from __future__ import annotations

from ..errors import KeyCollisionError
from .base import Family, Order
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    # (mlxq) the publisher's names, without the model. that mlx-lm's names have
    moved, origin = Weights(), {}
    for k, v in weights.items():
        name = f"model.{k}" if k.startswith(("embed.", "blocks.")) else k
        if name in moved:
            raise KeyCollisionError(f"{origin[name]} and {k} would both be {name}: the "
                                    "checkpoint mixes the publisher's names and mlx-lm's",
                                    key=name)
        moved[name], origin[name] = v, k
    weights = moved
    # Remove precomputed rotary buffers if present
    return Weights({
        k: v
        for k, v in weights.items()
        if "rotary" not in k and not k.endswith(("cos", "sin"))
    })


FAMILY = Family(
    "talkie", ("talkie",), sanitize,
    Order("model(embed blocks*(attn(attn_query attn_key attn_value attn_resid head_gain(head_g)) "
          "attn_gain(a_g) mlp(mlp_gate mlp_linear mlp_resid) mlp_gain(a_g) embed_skip(a_g))) "
          "lm_head lm_head_gain(w_g)"),
    widths={"attn.attn_query": "hidden", "attn.attn_key": "hidden", "attn.attn_value": "hidden",
            "mlp.mlp_gate": "hidden", "mlp.mlp_linear": "hidden",
            "mlp.mlp_resid": "intermediate_size"})
