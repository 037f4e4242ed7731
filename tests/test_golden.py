"""mlxq against golden vectors written by real MLX (tests/golden/*.npz, tools/gen_golden.py).

Every stored output must come back with the same dtype, shape and bytes, from the reference
kernel and from the fast kernels under every instruction set the CPU has, with one and two
threads (the ``kernel`` fixture in conftest.py). A missing golden file makes its tests skip
with a message saying how to regenerate it; nothing passes without comparing.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import mlxq
from support import (
    GOLDEN_DIR,
    GOLDEN_MODES,
    REGENERATE_HINT,
    assert_bits_equal,
    from_bits,
    sha256,
    synth,
)


def _load(mode: str):
    path = os.path.join(GOLDEN_DIR, f"{mode}.npz")
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["__meta__"]))
        arrays = {k: f[k] for k in f.files if k != "__meta__"}
    return meta, arrays


GOLDEN = {mode: _load(mode) for mode in GOLDEN_MODES}


def _missing(mode: str):
    return pytest.param(
        None, None,
        marks=pytest.mark.skip(
            reason=f"golden file {os.path.join(GOLDEN_DIR, mode + '.npz')} is missing: "
                   f"{REGENERATE_HINT}"),
        id=f"{mode}-missing",
    )


def _case_id(case: dict) -> str:
    parts = [case["mode"], case["name"], case["kind"]]
    if case.get("label"):
        parts.append(case["label"])
    parts += [f"b{case['bits']}", f"g{case['group_size']}"]
    if case.get("dtype"):
        parts.append(case["dtype"])
    if case.get("global_scale"):
        parts.append(f"gscale={case['global_scale']['value']:g}")
    return "-".join(parts)


def _cases(*kinds: str):
    out = []
    for mode in GOLDEN_MODES:
        g = GOLDEN[mode]
        if g is None:
            out.append(_missing(mode))
            continue
        meta, _ = g
        out += [pytest.param(mode, c, id=_case_id(c)) for c in meta["cases"] if c["kind"] in kinds]
    return out


# ---- helpers --------------------------------------------------------------------------


def field(mode: str, case: dict, name: str) -> np.ndarray:
    """The case's array ``name`` in its real dtype."""
    _, arrays = GOLDEN[mode]
    ref = case["arrays"][name]
    return from_bits(arrays[ref["key"]], ref["dtype"])


def global_scale(case: dict):
    gs = case.get("global_scale")
    if gs is None:
        return None
    return np.array([gs["bits"]], np.uint32).view(np.float32)[0]


def params(case: dict) -> dict:
    return dict(group_size=case["group_size"], bits=case["bits"], mode=case["mode"],
                global_scale=global_scale(case))


def requests(case: dict) -> list[str]:
    fields = case["sha256"] if case["kind"] == "hash" else case["arrays"]
    return [f[len("deq_"):] for f in fields if f.startswith("deq_")]


def quant_fields(mode: str) -> tuple[str, ...]:
    return ("wq", "scales", "biases") if mode == "affine" else ("wq", "scales")


def check_quantize(mode: str, case: dict, w: np.ndarray, impl: str, expect=None) -> None:
    got = mlxq.quantize(w, **params(case), impl=impl)
    names = quant_fields(mode)
    assert len(got) == len(names)
    for name, g in zip(names, got):
        want = field(mode, case, name) if expect is None else expect(field(mode, case, name))
        assert_bits_equal(g, want, f"{_case_id(case)} {impl}: {name}")


def dequant_inputs(mode: str, case: dict) -> list[np.ndarray]:
    return [field(mode, case, n) for n in quant_fields(mode)]


def check_dequantize(mode: str, case: dict, inputs: list[np.ndarray], impl: str,
                     reqs: list[str] | None = None, expect=None) -> None:
    for req in reqs or requests(case):
        got = mlxq.dequantize(*inputs, **params(case), dtype=None if req == "default" else req,
                              impl=impl)
        want = field(mode, case, f"deq_{req}")
        if expect is not None:
            want = expect(want)
        assert_bits_equal(got, want, f"{_case_id(case)} {impl}: dequantize(dtype={req})")


# ---- the golden comparisons -----------------------------------------------------------


@pytest.mark.parametrize("mode, case", _cases("quantize"))
def test_quantize_matches_mlx(mode, case, kernel):
    check_quantize(mode, case, field(mode, case, "w"), kernel)


@pytest.mark.parametrize("mode, case", _cases("quantize", "dequantize"))
def test_dequantize_matches_mlx(mode, case, kernel):
    check_dequantize(mode, case, dequant_inputs(mode, case), kernel)


