#!/usr/bin/env python3
"""Generates mlxq's golden vectors: what real MLX computes for quantize and dequantize.

Regenerate (from the repository root, with MLX importable, e.g. ``pip install "mlx[cpu]"``)::

    python tools/gen_golden.py            # rewrites tests/golden/{affine,mxfp4,mxfp8,nvfp4}.npz
    python tools/gen_golden.py --check    # recomputes with the installed MLX, compares with
                                          # the files on disk and writes nothing
    python tools/gen_golden.py --out DIR  # writes to DIR instead of tests/golden

Inputs come from fixed seeds, so the same MLX version always writes the same arrays; after an
MLX upgrade, ``--check`` says which outputs changed. Never edit the files by hand: the tests
(tests/test_golden.py) treat every byte in them as MLX's word.

What is covered, per mode:
  affine  bits 2, 3, 4, 5, 6, 8 x group sizes 32, 64, 128 x float16, bfloat16, float32
          (MLX refuses float64 for affine);
  mxfp4, mxfp8, nvfp4   float16, bfloat16, float32, float64; nvfp4 without a global scale
          and with ordinary and extreme ones (0, negative, subnormal, FLT_MAX, inf, NaN).
For each combination: a 2-D matrix whose groups are edge cases (all-zero, -0, constant,
dominated by a negative value, exact rounding ties of the format, values one ulp beside the
ties, subnormals, the dtype's largest values so that max - min overflows, groups whose scale
is exactly a power of two and one ulp above and below it, NaN with several payloads, +-inf,
...; the labels are stored with the case), and a 3-D ``[experts, out, in]`` matrix (MoE
layout) with per-expert magnitudes. Each quantize case also stores MLX's dequantization of
its own output for dtype=None and for float16, bfloat16, float32 and float64 (see "Not
stored" below).
"dequantize" cases feed MLX codes and scales directly: random words with every E8M0/E4M3
scale byte (0x00 and 0xFF included), affine scales/biases with special values and mixed
scale/bias dtypes. "hash" cases are larger matrices (several row blocks, so the threaded
kernels split them) built by ``support.synth`` from a seed, with only SHA-256 digests of
MLX's outputs stored.

File layout: one ``numpy.savez_compressed`` archive per mode, read with
``numpy.load(path, allow_pickle=False)``.
  ``__meta__``   0-d unicode array holding JSON: format version, mode, the MLX / numpy /
                 ml_dtypes versions that produced it, and the list of cases.
  other keys     one array per distinct input or output, stored as raw bit patterns
                 (uint16/uint32/uint64 views of float arrays) so NaN payloads and -0.0
                 survive; identical arrays (e.g. one input quantized with several bit widths)
                 are stored once.
Case JSON: ``name``, ``kind`` ("quantize" | "dequantize" | "hash"), ``mode``, ``bits``,
``group_size``, ``global_scale`` (null or ``{"value": float, "bits": int}`` of the float32),
and ``arrays``: {field: {"key": archive key, "dtype": real dtype name}} for the fields
``w`` (quantize input), ``wq``, ``scales``, ``biases`` (MLX's quantize output, or the
dequantize input) and ``deq_<request>``: MLX's dequantize result for ``dtype=None``
("default") or ``dtype=<float16|bfloat16|float32|float64>``. Quantize cases also give
``label``, ``dtype``, ``shape`` and ``groups`` (the edge-case label of each group, row-major).
Hash cases store no arrays: ``shape``, ``dtype``, ``seed``, ``spread``, ``input_sha256`` and
``sha256`` / ``dtypes`` ({field: digest / dtype}), digests from ``support.sha256``.

Not stored: float64 dequantize results of mxfp8 and nvfp4 (MLX 0.32.4 returns
nondeterministic bytes there, see MLX_BROKEN_F64_DEQUANT); for affine quantize cases, the
explicit-dtype results outside group size 64 (only "default" is stored there) and float16,
bfloat16 and float64 results of MoE cases, to keep the files small (the hash cases and the
"dequantize" cases cover those paths for every dtype).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import support  # noqa: E402
from support import DTYPES, as_bits, dtype_name, from_bits, sha256, synth  # noqa: E402

FORMAT_VERSION = 1
AFFINE_BITS = (2, 3, 4, 5, 6, 8)
AFFINE_GROUPS = (32, 64, 128)
FP_PARAMS = {"mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}
DEQ_REQUESTS = ("default", "float16", "bfloat16", "float32", "float64")

# Bit patterns of each dtype's landmarks.
SPECIAL = {
    "float16": dict(max=0x7BFF, min_normal=0x0400, max_sub=0x03FF,
                    nans=[0x7E00, 0xFE00, 0x7C01, 0x7D00, 0xFFFF]),
    "bfloat16": dict(max=0x7F7F, min_normal=0x0080, max_sub=0x007F,
                     nans=[0x7FC0, 0xFFC0, 0x7F81, 0x7FFF]),
    "float32": dict(max=0x7F7FFFFF, min_normal=0x00800000, max_sub=0x007FFFFF,
                    nans=[0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FC12345]),
    "float64": dict(max=0x7FEFFFFFFFFFFFFF, min_normal=0x0010000000000000,
                    max_sub=0x000FFFFFFFFFFFFF,
                    nans=[0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001,
                          0x7FF8000000012345]),
}
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}

FP4_TIES = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
FP4_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
E4M3_VALUES = np.arange(0, 0x7F, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
E4M3_MIDPOINTS = (E4M3_VALUES[:-1] + E4M3_VALUES[1:]) / 2  # exact in float64

# nvfp4 global scales: None, the usual kinds, and extremes MLX accepts without complaint.
NV_GLOBAL_SCALES = [None, 1.0, 2688.0, 0.37, 448.0 * 6 * 1024, 1e-6, 1e6, 3.4028234663852886e38,
                    1.401298464324817e-45, 1.1754943508222875e-38, 0.0, -1.0, float("inf"),
                    float("nan")]


# ---- values of a dtype --------------------------------------------------------------------


def cast(values, T: str) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, dtype=np.float64).astype(DTYPES[T])


def val(T: str, bits: int) -> float:
    return float(from_bits(np.array([bits], _UINT[DTYPES[T].itemsize]), T)[0])


def representable(T: str, x: float) -> bool:
    return float(cast([x], T)[0]) == x


def nudge(T: str, x: float, ulps: int) -> float:
    """``x`` (finite, nonzero) moved ``ulps`` units in the last place of T away from zero
    (negative ``ulps``: towards zero)."""
    a = cast([abs(x)], T)
    b = as_bits(a).astype(np.int64) + ulps
    out = float(from_bits(b.astype(_UINT[a.dtype.itemsize]), T)[0])
    return out if x > 0 else -out


class Groups:
    """Collects labelled groups of ``gs`` elements of dtype ``T``."""

    def __init__(self, T: str, gs: int, rng: np.random.Generator):
        self.T, self.gs, self.rng = T, gs, rng
        self.items: list[tuple[str, np.ndarray]] = []

    def add(self, label: str, values) -> None:
        a = np.asarray(values)
        if a.dtype != DTYPES[self.T]:
            a = cast(a, self.T)
        assert a.shape == (self.gs,), (label, a.shape)
        self.items.append((label, a))

    def normal(self, scale: float = 1.0) -> np.ndarray:
        return self.rng.standard_normal(self.gs) * scale

    def with_at(self, base: np.ndarray, values: list[float]) -> np.ndarray:
        """``base`` with ``values`` written at distinct random positions."""
        out = np.array(base, dtype=np.float64)
        pos = self.rng.choice(self.gs, len(values), replace=False)
        out[pos] = values
        return out

    def with_bits_at(self, base, patterns: list[int], positions: list[int]) -> np.ndarray:
        a = cast(base, self.T).copy()
        u = a.view(_UINT[a.dtype.itemsize])
        for p, i in zip(patterns, positions):
            u[i] = p
        return a

    def fill(self, picks: list[float]) -> np.ndarray:
        """``picks`` repeated/truncated to the group size, shuffled."""
        reps = -(-self.gs // len(picks))
        vals = np.array((list(picks) * reps)[: self.gs], dtype=np.float64)
        self.rng.shuffle(vals)
        return vals


def common_groups(g: Groups) -> None:
    """Edge cases that matter for every format."""
    T, gs, rng = g.T, g.gs, g.rng
    sp = SPECIAL[T]
    vmax, vmin_n = val(T, sp["max"]), val(T, sp["min_normal"])
    u = _UINT[DTYPES[T].itemsize]
    g.add("zeros", np.zeros(gs))
    g.add("neg_zeros", -np.zeros(gs))
    g.add("const_pos", np.full(gs, 0.7))
    g.add("const_neg", np.full(gs, -1.3))
    g.add("const_pow2", np.full(gs, 0.5))
    g.add("neg_dominated", g.with_at(rng.uniform(0, 1, gs), [-4.0]))
    g.add("pos_dominated", g.with_at(rng.uniform(-1, 0, gs), [4.0]))
    g.add("equal_extremes", g.with_at(rng.uniform(-1, 1, gs), [-2.0, 2.0]))
    g.add("normal", g.normal())
    g.add("normal_1e-3", g.normal(1e-3))
    g.add("normal_1e3", g.normal(1e3 if T != "float16" else 100.0))
    g.add("heavy_tailed", g.normal() * np.exp(g.normal(2.0)))
    g.add("ramp", np.linspace(-1.0, 2.0, gs))
    sub_bits = rng.integers(1, sp["max_sub"] + 1, gs, dtype=np.uint64)
    neg = rng.integers(0, 2, gs).astype(bool)
    sign = np.uint64(1) << np.uint64(8 * DTYPES[T].itemsize - 1)
    sub = np.where(neg, sub_bits | sign, sub_bits).astype(u)
    g.add("subnormals", from_bits(sub, T))
    g.add("subnormals_pos", from_bits(sub_bits.astype(u), T))
    g.add("subnormals_and_min_normal", g.with_bits_at(from_bits(sub, T).astype(np.float64),
                                                      [sp["min_normal"]], [gs // 3]))
    g.add("tiny_1e-8", rng.uniform(-1, 1, gs) * 1e-8)
    g.add("max_both_signs", g.with_at(rng.uniform(-1, 1, gs) * vmax, [vmax, -vmax]))
    g.add("max_pos", g.with_at(rng.uniform(0.5, 1, gs) * vmax, [vmax]))
    g.add("max_and_zeros", g.with_at(np.zeros(gs), [vmax]))
    g.add("min_normal_both_signs", g.with_at(rng.uniform(-1, 1, gs) * vmin_n, [vmin_n, -vmin_n]))
    coarse = lambda: rng.integers(-8, 8, gs) * 0.25  # noqa: E731 (compresses well)
    for p in sp["nans"]:
        g.add(f"nan_0x{p:x}", g.with_bits_at(coarse(), [p], [int(rng.integers(0, gs))]))
    qnan = sp["nans"][0]
    g.add("nan_first", g.with_bits_at(coarse(), [qnan], [0]))
    g.add("nan_last", g.with_bits_at(coarse(), [qnan], [gs - 1]))
    g.add("nan_all", g.with_bits_at(np.zeros(gs), [qnan] * gs, list(range(gs))))
    g.add("pos_inf", g.with_at(coarse(), [np.inf]))
    g.add("neg_inf", g.with_at(coarse(), [-np.inf]))
    g.add("both_inf", g.with_at(coarse(), [np.inf, -np.inf]))
    g.add("inf_and_nan", g.with_bits_at(g.with_at(coarse(), [np.inf]), [qnan], [gs // 2]))
    g.add("inf_first", g.with_bits_at(coarse(), [as_bits(cast([np.inf], T))[0]], [0]))


def affine_groups(g: Groups, bits: int) -> None:
    """Ties of rint((w - bias) / scale) and of rint(edge / scale), exact grids, the eps clamp."""
    T, gs, rng = g.T, g.gs, g.rng
    n = 2**bits - 1
    for k in (0, 4):
        unit = 2.0**-k
        ties = [(j + 0.5) * unit for j in range(n) if representable(T, (j + 0.5) * unit)]
        if ties and representable(T, n * unit):
            vals = np.concatenate([[0.0, n * unit], rng.choice(ties, gs - 2)])
            rng.shuffle(vals)
            # [0, n] * unit: scale -unit, bias n * unit; [-n, 0] * unit: scale unit, bias -n
            g.add(f"q_ties_pos_2^-{k}", vals)
            g.add(f"q_ties_neg_2^-{k}", -vals)
        grid = rng.integers(0, n + 1, gs) * unit
        grid[:2] = [0.0, n * unit]
        if representable(T, n * unit):
            g.add(f"exact_grid_2^-{k}", grid)
    # rint(edge / scale0) exactly at .5: range n * 2^-2 (scale0 = 2^-2 exactly) and
    # edge = (2j + 1) * 2^-3, with |other end| <= |edge|.
    added = 0
    for j in range((n - 1) // 2, n + 1):
        w_max = (2 * j + 1) / 8.0
        w_min = w_max - n / 4.0
        if abs(w_min) > w_max or not (representable(T, w_max) and representable(T, w_min)):
            continue
        fill = rng.uniform(w_min, w_max, gs)
        fill[:2] = [w_max, w_min]
        g.add(f"q0_tie_j{j}", cast(fill, T))
        g.add(f"q0_tie_j{j}_neg", -cast(fill, T))
        added += 1
        if added == 2:
            break
    # the 1e-7 floor of the scale: a range just above and below n * 1e-7
    for f in (1.5, 0.5):
        r = n * 1e-7 * f
        vals = rng.uniform(0, r, gs)
        vals[:2] = [0.0, r]
        g.add(f"eps_range_x{f}", vals)
    g.add("const_tiny", np.full(gs, 3e-8))


def fp_groups(g: Groups, mode: str) -> None:
    """FP4/E4M3 element ties, E8M0/E4M3 scale boundaries, saturation and underflow."""
    T, gs, rng = g.T, g.gs, g.rng
    fp8 = mode == "mxfp8"
    nv = mode == "nvfp4"
    maxval = 448.0 if fp8 else 6.0
    if not fp8:
        ties = FP4_TIES + [-t for t in FP4_TIES]
        for k in (0, -3, 5):
            extra = FP4_VALUES + [-v for v in FP4_VALUES]
            vals = (ties + [6.0, 0.0] + extra)[:gs]
            vals = np.array(vals + list(rng.choice(extra, gs - len(vals))))
            rng.shuffle(vals)
            g.add(f"fp4_ties_x2^{k}", vals * 2.0**k)
        for d in (1, -1):
            near = [nudge(T, t, d) for t in ties]
            g.add(f"fp4_ties_{'up' if d > 0 else 'down'}", g.fill(near + [6.0]))
    else:
        mids = [m for m in E4M3_MIDPOINTS if representable(T, m)]
        chunks = [mids[i : i + gs - 1] for i in range(0, len(mids), gs - 1)]
        for i, ch in enumerate(chunks):
            body = list(np.array(ch) * rng.choice([-1.0, 1.0], len(ch)))
            body += list(rng.choice(body, gs - 1 - len(body)))
            g.add(f"fp8_ties_{i}", np.array(body + [448.0]))
        for k in (-5, 6):
            ch = np.array(chunks[len(chunks) // 2]) * 2.0**k
            if all(representable(T, x) for x in ch) and representable(T, 448.0 * 2.0**k):
                g.add(f"fp8_ties_x2^{k}", np.array(list(ch) + [448.0 * 2.0**k]))
        for d in (1, -1):
            ch = chunks[1]
            g.add(f"fp8_ties_{'up' if d > 0 else 'down'}",
                  np.array([nudge(T, x, d) for x in ch] + [448.0]))
    # the group maximum at maxval * 2^k exactly, and one ulp of T above and below
    for k in (-4, 0, 3):
        base = maxval * 2.0**k
        if not representable(T, base):
            continue
        body = rng.uniform(-1, 1, gs) * base * 0.9
        g.add(f"amax_pow2_2^{k}", g.with_at(body, [base]))
        g.add(f"amax_pow2_2^{k}_neg", g.with_at(body, [-base]))
        g.add(f"amax_above_2^{k}", g.with_at(body, [nudge(T, base, 1)]))
        g.add(f"amax_below_2^{k}", g.with_at(body, [nudge(T, base, -1)]))
    if T == "float64":
        # E8M0 exponents far outside [-127, 128]: the scale byte wraps modulo 256 (or the
        # float32 rounding MLX applies first decides)
        for e in (-1074, -1022, -900, -300, -140, 130, 300, 900, 1023):
            x = 2.0**e
            g.add(f"amax_2^{e}", g.with_at(rng.uniform(-1, 1, gs) * x, [x]))
    if nv:
        # E4M3 scale ties (s = amax / 6 at an E4M3 midpoint), saturation and underflow
        for s in (1.0625, 1.1875, 3.0 * 2**-10, 2.0**-10, 1.0625 * 2**-6, 464.0, 500.0,
                  2.0**-12):
            amax = 6.0 * s
            if representable(T, amax):
                g.add(f"nv_scale_{s:g}", g.with_at(rng.uniform(-1, 1, gs) * amax * 0.9, [amax]))


def arrange(items: list[tuple[str, np.ndarray]], per_row: int, T: str,
            rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Groups laid out ``per_row`` to a row (padding with normal groups)."""
    items = list(items)
    gs = items[0][1].shape[0]
    while len(items) % per_row:
        items.append(("pad_normal", cast(rng.standard_normal(gs), T)))
    rows = [np.concatenate([a for _, a in items[i : i + per_row]])
            for i in range(0, len(items), per_row)]
    return np.stack(rows), [lbl for lbl, _ in items]


