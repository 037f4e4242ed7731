"""mlx-lm's ``models/helium.py`` (Kyutai's Helium): a llama-shaped block (MLP in
gate/up/down order). The model has no ``sanitize``, and its ``Model.__init__`` creates
``lm_head`` unconditionally — even when ``tie_word_embeddings`` is true, in which case the
head is still the embedding at run time but ``lm_head.weight`` remains a parameter. So
``load_weights(strict=True)`` refuses a checkpoint without ``lm_head.weight`` (a tied one as
transformers saves it), and mlx-lm cannot convert it; mlxq refuses it up front rather than
write a folder mlx-lm cannot load.

>>> FAMILY.sanitize({"model.embed_tokens.weight": None}, {"tie_word_embeddings": True})
Traceback (most recent call last):
...
mlxq.errors.MissingKeyError: the checkpoint has no 'lm_head.weight', which mlx-lm's helium model always has (it creates lm_head even with tied embeddings): mlx_lm.load would refuse the folder
"""

from __future__ import annotations

from ._shared import ATTN, NORMS, llama_tree
from .base import Family, Order
from .common import Weights
from ..errors import MissingKeyError


def sanitize(weights: Weights, config) -> Weights:
    if "lm_head.weight" not in weights:
        raise MissingKeyError("the checkpoint has no 'lm_head.weight', which mlx-lm's helium "
                              "model always has (it creates lm_head even with tied "
                              "embeddings): mlx_lm.load would refuse the folder",
                              key="lm_head.weight")
    return weights


FAMILY = Family(
    "helium", ("helium",), sanitize,
    Order(llama_tree(f"{ATTN} mlp(gate_proj up_proj down_proj) {NORMS}")),
    # HeliumAttention's head_dim is hidden_size // num_attention_heads whatever the config
    # says, so o_proj's width is not the generic "attention" rule's: left unchecked
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size"})
