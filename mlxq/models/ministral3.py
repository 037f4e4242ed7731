"""mlx-lm's ``models/ministral3.py`` (Ministral 3 and the text-only Devstral Small 2
checkpoints: llama-shaped, with Llama-4 attention scaling and per-layer sliding windows).

Its ``Model.sanitize`` drops the rotary ``inv_freq`` buffers and, when the embeddings are
tied, ``lm_head.weight``; then it undoes the FP8 release (``weight_scale_inv`` beside an
E4M3 ``weight``, one scale per tensor; ``activation_scale`` dropped).

**Where this port differs from mlx-lm 0.32, on purpose.** mlx-lm computes the FP8 weight as
``weight * scale_inv`` on the array ``mx.load`` gives, and MLX loads an ``F8_E4M3`` tensor
as ``uint8``: the product is the raw byte codes times the scale (0x38, which encodes 1.0,
becomes 56 x scale), not the weight — a checkpoint converted that way is garbage. mlxq
decodes the codes first, as mlx-lm's other FP8 families do (deepseek_v3's ``dequant``) and
as mlx-vlm's mistral3 does for these same checkpoints: ``astype(from_fp8(weight, bfloat16)
* scale_inv, bfloat16)``, the product in float32 for a float32 scale, rounded once.
Everything else (tied ``lm_head``, ``inv_freq``, checkpoints without FP8) is mlx-lm's
sanitize exactly.

>>> FAMILY.order_for({"tie_word_embeddings": True}).key("lm_head.weight") > \\
...     FAMILY.order_for({}).key("model.norm.weight")
True
"""

from __future__ import annotations

from ..errors import FormatError
from ._shared import ATTN, ATTN_ROWS, ATTN_WIDTHS, MLP, MLP_WIDTHS, NORMS, llama_order
from .base import Family
from .common import Args, Weights, dequantize_fp8_weights, fp8_dequant


def dequant(weight, scale_inv, name: str):
    """The FP8 weight ``name`` decoded and scaled by ``scale_inv`` (one value per tensor, or
    any shape that broadcasts as ``weight * scale_inv`` would: per output row ``[out, 1]``,
    per input column ``[in]``), rounded once to bfloat16."""
    if weight.ndim != 2:
        raise FormatError(f"{name} is FP8 with a weight_scale_inv, so it must be a 2-D "
                          f"[out, in] matrix; got {list(weight.shape)}", key=name)
    shape = tuple(scale_inv.shape)
    if len(shape) > 2:
        bad = True
    else:
        shape = (1,) * (2 - len(shape)) + shape
        bad = any(s not in (1, d) for s, d in zip(shape, weight.shape))
    if bad:
        raise FormatError(f"{name}_scale_inv has shape {list(scale_inv.shape)}, which does not "
                          f"broadcast over the weight {list(weight.shape)} (one scale per "
                          "tensor, per row [out, 1] or per column [in])", key=name + "_scale_inv")
    # a broadcast scale is a block scale whose blocks span the broadcast axes
    block = tuple(d if s == 1 else 1 for s, d in zip(shape, weight.shape))
    return fp8_dequant(weight, scale_inv.reshape(*shape), name, block)


def sanitize(weights: Weights, config) -> Weights:
    args = Args(config, tie_word_embeddings=True)
    # Remove unused precomputed rotary freqs
    weights = Weights({
        k: v for k, v in weights.items() if "self_attn.rotary_emb.inv_freq" not in k
    })
    if args.tie_word_embeddings:
        weights.pop("lm_head.weight", None)

    # mlx-lm: weight * scale_inv on the uint8 codes (see the module docstring)
    return dequantize_fp8_weights(weights, dequant, skip=("activation_scale",))


FAMILY = Family(
    "ministral3", ("ministral3",), sanitize,
    llama_order(f"{ATTN} {MLP} {NORMS}", tie_default=True),
    rows=ATTN_ROWS,
    widths={**ATTN_WIDTHS, **MLP_WIDTHS},
    source_formats=frozenset({"fp8"}))
