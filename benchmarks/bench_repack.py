"""Throughput of the AutoAWQ and GPTQ -> MLX transforms on one 4096x11008 layer, against
mlx-lm's ``_transform_awq_weights`` (AWQ) and a numpy implementation (both formats), all
measured in the same run, with this machine's memory bandwidth.

    python benchmarks/bench_repack.py [--in-features 4096 --out-features 11008] [--repeat 7]

A layer is ``in x out`` 4-bit codes with float16 scales (group 128) and packed zeros. The
rate is codes per second and packed-input GB/s (qweight + qzeros + scales read); "of stream"
is mlxq's traffic (inputs read plus outputs written) over the streaming bandwidth of a
numpy copy of 256 MiB (read plus write). Times are the best of --repeat runs; mlx-lm's
includes ``mx.eval`` of its outputs (its inputs are MLX arrays made before timing).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mlxq  # noqa: E402
from bench_kernels import best_time, stream_bandwidth  # noqa: E402  (same probe, same timing)

try:
    import mlx.core as mx
    from mlx_lm.utils import _transform_awq_weights
except ImportError:  # mlx-lm is optional: its column shows "n/a"
    mx = None

GROUP = 128


# ---- numpy peers: the same transforms written with array operations -------------------------

AWQ_SHIFTS = np.array([0, 4, 1, 5, 2, 6, 3, 7], np.uint32) * 4
MLX_SHIFTS = np.arange(8, dtype=np.uint32) * 4


def np_awq(qweight, scales, qzeros):
    q = qweight.view(np.uint32)
    codes = ((q[..., None] >> AWQ_SHIFTS) & 0xF).reshape(q.shape[0], -1).T
    wq = (codes.reshape(codes.shape[0], -1, 8) << MLX_SHIFTS).sum(-1, dtype=np.uint32)
    z = ((qzeros.view(np.uint32)[..., None] >> AWQ_SHIFTS) & 0xF).reshape(qzeros.shape[0], -1).T
    s = np.ascontiguousarray(scales.T)
    b = (-z.astype(np.float32) * s.astype(np.float32)).astype(s.dtype)
    return wq, s, b


def np_gptq(qweight, scales, qzeros):
    wq = np.ascontiguousarray(qweight.view(np.uint32).T)
    z = ((qzeros.view(np.uint32)[..., None] >> MLX_SHIFTS) & 0xF).reshape(qzeros.shape[0], -1)
    s = np.ascontiguousarray(scales.T)
    b = (-(z.T + 1).astype(np.float32) * s.astype(np.float32)).astype(s.dtype)
    return wq, s, b


def fmt_rate(codes: int, nbytes: int, t: float | None) -> str:
    if t is None:
        return f"{'n/a':>20}"
    return f"{codes / t / 1e9:7.3f} G/s {nbytes / t / 1e9:6.2f} GB/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in-features", type=int, default=4096)
    ap.add_argument("--out-features", type=int, default=11008)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="mlxq threads (default: all CPUs)")
    args = ap.parse_args()
    if args.threads:
        mlxq.set_num_threads(args.threads)
    if mx is not None:
        mx.set_default_device(mx.cpu)
    n_in, n_out = args.in_features, args.out_features

    stream_bw = stream_bandwidth(args.repeat)
    print(f"machine: {os.cpu_count()} CPUs, {mlxq.get_num_threads()} mlxq threads")
    print(f"memory stream probe (numpy copy, read + write): {stream_bw:.1f} GB/s")
    print(f"mlx-lm: {'installed, MLX ' + mx.__version__ + ' (CPU)' if mx else 'not installed'}; "
          f"layer in={n_in} out={n_out}, 4-bit, float16 scales, group {GROUP}\n")

    rng = np.random.default_rng(0)
    words = lambda *shape: rng.integers(-2**31, 2**31, size=shape, dtype=np.int64).astype(np.int32)
    scales = (rng.random((n_in // GROUP, n_out), np.float32) * 0.01).astype(np.float16)
    awq = {"l.qweight": words(n_in, n_out // 8), "l.qzeros": words(n_in // GROUP, n_out // 8),
           "l.scales": scales}
    gptq = {"l.qweight": words(n_in // 8, n_out), "l.qzeros": words(n_in // GROUP, n_out // 8),
            "l.scales": scales}
    codes = n_in * n_out

    head = f"{'transform':<10}{'mlxq':>22}{'mlx-lm':>22}{'numpy':>22}{'vs mlx-lm':>11}" \
           f"{'vs numpy':>10}{'of stream':>11}"
    print(head)
    print("-" * len(head))
    peer_rep = max(1, args.repeat // 3)
    for name, w in (("awq", awq), ("gptq", gptq)):
        in_bytes = sum(a.nbytes for a in w.values())
        if name == "awq":
            run = lambda: mlxq.transform_awq_weights(w, {"bits": 4, "group_size": GROUP})
            peer = lambda: np_awq(w["l.qweight"], w["l.scales"], w["l.qzeros"])
        else:
            run = lambda: mlxq.transform_gptq_weights(w, {"bits": 4, "group_size": GROUP})
            peer = lambda: np_gptq(w["l.qweight"], w["l.scales"], w["l.qzeros"])
        out_bytes = sum(a.nbytes for a in run()[0].values())
        t_m = best_time(run, args.repeat)
        t_n = best_time(peer, peer_rep)
        t_x = None
        if name == "awq" and mx is not None:
            xw = {k: mx.array(v) for k, v in w.items()}
            mx.eval(list(xw.values()))

            def mlx_lm():
                out, _ = _transform_awq_weights(dict(xw), {"bits": 4, "group_size": GROUP})
                mx.eval(list(out.values()))

            t_x = best_time(mlx_lm, peer_rep)
        vs_x = f"{t_x / t_m:10.1f}x" if t_x else f"{'n/a':>11}"
        print(f"{name:<10}{fmt_rate(codes, in_bytes, t_m):>22}{fmt_rate(codes, in_bytes, t_x):>22}"
              f"{fmt_rate(codes, in_bytes, t_n):>22}{vs_x}{t_n / t_m:9.1f}x"
              f"{(in_bytes + out_bytes) / t_m / 1e9 / stream_bw:10.0%}")
    print("\nmlx-lm has no GPTQ transform of its own (it routes GPTQ through the AWQ one, which "
          "misreads GPTQ's layout), so the GPTQ row compares with numpy only.")


if __name__ == "__main__":
    main()
