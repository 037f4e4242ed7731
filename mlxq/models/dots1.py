"""mlx-lm's ``models/dots1.py`` (rednote's dots.llm1): Qwen3-style attention with per-head
norms; the first ``first_k_dense_replace`` blocks have a dense MLP, the others a MoE of
``SwitchGLU`` experts (kept under the name ``experts``), a DeepSeek-V3-style router
(``Dots1TopkRouter``: a bare ``weight`` and ``e_score_correction_bias``, no
``to_quantized``) and one shared MLP.

``Model.sanitize`` drops ``lm_head`` when the embeddings are tied, stacks each MoE block's
per-expert ``gate_proj``/``down_proj``/``up_proj`` (with ``scales``/``biases`` when
present) into ``mlp.experts.<proj>``, and drops the rotary ``inv_freq`` buffers. Unlike
deepseek_v3, the model has no ``cast_predicate``: ``--dtype`` casts the router's
``e_score_correction_bias`` too.

>>> FAMILY.quantizable("model.layers.1.mlp.gate", (4, 64))
False
"""

from __future__ import annotations

from . import mx
from ._shared import ATTN_QK_NORM, ATTN_ROWS, ATTN_WIDTHS, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import REQUIRED, Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=False, num_hidden_layers=REQUIRED,
                first_k_dense_replace=REQUIRED, n_routed_experts=REQUIRED)
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    for l in range(args.num_hidden_layers):
        prefix = f"model.layers.{l}"
        if l >= args.first_k_dense_replace:
            # mlx-lm lists (w1, gate_proj), (w2, down_proj), (w3, up_proj) and uses only
            # the second name: the checkpoint's experts already say gate/down/up_proj
            for _, m in [
                ("w1", "gate_proj"),
                ("w2", "down_proj"),
                ("w3", "up_proj"),
            ]:
                for k in ["weight", "scales", "biases"]:
                    if f"{prefix}.mlp.experts.0.{m}.{k}" in weights:
                        to_join = [
                            weights.pop(f"{prefix}.mlp.experts.{e}.{m}.{k}")
                            for e in range(args.n_routed_experts)
                        ]
                        weights[f"{prefix}.mlp.experts.{m}.{k}"] = mx.stack(to_join)

    return Weights({k: v for k, v in weights.items() if "rotary_emb.inv_freq" not in k})


FAMILY = Family(
    "dots1", ("dots1",), sanitize,
    # Dots1MoE defines experts, gate, shared_experts in that order
    llama_order(f"{ATTN_QK_NORM} mlp(gate_proj up_proj down_proj "
                "experts(gate_proj up_proj down_proj) gate(weight e_score_correction_bias) "
                f"shared_experts(gate_proj up_proj down_proj)) {NORMS}", tie_default=False),
    not_quantized=(r"\.mlp\.gate$",),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS, "mlp.experts.gate_proj": "hidden",
            "mlp.experts.up_proj": "hidden", "mlp.experts.down_proj": "moe_intermediate_size",
            "mlp.shared_experts.gate_proj": "hidden", "mlp.shared_experts.up_proj": "hidden"})
