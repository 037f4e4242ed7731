"""mlxq convert ORG/NAME vs mlx_lm.convert --hf-path ORG/NAME, both downloading from the
same local stand-in Hub (tests/hub_server.py on 127.0.0.1): wall time, peak RSS, and the
figure a conversion from the Hub is bounded by, the most disk in use at once (source files
wherever the tool keeps them, plus the output).

A Llama-shaped bfloat16 checkpoint is generated (about 0.9 GB in 10 shards with the
defaults) and published on the stand-in. Each converter runs in its own child process with
its own empty HF_HOME; a thread polls the disk use of that HF_HOME and of the output's
parent folder every 10 ms. The network is the loopback, so download time is small: the
disk figures are the point. Needs ``pip install huggingface_hub mlx-lm``. Usage:

    python benchmarks/bench_hub.py [--layers 8] [--hidden 2048] [--shards 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from hub_server import MLX_LM_CLI, HubServer, point_client_at  # noqa: E402


def du(path: Path) -> int:
    total = 0
    for r, _, fs in os.walk(path):
        for f in fs:
            try:
                total += os.lstat(os.path.join(r, f)).st_size
            except OSError:
                pass  # deleted while walking
    return total


def run(cmd: list[str], env: dict[str, str], watch: list[Path]) -> tuple[float, int, int, int]:
    """(wall s, peak RSS bytes, peak disk bytes under ``watch``, exit status)."""
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sum(du(p) for p in watch))
            stop.wait(0.01)

    th = threading.Thread(target=poll, daemon=True)
    t = time.perf_counter()
    th.start()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    stop.set()
    th.join()
    peak[0] = max(peak[0], sum(du(p) for p in watch))
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0 and proc.stderr:
        print(proc.stderr.read().decode(errors="replace")[-3000:], file=sys.stderr)
    return wall, usage.ru_maxrss * 1024, peak[0], rc


def mlx_device() -> str:
    """The device the installed MLX (which mlx_lm.convert runs on) quantizes on: mlxq
    converts on it too, so the outputs compare."""
    try:
        from mlxq.testing import mlx_device as device

        return device()
    except ImportError:
        return "cpu"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--shards", type=int, default=10)
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="mlxq-bench-hub-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "src"
    if not src.exists():
        # two bytes per parameter; the shard limit that gives about --shards files
        params = (args.vocab * args.hidden * 2 + args.layers * (
            4 * args.hidden * args.hidden + 3 * args.hidden * args.intermediate))
        # in a child: a child's ru_maxrss starts at its parent's RSS when it forks, so this
        # process stays small for the measured children
        subprocess.run([sys.executable, "-c", (
            "import sys; from mlxq.synthetic import make_checkpoint; "
            f"make_checkpoint(sys.argv[1], layers={args.layers}, hidden={args.hidden}, "
            f"intermediate={args.intermediate}, vocab={args.vocab}, "
            f"shard_size={int(params * 2 / args.shards) + 1})"), str(src)], check=True)
    (src / "README.md").write_text("---\nlicense: mit\n---\n# bench\n")
    shards = sorted(src.glob("model-*.safetensors"))
    size = sum(p.stat().st_size for p in shards)
    largest = sorted(p.stat().st_size for p in shards)[-2:]
    print(f"checkpoint llama {size / 1e9:.2f} GB in {len(shards)} shards (two largest "
          f"{sum(largest) / 1e9:.2f} GB), served from 127.0.0.1")

    results = {}
    with HubServer() as hub, point_client_at(hub.endpoint, work / "unused-hf-home"):
        hub.add_repo("bench/llama", src)
        for name in ("mlxq", "mlx_lm"):
            home, out = work / f"hf-{name}", work / f"out-{name}"
            for p in (home, out):
                shutil.rmtree(p, ignore_errors=True)
            out.mkdir()
            env = dict(os.environ, HF_HOME=str(home), HF_HUB_DISABLE_PROGRESS_BARS="1")
            if name == "mlxq":
                cmd = [sys.executable, "-m", "mlxq", "convert", "bench/llama",
                       str(out / "q"), "-q", "--quiet", "--device", mlx_device()]
            else:
                cmd = [sys.executable, "-c", MLX_LM_CLI, str(ROOT / "tests"), "convert",
                       "--hf-path", "bench/llama", "--mlx-path", str(out / "q"), "-q"]
            wall, rss, disk, rc = run(cmd, env, [home, out])
            if rc != 0:
                print(f"{name}: failed (exit {rc})")
                continue
            written = du(out / "q")
            results[name] = (wall, rss, disk, written)
            print(f"{name:>7}: {wall:7.2f} s  peak RSS {rss / 1e6:8.1f} MB  peak disk "
                  f"{disk / 1e9:6.3f} GB (output {written / 1e9:.3f} GB, source at most "
                  f"{(disk - written) / 1e9:.3f} GB)  {size / wall / 1e6:7.1f} MB/s of source")
    if len(results) == 2:
        (tq, rq, dq, _), (tm, rm, dm, _) = results["mlxq"], results["mlx_lm"]
        print(f"mlxq vs mlx_lm.convert --hf-path: {tm / tq:.1f}x the speed, {rq / rm:.1%} of "
              f"its peak RSS, {dq / dm:.1%} of its peak disk")
        same = subprocess.run([sys.executable, "-m", "mlxq", "compare",
                               str(work / "out-mlxq" / "q"), str(work / "out-mlx_lm" / "q")],
                              capture_output=True, text=True)
        print("outputs identical:", same.returncode == 0, same.stdout[-300:] if same.returncode
              else "")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
