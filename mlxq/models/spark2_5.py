"""mlx-lm's ``models/spark2_5.py`` (Spark-X2.5): sliding and full attention layers with a
fused ``q_k_v_proj`` and a per-head sigmoid output gate (``g_proj``). Its ``sanitize``
renames an ``embed_tokens`` embedding to the checkpoint's ``embedding``, pops a tied
``lm_head.weight`` and drops rotary ``inv_freq`` buffers; its ``quant_predicate`` keeps the
head gate ``g_proj`` at source precision.

>>> FAMILY.model_quant("model.layers.0.self_attn.g_proj", {})
False
"""

from __future__ import annotations

from ._shared import tied
from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    # Some MLX conversions rename the embedding to embed_tokens while the
    # Hugging Face checkpoint ships it as model.embedding.weight.
    if "model.embed_tokens.weight" in weights and "model.embedding.weight" not in weights:
        weights["model.embedding.weight"] = weights.pop("model.embed_tokens.weight")
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    # Drop the serialized RoPE inverse-frequency buffer some conversions ship.
    return Weights({name: value for name, value in weights.items()
                    if "rotary_emb.inv_freq" not in name})


def quant_predicate(path: str, config) -> bool | dict:
    # The head-gate is a tiny per-head gating projection; mlx-lm keeps it at source
    # precision
    return not path.endswith("self_attn.g_proj")


def order(config) -> Order:
    head = "" if tied(config, True) else " lm_head"
    return Order("model(embedding layers*(self_attn(q_k_v_proj g_proj out_proj) "
                 "mlp(gate_proj up_proj down_proj) input_layernorm post_attention_layernorm) "
                 "norm)" + head)


FAMILY = Family("spark2_5", ("spark2_5",), sanitize, order, quant_predicate=quant_predicate)
