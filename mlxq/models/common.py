"""Helpers family ports share: mlx-lm's ``ModelArgs`` defaults over a config, a weights
dict whose missing keys are typed errors, and the sanitize steps many families repeat.

>>> args = Args({"num_hidden_layers": 2}, tie_word_embeddings=True, num_hidden_layers=REQUIRED)
>>> args.tie_word_embeddings, args.num_hidden_layers
(True, 2)

**Counts are checked against the tensors.** A sanitize loops over config counts (``for l in
range(args.num_hidden_layers)``, ``for e in range(args.num_experts)``); a 90 KB checkpoint
whose config says ``num_hidden_layers: 10**9`` would keep such a loop busy for hours. While
the planner runs a family's sanitize (inside :func:`counts_bounded_by`), every count read
through :class:`Args` or :func:`mlxq.models.base.config_int` — a key naming layers, experts
or heads (:func:`is_count_key`) — must be at most what the checkpoint's tensors can hold: the
number of tensors, or the largest dimension of a non-empty tensor (a stacked expert axis, a
width that heads divide), whichever is larger. Every real checkpoint satisfies it (each layer
and each unstacked expert has a tensor of its own); a larger count is a
:class:`~mlxq.errors.FormatError` naming the key, raised before the loop starts, and no loop
over a checked count runs longer than the input is large.

>>> import numpy as np
>>> with counts_bounded_by({"w": np.zeros((4, 8))}):
...     Args({"num_hidden_layers": 10**9}).num_hidden_layers
Traceback (most recent call last):
...
mlxq.errors.FormatError: config.json: 'num_hidden_layers' is 1000000000, more than this checkpoint's tensors can hold (1 tensor, none with a dimension above 8)
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable, Mapping, Sequence

from ..errors import FormatError, MissingKeyError, ParseError
from . import mx
from .base import check_count, counts_bounded_by, is_count_key

__all__ = ["Args", "REQUIRED", "Weights", "check_count", "counts_bounded_by",
           "dequantize_fp8_weights", "drop", "drop_layers_from", "fp8_dequant",
           "is_count_key", "move_conv_axis", "split_kv_b_proj", "stack_experts"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: a ``ModelArgs`` field without a default: the config must have it
REQUIRED: Any = _Required()


class Args:
    """``ModelArgs.from_dict(config)`` for the fields a sanitize reads: the config's value,
    else the default mlx-lm's dataclass gives (``REQUIRED``: none). A value of another type
    than its default's (an int field given ``"3"``) is a ParseError naming the key."""

    def __init__(self, config: Mapping[str, Any], **defaults: Any):
        self._config = config
        self._defaults = defaults

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        d = self._defaults.get(key, REQUIRED)
        if key not in self._config:
            if d is REQUIRED:
                raise MissingKeyError(f"config.json has no {key!r}, which mlx-lm's model "
                                      "needs", key=key)
            return d
        v = self._config[key]
        want_int = (isinstance(d, numbers.Integral) and not isinstance(d, bool)) or (
            d is REQUIRED and key.startswith(("num_", "n_")))
        if v is None:
            # from_dict passes a null through, as None; for an integer field that is no
            # count at all: say so (mlx-lm fails later, on arithmetic with None)
            if want_int:
                raise ParseError(f"config.json: {key!r} is null; mlx-lm needs a non-negative "
                                 "integer", key=key)
            return None
        if want_int and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0):
            raise ParseError(f"config.json: {key!r} must be a non-negative integer, got "
                             f"{v!r:.60}", key=key)
        if isinstance(v, numbers.Integral) and not isinstance(v, bool) and is_count_key(key):
            check_count(key, int(v))
        return v


class Weights(dict):
    """The dict a sanitize port works on: ``weights[k]`` and ``weights.pop(k)`` of a
    missing tensor raise a FormatError naming it (mlx-lm raises a bare KeyError)."""

    def __missing__(self, key: str) -> Any:
        raise FormatError(f"{key} is missing: mlx-lm's sanitize for this model needs it",
                          key=key)

    _no_default = object()

    def pop(self, key: str, default: Any = _no_default) -> Any:  # type: ignore[override]
        if key in self:
            return super().pop(key)
        if default is self._no_default:
            self.__missing__(key)
        return default


def drop(weights: Mapping[str, Any], *substrings: str) -> "Weights":
    """The weights whose names contain none of ``substrings`` (rotary ``inv_freq`` buffers,
    multi-token-prediction heads, ...)."""
    return Weights({k: v for k, v in weights.items() if not any(s in k for s in substrings)})


def stack_experts(weights: "Weights", prefix: str, experts: int,
                  names: Sequence[tuple[str, str]], params: Iterable[str] = ("weight",),
                  src: str = "experts", dst: str = "switch_mlp") -> None:
    """The loop mixtral/deepseek/qwen-moe sanitize functions share: for each projection
    ``(n, m)`` and parameter ``k`` present for expert 0, pop
    ``{prefix}.{src}.{e}.{n}.{k}`` for every expert and stack them into
    ``{prefix}.{dst}.{m}.{k}``."""
    for n, m in names:
        for k in params:
            if f"{prefix}.{src}.0.{n}.{k}" in weights:
                to_join = [weights.pop(f"{prefix}.{src}.{e}.{n}.{k}") for e in range(experts)]
                weights[f"{prefix}.{dst}.{m}.{k}"] = mx.stack(to_join)