@pytest.mark.parametrize("mode, case", _cases("hash"))
def test_large_matrices_match_mlx_digests(mode, case, kernel):
    """Matrices large enough to be split across threads; only digests are stored, so on a
    mismatch the reference kernel's output locates the first differing element."""
    w = synth(tuple(case["shape"]), case["dtype"], case["seed"], case["spread"])
    if sha256(w) != case["input_sha256"]:
        pytest.fail(f"support.synth no longer reproduces the input of {case['name']}: "
                    f"{REGENERATE_HINT}")
    p = params(case)
    got = dict(zip(quant_fields(mode), mlxq.quantize(w, **p, impl=kernel)))
    for req in [k[len("deq_"):] for k in case["sha256"] if k.startswith("deq_")]:
        got[f"deq_{req}"] = mlxq.dequantize(
            *[got[n] for n in quant_fields(mode)], **p,
            dtype=None if req == "default" else req, impl=kernel)
    bad = [name for name, a in got.items() if sha256(a) != case["sha256"][name]]
    if not bad:
        return
    ref = dict(zip(quant_fields(mode), mlxq.quantize(w, **p, impl="reference")))
    for name in bad:
        if name.startswith("deq_") and name[4:] != "default":
            req = name[4:]
        elif name.startswith("deq_"):
            req = None
        else:
            req = "quantize"
        if req != "quantize":
            ref[name] = mlxq.dequantize(*[ref[n] for n in quant_fields(mode)], **p,
                                        dtype=req, impl="reference")
        if sha256(ref[name]) == case["sha256"][name]:
            assert_bits_equal(got[name], ref[name], f"{_case_id(case)} {kernel}: {name} "
                              "(vs the reference kernel, which matches MLX)")
    pytest.fail(f"{_case_id(case)} {kernel}: {bad} differ from MLX's digests, and so does the "
                "reference kernel (dtypes: "
                f"{ {n: str(got[n].dtype) for n in bad} }, expected "
                f"{ {n: case['dtypes'][n] for n in bad} })")


