"""Eligibility predicates: which ``.weight`` tensors of a weight map are quantization targets.

mlx-lm quantizes a module iff it has ``to_quantized`` (``quantize_model``'s
``wrapped_predicate``): ``nn.Linear``, ``nn.Embedding``, the MoE ``SwitchLinear`` and
DeepSeek's ``MultiLinear``. A weight map has no modules, so :func:`mlxq.quantize_weights`
asks a predicate instead, called as ``eligible(path, array)`` with the layer path (the key
without ``.weight``) and the weight array. It runs before the structural gates (rank >= 2,
last axis divisible by the group size), which :func:`mlxq.quantize_weights` applies itself.

- :func:`linear_like` reproduces mlx-lm's choice for common decoder architectures from the
  name and shape alone.
- :func:`default_eligible` says yes to everything: every ``.weight`` that passes the
  structural gates is quantized (norms are 1-D and pass through, but a Conv1d weight would
  be quantized). Prefer :func:`linear_like` or a model-specific predicate.

Predicates compose as plain functions::

    >>> import numpy as np
    >>> def not_router(path, w):
    ...     return linear_like(path, w) and not path.endswith("mlp.gate")
    >>> not_router("model.layers.0.mlp.gate", np.zeros((8, 64), np.float32))
    False
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["Eligible", "default_eligible", "linear_like"]

#: ``eligible(path, array) -> bool``: is the layer at ``path`` a quantization target?
Eligible = Callable[[str, Any], bool]


def default_eligible(path: str, weight: Any) -> bool:
    """Every ``.weight`` is a candidate: the structural gates of :func:`quantize_weights`
    (rank, divisibility) alone decide.

    >>> default_eligible("model.layers.0.conv1d", None)
    True
    """
    return True


def _is_float(dtype: Any) -> bool:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return False
    # ml_dtypes' bfloat16 has kind "V"; every numpy float has kind "f".
    return dt.kind == "f" or dt.name == "bfloat16"


def linear_like(path: str, weight: Any) -> bool:
    """True for the weights mlx-lm quantizes in common decoder architectures.

    Selects the 2-D and 3-D floating ``.weight`` of linear layers (``q_proj``, ``lm_head``,
    MoE routers such as Mixtral's ``block_sparse_moe.gate``), embeddings
    (``embed_tokens``, ``wte``) and stacked MoE experts (``switch_mlp.*``, ``experts.*``,
    ``[experts, out, in]``); never norms or convolutions:

    - rank 2 or 3 only: norms and biases are 1-D, Conv2d weights are 4-D;
    - a floating dtype only: an integer ``.weight`` is already packed (e.g. BitNet) and
      mlx-lm would not re-quantize it;
    - never when the last path component names a norm (contains ``norm``, or is ``ln`` or
      starts with ``ln_``: ``ln_f``, ``ln_1``) — Cohere's ``q_norm``/``k_norm`` are 2-D;
    - never when the last path component contains ``conv`` — mlx's Conv1d weight is 3-D
      ``[out, kernel, in]`` (Mamba ``conv1d``, LFM2 ``conv``, Qwen3-Next ``conv1d``).

    What it cannot know from a name and a shape (mlx-lm decides these by module class or
    by the model's own ``quant_predicate``):

    - DeepSeek-V2/V3's (and GLM-4-MoE's, dots1's, ...) router ``mlp.gate`` is a plain
      parameter, not a Linear, so mlx-lm leaves it dense; ``linear_like`` selects it, as it
      must for Mixtral/Qwen-MoE whose ``gate`` is an ``nn.Linear``. Exclude it yourself for
      those families (see the module example).
    - Model-level overrides such as Qwen3-MoE keeping ``mlp.gate`` at 8 bits or Granite
      keeping ``o_proj``/``down_proj``/``lm_head`` at 8 bits are per-layer
      :class:`mlxq.Quantization` entries, not eligibility.
    - The map must be in MLX layout (after the architecture's ``sanitize``): per-expert
      ``experts.N.w1.weight`` tensors of a Hugging Face checkpoint are 2-D and would be
      selected one by one, but mlx-lm stacks them into one switch layer first.

    >>> import numpy as np
    >>> w2 = np.zeros((64, 64), np.float32)
    >>> linear_like("model.layers.0.self_attn.q_proj", w2), linear_like("model.norm", w2[0])
    (True, False)
    >>> linear_like("model.layers.0.mlp.switch_mlp.up_proj", np.zeros((4, 64, 64), np.float32))
    True
    >>> linear_like("model.layers.0.mixer.conv1d", np.zeros((64, 4, 1), np.float32))
    False
    """
    shape = getattr(weight, "shape", None)
    dtype = getattr(weight, "dtype", None)
    if shape is None or dtype is None or len(shape) not in (2, 3):
        return False
    if not _is_float(dtype):
        return False
    leaf = path.rsplit(".", 1)[-1].lower()
    if "norm" in leaf or leaf == "ln" or leaf.startswith("ln_"):
        return False
    if "conv" in leaf:
        return False
    return True
