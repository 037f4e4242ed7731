"""mlx-lm's ``models/gptj.py`` (GPT-J): attention and MLP in parallel after one LayerNorm,
rotary embeddings over the first ``rotary_dim`` channels, an MLP of width ``4 * n_embd``
and an ``lm_head`` with a bias (always: GPT-J does not tie). ``Model.sanitize`` deletes the
causal-mask buffers ``transformer.h.N.attn.bias`` / ``attn.masked_bias`` of the first
``n_layer`` blocks (ModelArgs' default is 28) and renames ``transformer.`` to ``model.``
wherever it occurs in a name.

>>> from mlxq.conversion import graph
>>> import numpy as np
>>> w = {k: graph.constant(np.zeros(1, np.float32)) for k in
...      ("transformer.h.0.attn.bias", "transformer.h.0.ln_1.weight", "lm_head.weight")}
>>> sorted(FAMILY.sanitize(w, {"n_layer": 1}))
['lm_head.weight', 'model.h.0.ln_1.weight']
"""

from __future__ import annotations

from .base import Family, Order
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, n_layer=28)
    new_weights = Weights()
    for i in range(args.n_layer):
        # Remove attention bias
        if f"transformer.h.{i}.attn.masked_bias" in weights:
            del weights[f"transformer.h.{i}.attn.masked_bias"]
        if f"transformer.h.{i}.attn.bias" in weights:
            del weights[f"transformer.h.{i}.attn.bias"]

    for weight in weights:
        new_weights[weight.replace("transformer.", "model.")] = weights[weight]
    return new_weights


FAMILY = Family(
    "gptj", ("gptj",), sanitize,
    Order("model(wte h*(ln_1 attn(k_proj v_proj q_proj out_proj) mlp(fc_in fc_out)) ln_f) "
          "lm_head"))
