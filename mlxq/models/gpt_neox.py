"""mlx-lm's ``models/gpt_neox.py`` (Pythia, ...): the attention mask and rotary buffers
dropped, ``gpt_neox.layers`` renamed ``h`` and every name moved under ``model.``; the output
head is ``model.embed_out``."""

from __future__ import annotations

from .base import Family, Order
from .common import Weights


def sanitize(weights: Weights, config) -> Weights:
    new_weights = Weights()
    for w_key, w_value in weights.items():
        # Created through register_buffer in Pytorch, not needed here.
        ignore_suffixes = [".attention.bias", ".attention.masked_bias",
                           ".attention.rotary_emb.inv_freq"]
        if any(w_key.endswith(s) for s in ignore_suffixes):
            continue
        if not w_key.startswith("model."):
            w_key = f"model.{w_key}"
        w_key = w_key.replace(".gpt_neox.layers.", ".h.")
        w_key = w_key.replace(".gpt_neox.", ".")
        new_weights[w_key] = w_value
    return new_weights


FAMILY = Family(
    "gpt_neox", ("gpt_neox",), sanitize,
    Order("model(embed_in embed_out h*(attention(query_key_value dense) "
          "mlp(dense_h_to_4h dense_4h_to_h) input_layernorm post_attention_layernorm) "
          "final_layer_norm)"))
