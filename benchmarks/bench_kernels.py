"""Throughput of mlxq's quantize/dequantize, for each of MLX's devices whose arithmetic mlxq
reproduces, against MLX on the CPU and a plain numpy implementation, with this machine's
memory bandwidth measured in the same run.

    python benchmarks/bench_kernels.py [--rows 4096 --cols 4096] [--repeat 7] [--threads N]
                                       [--clock wall|cpu]

For each case and operation it prints one line per device: ``cpu`` (mlxq's kernels for MLX's
CPU backend, the arithmetic mlxq had before it learnt the GPU's) and ``gpu`` (mlxq's kernels
for MLX's Metal kernels, running on this CPU): elements per second and input GB/s, the ratio
to the other device's kernels measured in the same run (gpu/cpu: the cost of the GPU's
arithmetic), the ratios to MLX's CPU backend (when importable) and to numpy, and mlxq's
memory traffic (bytes read plus bytes written) as a fraction of the machine's streaming
bandwidth, measured in the same run as numpy's copy of a 256 MiB buffer (also read plus
write). Times are the best of --repeat runs (outputs are allocated by every call, as users
would see it), by the wall clock, or with ``--clock cpu`` by the process's CPU time (all
threads), which a busy shared machine disturbs far less when comparing two kernels. The goals: affine 4-bit bfloat16 quantize at least 10x MLX's CPU quantize,
dequantize at least as fast as MLX, and the GPU device's kernels within 10% of the CPU
device's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mlxq  # noqa: E402
from mlxq import _core  # noqa: E402

try:
    import mlx.core as mx
except ImportError:  # MLX is optional: its columns show "n/a"
    mx = None

CASES = [("affine", 64, 4), ("affine", 64, 8), ("mxfp4", 32, 4), ("nvfp4", 16, 4)]
FP4_LUT = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], np.float32)


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def best_time(fn, repeat: int) -> float:
    fn()  # warm up: page faults, lazy tables, thread start
    best = float("inf")
    for _ in range(repeat):
        t = CLOCK()
        fn()
        best = min(best, CLOCK() - t)
    return best


def best_times(fns: dict, repeat: int) -> dict:
    """Best time of each of several functions, run in turn (round robin), so that a slow
    stretch of a shared machine hits them alike and their ratio stays meaningful."""
    for fn in fns.values():
        fn()
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = CLOCK()
            fn()
            best[k] = min(best[k], CLOCK() - t)
    return best


# ---- memory bandwidth probe ------------------------------------------------------------


def stream_bandwidth(repeat: int) -> float:
    """GB/s of a 256 MiB copy, counting bytes read plus bytes written."""
    a = np.ones(64 << 20, np.float32)
    b = np.empty_like(a)
    return 2 * a.nbytes / best_time(lambda: np.copyto(b, a), repeat) / 1e9


# ---- the numpy peer: the same algorithms written with array operations ---------------


def np_pack(q: np.ndarray, bits: int) -> np.ndarray:
    per = 32 // bits
    shifts = (np.arange(per, dtype=np.uint32) * bits)
    return (q.reshape(*q.shape[:-1], -1, per).astype(np.uint32) << shifts).sum(-1, dtype=np.uint32)


def np_unpack(wq: np.ndarray, bits: int) -> np.ndarray:
    per = 32 // bits
    shifts = (np.arange(per, dtype=np.uint32) * bits)
    return ((wq[..., None] >> shifts) & ((1 << bits) - 1)).reshape(*wq.shape[:-1], -1)


def np_quantize(w: np.ndarray, mode: str, gs: int, bits: int):
    x = w.astype(np.float32).reshape(-1, gs)
    if mode == "affine":
        n = np.float32(2**bits - 1)
        w_max, w_min = x.max(1), x.min(1)
        mask = np.abs(w_min) > np.abs(w_max)
        scale = np.maximum((w_max - w_min) / n, np.float32(1e-7))
        scale = np.where(mask, scale, -scale)
        edge = np.where(mask, w_min, w_max)
        q0 = np.rint(edge / scale)
        nz = q0 != 0
        scale = np.where(nz, edge / np.where(nz, q0, 1), scale)
        bias = np.where(nz, edge, np.float32(0))
        q = np.clip(np.rint((x - bias[:, None]) / scale[:, None]), 0, n)
        wq = np_pack(q.reshape(w.shape[0], -1), bits)
        s = scale.reshape(w.shape[0], -1).astype(w.dtype)
        return wq, s, bias.reshape(w.shape[0], -1).astype(w.dtype)
    amax = np.abs(x).max(1)
    if mode == "mxfp4":
        s = amax / np.float32(6)
        m, e = np.frexp(s)
        e = np.where(s == 0, 0, np.where(m == 0.5, e - 1, e)).astype(np.int32)
        v = x / np.ldexp(np.float32(1), e)[:, None]
        byte = (e + 127).astype(np.uint8)
    else:  # nvfp4
        import ml_dtypes

        s8 = (amax / np.float32(6)).astype(ml_dtypes.float8_e4m3fn)
        v = x / np.where(s8 == 0, 1, s8.astype(np.float32))[:, None]
        byte = s8.view(np.uint8)
    codes = np.abs(v[..., None] - FP4_LUT).argmin(-1).astype(np.uint32)
    return np_pack(codes.reshape(w.shape[0], -1), 4), byte.reshape(w.shape[0], -1)


def np_dequantize(q, mode: str, gs: int, bits: int):
    if mode == "affine":
        wq, s, b = q
        codes = np_unpack(wq, bits).reshape(-1, gs).astype(np.float32)
        out = codes * s.reshape(-1, 1).astype(np.float32) + b.reshape(-1, 1).astype(np.float32)
        return out.reshape(wq.shape[0], -1).astype(s.dtype)
    wq, byte = q
    vals = FP4_LUT[np_unpack(wq, 4)].reshape(-1, gs)
    if mode == "mxfp4":
        scale = np.ldexp(np.float32(1), byte.reshape(-1).astype(np.int32) - 127)
    else:
        import ml_dtypes

        scale = byte.reshape(-1).view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    return (vals * scale[:, None]).reshape(wq.shape[0], -1).astype(mlxq.bfloat16)


# ---- MLX -------------------------------------------------------------------------------


def mlx_fns(w: np.ndarray, mode: str, gs: int, bits: int):
    a = mx.array(w.view(np.uint16)).view(mx.bfloat16)
    mx.eval(a)

    def quant():
        r = mx.quantize(a, gs, bits, mode=mode)
        mx.eval(r)
        return r

    q = quant()

    def dequant():
        mx.eval(mx.dequantize(*q, group_size=gs, bits=bits, mode=mode))

    return quant, dequant


def fmt_rate(elems: int, nbytes: int, t: float | None) -> str:
    if t is None:
        return f"{'n/a':>18}"
    return f"{elems / t / 1e9:7.3f} G/s {nbytes / t / 1e9:6.2f} GB/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="mlxq threads (default: all CPUs)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or the process's CPU time (steadier on a shared machine)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        mlxq.set_num_threads(args.threads)
    if mx is not None:
        mx.set_default_device(mx.cpu)

    stream_bw = stream_bandwidth(args.repeat)
    active, detected = _core.isa()
    print(f"machine: {os.cpu_count()} CPUs, mlxq kernels {active} (detected {detected}), "
          f"{mlxq.get_num_threads()} mlxq threads, {args.clock} clock")
    print(f"memory stream probe (numpy copy, read + write): {stream_bw:.1f} GB/s")
    print(f"MLX: {mx.__version__ + ' (CPU)' if mx is not None else 'not installed'}; "
          f"matrix {args.rows}x{args.cols} bfloat16\n")

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((args.rows, args.cols), dtype=np.float32) * 0.02).astype(mlxq.bfloat16)
    n = w.size
    head = (f"{'case':<16}{'op':<9}{'device':<7}{'mlxq':>20}{'vs other':>9}{'MLX cpu':>20}"
            f"{'numpy':>20}{'vs MLX':>9}{'vs numpy':>10}{'of stream':>11}")
    print(head)
    print("-" * len(head))
    for mode, gs, bits in CASES:
        label = f"{mode} {bits}b g{gs}"
        qs = {dev: mlxq.quantize(w, gs, bits, mode, device=dev) for dev in ("cpu", "gpu")}
        t_mq = best_times({dev: (lambda d=dev: mlxq.quantize(w, gs, bits, mode, device=d))
                           for dev in qs}, args.repeat)
        t_md = best_times({dev: (lambda d=dev: mlxq.dequantize(*qs[d], group_size=gs, bits=bits,
                                                               mode=mode, device=d))
                           for dev in qs}, args.repeat)
        q = qs["cpu"]
        q_bytes = sum(a.nbytes for a in q)
        peer_rep = max(1, args.repeat // 3)
        t_nq = best_time(lambda: np_quantize(w, mode, gs, bits), peer_rep)
        nq = np_quantize(w, mode, gs, bits)
        t_nd = best_time(lambda: np_dequantize(nq, mode, gs, bits), peer_rep)
        t_xq = t_xd = None
        if mx is not None:
            xq, xd = mlx_fns(w, mode, gs, bits)
            t_xq = best_time(xq, peer_rep)
            t_xd = best_time(xd, peer_rep)
        for op, t_ms, t_x, t_n, nbytes, traffic in (
            ("quant", t_mq, t_xq, t_nq, w.nbytes, w.nbytes + q_bytes),
            ("dequant", t_md, t_xd, t_nd, q_bytes, q_bytes + w.nbytes),
        ):
            for dev, other in (("cpu", "gpu"), ("gpu", "cpu")):
                t_m = t_ms[dev]
                vs_mlx = f"{t_x / t_m:8.1f}x" if t_x else f"{'n/a':>9}"
                print(f"{label:<16}{op:<9}{dev:<7}{fmt_rate(n, nbytes, t_m):>20}"
                      f"{t_ms[other] / t_m:8.2f}x{fmt_rate(n, nbytes, t_x):>20}"
                      f"{fmt_rate(n, nbytes, t_n):>20}{vs_mlx}{t_n / t_m:9.1f}x"
                      f"{traffic / t_m / 1e9 / stream_bw:10.0%}")
    print("\nGB/s counts the bytes each operation reads (bf16 input for quant, packed data for "
          "dequant). device: whose arithmetic mlxq's kernels reproduce (all run on this CPU); "
          "vs other: the other device's time over this one's (below 1: slower).")


if __name__ == "__main__":
    main()
