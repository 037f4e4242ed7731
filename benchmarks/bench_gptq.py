"""GPTQ's speed: mlxq's C GPTQ (src/gptq.c) against the reference formulation of GPTQ in
numpy (the paper's blocked algorithm vectorised over rows, the way its torch code runs,
with MLX's group parameters), measured in the same run, and MLX's plain round-to-nearest
(mlxq.quantize) for scale.

    python benchmarks/bench_gptq.py [--threads N] [--quick]

Shapes are LLM projections (out, in); the Hessian is X^T X of 2048 random inputs with
columns of unequal scale. "factor" is the Hessian's part (dampening, Cholesky factor of the
inverse: once per distinct input, shared by q/k/v), "apply" the column-by-column pass
that every weight pays. The output-error ratio checks both implementations do the same
thing: tr((W - Q) H (W - Q)^T), GPTQ over round-to-nearest.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mlxq  # noqa: E402
from mlxq.calibration import gptq_factor, gptq_quantize  # noqa: E402


def numpy_gptq(w: np.ndarray, h: np.ndarray, gs: int, bits: int, damp: float = 0.01,
               block: int = 128) -> np.ndarray:
    """Dequantized GPTQ result (float32 group parameters, no storage rounding): the peer."""
    W = w.astype(np.float32).copy()
    H = h.astype(np.float64).copy()
    C = W.shape[1]
    nb = 2 ** bits - 1
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * np.mean(np.diag(H)) * np.eye(C)
    U = np.linalg.cholesky(np.linalg.inv(H)).T.astype(np.float32)
    Q = np.zeros_like(W)
    s = b = None
    for i0 in range(0, C, block):
        i1 = min(i0 + block, C)
        E = np.zeros((W.shape[0], i1 - i0), np.float32)
        for i in range(i0, i1):
            if i % gs == 0:
                g = W[:, i:i + gs]
                mn, mx = g.min(1), g.max(1)
                s = np.maximum((mx - mn) / nb, 1e-7)
                b = mn
            q = np.clip(np.rint((W[:, i] - b) / s), 0, nb)
            Q[:, i] = q * s + b
            err = (W[:, i] - Q[:, i]) / U[i, i]
            W[:, i:i1] -= np.outer(err, U[i, i:i1])
            E[:, i - i0] = err
        W[:, i1:] -= E @ U[i0:i1, i1:]
    return Q


def best(fn, repeat: int) -> float:
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    if a.threads:
        mlxq.set_num_threads(a.threads)
    shapes = [(576, 576), (1536, 576), (576, 1536)] if a.quick else \
        [(576, 576), (1536, 576), (576, 1536), (2048, 2048), (4096, 1024)]
    rng = np.random.default_rng(0)
    print(f"mlxq {mlxq.get_num_threads()} threads; numpy {np.__version__}; 4-bit, group 64; "
          f"best of {a.repeat}")
    print(f"{'shape':>12} {'factor s':>9} {'apply s':>8} {'Mweights/s':>11} {'numpy s':>8} "
          f"{'numpy/mlxq':>10} {'rtn s':>7} {'out err c':>10} {'out err np':>10}")
    for rows, cols in shapes:
        x = rng.standard_normal((2048, cols)).astype(np.float32) * \
            rng.exponential(1.0, cols).astype(np.float32)
        h = x.T @ x
        w = (rng.standard_normal((rows, cols)) * 0.02).astype(mlxq.bfloat16)
        t_f = best(lambda: gptq_factor(h), a.repeat)
        f = gptq_factor(h)
        t_a = best(lambda: gptq_quantize(w, None, 64, 4, factor=f), a.repeat)
        t_np = best(lambda: numpy_gptq(w, h, 64, 4), 1)
        t_rtn = best(lambda: mlxq.quantize(w, 64, 4), a.repeat)
        wd = w.astype(np.float64)
        hd = h.astype(np.float64)
        err = lambda d: float(np.einsum("ij,jk,ik->", wd - d, hd, wd - d))  # noqa: E731
        rtn = err(mlxq.dequantize(*mlxq.quantize(w, 64, 4), 64, 4).astype(np.float64))
        ours = err(mlxq.dequantize(*gptq_quantize(w, None, 64, 4, factor=f), 64, 4)
                   .astype(np.float64))
        peer = err(numpy_gptq(w, h, 64, 4).astype(np.float64))
        print(f"{rows:>5}x{cols:<6} {t_f:>9.3f} {t_a:>8.3f} {rows * cols / t_a / 1e6:>11.2f} "
              f"{t_np:>8.2f} {t_np / (t_f + t_a):>10.1f} {t_rtn:>7.4f} {ours / rtn:>10.3f} "
              f"{peer / rtn:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
