"""mlx-lm's ``models/glm.py`` (GLM-4 0414's predecessor, ``GlmForCausalLM``): a fused
``gate_up_proj``, biased q/k/v projections when ``attention_bias``. ``Model.sanitize`` drops
the rotary ``inv_freq`` buffers and, when the embeddings are tied (the default), any
``lm_head.weight``; the model has an ``lm_head`` only when they are not.

mlx-lm rotates the whole head (``nn.RoPE(head_dim, traditional=True)``) and ignores
``partial_rotary_factor``, which transformers applies: its logits differ from
transformers' for such configs, though the tensors are the same either way."""

from __future__ import annotations

from ._shared import ATTN, ATTN_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Args, Weights


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    weights = Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    return weights


FAMILY = Family(
    "glm", ("glm",), sanitize,
    llama_order(f"{ATTN} mlp(gate_up_proj down_proj) {NORMS}", tie_default=True),
    widths={**ATTN_WIDTHS, "mlp.gate_up_proj": "hidden", "mlp.down_proj": "intermediate_size"})
