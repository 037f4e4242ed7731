"""quantize_weights / dequantize_weights: whole checkpoints, as name -> numpy array maps.

The weight-map form of mlx-lm's ``quantize_model`` / ``dequantize_model``. mlx-lm walks a
module tree and swaps ``Linear``/``Embedding``/``SwitchLinear`` for their quantized
versions; mlxq walks the flat map a checkpoint is (``"model.layers.0.mlp.up_proj.weight"``
-> array) and writes the same tensors under the same names: a quantized layer ``P`` becomes
``P.weight`` (packed uint32), ``P.scales`` and, for affine only, ``P.biases``.
docs/weights.md lists the rules one by one, and where they differ from mlx-lm's.

Both functions return a new dict and never modify the input mapping or its arrays; tensors
that pass through are the same objects, not copies. They are all-or-nothing: every
structural check runs over the whole map before any kernel is called, and an error from a
kernel discards the partial result.

>>> import numpy as np, mlxq
>>> w = {"lm_head.weight": np.ones((8, 64), np.float32), "norm.weight": np.ones(64, np.float32)}
>>> q = mlxq.quantize_weights(w, mlxq.Quantization(64, 4))
>>> sorted(q), q["lm_head.weight"].dtype
(['lm_head.biases', 'lm_head.scales', 'lm_head.weight', 'norm.weight'], dtype('uint32'))
>>> d = mlxq.dequantize_weights(q, mlxq.Quantization(64, 4))
>>> sorted(d), bool((d["lm_head.weight"] == 1).all())
(['lm_head.weight', 'norm.weight'], True)
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping, Union

import numpy as np

from ._device import Device, resolve as resolve_device
from .config import SKIP, PerLayerQuantization, Quantization
from .errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    InvariantViolationError,
    KeyCollisionError,
    MissingKeyError,
    MlxqError,
    OutOfRangeError,
    RankMismatchError,
    ShapeMismatchError,
    UnsupportedDtypeError,
)
from .predicates import Eligible, default_eligible
from .quant import QuantMode, dequantize, quantize

__all__ = ["quantize_weights", "dequantize_weights"]

WEIGHT, SCALES, BIASES = ".weight", ".scales", ".biases"
# nvfp4 switch layers quantized with mlx-lm's `global_scale=True` carry this tensor.
GLOBAL_SCALE = ".global_scale"

Config = Union[PerLayerQuantization, Quantization]


def quantize_weights(
    weights: Mapping[str, np.ndarray],
    cfg: Config,
    eligible: Eligible = default_eligible,
    *,
    device: Union[str, Device, None] = None,
) -> dict[str, np.ndarray]:
    """Quantizes the eligible weights of a checkpoint, per layer, as MLX checkpoints expect.

    For each key ``P.weight``, in this order (the first rule that applies decides):

    1. Existing siblings ``P.scales`` / ``P.biases`` are classified first, whatever the
       other rules would say: none -> continue; a structurally valid quantized triple ->
       passed through unchanged (mlx-lm's "``P.scales`` in weights" test); anything else
       -> an error (see Raises).
    2. ``eligible(P, array)`` false -> passed through.
    3. ``cfg.quantization_for(P)`` is None (:data:`~mlxq.SKIP`, or no global default)
       -> passed through. A per-layer override wins over the global parameters.
    4. Rank < 2 -> passed through.
    5. Group size < 0 -> :class:`~mlxq.errors.OutOfRangeError`; group size 0 or a last
       axis not divisible by it -> passed through.
    6. Otherwise ``P.weight`` is replaced by ``mlxq.quantize``'s packed output and
       ``P.scales`` (+ ``P.biases`` for affine) are inserted right after it.

    Every other key (``P.bias``, norms, ...) is passed through. The result keeps the input
    order.

    Args:
        weights: any mapping of name -> numpy array (each value is read once). Values under
            ``.weight`` keys and their ``.scales``/``.biases`` siblings must be numpy
            arrays; other values are passed through whatever they are.
        cfg: a :class:`~mlxq.PerLayerQuantization`, or a :class:`~mlxq.Quantization` for
            "these parameters everywhere".
        eligible: ``eligible(path, array) -> bool``, e.g. :func:`mlxq.linear_like`; the
            default accepts every ``.weight``.
        device: whose quantization: ``"gpu"`` (MLX's Metal kernels, what mlx_lm.convert
            writes on Apple silicon) or ``"cpu"`` (MLX's CPU backend); None:
            :func:`mlxq.default_device` (``MLXQ_DEVICE``, else ``"gpu"``).

    Returns:
        A new dict. Quantized tensors are bit-identical to ``mx.quantize`` on ``device``.

    Raises:
        Errors about a layer carry ``.layer`` and ``.key``; their message begins with the
        layer path. For an existing ``P.scales``/``P.biases``:

        MissingKeyError: ``P.biases`` without ``P.scales``; affine without ``P.biases``.
        KeyCollisionError: the layer is :data:`~mlxq.SKIP` in ``cfg``; ``P.biases`` with an
            fp mode (mxfp4/mxfp8/nvfp4 have none).
        InvariantViolationError: ``cfg`` gives no parameters for the layer.
        UnsupportedDtypeError: ``P.weight`` is not uint32 (a dense weight next to stale
            scales), or ``P.biases`` and ``P.scales`` dtypes differ.
        RankMismatchError: ``P.weight`` rank < 2, or ``P.scales`` rank differs from it.
        ShapeMismatchError: the leading (all but last) dims of ``P.scales`` and
            ``P.weight`` differ, or ``P.biases`` and ``P.scales`` shapes differ.

        And: OutOfRangeError for a negative group size; the kernel's own error
        (e.g. OutOfRangeError for bits=7, UnsupportedDtypeError for an int weight), with
        the layer attached; ArgumentTypeError for a bad argument.

    >>> import numpy as np, mlxq
    >>> w = {"a.weight": np.ones((2, 64), np.float32), "b.weight": np.ones((2, 64), np.float32)}
    >>> cfg = mlxq.PerLayerQuantization(mlxq.Quantization(64, 4), {"b": mlxq.SKIP})
    >>> list(mlxq.quantize_weights(w, cfg))
    ['a.weight', 'a.scales', 'a.biases', 'b.weight']
    """
    plq = _as_config(cfg)
    if not callable(eligible):
        raise ArgumentTypeError(f"eligible must be callable, got {type(eligible).__name__}")
    dev = resolve_device(device)
    items = _snapshot(weights)
    index = dict(items)

    # Pass 1 decides everything without calling a kernel, so a structural error anywhere in
    # the map is raised before any work is done (and no partial result exists).
    plan: dict[str, Quantization] = {}
    for key, arr in items:
        if not key.endswith(WEIGHT):
            continue
        path = key[: -len(WEIGHT)]
        _require_array(arr, path, key)
        # Rule 1 runs before eligibility so a stale sibling is reported for every weight,
        # not only those the other gates happen to select (docs/weights.md, rule 1).
        if _classify_triple(index, path, arr, plq):
            continue  # a valid quantized triple: pass through
        if not eligible(path, arr):
            continue
        q = plq.quantization_for(path)
        if q is None:
            continue
        if arr.ndim < 2:
            continue  # mlx-lm indexes weight.shape[-1]; a 1-D tensor is not a layer matrix
        if q.group_size < 0:
            raise OutOfRangeError(
                f"group_size must be non-negative, got {q.group_size}", layer=path, key=key
            )
        # The layer's own group size decides (mlx-lm tests the global one; see docs).
        if q.group_size == 0 or arr.shape[-1] % q.group_size != 0:
            continue
        plan[path] = q

    # Pass 2: the generated names P.scales / P.biases cannot exist in the input (rule 1
    # sent any such layer down the "valid triple" or error branch), so nothing collides.
    out: dict[str, Any] = {}
    for key, arr in items:
        q = plan.get(key[: -len(WEIGHT)]) if key.endswith(WEIGHT) else None
        if q is None:
            out[key] = arr
            continue
        path = key[: -len(WEIGHT)]
        parts = _with_layer(path, key, partial(quantize, device=dev), arr, q.group_size,
                            q.bits, q.mode)
        out[key] = parts[0]
        out[path + SCALES] = parts[1]
        if len(parts) == 3:
            out[path + BIASES] = parts[2]
    return out


def dequantize_weights(weights: Mapping[str, np.ndarray], cfg: Config, *,
                       device: Union[str, Device, None] = None) -> dict[str, np.ndarray]:
    """Replaces every quantized triple of a checkpoint by its dense weight, as
    ``mx.dequantize`` computes it on ``device`` (as for :func:`quantize_weights`).

    A triple is ``P.weight`` + ``P.scales`` (+ ``P.biases``); its parameters are
    ``cfg.quantization_for(P)``. The dense tensor takes ``P.weight``'s place, ``P.scales``
    and ``P.biases`` disappear, everything else is passed through: a ``.weight`` without
    ``.scales`` is already dense, and a stray ``.scales``/``.biases`` without ``.weight``
    is left alone (mlx-lm's ``dequantize_model`` only replaces modules). The output dtype
    is ``mx.dequantize``'s default: the scales' dtype for affine, bfloat16 for fp modes.

    Raises:
        MissingKeyError: a uint32 ``P.weight`` of rank >= 2 with ``P.biases`` but no
            ``P.scales`` (it would leak a packed weight into a dense map; a dense
            ``P.weight`` with such a ``P.biases`` is passed through), or an affine triple
            without ``P.biases``.
        KeyCollisionError: a ``P.biases`` in an fp-mode triple.
        InvariantViolationError: ``cfg`` gives no parameters for a triple (no global
            default, no override, or :data:`~mlxq.SKIP`).
        InvalidArgumentError: the triple has a ``P.global_scale`` (nvfp4 with one scale per
            expert), which this function does not apply yet.
        The kernel's own errors (shapes, dtypes, parameters), with the layer attached.

    >>> import numpy as np, mlxq
    >>> q = mlxq.quantize_weights({"a.weight": np.ones((2, 32), np.float32)},
    ...                           mlxq.Quantization(32, 4, "mxfp4"))
    >>> d = mlxq.dequantize_weights(q, mlxq.Quantization(32, 4, "mxfp4"))
    >>> d["a.weight"].dtype == mlxq.bfloat16
    True
    """
    plq = _as_config(cfg)
    dev = resolve_device(device)
    items = _snapshot(weights)
    index = dict(items)

    plan: dict[str, Quantization] = {}
    for key, arr in items:
        if key.endswith(BIASES):
            _check_orphan_biases(index, key[: -len(BIASES)])
        elif key.endswith(SCALES):
            path = key[: -len(SCALES)]
            if path + WEIGHT in index:
                plan[path] = _triple_params(index, path, plq)

    out: dict[str, Any] = {}
    for key, arr in items:
        for suffix in (WEIGHT, SCALES, BIASES):
            if key.endswith(suffix) and key[: -len(suffix)] in plan:
                break
        else:
            out[key] = arr
            continue
        if suffix != WEIGHT:
            continue  # consumed by its triple
        path = key[: -len(WEIGHT)]
        q = plan[path]
        out[key] = _with_layer(
            path, key, partial(dequantize, device=dev), arr, index[path + SCALES],
            index.get(path + BIASES), q.group_size, q.bits, q.mode,
        )
    return out


# ---- helpers ---------------------------------------------------------------------------


def _as_config(cfg: object) -> PerLayerQuantization:
    if isinstance(cfg, PerLayerQuantization):
        return cfg
    if isinstance(cfg, Quantization):
        return PerLayerQuantization(cfg)
    raise ArgumentTypeError(
        f"cfg must be a PerLayerQuantization or a Quantization, got {type(cfg).__name__}"
    )


def _snapshot(weights: object) -> list[tuple[str, Any]]:
    """The map's items, read once (a lazy mapping may load a tensor on every access)."""
    if not isinstance(weights, Mapping):
        raise ArgumentTypeError(
            f"weights must be a mapping of name -> array, got {type(weights).__name__}"
        )
    items = list(weights.items())
    for key, _ in items:
        if not isinstance(key, str):
            raise ArgumentTypeError(f"weight names must be str, got {key!r}")
    return items


def _require_array(arr: object, path: str, key: str) -> None:
    if not isinstance(arr, np.ndarray):
        raise ArgumentTypeError(
            f"{key} must be a numpy array, got {type(arr).__name__} "
            "(convert it with numpy.asarray)",
            layer=path,
            key=key,
        )


def _params_for_triple(path: str, plq: PerLayerQuantization, scales_key: str) -> Quantization:
    """The parameters an existing triple at ``path`` must have been made with."""
    option = plq.per_layer.get(path)
    if option is SKIP:
        # SKIP says "never quantized": scales here are stale, not a valid triple.
        raise KeyCollisionError(
            f"{scales_key} exists but the config marks this layer as SKIP (not quantized)",
            layer=path,
            key=scales_key,
        )
    q = option if option is not None else plq.quantization
    if q is None:
        raise InvariantViolationError(
            f"{scales_key} exists but the config has no global quantization and no "
            "override for this layer, so its parameters cannot be resolved",
            layer=path,
            key=scales_key,
        )
    return q  # type: ignore[return-value]


def _check_arity(path: str, mode: QuantMode, has_biases: bool) -> None:
    """affine writes {weight, scales, biases}; mxfp4/mxfp8/nvfp4 write {weight, scales}."""
    biases_key = path + BIASES
    if mode is QuantMode.AFFINE and not has_biases:
        raise MissingKeyError(
            f"affine mode needs {biases_key} next to {path + SCALES}", layer=path, key=biases_key
        )
    if mode is not QuantMode.AFFINE and has_biases:
        raise KeyCollisionError(
            f"{mode.value} has no biases, but {biases_key} exists (left over from affine?)",
            layer=path,
            key=biases_key,
        )


def _classify_triple(
    index: Mapping[str, Any], path: str, weight: np.ndarray, plq: PerLayerQuantization
) -> bool:
    """False: no siblings (a dense weight). True: a valid quantized triple. Raises for
    anything else. Only the layout is checked; per-mode (bits, group_size) rules and the
    scales' last axis are checked by the kernels, which refuse what MLX refuses."""
    scales_key, biases_key = path + SCALES, path + BIASES
    scales, biases = index.get(scales_key), index.get(biases_key)
    if scales is None and biases is None:
        return False
    if scales is None:
        raise MissingKeyError(
            f"{biases_key} exists without {scales_key}: MLX always writes scales next to "
            "biases; refusing to overwrite it with generated biases",
            layer=path,
            key=scales_key,
        )
    q = _params_for_triple(path, plq, scales_key)
    # Arity before shapes, so the error names the mode rather than a shape.
    _check_arity(path, q.mode, biases is not None)
    _require_array(scales, path, scales_key)
    key = path + WEIGHT
    if weight.dtype != np.uint32:
        raise UnsupportedDtypeError(
            f"{key} has dtype {weight.dtype} next to {scales_key}; a quantized weight is "
            "uint32 (a dense weight with stale scales?)",
            layer=path,
            key=key,
        )
    if weight.ndim < 2:
        raise RankMismatchError(
            f"{key} has rank {weight.ndim} (shape {weight.shape}) next to {scales_key}; "
            "MLX only quantizes rank >= 2 arrays",
            layer=path,
            key=key,
        )
    if scales.ndim != weight.ndim:
        raise RankMismatchError(
            f"{scales_key} has rank {scales.ndim} but {key} has rank {weight.ndim}; "
            "quantization keeps the leading shape",
            layer=path,
            key=scales_key,
        )
    if scales.shape[:-1] != weight.shape[:-1]:
        raise ShapeMismatchError(
            f"{scales_key} leading dims {scales.shape[:-1]} differ from {key}'s "
            f"{weight.shape[:-1]}",
            layer=path,
            key=scales_key,
        )
    if biases is not None:
        _require_array(biases, path, biases_key)
        if biases.shape != scales.shape:
            raise ShapeMismatchError(
                f"{biases_key} has shape {biases.shape} but {scales_key} has {scales.shape}",
                layer=path,
                key=biases_key,
            )
        if biases.dtype != scales.dtype:
            raise UnsupportedDtypeError(
                f"{biases_key} has dtype {biases.dtype} but {scales_key} has {scales.dtype}",
                layer=path,
                key=biases_key,
            )
    return True


def _check_orphan_biases(index: Mapping[str, Any], path: str) -> None:
    """A packed ``P.weight`` with ``P.biases`` but no ``P.scales`` cannot be dequantized and
    must not leak into a dense map. Narrowed to uint32 rank >= 2 weights so a dense weight
    with a ``.biases`` tensor passes through."""
    if path + SCALES in index:
        return
    weight = index.get(path + WEIGHT)
    if isinstance(weight, np.ndarray) and weight.dtype == np.uint32 and weight.ndim >= 2:
        raise MissingKeyError(
            f"{path + WEIGHT} is packed (uint32) and has {path + BIASES} but no "
            f"{path + SCALES}; refusing to pass the packed weight through as dense",
            layer=path,
            key=path + SCALES,
        )


def _triple_params(
    index: Mapping[str, Any], path: str, plq: PerLayerQuantization
) -> Quantization:
    q = plq.quantization_for(path)
    if q is None:
        raise InvariantViolationError(
            "cannot dequantize: the config has no parameters for this layer (no global "
            "quantization, no override, or SKIP)",
            layer=path,
            key=path + SCALES,
        )
    _check_arity(path, q.mode, path + BIASES in index)
    if path + GLOBAL_SCALE in index:
        # Ignored by mlx-lm's dequantize_model; applying it needs per-expert scales. Refuse
        # rather than return weights off by that factor.
        raise InvalidArgumentError(
            f"{path + GLOBAL_SCALE} is not supported: dequantize_weights does not apply "
            "nvfp4 global scales",
            layer=path,
            key=path + GLOBAL_SCALE,
        )
    return q


def _with_layer(path: str, key: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Calls a kernel; its typed error is re-raised with the layer and key attached."""
    try:
        return fn(*args)
    except MlxqError as exc:
        if exc.layer is not None:
            raise
        raise type(exc)(exc.message, layer=path, key=exc.key or key) from exc
