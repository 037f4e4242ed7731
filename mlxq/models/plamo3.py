"""mlx-lm's ``models/plamo3.py`` (PLaMo 3): blocks one level down (``model.layers.layers.N``)
of a ``mixer`` (fused ``qkv_proj``, ``o_proj``, offset ``q_norm``/``k_norm``) and a fused
``gate_up_proj`` MLP between four norms; sliding-window and full attention layers. The
sanitize drops a tied ``lm_head`` (tied by default)."""

from __future__ import annotations

from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


def _order(config) -> Order:
    tied = Args(config, tie_word_embeddings=True).tie_word_embeddings
    return Order("model(embed_tokens layers(layers*(mixer(qkv_proj o_proj q_norm k_norm) "
                 "mlp(gate_up_proj down_proj) pre_mixer_norm post_mixer_norm pre_mlp_norm "
                 "post_mlp_norm)) norm)" + ("" if tied else " lm_head"))


FAMILY = Family("plamo3", ("plamo3",), sanitize, _order,
                widths={"mixer.qkv_proj": "hidden", "mixer.o_proj": "attention",
                        "mlp.gate_up_proj": "hidden", "mlp.down_proj": "intermediate_size"})
