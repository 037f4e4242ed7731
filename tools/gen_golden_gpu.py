#!/usr/bin/env python3
"""Generates mlxq's GPU golden vectors: what MLX's GPU (Metal) kernels compute for quantize and
dequantize, over the same corpus as the CPU golden vectors.

No Apple GPU is available to run MLX's Metal backend here, so the oracle is
tools/mlx_gpu_kernels.py: MLX 0.32.4's Metal kernels transliterated to numpy, one function per
kernel, sharing no code with mlxq's C core (read its docstring for the execution model and the
assumptions about Metal it states). Regenerate (from the repository root)::

    python tools/gen_golden_gpu.py            # rewrites tests/golden/gpu_{affine,mxfp4,mxfp8,nvfp4}.npz
    python tools/gen_golden_gpu.py --check    # recomputes and compares with the files on disk

The corpus is the CPU golden files' (tests/golden/{mode}.npz, written by tools/gen_golden.py
from real MLX on the CPU): every quantize case's input ``w`` (ties, all-negative groups,
subnormals, +-0, infinities, NaN payloads, every dtype, MoE and 4-D batches), every dequantize
case's ``wq``/``scales``/``biases``, and every hash case's input (rebuilt by ``support.synth``).
For each, the GPU kernels' outputs are stored in the same format as the CPU files (see
tools/gen_golden.py), with ``"device": "gpu"`` in the metadata. Where MLX's GPU refuses an
input (float64 anywhere, scales and biases of different dtypes: Metal reads biases as the
scales' type), the case is stored with ``"refused": true`` and the outputs it would have
had are absent; the test expects mlxq to refuse it too.

Outputs per case: quantize cases ``wq``, ``scales`` (, ``biases``) and ``deq_<request>`` for
the requests of the CPU case that the GPU serves (``default``, ``float16``, ``bfloat16``,
``float32``: dequantize of the GPU's own output); dequantize cases ``deq_<request>``; hash
cases SHA-256 digests of the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

import mlx_gpu_kernels as K  # noqa: E402
import support  # noqa: E402
from support import as_bits, dtype_name, from_bits, sha256, synth  # noqa: E402

FORMAT_VERSION = 1
GPU_REQUESTS = ("default", "float16", "bfloat16", "float32")  # Metal has no float64


def load_cpu_archive(mode: str) -> tuple[dict, dict]:
    path = os.path.join(support.GOLDEN_DIR, f"{mode}.npz")
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["__meta__"]))
        arrays = {k: f[k] for k in f.files if k != "__meta__"}
    return meta, arrays


def cpu_field(arrays: dict, case: dict, name: str) -> np.ndarray:
    ref = case["arrays"][name]
    return from_bits(arrays[ref["key"]], ref["dtype"])


def global_scale(case: dict) -> float | None:
    g = case.get("global_scale")
    if g is None:
        return None
    return float(np.array([g["bits"]], np.uint32).view(np.float32)[0])


# ---- the GPU's mx.quantize / mx.dequantize through the transliterated kernels --------------


def gpu_quantize(w: np.ndarray, mode: str, gs: int, bits: int, gscale: float | None):
    """mx.quantize on the GPU: the kernel over the [rows, cols] view, packed as MLX packs."""
    T = dtype_name(w.dtype)
    lead, cols = w.shape[:-1], w.shape[-1]
    w2 = as_bits(w).reshape(-1, cols)
    if mode == "affine":
        codes, sc, bi = K.affine_quantize(w2, T, gs, bits)
        outs = [K.pack(codes, bits), from_bits(sc, T), from_bits(bi, T)]
    else:
        codes, sc = K.fp_quantize(w2, T, gs, bits, gscale)
        outs = [K.pack(codes, bits), sc]
    return [o.reshape(lead + o.shape[-1:]) for o in outs]


def gpu_dequantize(inputs: list[np.ndarray], mode: str, gs: int, bits: int,
                   gscale: float | None, request: str) -> np.ndarray:
    """mx.dequantize on the GPU: affine_dequantize in the scales' dtype then astype; the fp
    kernel straight into the requested dtype (default bfloat16)."""
    wq = inputs[0]
    lead = wq.shape[:-1]
    codes = K.unpack(wq.reshape(-1, wq.shape[-1]), bits)
    if mode == "affine":
        sc, bi = inputs[1], inputs[2]
        T = dtype_name(sc.dtype)
        out_t = T if request == "default" else request
        t_bits = K.affine_dequantize(codes, as_bits(sc).reshape(-1, sc.shape[-1]),
                                     as_bits(bi).reshape(-1, bi.shape[-1]), T, gs)
        out = from_bits(K.astype(t_bits, T, out_t), out_t)
    else:
        out_t = "bfloat16" if request == "default" else request
        sc = inputs[1]
        out = from_bits(K.fp_dequantize(codes, sc.reshape(-1, sc.shape[-1]), out_t, gs, bits,
                                        gscale), out_t)
    return out.reshape(lead + out.shape[-1:])


def refuses(inputs: list[np.ndarray], mode: str) -> str | None:
    """Why MLX's GPU refuses these inputs (None: it does not)."""
    if any(a.dtype == np.float64 for a in inputs):
        return "float64 (Metal has no float64)"
    if mode == "affine" and len(inputs) == 3 and inputs[1].dtype != inputs[2].dtype:
        return "scales and biases of different dtypes (Metal reads biases as the scales' type)"
    return None