def test_golden_files_cover_every_mode_bits_group_size_and_dtype():
    """Guards the generator: a regeneration that loses a combination fails here."""
    missing = [m for m in GOLDEN_MODES if GOLDEN[m] is None]
    if missing:
        pytest.skip(f"golden files missing for {missing}: {REGENERATE_HINT}")
    have = {(c["mode"], c["bits"], c["group_size"], c.get("dtype"), c.get("label"))
            for m in GOLDEN_MODES for c in GOLDEN[m][0]["cases"]}
    want = {("affine", b, g, t, lbl) for b in (2, 3, 4, 5, 6, 8) for g in (32, 64, 128)
            for t in ("float16", "bfloat16", "float32") for lbl in ("edge", "ties", "moe")}
    for mode, (g, b) in {"mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}.items():
        want |= {(mode, b, g, t, lbl) for t in ("float16", "bfloat16", "float32", "float64")
                 for lbl in ("edge", "moe")}
    assert not want - have, sorted(want - have)
    nv_scales = {json.dumps(c["global_scale"]) for c in GOLDEN["nvfp4"][0]["cases"]}
    for v in (None, 0.0, float("inf")):
        assert json.dumps(None if v is None else {
            "value": v, "bits": int(np.array([v], np.float32).view(np.uint32)[0])}) in nv_scales
    for m in GOLDEN_MODES:
        reqs = {r for c in GOLDEN[m][0]["cases"] for r in requests(c)}
        want_reqs = {"default", "float16", "bfloat16", "float32", "float64"}
        if m in MLX_BROKEN_F64_DEQUANT:
            want_reqs.discard("float64")
        assert reqs == want_reqs, (m, reqs)


# MLX 0.32.4's dequantize with dtype=float64 returns bytes that are not a float64 result for
# these modes (they change between processes), so the golden files hold no float64 output
# for them. Without an oracle, float64 must agree with float32 wherever float32 can hold
# the exact result: E4M3 values times a power of two (mxfp8) or an E4M3 scale (nvfp4
# without a global scale) are exact in float32 unless they overflow or underflow it.
MLX_BROKEN_F64_DEQUANT = ("mxfp8", "nvfp4")


@pytest.mark.parametrize("mode, case", [
    p for p in _cases("quantize", "dequantize")
    if p.values[0] in MLX_BROKEN_F64_DEQUANT or p.values[0] is None])
def test_float64_dequantize_agrees_with_float32_where_mlx_has_no_oracle(mode, case, kernel):
    inputs = dequant_inputs(mode, case)
    p = params(case)
    f64 = mlxq.dequantize(*inputs, **p, dtype="float64", impl=kernel)
    f32 = mlxq.dequantize(*inputs, **p, dtype="float32", impl=kernel)
    assert f64.dtype == np.float64 and f64.shape == f32.shape
    wide = f32.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        exact = np.isfinite(wide) & ((wide == 0) | (np.abs(wide) >= np.finfo(np.float32).tiny))
        if p["global_scale"] is not None:
            # the global factor is rounded to float32 in one, float64 in the other
            close = np.abs(f64 - wide) <= np.abs(wide) * 2.0**-22
            bad = exact & ~close
        else:
            bad = exact & (f64 != wide)
    bad |= np.isnan(f64) != np.isnan(wide)
    if bad.any():
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        pytest.fail(f"{_case_id(case)} {kernel}: float64 {f64[i]!r} vs float32 {f32[i]!r} "
                    f"at {i} ({int(bad.sum())} elements)")


def test_golden_files_record_the_mlx_version():
    for mode in GOLDEN_MODES:
        if GOLDEN[mode] is None:
            pytest.skip(f"{os.path.join(GOLDEN_DIR, mode + '.npz')} is missing: "
                        f"{REGENERATE_HINT}")
        meta = GOLDEN[mode][0]
        assert meta["format"] == 1 and meta["mode"] == mode
        assert meta["mlx_version"].count(".") >= 2, meta["mlx_version"]


# ---- strided inputs -------------------------------------------------------------------
# Every layout below holds the same logical array as the golden input, so the golden
# outputs are the expected ones (and therefore also what a contiguous copy gives).


def _fortran(a):
    return np.asfortranarray(a)


def _every_other(a):
    buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    buf[..., 1::2] = a
    return buf[..., 1::2]


def _reversed(a):
    rev = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
    return rev[(slice(None, None, -1),) * a.ndim]


def _outer_strided(a):
    """3-D and up: the batch axes transposed in memory; 2-D: rows padded to twice their
    length (so only the last axis is contiguous)."""
    if a.ndim == 2:
        buf = np.zeros((a.shape[0], 2, a.shape[1]), a.dtype)
        buf[:, 0, :] = a
        return buf[:, 0, :]
    axes = (1, 0) + tuple(range(2, a.ndim))
    return np.ascontiguousarray(a.transpose(axes)).transpose(axes)


def _readonly(a):
    b = a.copy()
    b.flags.writeable = False
    return b


LAYOUTS = {"fortran": _fortran, "every_other": _every_other, "negative_strides": _reversed,
           "outer_strided": _outer_strided, "readonly": _readonly}


def _layout_cases():
    out = []
    for mode in GOLDEN_MODES:
        if GOLDEN[mode] is None:
            out.append(_missing(mode))
            continue
        for c in GOLDEN[mode][0]["cases"]:
            if c["kind"] != "quantize" or c["label"] not in ("edge", "moe"):
                continue
            if mode == "affine" and not (c["group_size"] == 64 and c["bits"] in (3, 4)):
                continue
            gscale = c["global_scale"]
            if mode == "nvfp4" and gscale is not None and gscale["value"] != 1.0:
                continue
            out.append(pytest.param(mode, c, id=_case_id(c)))
    return out


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("mode, case", _layout_cases())
def test_strided_input_gives_the_golden_result(mode, case, layout, kernel):
    w = field(mode, case, "w")
    view = LAYOUTS[layout](w)
    assert view.shape == w.shape
    assert layout == "readonly" or not view.flags.c_contiguous
    assert_bits_equal(np.ascontiguousarray(view), w, "the layout's logical content")
    check_quantize(mode, case, view, kernel)
    inputs = [LAYOUTS[layout](a) for a in dequant_inputs(mode, case)]
    check_dequantize(mode, case, inputs, kernel, reqs=["default"])


@pytest.mark.parametrize("mode, case", _layout_cases())
def test_broadcast_batch_gives_repeated_golden_result(mode, case, kernel):
    """A stride-0 batch axis (np.broadcast_to) reads the same rows twice."""
    w = field(mode, case, "w")
    view = np.broadcast_to(w, (2,) + w.shape)
    twice = lambda a: np.stack([a, a])  # noqa: E731
    check_quantize(mode, case, view, kernel, expect=twice)
    inputs = [np.broadcast_to(a, (2,) + a.shape) for a in dequant_inputs(mode, case)]
    check_dequantize(mode, case, inputs, kernel, reqs=["default"], expect=twice)