def fp8_dequant(weight, scale_inv, name: str, block=(128, 128)):
    """``mx.fp8_block_dequant(weight, scale_inv, block, bfloat16)`` — mlx-lm's ``dequant``
    of the FP8 families' sanitize (from_fp8 to bfloat16, padded to whole blocks, times the
    block scale, cropped, bfloat16; one lazy operation, bit for bit the same) — whose
    refusals (scales of the wrong shape, a weight that is not 2-D) are FormatErrors naming
    the weight ``name``."""
    from ..errors import MlxqError

    try:
        return mx.fp8_block_dequant(weight, scale_inv, block, mx.bfloat16)
    except MlxqError as e:
        raise FormatError(f"{name}: {e.message}", key=name) from None


def dequantize_fp8_weights(weights: Mapping[str, Any], dequant=fp8_dequant,
                   skip: Iterable[str] = ()) -> "Weights":
    """The "Dequantize fp8" loop of mlx-lm's FP8 families' sanitize (deepseek_v3,
    deepseek_v32, minimax, mimo_v2_flash, ministral3): each ``P.weight_scale_inv`` replaces
    ``P.weight`` by ``dequant(P.weight, scale_inv, "P.weight")`` and is itself dropped, as
    are the names containing one of ``skip`` (ministral3's ``activation_scale``)."""
    skip = tuple(skip)
    new_weights = Weights()
    for k, v in weights.items():
        if "weight_scale_inv" in k:
            wk = k.replace("_scale_inv", "")
            new_weights[wk] = dequant(weights[wk], v, wk)
        elif any(s in k for s in skip):
            continue
        elif k not in new_weights:
            new_weights[k] = v
    return new_weights


def drop_layers_from(weights: Mapping[str, Any], first: int) -> "Weights":
    """The multi-token-prediction step of deepseek_v32's and glm4_moe_lite's sanitize: every
    ``*.layers.N.*`` with ``N >= first`` (``num_hidden_layers``) is dropped. mlx-lm calls
    ``int()`` on the component after ``layers`` and fails with a bare ValueError where it
    is not a number; here that is a FormatError naming the tensor."""
    new_weights = Weights()
    for k, v in weights.items():
        parts = k.split(".")
        if len(parts) >= 3 and parts[1] == "layers":
            if not parts[2].isdigit():
                raise FormatError(f"{k}: {parts[2]!r} is not a layer index (mlx-lm's sanitize "
                                  "reads the third component of a '.layers.' name as one)",
                                  key=k)
            if int(parts[2]) >= first:
                continue
        new_weights[k] = v
    return new_weights


def split_kv_b_proj(weights: "Weights", prefix: str, args: Args) -> None:
    """The MLA step of deepseek_v3's, deepseek_v32's and glm4_moe_lite's sanitize: the
    attention's ``{prefix}.kv_b_proj`` becomes the per-head ``embed_q`` (the key half,
    transposed) and ``unembed_out`` (the value half). A quantized ``kv_b_proj`` is
    dequantized with the bits and group size its shapes imply, split, and quantized again
    with the same parameters. ``args`` gives ``qk_nope_head_dim``, ``v_head_dim``,
    ``kv_lora_rank`` and ``num_attention_heads``."""
    if f"{prefix}.kv_b_proj.weight" not in weights:
        return
    quantized = f"{prefix}.kv_b_proj.scales" in weights
    v = weights.pop(f"{prefix}.kv_b_proj.weight")
    head_dim = args.qk_nope_head_dim + args.v_head_dim
    if quantized:
        dims = args.kv_lora_rank
        scales = weights.pop(f"{prefix}.kv_b_proj.scales")
        biases = weights.pop(f"{prefix}.kv_b_proj.biases")
        # mlx-lm: "Try to infer bits and group size"
        bits = (v.shape[-1] * 32) // dims
        group_size = dims // scales.shape[-1]
        v = mx.dequantize(v, scales, biases, bits=bits, group_size=group_size)
    v = v.reshape(args.num_attention_heads, head_dim, -1)
    wk = mx.contiguous(v[:, : args.qk_nope_head_dim, :].swapaxes(-1, -2))
    wv = mx.contiguous(v[:, args.qk_nope_head_dim:, :])
    if quantized:
        wk, wk_scales, wk_biases = mx.quantize(wk, bits=bits, group_size=group_size)
        wv, wv_scales, wv_biases = mx.quantize(wv, bits=bits, group_size=group_size)
        weights[f"{prefix}.embed_q.scales"] = wk_scales
        weights[f"{prefix}.unembed_out.scales"] = wv_scales
        weights[f"{prefix}.embed_q.biases"] = wk_biases
        weights[f"{prefix}.unembed_out.biases"] = wv_biases
    weights[f"{prefix}.embed_q.weight"] = wk
    weights[f"{prefix}.unembed_out.weight"] = wv


def move_conv_axis(weights: "Weights", name: str = "conv1d.weight") -> None:
    """The conv step of the state-space and hybrid families' sanitize (mamba, mamba2,
    jamba, nemotron_h, granitemoehybrid, recurrent_gemma; qwen3_next does it inside its
    norm loop): a PyTorch depthwise ``Conv1d`` kernel ``[channels, 1, width]`` becomes
    MLX's ``[channels, width, 1]`` (``moveaxis(2, 1)``) for every tensor whose name contains
    ``name``; one whose last axis is already 1 is MLX's layout and stays."""
    for k, v in list(weights.items()):
        if name in k and v.shape[-1] != 1:
            weights[k] = v.moveaxis(2, 1)
