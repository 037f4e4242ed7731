"""mlx-lm's mixed-precision recipes (``mlx_lm.convert --quant-predicate mixed_X_Y``).

Each recipe gives most layers ``low_bits`` and a few sensitive ones ``high_bits`` (affine,
one group size), following mlx-lm's ``mixed_quant_predicate_builder`` (itself after
llama.cpp's Q4_K_M). With ``L`` layers and ``i`` the layer index read from the path::

    use_more_bits = i < L // 8 or i >= 7 * L // 8 or (i - L // 8) % 3 == 2

- a path containing ``v_proj``, ``v_a_proj`` or ``v_b_proj``, or ``down_proj``, gets
  ``high_bits`` when ``use_more_bits``;
- a path containing ``lm_head`` always gets ``high_bits``;
- everything else gets ``low_bits``.

======== ======== =========
recipe   low_bits high_bits
======== ======== =========
mixed_2_6    2        6
mixed_3_4    3        4
mixed_3_6    3        6
mixed_4_6    4        6
======== ======== =========

A recipe applied to a weight map returns a :class:`~mlxq.PerLayerQuantization` with one
per-layer :class:`~mlxq.Quantization` for every layer mlx-lm would quantize, which is
exactly the ``"quantization"`` block ``mlx_lm.convert`` writes::

    >>> import numpy as np, mlxq
    >>> w = {f"model.layers.{i}.mlp.down_proj.weight": np.ones((8, 64), np.float32)
    ...      for i in range(8)}
    >>> cfg = mlxq.recipes.mixed_3_6(w)
    >>> [cfg.quantization_for(f"model.layers.{i}.mlp.down_proj").bits for i in range(8)]
    [6, 3, 3, 6, 3, 3, 6, 6]
    >>> q = mlxq.quantize_weights(w, cfg, mlxq.linear_like)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from .config import PerLayerQuantization, Quantization, QuantizationOption
from .errors import ArgumentTypeError, InvalidArgumentError, MissingKeyError, UnknownEnumValueError
from .predicates import Eligible, linear_like
from .quant import QuantMode

__all__ = [
    "MixedRecipe",
    "RECIPES",
    "layer_layout",
    "mixed_2_6",
    "mixed_3_4",
    "mixed_3_6",
    "mixed_4_6",
    "recipe",
]


def layer_layout(weights: Mapping[str, Any]) -> tuple[int, Optional[int]]:
    """Where the layer index sits in a path, and how many layers there are.

    mlx-lm takes the first module whose path contains ``down_proj`` and uses the position of
    its first all-digit component (``model.layers.3.mlp.down_proj`` -> 2); the layer count is
    ``len(model.layers)``. From a weight map the count is one more than the largest index
    found at that position under the same prefix (``None`` when there is none).

    Raises:
        MissingKeyError: no name contains ``down_proj`` (mlx-lm: "Model does not have
            expected keys for mixed quant.").

    >>> layer_layout({"model.layers.0.mlp.down_proj.weight": 0,
    ...               "model.layers.11.mlp.up_proj.weight": 0})
    (2, 12)
    """
    down = next((k for k in weights if "down_proj" in k.rpartition(".")[0]), None)
    if down is None:
        raise MissingKeyError(
            "mixed recipes need a down_proj layer to locate the layer index "
            "(mlx-lm: 'Model does not have expected keys for mixed quant.')",
            key="down_proj",
        )
    parts = down.rpartition(".")[0].split(".")
    # mlx-lm's loop leaves the last position when no component is a number; mirror it.
    location = next((i for i, p in enumerate(parts) if p.isdigit()), len(parts) - 1)
    prefix = parts[:location]
    indices = []
    for key in weights:
        kp = key.split(".")
        if len(kp) > location and kp[:location] == prefix and kp[location].isdigit():
            indices.append(int(kp[location]))
    return location, (max(indices) + 1 if indices else None)


@dataclasses.dataclass(frozen=True)
class MixedRecipe:
    """One of mlx-lm's mixed recipes; call it on a weight map to get the per-layer config."""

    name: str
    low_bits: int
    high_bits: int

    def bits_for(self, path: str, *, num_layers: int, layer_location: int) -> int:
        """The bits mlx-lm's ``mixed_quant_predicate`` gives layer ``path``.

        >>> mixed_4_6.bits_for("model.layers.0.self_attn.v_proj", num_layers=16, layer_location=2)
        6
        >>> mixed_4_6.bits_for("model.layers.5.self_attn.v_proj", num_layers=16, layer_location=2)
        4
        """
        parts = path.split(".")
        # Paths too short to hold an index (lm_head, model.embed_tokens) count as layer 0.
        if len(parts) > layer_location:
            try:
                index = int(parts[layer_location])
            except ValueError:
                # mlx-lm's int() raises here too; say which layer and why.
                raise InvalidArgumentError(
                    f"component {layer_location} of the path ({parts[layer_location]!r}) is "
                    "not a layer index; mixed recipes need paths shaped like the down_proj "
                    "layers'",
                    layer=path,
                ) from None
        else:
            index = 0
        # Substring tests, as in mlx-lm ("kv_proj" contains "v_proj").
        use_more_bits = (
            index < num_layers // 8
            or index >= 7 * num_layers // 8
            or (index - num_layers // 8) % 3 == 2
        )
        if use_more_bits and ("v_proj" in path or "v_a_proj" in path or "v_b_proj" in path):
            return self.high_bits
        if use_more_bits and "down_proj" in path:
            return self.high_bits
        if "lm_head" in path:
            return self.high_bits
        return self.low_bits

    def __call__(
        self,
        weights: Mapping[str, Any],
        *,
        group_size: int = 64,
        bits: int = 4,
        eligible: Eligible = linear_like,
        num_layers: Optional[int] = None,
    ) -> PerLayerQuantization:
        """The per-layer config ``mlx_lm.convert -q --q-group-size G --quant-predicate NAME``
        writes for this weight map.

        Args:
            weights: the (dense, MLX-layout) weight map to be quantized.
            group_size: the recipe's group size, for every layer (``--q-group-size``).
            bits: the global default recorded in the block (``--q-bits``, 4 by default);
                every quantized layer has an override, so it only matters to readers.
            eligible: which ``.weight`` tensors are quantization targets; pass the same
                predicate to :func:`mlxq.quantize_weights`.
            num_layers: the model's layer count (``len(model.layers)``) when it cannot be
                read from the names, e.g. for one shard of a checkpoint.

        Returns:
            Global ``Quantization(group_size, bits)`` plus an override with the recipe's bits
            for each layer that passes the same gates as :func:`mlxq.quantize_weights`
            (eligible, rank >= 2, last axis divisible by ``group_size``, not already
            quantized); mlx-lm records exactly those.
        """
        if not callable(eligible):
            raise ArgumentTypeError(f"eligible must be callable, got {type(eligible).__name__}")
        location, inferred = layer_layout(weights)
        if num_layers is None:
            num_layers = inferred
        if num_layers is None:
            raise InvalidArgumentError(
                "cannot count the layers from the weight names; pass num_layers="
            )
        glob = Quantization(group_size, bits, QuantMode.AFFINE)
        per_layer: dict[str, QuantizationOption] = {}
        for key, arr in weights.items():
            if not key.endswith(".weight"):
                continue
            path = key[: -len(".weight")]
            if path + ".scales" in weights or path + ".biases" in weights:
                continue  # already quantized: mlx-lm's quantized modules are not re-quantized
            if not eligible(path, arr):
                continue
            shape = getattr(arr, "shape", ())
            if len(shape) < 2 or group_size <= 0 or shape[-1] % group_size != 0:
                continue
            b = self.bits_for(path, num_layers=num_layers, layer_location=location)
            per_layer[path] = Quantization(group_size, b, QuantMode.AFFINE)
        return PerLayerQuantization(glob, per_layer)


mixed_2_6 = MixedRecipe("mixed_2_6", 2, 6)
mixed_3_4 = MixedRecipe("mixed_3_4", 3, 4)
mixed_3_6 = MixedRecipe("mixed_3_6", 3, 6)
mixed_4_6 = MixedRecipe("mixed_4_6", 4, 6)

#: mlx-lm's ``QUANT_RECIPES``, by name.
RECIPES: dict[str, MixedRecipe] = {r.name: r for r in (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)}


def recipe(name: str) -> MixedRecipe:
    """The recipe called ``name`` (``--quant-predicate`` values).

    >>> recipe("mixed_3_4").high_bits
    4
    """
    try:
        return RECIPES[name]
    except (KeyError, TypeError):
        raise UnknownEnumValueError(
            f"{name!r} is not a quant recipe; expected one of {', '.join(RECIPES)}"
        ) from None
