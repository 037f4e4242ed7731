"""mlxq's GPU device against the GPU golden vectors (tests/golden/gpu_*.npz).

Their oracle is tools/mlx_gpu_kernels.py, MLX 0.32.4's Metal kernels transliterated to numpy
independently of mlxq's C core (tools/gen_golden_gpu.py writes the files, over the inputs of
the CPU golden files, which real MLX wrote). Every stored output must come back with the
same dtype, shape and bytes from ``device="gpu"``, from the reference kernel and from the
fast kernels under every instruction set the CPU has, with one and two threads; inputs
MLX's GPU refuses (float64, mixed scale/bias dtypes) must be refused.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import mlxq
from support import GOLDEN_DIR, GOLDEN_MODES, assert_bits_equal, from_bits, sha256, synth

HINT = "regenerate them with `python tools/gen_golden_gpu.py`"


def _load(mode: str):
    path = os.path.join(GOLDEN_DIR, f"gpu_{mode}.npz")
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["__meta__"]))
        arrays = {k: f[k] for k in f.files if k != "__meta__"}
    return meta, arrays


GOLDEN = {mode: _load(mode) for mode in GOLDEN_MODES}


def _case_id(case: dict) -> str:
    parts = ["gpu", case["mode"], case["name"], case["kind"]]
    if case.get("label"):
        parts.append(case["label"])
    parts += [f"b{case['bits']}", f"g{case['group_size']}"]
    if case.get("dtype"):
        parts.append(case["dtype"])
    if case.get("global_scale"):
        parts.append(f"gscale={case['global_scale']['value']:g}")
    return "-".join(parts)


def _cases(*kinds: str, refused: bool = False):
    out = []
    for mode in GOLDEN_MODES:
        g = GOLDEN[mode]
        if g is None:
            out.append(pytest.param(None, None, marks=pytest.mark.skip(
                reason=f"{os.path.join(GOLDEN_DIR, 'gpu_' + mode + '.npz')} is missing: {HINT}"),
                id=f"gpu-{mode}-missing"))
            continue
        out += [pytest.param(mode, c, id=_case_id(c)) for c in g[0]["cases"]
                if c["kind"] in kinds and bool(c.get("refused")) == refused]
    return out


def field(mode: str, case: dict, name: str) -> np.ndarray:
    ref = case["arrays"][name]
    return from_bits(GOLDEN[mode][1][ref["key"]], ref["dtype"])


def params(case: dict) -> dict:
    g = case.get("global_scale")
    gscale = None if g is None else np.array([g["bits"]], np.uint32).view(np.float32)[0]
    return dict(group_size=case["group_size"], bits=case["bits"], mode=case["mode"],
                global_scale=gscale, device="gpu")


def names(mode: str) -> tuple[str, ...]:
    return ("wq", "scales", "biases") if mode == "affine" else ("wq", "scales")


def requests(case: dict) -> list[str]:
    fields = case["sha256"] if case["kind"] == "hash" else case["arrays"]
    return [f[4:] for f in fields if f.startswith("deq_")]


@pytest.mark.parametrize("mode, case", _cases("quantize"))
def test_quantize_matches_mlx_gpu(mode, case, kernel):
    got = mlxq.quantize(field(mode, case, "w"), **params(case), impl=kernel)
    assert len(got) == len(names(mode))
    for name, g in zip(names(mode), got):
        assert_bits_equal(g, field(mode, case, name), f"{_case_id(case)} {kernel}: {name}")


@pytest.mark.parametrize("mode, case", _cases("quantize", "dequantize"))
def test_dequantize_matches_mlx_gpu(mode, case, kernel):
    inputs = [field(mode, case, n) for n in names(mode)]
    for req in requests(case):
        got = mlxq.dequantize(*inputs, **params(case), dtype=None if req == "default" else req,
                              impl=kernel)
        assert_bits_equal(got, field(mode, case, f"deq_{req}"),
                          f"{_case_id(case)} {kernel}: dequantize(dtype={req})")


@pytest.mark.parametrize("mode, case", _cases("hash"))
def test_large_matrices_match_mlx_gpu_digests(mode, case, kernel):
    w = synth(tuple(case["shape"]), case["dtype"], case["seed"], case["spread"])
    p = params(case)
    got = dict(zip(names(mode), mlxq.quantize(w, **p, impl=kernel)))
    for req in requests(case):
        got[f"deq_{req}"] = mlxq.dequantize(*[got[n] for n in names(mode)], **p,
                                            dtype=None if req == "default" else req,
                                            impl=kernel)
    bad = {n: str(a.dtype) for n, a in got.items() if sha256(a) != case["sha256"][n]}
    if bad:  # the reference kernel locates a difference the digests cannot
        ref = dict(zip(names(mode), mlxq.quantize(w, **p, impl="reference")))
        for n in names(mode):
            assert_bits_equal(got[n], ref[n], f"{_case_id(case)} {kernel}: {n} vs reference")
        pytest.fail(f"{_case_id(case)} {kernel}: {bad} differ from the GPU digests")


@pytest.mark.parametrize("mode, case", _cases("quantize", "dequantize", "hash", refused=True))
def test_inputs_mlx_gpu_refuses_are_refused(mode, case):
    p = params(case)
    if case["kind"] == "dequantize":
        with pytest.raises(mlxq.UnsupportedDtypeError, match="device 'gpu'|dtype"):
            mlxq.dequantize(*[field(mode, case, n) for n in names(mode)], **p)
        return
    w = (field(mode, case, "w") if case["kind"] == "quantize"
         else synth(tuple(case["shape"]), case["dtype"], case["seed"], case["spread"]))
    with pytest.raises(mlxq.UnsupportedDtypeError, match="GPU"):
        mlxq.quantize(w, **p)
    # the CPU device takes it, as MLX's CPU backend does
    mlxq.quantize(w, **{**p, "device": "cpu"})


def test_gpu_golden_files_cover_the_cpu_corpus():
    """Every case of the CPU golden files has its GPU counterpart, the same inputs, and an
    output for every request the GPU serves (or a refusal)."""
    from support import GOLDEN_MODES as modes

    for mode in modes:
        if GOLDEN[mode] is None:
            pytest.skip(f"gpu_{mode}.npz is missing: {HINT}")
        path = os.path.join(GOLDEN_DIR, f"{mode}.npz")
        with np.load(path, allow_pickle=False) as f:
            cpu = json.loads(str(f["__meta__"]))
            cpu_arrays = {k: f[k] for k in f.files if k != "__meta__"}
        meta = GOLDEN[mode][0]
        assert meta["device"] == "gpu" and meta["mlx_version"] == cpu["mlx_version"]
        assert [c["name"] for c in meta["cases"]] == [c["name"] for c in cpu["cases"]]
        for c, g in zip(cpu["cases"], meta["cases"]):
            for n in ("w", "wq", "scales", "biases"):
                if c["kind"] != "hash" and n in c["arrays"] and (n == "w" or c["kind"] ==
                                                                 "dequantize"):
                    a = cpu_arrays[c["arrays"][n]["key"]]
                    b = GOLDEN[mode][1][g["arrays"][n]["key"]]
                    assert a.tobytes() == b.tobytes(), (mode, c["name"], n)
            if not g.get("refused"):
                want = {r for r in requests(c) if r != "float64"} or {"default"}
                assert set(requests(g)) >= want, (mode, c["name"])
        kinds = {c["kind"] for c in meta["cases"] if not c.get("refused")}
        assert kinds >= {"quantize", "hash"}, (mode, kinds)


# ---- strided inputs: the same logical array gives the golden result ------------------------


def _every_other(a):
    buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    buf[..., 1::2] = a
    return buf[..., 1::2]


def _reversed(a):
    rev = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
    return rev[(slice(None, None, -1),) * a.ndim]


LAYOUTS = {"every_other": _every_other, "negative_strides": _reversed,
           "fortran": np.asfortranarray}


def _layout_cases():
    out = []
    for mode in GOLDEN_MODES:
        if GOLDEN[mode] is None:
            continue
        picked = [c for c in GOLDEN[mode][0]["cases"] if c["kind"] == "quantize"
                  and not c.get("refused") and c["label"] in ("edge", "moe")
                  and (mode != "affine" or (c["group_size"] == 64 and c["bits"] in (3, 4)))]
        out += [pytest.param(mode, c, id=_case_id(c)) for c in picked[:6]]
    return out


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("mode, case", _layout_cases())
def test_strided_input_gives_the_gpu_golden_result(mode, case, layout, kernel):
    w = field(mode, case, "w")
    got = mlxq.quantize(LAYOUTS[layout](w), **params(case), impl=kernel)
    for name, g in zip(names(mode), got):
        assert_bits_equal(g, field(mode, case, name), f"{_case_id(case)} {layout}: {name}")
    inputs = [LAYOUTS[layout](field(mode, case, n)) for n in names(mode)]
    assert_bits_equal(mlxq.dequantize(*inputs, **params(case), impl=kernel),
                      field(mode, case, "deq_default"), f"{_case_id(case)} {layout}: deq")
