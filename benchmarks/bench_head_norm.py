"""Throughput of the output-head normalisations two families' ``sanitize`` performs, mlxq's
lazy graph (evaluated in the converter's row blocks) against mlx-lm's own ``sanitize`` run
by MLX (CPU) and a numpy formula, all measured in the same run.

    python benchmarks/bench_head_norm.py [--rows 32768 --cols 2048] [--repeat 3]

A bfloat16 ``[rows, cols]`` ``lm_head.weight`` (rows: the vocabulary):
  baichuan_m1   each row divided by its float32 2-norm (+ 1e-7), cast back
  bailing_moe   with ``norm_head``, each column divided by its 2-norm over the vocabulary
  mlxq          the family's sanitize on lazy tensors, every row block of 16 MiB evaluated
                (the column norm is computed once, reading the head in blocks)
  mlx-lm        the family's ``Model.sanitize`` on an MLX array, with mx.eval
  numpy         the same formula with numpy's own (pairwise) sums: not bit-exact, a yardstick
Rates are head elements per second (G/s); times are the best of --repeat runs after a
warm-up. Speed-ups are the peer's time over mlxq's (above 1: mlxq is faster).
"""

from __future__ import annotations

import argparse
import os
import sys
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mlxq  # noqa: E402
from mlxq.conversion import graph  # noqa: E402
from mlxq.models import FAMILIES  # noqa: E402
from mlxq.models.common import Weights  # noqa: E402
from bench_fp8 import ratios, row  # noqa: E402  (same printing)
from bench_kernels import best_time  # noqa: E402  (same timing)

try:
    import mlx.core as mx
    from mlx_lm.models import bailing_moe, baichuan_m1
except ImportError:  # MLX is optional: its rows show "n/a"
    mx = None


def mlxq_run(family: str, w: np.ndarray, config: dict) -> None:
    out = FAMILIES[family].sanitize(Weights({"lm_head.weight": graph.constant(w)}), config)
    for _ in graph.materialize(out["lm_head.weight"]):
        pass


def numpy_run(w: np.ndarray, axis: int) -> np.ndarray:
    f = w.astype(np.float32)
    return (f / (np.sqrt(np.square(f).sum(axis=axis, keepdims=True)) + 1e-7)).astype(w.dtype)


def bench(family: str, rows: int, cols: int, repeat: int) -> None:
    w = (np.random.default_rng(0).standard_normal((rows, cols)) * 0.02).astype(mlxq.bfloat16)
    n = w.size
    axis = -1 if family == "baichuan_m1" else 0
    config = {"norm_head": True, "num_hidden_layers": 0, "first_k_dense_replace": 0,
              "num_experts": 0}
    print(f"{family} head normalisation {rows}x{cols} (bfloat16, axis {axis})")
    t_mlxq = row("mlxq", n, best_time(lambda: mlxq_run(family, w, config), repeat))
    t_mlx = None
    if mx is not None:
        mw = mx.array(w.view(np.uint16)).view(mx.bfloat16)
        if family == "baichuan_m1":
            model = SimpleNamespace()
            fn = baichuan_m1.Model.sanitize
        else:
            model = SimpleNamespace(args=SimpleNamespace(tie_word_embeddings=False,
                                                         num_hidden_layers=0,
                                                         first_k_dense_replace=0),
                                    norm_head=True)
            fn = bailing_moe.Model.sanitize
        with mx.stream(mx.cpu):
            t_mlx = row("mlx-lm", n, best_time(
                lambda: mx.eval(fn(model, {"lm_head.weight": mw})["lm_head.weight"]), repeat))
    else:
        row("mlx-lm", n, None)
    t_np = row("numpy", n, best_time(lambda: numpy_run(w, axis), repeat))
    ratios("mlxq", t_mlxq, {"mlx-lm": t_mlx, "numpy": t_np})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=32768)
    ap.add_argument("--cols", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for family in ("baichuan_m1", "bailing_moe"):
        bench(family, args.rows, args.cols, args.repeat)


if __name__ == "__main__":
    main()
