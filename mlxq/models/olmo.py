"""mlx-lm's ``models/olmo.py`` (OLMo 1 in AI2's ``hf_olmo`` layout): ``model.transformer``
with ``wte``, blocks of ``att_proj`` (fused q, k, v), ``attn_out``, ``ff_proj`` (fused
SwiGLU halves) and ``ff_out``, weightless layer norms, and an ``ff_out`` head unless
``weight_tying``. No ``sanitize``.

model_type ``olmo`` is also what transformers' ``OlmoForCausalLM`` writes (the ``-hf``
releases, llama-shaped names and ``hidden_size``-style keys); mlx-lm routes those here too
and cannot load them, nor can mlxq."""

from __future__ import annotations

from ..errors import MissingKeyError
from .base import Family, Order
from .common import Args


def _order(config) -> Order:
    if "d_model" not in config:
        # mlx-lm: ModelArgs.__init__() missing 'd_model', 'n_layers', ...
        raise MissingKeyError(
            "config.json has no 'd_model': mlx-lm's olmo model is OLMo 1 in AI2's hf_olmo "
            "layout (d_model, n_layers, ...), not transformers' OlmoForCausalLM, which "
            "mlx-lm cannot load", key="d_model")
    tied = Args(config, weight_tying=False).weight_tying
    return Order("model(transformer(wte blocks*(ff_proj ff_out att_proj attn_out)"
                 + ("" if tied else " ff_out") + "))")


FAMILY = Family("olmo", ("olmo",), order=_order)
