"""mlx-lm's ``models/gemma3n.py`` (Gemma 3n: AltUp, LAuReL, per-layer inputs, the last
layers reusing earlier ones' keys and values): the language model of the multimodal
checkpoint, as the release names it (``model.language_model.*``).

Its ``sanitize`` drops ``model.vision_tower``, ``model.audio_tower``, ``model.embed_audio``
and ``model.embed_vision``; everything else keeps its name (the embeddings are tied: there
is no ``lm_head``). Unlike gemma4's, mlx-lm's gemma3n model has key/value projections in
every layer, so the releases' projections of the shared layers stay.
"""

from __future__ import annotations

from ._multimodal import drop_trees, subtree, text_config
from .base import Family, Order
from .common import Weights

LAYER = ("self_attn(q_proj k_proj v_proj o_proj q_norm k_norm) mlp(gate_proj up_proj down_proj) "
         "input_layernorm post_attention_layernorm pre_feedforward_layernorm "
         "post_feedforward_layernorm altup(correct_output_scale correction_coefs "
         "prediction_coefs modality_router router_norm) laurel(linear_left linear_right "
         "post_laurel_norm) per_layer_input_gate per_layer_projection post_per_layer_input_norm")


def sanitize(weights: Weights, config) -> Weights:
    text_config(config)  # ModelArgs' text_config has no default
    subtree(weights, "model")  # mlx-lm: weights["model"], a KeyError without it
    return drop_trees(weights, *(f"model.{k}" for k in
                                 ["vision_tower", "audio_tower", "embed_audio", "embed_vision"]))


FAMILY = Family(
    "gemma3n", ("gemma3n",), sanitize,
    Order(f"model(language_model(embed_tokens layers*({LAYER}) embed_tokens_per_layer "
          "per_layer_model_projection per_layer_projection_norm altup_projections* "
          "altup_unembed_projections* norm))"),
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.o_proj": "attention",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "altup.modality_router": "hidden", "laurel.linear_left": "hidden",
            "laurel.linear_right": "laurel_rank", "per_layer_input_gate": "hidden",
            "per_layer_projection": "hidden_size_per_layer_input"})
