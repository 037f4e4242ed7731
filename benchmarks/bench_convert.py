"""mlxq convert vs mlx_lm.convert on the same generated checkpoint: wall time, peak RSS,
throughput, and the ratios, with the machine's memory bandwidth measured in the same run.

Each converter runs in its own child process (so its peak RSS is its own, read from
wait4's rusage) on a checkpoint generated here (Llama-shaped, bfloat16, about 1.3 GB with
the defaults; or DeepSeek-V3-shaped, optionally as an FP8 block release), read from the
page cache by both. Usage:

    python benchmarks/bench_convert.py [--layers 10] [--hidden 2048] [--flags "-q"]
    python benchmarks/bench_convert.py --family deepseek_v3 --fp8   # FP8 -> 4-bit MLX, ~1 GB
    python benchmarks/bench_convert.py --mse    # also mlxq -q --q-method mse, vs plain -q
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kernels import stream_bandwidth  # noqa: E402



def run(cmd: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit status) of a child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(err[-3000:], file=sys.stderr)
    return wall, usage.ru_maxrss * 1024, proc.returncode


def du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def mlx_device() -> str:
    """The device the installed MLX (which mlx_lm.convert runs on) quantizes on."""
    try:
        from mlxq.testing import mlx_device as device

        return device()
    except ImportError:
        return "cpu"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--flags", default="-q", help="converter flags (default: -q)")
    ap.add_argument("--family", default="llama", choices=["llama", "deepseek_v3"],
                    help="checkpoint shape (deepseek_v3: MLA and routed experts)")
    ap.add_argument("--experts", type=int, default=64, help="deepseek_v3: routed experts")
    ap.add_argument("--fp8", action="store_true",
                    help="store the Linear weights as an FP8 block release does")
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--mse", action="store_true",
                    help="also time mlxq with --q-method mse added to the flags (goal: <= 3x "
                         "the time of the same flags without it)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per converter; the best wall time and the largest RSS count")
    args = ap.parse_args()

    if args.family == "deepseek_v3" and "--layers" not in sys.argv:
        args.layers, args.hidden, args.intermediate, args.vocab = 3, 1024, 1024, 32000
    root = args.dir or tempfile.mkdtemp(prefix="mlxq-bench-convert-")
    os.makedirs(root, exist_ok=True)
    src = os.path.join(root, "hf")
    if not os.path.exists(src):
        # In a child: a child's ru_maxrss starts at its parent's RSS when it forks, so this
        # process stays small for the measured children.
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", (
            "import sys; from mlxq.synthetic import make_checkpoint; "
            f"make_checkpoint(sys.argv[1], family={args.family!r}, layers={args.layers}, "
            f"hidden={args.hidden}, intermediate={args.intermediate}, vocab={args.vocab}, "
            f"heads={args.hidden // 128}, kv_heads={args.hidden // 128}, shard_size=1 << 30, "
            f"experts={args.experts}, fp8={args.fp8})"),
            src], check=True)
        print(f"generated {src} in {time.perf_counter() - t:.1f} s")
    size = du(src)
    largest = args.vocab * args.hidden * 2
    print(f"checkpoint {args.family}{' FP8' if args.fp8 else ''} {size / 1e9:.2f} GB (largest "
          f"tensor {largest / 1e6:.0f} MB); flags {args.flags!r}; {os.cpu_count()} cores")
    flags = shlex.split(args.flags)

    results = {}
    # mlxq quantizes on the device mlx_lm.convert quantizes on here, so the outputs compare
    mlxq_cmd = [sys.executable, "-m", "mlxq", "convert", src, "{dst}", "--quiet",
                "--device", mlx_device()] + flags
    runs = [("mlxq", mlxq_cmd),
            ("mlx_lm", [sys.executable, "-m", "mlx_lm", "convert", "--hf-path", src,
                        "--mlx-path", "{dst}"] + flags)]
    if args.mse:
        runs.append(("mse", mlxq_cmd + ["--q-method", "mse"]))
    for name, cmd in runs:
        dst = os.path.join(root, f"out-{name}")
        walls, rsss, rc = [], [], 0
        for _ in range(args.repeat):
            shutil.rmtree(dst, ignore_errors=True)
            wall, rss, rc = run([c.replace("{dst}", dst) for c in cmd])
            if rc != 0:
                break
            walls.append(wall)
            rsss.append(rss)
        if rc != 0:
            print(f"{name}: failed (exit {rc})")
            continue
        wall, rss = min(walls), max(rsss)
        results[name] = (wall, rss)
        print(f"{name:>7}: {wall:7.2f} s  peak RSS {rss / 1e6:8.1f} MB  "
              f"{size / wall / 1e9:5.2f} GB/s read  output {du(dst) / 1e9:.2f} GB")
    bw = stream_bandwidth(3) * 1e9  # after the children: its buffers would inflate their RSS
    print(f"memory stream bandwidth (256 MiB copy, read + write) {bw / 1e9:.1f} GB/s")
    for name, (wall, rss) in results.items():
        print(f"{name:>7}: {size / wall / bw:.1%} of stream bandwidth")
    if "mse" in results and "mlxq" in results:
        (tq, _), (ts, rs) = results["mlxq"], results["mse"]
        line = f"mlxq --q-method mse: {ts / tq:.1f}x the time of mlxq without it (goal: <= 3x)"
        if "mlx_lm" in results:
            line += f", {ts / results['mlx_lm'][0]:.1f}x mlx_lm.convert's"
        print(line + f"; peak RSS {rs / 1e6:.0f} MB")
    if "mlxq" in results and "mlx_lm" in results:
        (tq, rq), (tm, rm) = results["mlxq"], results["mlx_lm"]
        print(f"mlxq vs mlx_lm.convert: {tm / tq:.1f}x faster, {rq / rm:.1%} of its peak RSS "
              f"(goal: >= 5x faster, <= 25% of the memory)")
        same = subprocess.run([sys.executable, "-c",
                               "import sys, mlxq.testing as t; "
                               "t.assert_checkpoints_equal(sys.argv[1], sys.argv[2], "
                               "check_index=True)",
                               os.path.join(root, "out-mlxq"), os.path.join(root, "out-mlx_lm")],
                              capture_output=True, text=True)
        print("outputs identical:", same.returncode == 0, same.stderr[-500:] if same.returncode
              else "")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
