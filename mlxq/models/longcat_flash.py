"""mlx-lm's ``models/longcat_flash.py`` (LongCat-Flash: each decoder layer runs two MLA
attentions and two dense MLPs around one shortcut-connected MoE whose router also picks
"zero" (identity) experts, which have no weights).

Its ``Model.sanitize``, step by step: routed experts (``mlp.experts.E.{gate,down,up}_proj``)
are stacked into ``mlp.switch_mlp``; each of the two attentions' ``kv_b_proj``
(``self_attn.{0,1}``) is split into the per-head ``embed_q`` (transposed) and
``unembed_out`` (dequantized first and quantized again with the inferred bits and group
size when the source holds it quantized); the multi-token-prediction weights
(``model.mtp.*``) are dropped. The router's ``classifier`` is kept at 8 bits
(``quant_predicate``) and its ``e_score_correction_bias`` in the source dtype
(``cast_predicate``).

:mod:`mlxq.models.longcat_flash_ngram` (LongCat-Flash-Lite) reuses the sanitize.

>>> FAMILY.model_quant("model.layers.0.mlp.router.classifier", {})
{'group_size': 64, 'bits': 8}
"""

from __future__ import annotations

from typing import Callable

from .base import Family, Order
from .common import REQUIRED, Args, Weights, split_kv_b_proj, stack_experts

MLA = ("q_proj q_a_proj q_a_layernorm q_b_proj kv_a_proj_with_mqa kv_a_layernorm embed_q "
       "unembed_out o_proj")
LAYER = ("mlp(switch_mlp(gate_proj up_proj down_proj) router(classifier "
         f"e_score_correction_bias)) self_attn*({MLA}) mlps*(gate_proj up_proj down_proj) "
         "input_layernorm* post_attention_layernorm*")


def model_args(config) -> Args:
    """The ``ModelArgs`` fields the sanitize reads (all required in mlx-lm's dataclass)."""
    return Args(config, num_layers=REQUIRED, n_routed_experts=REQUIRED,
                num_attention_heads=REQUIRED, qk_nope_head_dim=REQUIRED, v_head_dim=REQUIRED,
                kv_lora_rank=REQUIRED)


def sanitize_with(args_of: Callable[[object], Args]):
    """longcat_flash's ``Model.sanitize`` for the ``ModelArgs`` ``args_of(config)`` gives."""

    def sanitize(weights: Weights, config) -> Weights:
        args = args_of(config)
        for l in range(args.num_layers):
            # mlx-lm pairs w1/w2/w3 with the names and uses only the names
            stack_experts(weights, f"model.layers.{l}.mlp", args.n_routed_experts,
                          [(m, m) for m in ("gate_proj", "down_proj", "up_proj")],
                          ["weight", "scales", "biases"])

        for l in range(args.num_layers):
            for i in range(2):
                split_kv_b_proj(weights, f"model.layers.{l}.self_attn.{i}", args)

        return Weights({k: v for k, v in weights.items() if not k.startswith("model.mtp")})

    return sanitize


sanitize = sanitize_with(model_args)


def quant_predicate(path: str, config) -> bool | dict:
    if path.endswith("classifier"):
        return {"group_size": 64, "bits": 8}
    return True


def cast_predicate(k: str) -> bool:
    return "e_score_correction_bias" not in k


FAMILY = Family(
    "longcat_flash", ("longcat_flash",), sanitize,
    Order(f"model(embed_tokens layers*({LAYER}) norm) lm_head"),
    quant_predicate=quant_predicate, cast_predicate=cast_predicate,
    widths={"mlp.router.classifier": "hidden", "mlp.switch_mlp.gate_proj": "hidden",
            "mlp.switch_mlp.up_proj": "hidden",
            "mlp.switch_mlp.down_proj": "expert_ffn_hidden_size"})
