"""mlx-lm's ``models/qwen3_vl_moe.py`` (Qwen3-VL MoE): the Qwen3-MoE language model of the
vision-language checkpoint.

Its ``sanitize`` keeps only the language model and the ``lm_head``, from either layout
(``model.language_model`` with a top-level ``lm_head``, or ``language_model.model`` and
``language_model.lm_head``); everything else (the vision tower) is dropped. Each layer's
fused experts — the Hub's ``experts.gate_up_proj`` ``[experts, hidden, 2 x inter]`` and
``experts.down_proj`` ``[experts, inter, hidden]``, the output axis last — become the
switch layers ``[experts, out, in]``: the first half of ``gate_up_proj``'s last axis is
the gate, the second the up projection, each transposed (one expert at a time). Qwen3-MoE's
own sanitize is not called; its ``quant_predicate`` (the router at 8 bits) is the model's.
"""

from __future__ import annotations

from . import qwen3_moe
from ._multimodal import graft, nested_order, subtree, text_config
from .base import Family
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(text_config(config), num_hidden_layers=REQUIRED)
    weights = Weights({k: v for k, v in weights.items()
                       if not (k == "visual" or k.startswith("visual."))})
    # Newer HF checkpoints nest the language model under
    # ``model.language_model.*`` and keep ``lm_head`` at the top level.
    if any(k.startswith("model.language_model.") for k in weights):
        language_model = subtree(weights, "model.language_model")
        lm_head = subtree(weights, "lm_head")
    else:
        language_model = subtree(weights, "language_model.model")
        lm_head = subtree(weights, "language_model.lm_head")

    weights = Weights({**graft("language_model.model", language_model),
                       **graft("language_model.lm_head", lm_head)})

    for l in range(args.num_hidden_layers):
        prefix = f"language_model.model.layers.{l}.mlp"
        gate_up_key = f"{prefix}.experts.gate_up_proj"
        if gate_up_key in weights:
            gate_up = weights.pop(gate_up_key)
            mid = gate_up.shape[-1] // 2
            weights[f"{prefix}.switch_mlp.gate_proj.weight"] = gate_up[..., :mid].swapaxes(-2, -1)
            weights[f"{prefix}.switch_mlp.up_proj.weight"] = gate_up[..., mid:].swapaxes(-2, -1)
            weights[f"{prefix}.switch_mlp.down_proj.weight"] = weights.pop(
                f"{prefix}.experts.down_proj").swapaxes(-2, -1)

    return weights


def quant_predicate(path: str, config) -> bool | dict:
    return qwen3_moe.quant_predicate(path, text_config(config))


FAMILY = Family(
    "qwen3_vl_moe", ("qwen3_vl_moe",), sanitize,
    nested_order("language_model", qwen3_moe.FAMILY),
    quant_predicate=quant_predicate,
    widths=qwen3_moe.FAMILY.widths)
