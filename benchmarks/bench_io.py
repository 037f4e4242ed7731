"""Checkpoint I/O: mlxq against safetensors.numpy and MLX on one multi-GB file.

    python3 benchmarks/bench_io.py [--size-gb 2] [--dir /tmp]

Read: open the file (``mlxq.load_safetensors`` / ``safetensors.numpy.load_file`` /
``mx.load``), then touch it (one byte of every 4 KiB page of every tensor; for MLX,
``mx.eval`` of every array, which is how MLX reads its data). Reported per reader: open time,
touch time, RSS right after opening, private (anonymous) memory after touching, and peak RSS,
all relative to the process before opening. mlxq's touched pages are the page cache's, shared
and reclaimable (they show in RSS but not in private memory).

Write: the same tensors (bf16 and f32 mixed) written by each library, in GB/s, best of 3.
mlxq fsyncs before renaming into place; the others do not, so their time is also shown with
an fsync of the finished file added, the comparable figure.

Every measurement runs in a fresh subprocess. The page cache is warm (the file was just
written): cold-cache reads depend on the disk and need root to arrange. The file and the
outputs are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = 4096
REPEATS = 3


def status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile from /proc/self/status, in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def reset_peak() -> None:
    """Resets VmHWM to the current RSS (Linux >= 4.0), so peaks measure only what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def make_tensors(total: int):
    """~total bytes: 3/4 in bf16 matrices, 1/4 in f32, 64 MiB-ish each, cheap to fill."""
    import ml_dtypes
    import numpy as np

    tensors = {}
    i = 0
    made = 0
    while made < total:
        if i % 4 == 3:
            a = np.full((4096, 4096), i, np.float32)  # 64 MiB
        else:
            a = np.full((4096, 8192), i, np.float32).astype(ml_dtypes.bfloat16)  # 64 MiB
        tensors[f"model.layers.{i // 4}.t{i % 4}.weight"] = a
        made += a.nbytes
        i += 1
    return tensors


def touch_numpy(arrays) -> int:
    import numpy as np

    s = 0
    for a in arrays:
        if a.nbytes:
            b = a.reshape(-1).view(np.uint8)
            s += int(b[::PAGE].sum())
    return s


def child_read(lib: str, path: str) -> dict:
    if lib == "mlxq":
        import mlxq

        load = mlxq.load_safetensors
    elif lib == "safetensors":
        import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy, which load_file needs)
        from safetensors.numpy import load_file as load
    else:
        import mlx.core as mx

        def load(p):
            return mx.load(p)
    import numpy  # noqa: F401  (imported before the baseline)

    reset_peak()
    base = status()
    t0 = time.perf_counter()
    d = load(path)
    t1 = time.perf_counter()
    after_open = status()
    if lib == "mlx":
        import mlx.core as mx

        mx.eval(list(d.values()))
    else:
        touch_numpy(d.values())
    t2 = time.perf_counter()
    end = status()
    mb = 1 << 20
    return {
        "open_s": t1 - t0,
        "touch_s": t2 - t1,
        "rss_open_mb": (after_open["VmRSS"] - base["VmRSS"]) / mb,
        "anon_mb": (end["RssAnon"] - base["RssAnon"]) / mb,
        "peak_mb": (end["VmHWM"] - base["VmRSS"]) / mb,
    }


