"""Throughput of dequantizing pre-quantized sources: FP8 block-scaled (DeepSeek-V3 layout)
and compressed-tensors pack-quantized INT4, mlxq against mlx-lm's own code run by MLX (CPU)
and a numpy formula, all measured in the same run.

    python benchmarks/bench_fp8.py [--rows 7168 --cols 18432] [--repeat 3] [--threads N]

FP8: an E4M3 ``[rows, cols]`` matrix with float32 128x128 block scales to bfloat16.
  mlxq          dequantize_fp8_block, the whole matrix (a fresh output array per call)
  mlxq stream   the same in 1024-row slices into one reused buffer (the converter's path)
  mlx-lm        deepseek_v3 ``Model.sanitize``'s ``dequant`` on MLX arrays, with mx.eval
  numpy         ml_dtypes E4M3 -> float32, times the repeated scales, astype(bfloat16)
INT4: pack-quantized ``[rows, cols]`` with bfloat16 scales in groups of 32 to bfloat16.
  mlxq mlx      dequantize_pack_quantized(formula="mlx"): mx.dequantize's arithmetic
  mlxq ct       dequantize_pack_quantized(formula="compressed-tensors")
  mlx-lm        deepseek_v3 ``sanitize`` remap, then mx.dequantize, with mx.eval
  numpy         unpack nibbles, (code - 8) * scale in float32, astype(bfloat16)
Rates are weights per second (G/s); times are the best of --repeat runs after a warm-up.
Speed-ups are the peer's time over mlxq's (above 1: mlxq is faster).
"""

from __future__ import annotations

import argparse
import os
import sys
from types import SimpleNamespace

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import mlxq  # noqa: E402
from mlxq.formats import compressed_tensors as ct  # noqa: E402
from bench_kernels import best_time  # noqa: E402  (same timing)

try:
    import mlx.core as mx
    from mlx_lm.models import deepseek_v3
except ImportError:  # MLX is optional: its rows show "n/a"
    mx = None

FAKE_MODEL = SimpleNamespace(args=SimpleNamespace(num_hidden_layers=0))
BF16 = np.dtype(ml_dtypes.bfloat16)


def row(name: str, n: int, t: float | None) -> float | None:
    print(f"  {name:<14}" + (f"{'n/a':>12}" if t is None else
                             f"{n / t / 1e9:8.3f} G/s {t * 1e3:9.1f} ms"))
    return t


def ratios(name: str, mine: float, peers: dict[str, float | None]) -> None:
    """Peer time / mlxq time: above 1 means mlxq is faster."""
    parts = [f"{p / mine:.2f}x vs {k}" for k, p in peers.items() if p]
    print(f"  speed-up of {name}: " + ", ".join(parts))


