"""mlx-lm's ``models/glm.py`` (GLM-4 0414's predecessor, ``GlmForCausalLM``): a fused
``gate_up_proj``, biased q/k/v projections when ``attention_bias``. ``Model.sanitize`` drops
the rotary ``inv_freq`` buffers and, when the embeddings are tied (the default), any
``lm_head.weight``; the model has an ``lm_head`` only when they are not.

mlx-lm rotates the whole head (``nn.RoPE(head_dim, traditional=True)``) and ignores
``partial_rotary_factor``, which transformers applies: its logits differ from
transformers' for such configs, though the tensors are the same either way."""

from __future__ import annotations

from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, NORMS, llama_order
from . import llama
from .base import Family


# mlx-lm's glm sanitize takes the same steps as llama's; both are checked against mlx-lm
sanitize = llama.sanitize


FAMILY = Family(
    "glm", ("glm",), sanitize,
    llama_order(f"{ATTN} mlp(gate_up_proj down_proj) {NORMS}", tie_default=True),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, "mlp.gate_up_proj": "hidden", "mlp.down_proj": "intermediate_size"})