def moe_matrix(T: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    mags = [1e-2, 1.0, 50.0, 3e-4][: shape[0]]
    return cast(np.stack([rng.standard_normal(shape[1:]) * m for m in mags]), T)


# ---- running MLX --------------------------------------------------------------------------


class Archive:
    """Arrays and case descriptions of one mode's golden file."""

    def __init__(self, mode: str):
        self.mode = mode
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []
        self._by_digest: dict[str, str] = {}

    def put(self, case: dict, field: str, a: np.ndarray) -> None:
        """Stores ``a`` as the case's ``field``; identical arrays are stored once."""
        bits = as_bits(a) if a.dtype.kind == "f" or a.dtype == support.BF16 else a
        digest = sha256(bits)
        key = self._by_digest.get(digest)
        if key is None:
            key = f"{case['name']}.{field}"
            self.arrays[key] = bits
            self._by_digest[digest] = key
        case.setdefault("arrays", {})[field] = {"key": key, "dtype": dtype_name(a.dtype)}

    def new_case(self, kind: str, **params) -> dict:
        case = {"name": f"c{len(self.cases):03d}", "kind": kind, "mode": self.mode, **params}
        self.cases.append(case)
        return case


def gs_json(g: float | None) -> dict | None:
    if g is None:
        return None
    f = np.float32(g)
    return {"value": float(f), "bits": int(np.array([f]).view(np.uint32)[0])}


def mlx_quantize(w: np.ndarray, mode: str, gs: int, bits: int, gscale: float | None):
    import mlx.core as mx

    kw = {}
    if gscale is not None:
        kw["global_scale"] = mx.array(np.float32(gscale))
    out = mx.quantize(support.to_mx(w), group_size=gs, bits=bits, mode=mode, **kw)
    mx.eval(out)
    return [support.to_np(o) for o in out]


def mlx_dequantize(inputs: list[np.ndarray], mode: str, gs: int, bits: int,
                   gscale: float | None, request: str) -> np.ndarray:
    import mlx.core as mx

    kw = {}
    if gscale is not None:
        kw["global_scale"] = mx.array(np.float32(gscale))
    if request != "default":
        kw["dtype"] = support.mx_dtype(request)
    args = [support.to_mx(a) for a in inputs]
    if mode == "affine":
        out = mx.dequantize(args[0], args[1], args[2], group_size=gs, bits=bits, mode=mode, **kw)
    else:
        out = mx.dequantize(args[0], args[1], group_size=gs, bits=bits, mode=mode, **kw)
    mx.eval(out)
    return support.to_np(out)


# MLX 0.32.4 bug: mx.dequantize(..., mode="mxfp8" or "nvfp4", dtype=mx.float64) returns an
# array whose bytes are not a float64 result (pairs of float32-looking words, and contents
# that change from one process to the next), so it cannot be an oracle. The tests check our
# float64 output against our float32 output instead (test_golden.py).
MLX_BROKEN_F64_DEQUANT = ("mxfp8", "nvfp4")


def store_dequantized(ar: Archive, case: dict, inputs: list[np.ndarray],
                      requests: tuple[str, ...]) -> None:
    mode, gs, bits = case["mode"], case["group_size"], case["bits"]
    gscale = case["global_scale"]["value"] if case["global_scale"] else None
    if mode in MLX_BROKEN_F64_DEQUANT:
        requests = tuple(r for r in requests if r != "float64")
    for req in requests:
        ar.put(case, f"deq_{req}", mlx_dequantize(inputs, mode, gs, bits, gscale, req))


def add_quantize_case(ar: Archive, label: str, w: np.ndarray, gs: int, bits: int,
                      gscale: float | None = None, groups: list[str] | None = None,
                      requests: tuple[str, ...] = DEQ_REQUESTS) -> None:
    T = dtype_name(w.dtype)
    case = ar.new_case("quantize", label=label, dtype=T, shape=list(w.shape), group_size=gs,
                       bits=bits, global_scale=gs_json(gscale))
    if groups is not None:
        case["groups"] = groups
    ar.put(case, "w", w)
    outs = mlx_quantize(w, ar.mode, gs, bits, gscale)
    for field, o in zip(("wq", "scales", "biases"), outs):
        ar.put(case, field, o)
    store_dequantized(ar, case, outs, requests)


def add_dequantize_case(ar: Archive, label: str, inputs: list[np.ndarray], gs: int, bits: int,
                        gscale: float | None = None) -> None:
    case = ar.new_case("dequantize", label=label, group_size=gs, bits=bits,
                       global_scale=gs_json(gscale))
    for field, a in zip(("wq", "scales", "biases"), inputs):
        ar.put(case, field, a)
    store_dequantized(ar, case, inputs, DEQ_REQUESTS)


def add_hash_case(ar: Archive, shape: tuple[int, ...], T: str, seed: int, gs: int, bits: int,
                  gscale: float | None = None, spread: int = 8) -> None:
    w = synth(shape, T, seed, spread)
    case = ar.new_case("hash", dtype=T, shape=list(shape), seed=seed, spread=spread,
                       group_size=gs, bits=bits, global_scale=gs_json(gscale),
                       input_sha256=sha256(w), sha256={}, dtypes={})
    outs = mlx_quantize(w, ar.mode, gs, bits, gscale)
    results = dict(zip(("wq", "scales", "biases"), outs))
    for req in DEQ_REQUESTS:
        if req == "float64" and ar.mode in MLX_BROKEN_F64_DEQUANT:
            continue
        results[f"deq_{req}"] = mlx_dequantize(outs, ar.mode, gs, bits, gscale, req)
    for field, o in results.items():
        case["sha256"][field] = sha256(o)
        case["dtypes"][field] = dtype_name(o.dtype)


# ---- the cases ----------------------------------------------------------------------------


def special_scales(T: str, n: int, rng: np.random.Generator, magnitude: float) -> np.ndarray:
    """Random scales/biases of dtype T, about a third of them special values."""
    sp = SPECIAL[T]
    specials = [0.0, -0.0, np.inf, -np.inf, val(T, sp["max"]), -val(T, sp["max"]),
                val(T, sp["min_normal"]), val(T, 1), -val(T, sp["max_sub"]), 1.0, -1.0, 0.5]
    out = cast(rng.standard_normal(n) * magnitude, T)
    pick = rng.random(n) < 0.35
    out[pick] = cast(rng.choice(specials, int(pick.sum())), T)
    u = out.view(_UINT[out.dtype.itemsize])
    nan_at = rng.random(n) < 0.06
    u[nan_at] = rng.choice(sp["nans"], int(nan_at.sum()))
    return out


def random_words(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)


def build_affine(rng: np.random.Generator) -> Archive:
    ar = Archive("affine")
    inputs = {}
    for gs in AFFINE_GROUPS:
        for T in ("float16", "bfloat16", "float32"):
            g = Groups(T, gs, rng)
            common_groups(g)
            inputs[gs, T] = arrange(g.items, 2, T, rng), moe_matrix(T, (3, 2, gs), rng)
    for bits in AFFINE_BITS:
        for gs in AFFINE_GROUPS:
            # every output dtype for one group size; the hash cases cover the others
            requests = DEQ_REQUESTS if gs == 64 else ("default",)
            for T in ("float16", "bfloat16", "float32"):
                (edge, labels), moe = inputs[gs, T]
                add_quantize_case(ar, "edge", edge, gs, bits, groups=labels, requests=requests)
                g = Groups(T, gs, rng)
                affine_groups(g, bits)
                ties, tie_labels = arrange(g.items, 2, T, rng)
                add_quantize_case(ar, "ties", ties, gs, bits, groups=tie_labels,
                                  requests=requests)
                add_quantize_case(ar, "moe", moe, gs, bits, requests=("default", "float32"))
    pairs = [("float16", "float16"), ("bfloat16", "bfloat16"), ("float32", "float32"),
             ("float16", "bfloat16"), ("bfloat16", "float32"), ("float32", "float16")]
    for i, bits in enumerate(AFFINE_BITS):
        for j, (st, bt) in enumerate(pairs):
            gs = AFFINE_GROUPS[(i + j) % 3]
            rows, ngroups = 512 // (2 * gs), 2
            wq = random_words((rows, ngroups * gs * bits // 32), rng)
            sc = special_scales(st, rows * ngroups, rng, 0.05).reshape(rows, ngroups)
            bi = special_scales(bt, rows * ngroups, rng, 1.0).reshape(rows, ngroups)
            add_dequantize_case(ar, f"random_codes_{st}_{bt}", [wq, sc, bi], gs, bits)
    hash_specs = [(2, 32, "float32", (64, 512)), (3, 64, "bfloat16", (2, 48, 384)),
                  (4, 64, "float16", (96, 256)), (5, 128, "float32", (40, 640)),
                  (6, 128, "bfloat16", (24, 1024)), (8, 32, "float16", (80, 320)),
                  (4, 128, "bfloat16", (4, 16, 512))]
    for seed, (bits, gs, T, shape) in enumerate(hash_specs):
        add_hash_case(ar, shape, T, seed + 1, gs, bits)
    return ar


def build_fp(mode: str, rng: np.random.Generator) -> Archive:
    ar = Archive(mode)
    gs, bits = FP_PARAMS[mode]
    scales_for = NV_GLOBAL_SCALES if mode == "nvfp4" else [None]
    for T in ("float16", "bfloat16", "float32", "float64"):
        g = Groups(T, gs, rng)
        common_groups(g)
        fp_groups(g, mode)
        per_row = 32 // gs * 2  # nvfp4: rows of 64 elements (MLX wants a multiple of 32)
        w, labels = arrange(g.items, per_row, T, rng)
        moe = moe_matrix(T, (4, 3, 2 * gs), rng)
        batch4 = cast(rng.standard_normal((2, 1, 3, 2 * gs)) * 3.0, T)
        for gscale in scales_for:
            # with a global scale every request but float64 gives float32: keep float64 for
            # a few scales only
            requests = DEQ_REQUESTS
            if gscale not in (None, 1.0, 1e-6, float("inf")):
                requests = DEQ_REQUESTS[:-1]
            add_quantize_case(ar, "edge", w, gs, bits, gscale, groups=labels, requests=requests)
            if gscale is None or gscale in (1.0, 2688.0, 0.37):
                add_quantize_case(ar, "moe", moe, gs, bits, gscale)
        add_quantize_case(ar, "batch4d", batch4, gs, bits)
    # every scale byte, random codes
    words_per_group = gs * bits // 32
    sc = np.arange(256, dtype=np.uint8).reshape(8, 32)
    wq = random_words((8, 32 * words_per_group), rng)
    add_dequantize_case(ar, "every_scale_byte", [wq, sc], gs, bits)
    if mode == "nvfp4":
        for gscale in (1.0, 0.37, 1e-6, 3.4028234663852886e38, 0.0, float("nan")):
            add_dequantize_case(ar, "every_scale_byte", [wq, sc], gs, bits, gscale)
    hash_shapes = {"float16": (64, 512), "bfloat16": (2, 40, 384), "float32": (48, 640),
                   "float64": (3, 12, 768)}
    for seed, (T, shape) in enumerate(hash_shapes.items()):
        add_hash_case(ar, shape, T, 100 + seed, gs, bits)
        if mode == "nvfp4":
            add_hash_case(ar, shape, T, 200 + seed, gs, bits, gscale=float(seed + 1) * 0.7)
    return ar


def meta_for(ar: Archive) -> dict:
    import mlx.core as mx

    return {
        "format": FORMAT_VERSION,
        "mode": ar.mode,
        "generated_by": "tools/gen_golden.py",
        "mlx_version": mx.__version__,
        "numpy_version": np.__version__,
        "ml_dtypes_version": ml_dtypes.__version__,
        "cases": ar.cases,
    }


def build(mode: str) -> Archive:
    # a seed per mode, so adding cases to one mode leaves the others' files unchanged
    rng = np.random.default_rng({"affine": 1, "mxfp4": 2, "mxfp8": 3, "nvfp4": 4}[mode])
    return build_affine(rng) if mode == "affine" else build_fp(mode, rng)


def compare_with_disk(path: str, ar: Archive, meta: dict) -> list[str]:
    problems: list[str] = []
    if not os.path.exists(path):
        return [f"{path}: missing"]
    with np.load(path, allow_pickle=False) as f:
        old_meta = json.loads(str(f["__meta__"]))
        old = {k: f[k] for k in f.files if k != "__meta__"}
    if old_meta["mlx_version"] != meta["mlx_version"]:
        problems.append(f"{path}: written by MLX {old_meta['mlx_version']}, "
                        f"installed MLX is {meta['mlx_version']}")
    if json.dumps(old_meta["cases"], sort_keys=True) != json.dumps(meta["cases"], sort_keys=True):
        problems.append(f"{path}: case descriptions (or hash-case digests) differ")
    for k in sorted(set(old) | set(ar.arrays)):
        if k not in old or k not in ar.arrays:
            problems.append(f"{path}: array {k} only in {'new' if k in ar.arrays else 'old'}")
        elif old[k].dtype != ar.arrays[k].dtype or old[k].tobytes() != ar.arrays[k].tobytes():
            problems.append(f"{path}: array {k} differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=support.GOLDEN_DIR, help="output directory")
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing")
    parser.add_argument("--modes", nargs="*", default=list(support.GOLDEN_MODES),
                        choices=support.GOLDEN_MODES)
    args = parser.parse_args(argv)
    problems: list[str] = []
    os.makedirs(args.out, exist_ok=True)
    for mode in args.modes:
        ar = build(mode)
        meta = meta_for(ar)
        path = os.path.join(args.out, f"{mode}.npz")
        if args.check:
            found = compare_with_disk(path, ar, meta)
            problems += found
            print(f"{path}: {'differs' if found else 'matches'} ({len(ar.cases)} cases)")
            continue
        np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **ar.arrays)
        print(f"{path}: {len(ar.cases)} cases, {len(ar.arrays)} arrays, "
              f"{os.path.getsize(path) / 1024:.0f} KiB, MLX {meta['mlx_version']}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