# ---- the archive ------------------------------------------------------------------------------


class Archive:
    def __init__(self, mode: str):
        self.mode = mode
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []
        self._by_digest: dict[str, str] = {}

    def put(self, case: dict, field: str, a: np.ndarray) -> None:
        bits = as_bits(a) if a.dtype.kind == "f" or a.dtype == support.BF16 else a
        digest = sha256(bits)
        key = self._by_digest.get(digest)
        if key is None:
            key = f"{case['name']}.{field}"
            self.arrays[key] = bits
            self._by_digest[digest] = key
        case.setdefault("arrays", {})[field] = {"key": key, "dtype": dtype_name(a.dtype)}


def requests_of(cpu_case: dict) -> list[str]:
    fields = cpu_case["sha256"] if cpu_case["kind"] == "hash" else cpu_case["arrays"]
    return [f[4:] for f in fields if f.startswith("deq_") and f[4:] in GPU_REQUESTS]


def build(mode: str) -> tuple[Archive, dict]:
    cpu_meta, cpu_arrays = load_cpu_archive(mode)
    ar = Archive(mode)
    for c in cpu_meta["cases"]:
        case = {k: v for k, v in c.items() if k not in ("arrays", "sha256", "dtypes")}
        ar.cases.append(case)
        gs, bits, gscale = c["group_size"], c["bits"], global_scale(c)
        reqs = requests_of(c) or ["default"]
        if c["kind"] == "quantize":
            w = cpu_field(cpu_arrays, c, "w")
            ar.put(case, "w", w)
            why = refuses([w], mode)
            if why:
                case["refused"] = why
                continue
            outs = gpu_quantize(w, mode, gs, bits, gscale)
            for name, o in zip(("wq", "scales", "biases"), outs):
                ar.put(case, name, o)
            for req in reqs:
                ar.put(case, f"deq_{req}", gpu_dequantize(outs, mode, gs, bits, gscale, req))
        elif c["kind"] == "dequantize":
            names = ("wq", "scales", "biases") if mode == "affine" else ("wq", "scales")
            inputs = [cpu_field(cpu_arrays, c, n) for n in names]
            for n, a in zip(names, inputs):
                ar.put(case, n, a)
            why = refuses(inputs, mode)
            if why:
                case["refused"] = why
                continue
            for req in GPU_REQUESTS:
                ar.put(case, f"deq_{req}", gpu_dequantize(inputs, mode, gs, bits, gscale, req))
        else:  # hash
            w = synth(tuple(c["shape"]), c["dtype"], c["seed"], c["spread"])
            assert sha256(w) == c["input_sha256"], "support.synth changed"
            case["sha256"], case["dtypes"] = {}, {}
            if refuses([w], mode):
                case["refused"] = refuses([w], mode)
                continue
            outs = gpu_quantize(w, mode, gs, bits, gscale)
            results = dict(zip(("wq", "scales", "biases"), outs))
            for req in reqs:
                results[f"deq_{req}"] = gpu_dequantize(outs, mode, gs, bits, gscale, req)
            for field, o in results.items():
                case["sha256"][field] = sha256(o)
                case["dtypes"][field] = dtype_name(o.dtype)
    meta = {
        "format": FORMAT_VERSION,
        "mode": mode,
        "device": "gpu",
        "generated_by": "tools/gen_golden_gpu.py",
        "oracle": "tools/mlx_gpu_kernels.py: MLX's Metal kernels transliterated to numpy",
        "mlx_version": cpu_meta["mlx_version"],
        "corpus": f"tests/golden/{mode}.npz (inputs)",
        "numpy_version": np.__version__,
        "cases": ar.cases,
    }
    return ar, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=support.GOLDEN_DIR, help="output directory")
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing")
    parser.add_argument("--modes", nargs="*", default=list(support.GOLDEN_MODES),
                        choices=support.GOLDEN_MODES)
    args = parser.parse_args(argv)
    problems: list[str] = []
    for mode in args.modes:
        ar, meta = build(mode)
        path = os.path.join(args.out, f"gpu_{mode}.npz")
        if args.check:
            with np.load(path, allow_pickle=False) as f:
                old_meta = json.loads(str(f["__meta__"]))
                old = {k: f[k] for k in f.files if k != "__meta__"}
            same = json.dumps(old_meta["cases"], sort_keys=True) == json.dumps(
                meta["cases"], sort_keys=True) and set(old) == set(ar.arrays) and all(
                old[k].tobytes() == ar.arrays[k].tobytes() and old[k].dtype == ar.arrays[k].dtype
                for k in old)
            if not same:
                problems.append(f"{path}: differs from a fresh run")
            print(f"{path}: {'matches' if same else 'differs'} ({len(ar.cases)} cases)")
            continue
        np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **ar.arrays)
        print(f"{path}: {len(ar.cases)} cases, {len(ar.arrays)} arrays, "
              f"{os.path.getsize(path) / 1024:.0f} KiB")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
