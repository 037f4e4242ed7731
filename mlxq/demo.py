"""``mlxq demo`` (the main job: generate a small model, convert it) and ``mlxq bench`` (a
kernel tour: quantize one generated bfloat16 matrix in every mode, print a table)."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from . import _core
from ._dtypes import bfloat16
from .quant import dequantize, quantize

MODES = [
    ("affine", 64, 2), ("affine", 64, 3), ("affine", 64, 4), ("affine", 64, 5),
    ("affine", 64, 6), ("affine", 64, 8), ("affine", 32, 4), ("affine", 128, 4),
    ("mxfp4", 32, 4), ("mxfp8", 32, 8), ("nvfp4", 16, 4),
]


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_bench(rows: int = 2048, cols: int = 4096, out: TextIO | None = None) -> None:
    """``mlxq bench``: prints mode, bits, group size, bits per weight, RMSE, SNR and
    throughputs."""
    import sys

    out = out or sys.stdout
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(bfloat16)
    ref = w.astype(np.float64)
    power = float(np.mean(ref**2))
    from ._device import default_device

    active, _ = _core.isa()
    print(f"mlxq bench: {rows}x{cols} bfloat16 matrix, N(0, 0.02^2); kernels: {active}, "
          f"{_core.get_num_threads()} threads; device {default_device()} (MLXQ_DEVICE)",
          file=out)
    header = f"{'mode':<7}{'bits':>5}{'group':>6}{'bpw':>7}{'rmse':>11}{'snr dB':>8}" \
             f"{'quant Gel/s':>13}{'dequant Gel/s':>15}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for mode, gs, bits in MODES:
        q = quantize(w, gs, bits, mode)
        t_q = _best_of(lambda: quantize(w, gs, bits, mode))
        t_d = _best_of(lambda: dequantize(*q, group_size=gs, bits=bits, mode=mode))
        w_hat = dequantize(*q, group_size=gs, bits=bits, mode=mode).astype(np.float64)
        err = float(np.mean((w_hat - ref) ** 2))
        stored = sum(a.nbytes for a in q) * 8 / w.size
        snr = 10 * np.log10(power / err) if err > 0 else float("inf")
        print(f"{mode:<7}{bits:>5}{gs:>6}{stored:>7.3f}{np.sqrt(err):>11.3e}{snr:>8.2f}"
              f"{w.size / t_q / 1e9:>13.2f}{w.size / t_d / 1e9:>15.2f}", file=out)


def run_convert_demo(work_dir: str | None = None, out: TextIO | None = None) -> None:
    """The main job on a model generated here: a Llama-shaped checkpoint in Hugging Face
    layout, converted to 4-bit MLX with a per-layer error report; then, when mlx-lm is
    installed, the result is loaded with ``mlx_lm.load`` and generates a few tokens."""
    import os
    import shutil
    import sys
    import tempfile

    from .conversion import convert
    from .inspection import inspect_checkpoint
    from .synthetic import make_checkpoint

    out = out if out is not None else sys.stdout
    own = work_dir is None
    root = tempfile.mkdtemp(prefix="mlxq-demo-") if own else work_dir
    if own:
        print(f"mlxq demo: working in {root} (a temporary folder, removed at the end; "
              "--dir DIR keeps the models)", file=out)
    else:
        print(f"mlxq demo: working in {root} (kept afterwards)", file=out)
    try:
        os.makedirs(root, exist_ok=True)
        src = os.path.join(root, "tiny-llama-hf")
        dst = os.path.join(root, "tiny-llama-mlx-4bit")
        for p in (src, dst):
            if os.path.exists(p):
                shutil.rmtree(p)
        t = time.perf_counter()
        make_checkpoint(src, family="llama", layers=4, hidden=512, intermediate=1408,
                        vocab=4096, shard_size=20 << 20)
        print(f"generated {src} in {time.perf_counter() - t:.2f} s", file=out)
        print(inspect_checkpoint(src).summary(), file=out)
        print(f"\n$ mlxq convert {src} {dst} -q --report", file=out)
        result = convert(src, dst, quantize=True, report=True, stream=out)
        print(result.report_table(), file=out)
        print(result.summary(), file=out)
        print(inspect_checkpoint(dst).summary(), file=out)
        try:
            from mlx_lm import generate, load
        except ImportError:
            print("\n(mlx-lm is not installed: skipping the load check)", file=out)
            return
        import contextlib
        import io

        from mlx_lm import convert as mlx_lm_convert

        from .testing import compare_checkpoints, mlx_device

        ref = os.path.join(root, "tiny-llama-mlx_lm-4bit")
        if os.path.exists(ref):
            shutil.rmtree(ref)
        print("\nmlx_lm.convert of the same model, for reference (the first run of MLX on "
              "a machine compiles its CPU kernels, which may take a minute) ...", file=out,
              flush=True)
        with contextlib.redirect_stdout(io.StringIO()):
            mlx_lm_convert(src, ref, quantize=True)
        # (timings against mlx-lm are benchmarks/bench_convert.py's job, on a 1.3 GB model)
        dev = mlx_device()  # the device this machine's MLX quantized on
        print(f"mlx_lm.convert's folder: {ref} (MLX on this machine quantizes on its "
              f"{dev.upper()})", file=out)
        mine = dst
        if result.device != dev:
            # mlxq's default device is the GPU (what mlx_lm.convert writes on Apple
            # silicon): the comparison with this machine's MLX needs its device
            mine = os.path.join(root, f"tiny-llama-mlx-4bit-{dev}")
            if os.path.exists(mine):
                shutil.rmtree(mine)
            convert(src, mine, quantize=True, quiet=True, device=dev)
            vs = compare_checkpoints(dst, ref, check_config=True, check_index=True)
            print(f"{dst} (device {result.device}) vs mlx_lm.convert on the {dev.upper()}: "
                  + (vs.devices.describe("mlxq's", "mlx-lm's") if vs.devices is not None
                     else "identical" if vs.matches else "DIFFER"), file=out)
            print(f"$ mlxq convert {src} {mine} -q --device {dev}", file=out)
        same = compare_checkpoints(mine, ref, check_config=True, check_index=True)
        print(f"identical to mlx_lm.convert on MLX's {dev.upper()} (device {dev}; tensors, "
              f"config.json, index): {'yes' if same.matches else 'NO'}", file=out)
        if not same.matches:
            print(same.summary(), file=out)
        texts = []
        for d in (mine, ref):
            model, tokenizer = load(d)
            texts.append(generate(model, tokenizer, prompt="the time of day", max_tokens=8))
        print(f"mlx_lm.load + greedy generation, mlxq's folder:   {texts[0]!r}", file=out)
        print(f"mlx_lm.load + greedy generation, mlx-lm's folder: {texts[1]!r}", file=out)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