def child_write(lib: str, path: str, total: int) -> dict:
    tensors = make_tensors(total)
    nbytes = sum(a.nbytes for a in tensors.values())
    if lib == "mlxq":
        import mlxq

        save = lambda: mlxq.save_safetensors(path, tensors, metadata={"format": "mlx"})  # noqa: E731
    elif lib == "safetensors":
        from safetensors.numpy import save_file

        save = lambda: save_file(tensors, path, metadata={"format": "mlx"})  # noqa: E731
    else:
        import ml_dtypes
        import mlx.core as mx
        import numpy as np

        arrays = {}
        for k in list(tensors):
            a = tensors.pop(k)
            arrays[k] = (mx.array(a.view(np.uint16)).view(mx.bfloat16)
                         if a.dtype == ml_dtypes.bfloat16 else mx.array(a))
        mx.eval(list(arrays.values()))
        save = lambda: mx.save_safetensors(path, arrays, metadata={"format": "mlx"})  # noqa: E731
    reset_peak()
    base = status()
    best = None
    for _ in range(REPEATS):  # best of a few: the first write into a cold page cache varies
        if os.path.exists(path):
            os.unlink(path)
        t0 = time.perf_counter()
        save()
        t1 = time.perf_counter()
        if lib != "mlxq":  # mlxq has already fsynced
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        t2 = time.perf_counter()
        if best is None or t2 - t0 < best[1]:
            best = (t1 - t0, t2 - t0)
    end = status()
    return {
        "write_s": best[0],
        "synced_s": best[1],
        "gbps": nbytes / best[0] / 1e9,
        "synced_gbps": nbytes / best[1] / 1e9,
        "peak_extra_mb": (end["VmHWM"] - base["VmRSS"]) / (1 << 20),
    }


def run_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, env=env)
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, lib, path, *rest = args.child
        res = child_read(lib, path) if kind == "read" else child_write(lib, path, int(rest[0]))
        print(json.dumps(res))
        return

    total = int(args.size_gb * (1 << 30))
    work = Path(tempfile.mkdtemp(prefix="mlxq-bench-io-", dir=args.dir))
    libs = ["mlxq", "safetensors", "mlx"]
    try:
        print(f"file: {total / 2**30:.2f} GiB of bf16/f32 tensors in {work}, {os.cpu_count()} CPUs, "
              "warm page cache")
        print("\n== write ==")
        writes = {}
        for lib in libs:
            p = work / f"{lib}.safetensors"
            writes[lib] = r = run_child("write", lib, str(p), str(total))
            if "error" in r:
                print(f"{lib:12s} failed: {r['error']}")
                continue
            print(f"{lib:12s} {r['write_s']:7.2f} s  {r['gbps']:5.2f} GB/s   with fsync "
                  f"{r['synced_s']:7.2f} s  {r['synced_gbps']:5.2f} GB/s   "
                  f"extra peak RSS {r['peak_extra_mb']:7.0f} MiB")
            if lib != "mlxq":
                p.unlink(missing_ok=True)
        src = work / "mlxq.safetensors"
        print("\n== read: open, then touch every page ==")
        reads = {}
        for lib in libs:
            reads[lib] = r = run_child("read", lib, str(src))
            if "error" in r:
                print(f"{lib:12s} failed: {r['error']}")
                continue
            print(f"{lib:12s} open {r['open_s'] * 1e3:9.2f} ms  touch {r['touch_s']:6.2f} s  "
                  f"RSS after open {r['rss_open_mb']:7.0f} MiB  private after touch "
                  f"{r['anon_mb']:7.0f} MiB  peak RSS {r['peak_mb']:7.0f} MiB")
        print("\n== ratios (peer / mlxq) ==")
        m = reads.get("mlxq", {})
        for lib in libs[1:]:
            r, w = reads.get(lib, {}), writes.get(lib, {})
            if "open_s" in r and "open_s" in m:
                print(f"{lib:12s} open time x{r['open_s'] / m['open_s']:,.0f}   "
                      f"open+touch time x{(r['open_s'] + r['touch_s']) / (m['open_s'] + m['touch_s']):.2f}   "
                      f"private memory {r['anon_mb']:.0f} vs {m['anon_mb']:.0f} MiB")
            if "synced_s" in w and "synced_s" in writes.get("mlxq", {}):
                print(f"{'':12s} write time incl. fsync x{w['synced_s'] / writes['mlxq']['synced_s']:.2f}")
    finally:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
