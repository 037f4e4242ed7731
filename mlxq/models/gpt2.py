"""mlx-lm's ``models/gpt2.py``: GPT-2's ``Conv1D`` weights (stored ``[in, out]``) transposed
into Linear layout, the causal-mask buffers ``attn.bias`` dropped, every name moved under
``model.``; the embeddings are tied (no ``lm_head``).

mlx-lm's ``sanitize`` expects the base model's names, as the Hub's ``gpt2`` checkpoint has
them (``h.0.attn.c_attn.weight``). transformers' ``GPT2LMHeadModel.save_pretrained`` writes
them under ``transformer.`` (and a tied ``lm_head.weight`` when asked); mlx-lm then fails to
load the result. mlxq strips that prefix (and the tied head) first, giving the same folder
as for the Hub's layout."""

from __future__ import annotations

from .base import Family, Order
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, n_layer=REQUIRED)
    if any(k.startswith("transformer.") for k in weights):
        weights = Weights({k.removeprefix("transformer."): v for k, v in weights.items()
                           if k != "lm_head.weight"})
    new_weights = Weights()
    for i in range(args.n_layer):
        if f"h.{i}.attn.bias" in weights:
            del weights[f"h.{i}.attn.bias"]
        for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            if f"h.{i}.{name}.weight" in weights:
                weights[f"h.{i}.{name}.weight"] = weights[f"h.{i}.{name}.weight"].transpose(1, 0)
    for weight in weights:
        if not weight.startswith("model."):
            new_weights[f"model.{weight}"] = weights[weight]
        else:
            new_weights[weight] = weights[weight]
    return new_weights


FAMILY = Family(
    "gpt2", ("gpt2",), sanitize,
    Order("model(wte wpe h*(attn(c_attn c_proj) mlp(c_fc c_proj) ln_1 ln_2) ln_f)"))