def bench_fp8(rows: int, cols: int, repeat: int) -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(0, 256, (rows, cols), dtype=np.uint8)
    w[(w & 0x7F) == 0x7F] = 0x38  # no NaN codes: numpy's NaN patterns would differ anyway
    s = (rng.random((-(-rows // 128), -(-cols // 128))) * 1e-2).astype(np.float32)
    n = w.size
    print(f"FP8 block dequant {rows}x{cols} (E4M3 -> bfloat16, 128x128 float32 scales)")
    t_mlxq = row("mlxq", n, best_time(lambda: mlxq.dequantize_fp8_block(w, s), repeat))
    buf = np.empty((1024, cols), BF16)

    def stream():
        for r0 in range(0, rows, 1024):
            r1 = min(rows, r0 + 1024)
            mlxq.dequantize_fp8_block(w, s, rows=(r0, r1), out=buf[: r1 - r0])

    t_stream = row("mlxq stream", n, best_time(stream, repeat))
    t_mlx = None
    if mx is not None:
        mw, ms = mx.array(w), mx.array(s)

        def mlx_lm():
            out = deepseek_v3.Model.sanitize(FAKE_MODEL, {"p.weight": mw,
                                                          "p.weight_scale_inv": ms})
            mx.eval(out["p.weight"])

        t_mlx = row("mlx-lm (MLX)", n, best_time(mlx_lm, repeat))
        got = mlxq.dequantize_fp8_block(w, s)
        want = np.array(deepseek_v3.Model.sanitize(FAKE_MODEL, {
            "p.weight": mw, "p.weight_scale_inv": ms})["p.weight"].view(mx.uint16))
        print(f"  (mlxq == mlx-lm bit for bit: {bool((got.view(np.uint16) == want).all())})")
        del got, want
    else:
        row("mlx-lm (MLX)", n, None)

    def numpy_formula():
        e = w.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
        e *= np.repeat(np.repeat(s, 128, 0), 128, 1)[:rows, :cols]
        return e.astype(BF16)

    t_np = row("numpy", n, best_time(numpy_formula, repeat))
    ratios("mlxq", t_mlxq, {"mlx-lm": t_mlx, "numpy": t_np})
    ratios("mlxq stream", t_stream, {"mlx-lm": t_mlx, "numpy": t_np})


def bench_int4(rows: int, cols: int, repeat: int) -> None:
    rng = np.random.default_rng(1)
    packed = rng.integers(0, 2**32, (rows, cols // 8), dtype=np.uint64).astype(np.uint32)
    packed = packed.view(np.int32)
    scale = (rng.random((rows, cols // 32)) * 1e-2).astype(BF16)
    n = rows * cols
    print(f"INT4 pack-quantized dequant {rows}x{cols} (group 32, bfloat16 scales -> bfloat16)")
    shape = (rows, cols)
    t_mlx_f = row("mlxq mlx", n, best_time(
        lambda: ct.dequantize_pack_quantized(packed, scale, shape), repeat))
    t_ct_f = row("mlxq ct", n, best_time(lambda: ct.dequantize_pack_quantized(
        packed, scale, shape, formula="compressed-tensors"), repeat))
    t_mlx = None
    if mx is not None:
        mp = mx.array(packed)
        ms = mx.array(scale.view(np.uint16)).view(mx.bfloat16)
        mshape = mx.array(np.array(shape, np.int64))

        def mlx_lm():
            r = deepseek_v3.Model.sanitize(FAKE_MODEL, {
                "p.weight_packed": mp, "p.weight_scale": ms, "p.weight_shape": mshape})
            mx.eval(mx.dequantize(r["p.weight"], r["p.scales"], r["p.biases"],
                                  group_size=32, bits=4))

        t_mlx = row("mlx-lm (MLX)", n, best_time(mlx_lm, repeat))
    else:
        row("mlx-lm (MLX)", n, None)
    shifts = np.arange(8, dtype=np.uint32) * 4

    def numpy_formula():
        codes = ((packed.view(np.uint32)[..., None] >> shifts) & 15).reshape(rows, cols)
        v = (codes.astype(np.float32) - 8) * np.repeat(scale.astype(np.float32), 32, 1)
        return v.astype(BF16)

    t_np = row("numpy", n, best_time(numpy_formula, repeat))
    ratios("mlxq mlx", t_mlx_f, {"mlx-lm": t_mlx, "numpy": t_np})
    ratios("mlxq ct", t_ct_f, {"mlx-lm": t_mlx, "numpy": t_np})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=7168)
    ap.add_argument("--cols", type=int, default=18432)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="mlxq threads (default: all CPUs)")
    args = ap.parse_args()
    if args.threads:
        mlxq.set_num_threads(args.threads)
    if mx is not None:
        mx.set_default_device(mx.cpu)
    print(f"machine: {os.cpu_count()} CPUs, {mlxq.get_num_threads()} mlxq threads, "
          f"kernels {mlxq._core.isa()[0]}")
    bench_fp8(args.rows, args.cols, args.repeat)
    bench_int4(args.rows, -(-args.cols // 32) * 32, args.repeat)


if __name__ == "__main__":
    main()
