"""mlx-lm's ``models/bitnet.py`` (BitNet b1.58): every projection of a block is a
``BitLinear`` holding packed ternary weights — ``weight`` uint8 ``[ceil(out/4), in]``, four
2-bit codes a byte, and a one-element ``weight_scale`` — with ``attn_sub_norm`` and
``ffn_sub_norm`` inside the attention and the MLP. ``BitLinear`` has no ``to_quantized``:
``-q`` quantizes only the embedding (and an untied ``lm_head``), ``--dtype`` casts
``weight_scale`` and the norms. The sanitize is llama's.

A checkpoint whose projections are not packed (the bf16 master weights, as transformers
saves its unquantized BitNet model) cannot be loaded by mlx-lm's ``BitLinear``; mlxq refuses
it naming the tensor (turning master weights into ternary codes is a quantization mlx-lm
has no code for)."""

from __future__ import annotations

import re

import numpy as np

from ..errors import FormatError
from .base import Family, Order
from .common import Args, Weights

BITLINEAR = "weight weight_scale bias"  # BitLinear.__init__'s order
PROJ = r"\.(self_attn\.[qkvo]_proj|mlp\.(gate|down|up)_proj)$"


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    # Remove unused precomputed rotary freqs
    weights = Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)
    _check_packed(weights)
    return weights


def _check_packed(weights: Weights) -> None:
    """mlx-lm's ``BitLinear.weight`` is uint8 ``[ceil(out/4), in]``: ``load_weights``
    refuses any other (a bf16 ``[out, in]`` weight is four times too tall), so does mlxq,
    before quantization would take it for a Linear."""
    for k, v in weights.items():
        if not k.endswith(".weight") or not re.search(PROJ, k[: -len(".weight")]):
            continue
        if v.dtype != np.dtype(np.uint8):
            raise FormatError(
                f"{k} is {v.dtype}: mlx-lm's BitLinear holds packed ternary weights (uint8, "
                "four 2-bit codes a byte, as the quant_method 'bitnet' releases ship them), "
                "so mlx_lm.load would refuse this checkpoint", key=k)


def _bitlinears(*names: str) -> str:
    return " ".join(f"{n}({BITLINEAR})" for n in names)


def _order(config) -> Order:
    tied = Args(config, tie_word_embeddings=True).tie_word_embeddings
    attn = _bitlinears("q_proj", "k_proj", "v_proj", "o_proj")
    mlp = _bitlinears("gate_proj", "down_proj", "up_proj")
    return Order(f"model(embed_tokens layers*(self_attn({attn} attn_sub_norm) "
                 f"mlp({mlp} ffn_sub_norm) input_layernorm post_attention_layernorm) norm)"
                 + ("" if tied else " lm_head"))


FAMILY = Family(
    "bitnet", ("bitnet",), sanitize, _order,
    # BitLinear has no to_quantized
    not_quantized=(PROJ,),
    widths={"self_attn.q_proj": "hidden", "self_attn.k_proj": "hidden",
            "self_attn.v_proj": "hidden", "self_attn.o_proj": "attention",
            "mlp.gate_proj": "hidden", "mlp.up_proj": "hidden",
            "mlp.down_proj": "intermediate_size"},
    source_formats=frozenset({"bitnet"}))
