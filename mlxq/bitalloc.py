"""Bits per layer under a size budget: minimise the total (importance-weighted) squared
error subject to an average bits per weight.

Each layer offers options (bits 2/3/4/5/6/8): what the option costs in bits per weight,
counted as mlx-lm's ``compute_bits_per_weight`` counts it (the bytes of ``wq``, ``scales``
and ``biases`` times 8 over the number of weights, e.g. 4 + 32/64 = 4.5 for 4-bit g64 with
bfloat16 scales and biases), and the squared error it leaves. :func:`allocate_bits` picks
one option per layer with ``sum(n * bpw) <= target * sum(n)`` and the least total error:
a dynamic program over the budget (exact when the budget in units of the options' common
cost divisor is small enough to enumerate, else on costs rounded up to a fine grid, which
keeps the budget), then a greedy pass spending what rounding left over.
:func:`layer_costs` measures a weight's options.

>>> costs = [LayerCost("a", 64, {2: (2.5, 9.0), 4: (4.5, 1.0)}),
...          LayerCost("b", 64, {2: (2.5, 3.0), 4: (4.5, 0.5)})]
>>> allocate_bits(costs, target_bpw=3.5).bits
{'a': 4, 'b': 2}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .errors import InvalidArgumentError, OutOfRangeError
from .quant import dequantize, quantize

__all__ = ["LayerCost", "Allocation", "allocate_bits", "layer_costs", "DEFAULT_BITS"]

DEFAULT_BITS = (2, 3, 4, 5, 6, 8)
_MAX_STATES = 1 << 16  # budget cells of the dynamic program
_MAX_TABLE = 1 << 26  # layers x cells of its choice table (bytes)


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """A layer's options.

    Attributes:
        name: the layer path.
        n_weights: number of (dequantized) weights.
        options: bits -> (bits per weight it costs, squared error it leaves).
    """

    name: str
    n_weights: int
    options: Mapping[int, tuple[float, float]]


@dataclasses.dataclass(frozen=True)
class Allocation:
    """The chosen bits per layer, the average bits per weight they cost and their error."""

    bits: dict[str, int]
    bits_per_weight: float
    error: float


def _validate(layers: Sequence[LayerCost], target_bpw: float) -> None:
    if not layers:
        raise InvalidArgumentError("allocate_bits needs at least one layer")
    if not (isinstance(target_bpw, (int, float)) and math.isfinite(target_bpw)) or target_bpw <= 0:
        raise OutOfRangeError(f"target_bpw={target_bpw!r} must be a positive number")
    names = set()
    for c in layers:
        if c.name in names:
            raise InvalidArgumentError(f"layer {c.name!r} appears twice")
        names.add(c.name)
        if c.n_weights <= 0 or not c.options:
            raise InvalidArgumentError(f"layer {c.name!r} has no weights or no options")
        for b, (bpw, err) in c.options.items():
            if not (math.isfinite(bpw) and bpw > 0 and math.isfinite(err) and err >= 0):
                raise OutOfRangeError(
                    f"layer {c.name!r}, {b} bits: bits per weight {bpw!r} and error {err!r} "
                    f"must be finite, positive and non-negative")


def allocate_bits(layers: Sequence[LayerCost], target_bpw: float) -> Allocation:
    """One option per layer minimising the summed error with average bits per weight
    ``<= target_bpw``. Raises OutOfRangeError when even the cheapest options exceed it."""
    _validate(layers, target_bpw)
    opts = [sorted(c.options.items()) for c in layers]
    # costs in bits; mlx-lm's counts are whole bits per layer, so round to integers
    costs = [[int(round(c.n_weights * bpw)) for _, (bpw, _) in o] for c, o in zip(layers, opts)]
    errs = [[float(e) for _, (_, e) in o] for o in opts]
    n_total = sum(c.n_weights for c in layers)
    budget = int(math.floor(target_bpw * n_total + 1e-9))
    cheapest = sum(min(c) for c in costs)
    if cheapest > budget:
        raise OutOfRangeError(
            f"target_bpw={target_bpw} is below the cheapest options' "
            f"{cheapest / n_total:.4f} bits per weight")

    # dynamic program over the budget in units of `unit` bits (costs rounded up)
    g = 0
    for cs in costs:
        for x in cs:
            g = math.gcd(g, x)
    unit = max(g, 1)
    cells = min(_MAX_STATES, max(1, _MAX_TABLE // len(layers)))
    if budget // unit > cells:
        unit = -(-budget // cells)
    units = [[-(-x // unit) for x in cs] for cs in costs]
    B = budget // unit
    dp = np.zeros(B + 1)  # least error with cost <= c, over the layers so far
    choice = np.zeros((len(layers), B + 1), np.uint8)
    for li, (us, es) in enumerate(zip(units, errs)):
        new = np.full(B + 1, np.inf)
        for oi, (u, e) in enumerate(zip(us, es)):
            if u > B:
                continue
            cand = np.full(B + 1, np.inf)
            cand[u:] = dp[: B + 1 - u] + e
            better = cand < new
            new[better] = cand[better]
            choice[li][better] = oi
        dp = new
    pick = [0] * len(layers)
    c = B
    for li in range(len(layers) - 1, -1, -1):
        pick[li] = int(choice[li][c])
        c -= units[li][pick[li]]

    # spend what rounding to `unit` left: the best single-layer improvements that fit
    spent = sum(costs[i][pick[i]] for i in range(len(layers)))
    while True:
        best = None
        for i in range(len(layers)):
            for oi in range(len(costs[i])):
                extra = costs[i][oi] - costs[i][pick[i]]
                gain = errs[i][pick[i]] - errs[i][oi]
                if gain > 0 and spent + extra <= budget and (best is None or gain > best[0]):
                    best = (gain, i, oi, extra)
        if best is None:
            break
        _, i, oi, extra = best
        pick[i] = oi
        spent += extra
    bits = {c.name: opts[i][pick[i]][0] for i, c in enumerate(layers)}
    bpw = sum(c.n_weights * opts[i][pick[i]][1][0] for i, c in enumerate(layers)) / n_total
    error = sum(errs[i][pick[i]] for i in range(len(layers)))
    return Allocation(bits, bpw, error)


def layer_costs(
    name: str,
    w: np.ndarray,
    bits: Iterable[int] = DEFAULT_BITS,
    group_size: int = 64,
    *,
    method: str = "mse",
    importance: np.ndarray | None = None,
) -> LayerCost:
    """Quantizes ``w`` (affine) at each bit width with ``method`` and measures each option:
    bits per weight from the produced arrays' bytes (mlx-lm's count), and the squared error
    of MLX's dequantization, weighted by ``importance`` (per input column, ``[C]`` or
    ``w.shape[:-2] + [C]``) when given.

    >>> w = np.random.default_rng(0).standard_normal((8, 128)).astype(np.float32)
    >>> c = layer_costs("l", w, bits=(2, 4))
    >>> c.options[4][0], c.options[2][1] > c.options[4][1]
    (5.0, True)
    """
    x = np.asarray(w)
    imp = None
    if importance is not None:
        imp = np.asarray(importance, np.float64)
        imp = imp[..., None, :] if imp.ndim > 1 else imp  # [E, C] -> [E, 1, C]
    options = {}
    for b in bits:
        q = quantize(x, group_size, b, method=method,
                     importance=importance if method == "mse" else None)
        d = dequantize(*q, group_size, b).astype(np.float64) - x.astype(np.float64)
        se = d * d if imp is None else d * d * imp
        options[int(b)] = (8.0 * sum(a.nbytes for a in q) / x.size, float(se.sum()))
    return LayerCost(name, int(x.size), options)
