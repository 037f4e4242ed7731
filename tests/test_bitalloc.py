"""mlxq.bitalloc: bits per layer under a bits-per-weight budget, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mlxq
from mlxq.bitalloc import LayerCost, allocate_bits, layer_costs
from mlxq.errors import InvalidArgumentError, OutOfRangeError

BITS = (2, 3, 4, 5, 6, 8)


def random_layers(rng, n_layers, gs=64):
    layers = []
    for i in range(n_layers):
        n = int(rng.choice([64, 128, 256, 512])) * gs
        scale = rng.uniform(0.1, 10)
        opts = {b: (b + 32 / gs, scale * n * 4.0 ** -b * rng.uniform(0.7, 1.3)) for b in BITS}
        layers.append(LayerCost(f"l{i}", n, opts))
    return layers


def brute_force(layers, target):
    n_total = sum(c.n_weights for c in layers)
    best = None
    for combo in itertools.product(*[sorted(c.options) for c in layers]):
        cost = sum(c.n_weights * c.options[b][0] for c, b in zip(layers, combo))
        if cost > target * n_total + 1e-6:
            continue
        err = sum(c.options[b][1] for c, b in zip(layers, combo))
        if best is None or err < best:
            best = err
    return best


@pytest.mark.parametrize("seed", range(12))
def test_allocation_matches_brute_force_on_small_cases(seed):
    rng = np.random.default_rng(seed)
    layers = random_layers(rng, int(rng.integers(2, 6)))
    for target in (2.6, 3.3, 4.1, 4.9, 6.0):
        alloc = allocate_bits(layers, target)
        assert alloc.error == pytest.approx(brute_force(layers, target), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_allocation_honours_the_budget(seed):
    rng = np.random.default_rng(100 + seed)
    layers = random_layers(rng, 300)  # large enough for the rounded-cost program
    n_total = sum(c.n_weights for c in layers)
    for target in (2.7, 3.5, 4.25, 5.0):
        alloc = allocate_bits(layers, target)
        cost = sum(c.n_weights * c.options[alloc.bits[c.name]][0] for c in layers)
        assert cost <= target * n_total
        assert alloc.bits_per_weight <= target
        assert alloc.bits_per_weight > target - 0.05  # and spends nearly all of it


def test_more_budget_never_costs_error():
    layers = random_layers(np.random.default_rng(7), 20)
    errors = [allocate_bits(layers, t).error for t in np.linspace(2.6, 8.5, 25)]
    assert all(a >= b for a, b in zip(errors, errors[1:]))


def test_impossible_budget_is_refused():
    layers = random_layers(np.random.default_rng(1), 3)
    with pytest.raises(OutOfRangeError, match="cheapest"):
        allocate_bits(layers, 2.0)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_target_must_be_positive_and_finite(bad):
    with pytest.raises(OutOfRangeError):
        allocate_bits(random_layers(np.random.default_rng(1), 2), bad)


def test_duplicate_or_empty_layers_are_refused():
    c = random_layers(np.random.default_rng(1), 1)[0]
    with pytest.raises(InvalidArgumentError):
        allocate_bits([c, c], 4.0)
    with pytest.raises(InvalidArgumentError):
        allocate_bits([], 4.0)


def test_layer_costs_count_bits_as_mlx_lm_and_measure_the_error():
    w = np.random.default_rng(0).standard_normal((16, 256)).astype(mlxq.bfloat16)
    imp = np.random.default_rng(1).uniform(0, 2, 256).astype(np.float32)
    c = layer_costs("x", w, group_size=64, importance=imp)
    for b, (bpw, err) in c.options.items():
        assert bpw == b + 2 * 16 / 64  # bf16 scale and bias per group of 64
        q = mlxq.quantize(w, 64, b, method="mse", importance=imp)
        d = mlxq.dequantize(*q, 64, b).astype(np.float64) - w.astype(np.float64)
        assert err == pytest.approx(float((d * d * imp).sum()), rel=1e-12)
    errs = [c.options[b][1] for b in BITS]
    assert errs == sorted(errs, reverse=True)
