"""mlx-lm's ``models/muse_glimmer.py`` (Meta's Muse Glimmer, the text tower): a gated
attention output (``self_attn.gate_proj``), four norms a block. The sanitize drops the
vision tower, adapter and projection, and moves the language model's names
(``language_model.model.``, ``language_model.lm_head.``, ``model.language_model.``) to
``model.`` / ``lm_head.``; an ``lm_head`` exists unless the embeddings are tied.

transformers' ``MuseGlimmerForConditionalGeneration`` saves the vision modules under
``model.`` (``model.vision_tower.*``, ...), which mlx-lm's sanitize leaves in place, so that
mlx-lm fails to load its own conversion ("parameters not in model"). mlxq drops them too,
as the sanitize means to (a text-only port), and writes the folder mlx-lm writes for the
same checkpoint without them."""

from __future__ import annotations

from .base import Family, Order
from .common import Args, Weights

ATTN = "self_attn(q_proj k_proj v_proj o_proj gate_proj)"
MLP = "mlp(gate_proj up_proj down_proj)"
NORMS = ("input_layernorm post_attention_layernorm pre_feedforward_layernorm "
         "post_feedforward_layernorm")


def sanitize(weights: Weights, config) -> Weights:
    out = Weights()
    for k, v in weights.items():
        # Drop the vision tower — this is a text-only port.
        if k.startswith(("vision_tower", "vision_adapter", "vision_projection")):
            continue
        # (mlxq) ... and where transformers saves it, which mlx-lm's sanitize misses
        if k.startswith(("model.vision_tower.", "model.vision_adapter.",
                         "model.vision_projection.")):
            continue
        # Meta/MLX nest the text tower under language_model.*
        if k.startswith("language_model.model."):
            k = "model." + k[len("language_model.model."):]
        elif k.startswith("language_model.lm_head."):
            k = "lm_head." + k[len("language_model.lm_head."):]
        elif k.startswith("model.language_model."):
            k = "model." + k[len("model.language_model."):]
        out[k] = v
    return out


def _args(config):
    # ModelArgs.from_dict lays text_config over the top-level keys
    text = config.get("text_config")
    if isinstance(text, dict):
        config = {**config, **text}
    return Args(config, tie_word_embeddings=False)


def _order(config) -> Order:
    tied = _args(config).tie_word_embeddings
    return Order(f"model(embed_tokens layers*({ATTN} {MLP} {NORMS}) norm)"
                 + ("" if tied else " lm_head"))


FAMILY = Family("muse_glimmer", ("muse_glimmer",), sanitize, _order,
                widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
                        "self_attn.v_proj": "hidden", "self_attn.gate_proj": "hidden",
                        "self_attn.o_proj": "attention", "mlp.gate_proj": "hidden",
                        "mlp.up_proj": "hidden", "mlp.down_proj": "intermediate_size"})
