"""MXFP4 checkpoints in gpt-oss's layout into MLX's mxfp4 layout (docs/mxfp4-checkpoints.md).

gpt-oss (``quant_method: "mxfp4"``) stores each quantized tensor ``P`` as

- ``P_blocks``: uint8 ``[..., out, in / 32, 16]``, two E2M1 codes per byte, the lower
  element of each pair in the low nibble;
- ``P_scales``: uint8 ``[..., out, in / 32]``, E8M0 exponents with bias 127;

(transformers' ``convert_moe_packed_tensors`` decodes ``lut[low nibble]`` then
``lut[high nibble]`` and multiplies by ``2 ** (scale - 127)``). That is MLX's mxfp4 format
byte for byte: ``P.weight`` is the blocks' bytes read as little-endian uint32
``[..., out, in / 8]`` and ``P.scales`` the scales unchanged. The names follow mlx-lm's
``gpt_oss.Model.sanitize`` (``_blocks`` -> ``.weight``, ``_scales`` -> ``.scales``); the
gate/up de-interleave stays with that model code.

>>> import numpy as np
>>> w = {"e.gate_up_proj_blocks": np.zeros((2, 4, 1, 16), np.uint8),
...      "e.gate_up_proj_scales": np.full((2, 4, 1), 127, np.uint8)}
>>> out, q = transform_mxfp4_weights(w)
>>> {k: (v.dtype.name, v.shape) for k, v in out.items()}
{'e.gate_up_proj.weight': ('uint32', (2, 4, 4)), 'e.gate_up_proj.scales': ('uint8', (2, 4, 1))}
>>> q.quantization
Quantization(group_size=32, bits=4, mode=<QuantMode.MXFP4: 'mxfp4'>)
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .._packed import require_array, snapshot
from ..config import PerLayerQuantization, Quantization
from ..errors import (
    KeyCollisionError,
    MissingKeyError,
    RankMismatchError,
    ShapeMismatchError,
    UnsupportedDtypeError,
)

__all__ = ["MXFP4_QUANTIZATION", "transform_mxfp4_weights"]

#: What mlx-lm uses for ``quant_method: "mxfp4"`` checkpoints.
MXFP4_QUANTIZATION = Quantization(32, 4, "mxfp4")

_U8 = np.dtype(np.uint8)
_LE_U32 = np.dtype("<u4")


def _convert(p: str, blocks: np.ndarray, scales: np.ndarray) -> dict[str, np.ndarray]:
    bkey, skey = p + "_blocks", p + "_scales"
    for key, arr in ((bkey, blocks), (skey, scales)):
        if arr.dtype != _U8:
            raise UnsupportedDtypeError(
                f"{key} has dtype {arr.dtype}; MXFP4 blocks and scales are uint8",
                layer=p, key=key)
    if scales.ndim < 2:
        raise RankMismatchError(
            f"{skey} must be at least 2-D [..., out, in / 32], got shape {scales.shape}",
            layer=p, key=skey)
    if blocks.shape != scales.shape + (16,):
        raise ShapeMismatchError(
            f"{bkey} must have shape {list(scales.shape + (16,))} ({skey} plus 16 bytes "
            f"per block of 32 codes), got {list(blocks.shape)}", layer=p, key=bkey)
    words = np.ascontiguousarray(blocks).view(_LE_U32).reshape(scales.shape[:-1] + (-1,))
    return {p + ".weight": words.astype(np.uint32, copy=False), p + ".scales": scales}


def transform_mxfp4_weights(
    weights: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], PerLayerQuantization]:
    """Renames and re-views gpt-oss ``P_blocks``/``P_scales`` pairs as MLX ``P.weight``/
    ``P.scales``; every other tensor passes through. Lossless and, for C-contiguous input,
    zero-copy (the outputs are views of the inputs, which are never modified).

    Raises:
        MissingKeyError: ``P_blocks`` without ``P_scales``.
        KeyCollisionError: ``P.weight`` or ``P.scales`` already present.
        UnsupportedDtypeError, RankMismatchError, ShapeMismatchError: a malformed pair.
    """
    w = snapshot(weights)
    prefixes = [k[: -len("_blocks")] for k in w if k.endswith("_blocks")]
    owned = set()
    for p in prefixes:
        if p + "_scales" not in w:
            raise MissingKeyError(f"{p}_blocks has no {p}_scales companion", layer=p,
                                  key=p + "_scales")
        for key in (p + ".weight", p + ".scales"):
            if key in w:
                raise KeyCollisionError(
                    f"input has both {p}_blocks and {key}; the converted tensor would "
                    "overwrite it", layer=p, key=key)
        owned.update((p + "_blocks", p + "_scales"))
    out: dict[str, np.ndarray] = {}
    for key, arr in w.items():
        if key.endswith("_blocks") and key in owned:
            p = key[: -len("_blocks")]
            out.update(_convert(p, require_array(arr, p, key),
                                require_array(w[p + "_scales"], p, p + "_scales")))
        elif key not in owned:
            out[key] = arr
    return out, PerLayerQuantization(MXFP4_QUANTIZATION)
