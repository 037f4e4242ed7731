"""Start-up time of the commands people type first: ``mlxq --help``, ``mlxq inspect DIR``
(a dense and a quantized folder) and ``python -c "import mlxq"``, against peers measured in
the same run: the bare interpreter (``python -c pass``) and a standard-library command line
(``python -m json.tool --help``).

Each command is a fresh process; runs are interleaved (one of each in turn) so that the
machine's load falls on all of them alike, and the median of ``--runs`` is reported with
its ratio to each peer and the time over the bare interpreter (what mlxq itself costs).
The target is 0.3 s for ``mlxq --help`` and ``mlxq inspect``. Children run with bytecode
caching on (into a temporary ``PYTHONPYCACHEPREFIX``, warmed by one run of each command),
as an installed package runs, even where ``PYTHONDONTWRITEBYTECODE`` is set.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 0.3


def _time(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    args = ap.parse_args()
    sys.path.insert(0, ROOT)  # this checkout's mlxq, as `python -m mlxq` from ROOT runs it
    import mlxq
    from mlxq.synthetic import make_checkpoint

    with tempfile.TemporaryDirectory(prefix="mlxq-bench-startup-") as d:
        dense = make_checkpoint(os.path.join(d, "dense"), layers=4, hidden=256,
                                intermediate=512, vocab=512)
        quantized = os.path.join(d, "q4")
        mlxq.convert(dense, quantized, quantize=True, quiet=True)
        py = sys.executable
        commands = {
            "python -c pass (peer)": [py, "-c", "pass"],
            "python -m json.tool --help (peer)": [py, "-m", "json.tool", "--help"],
            'python -c "import mlxq"': [py, "-c", "import mlxq"],
            "mlxq --help": [py, "-m", "mlxq", "--help"],
            "mlxq inspect DENSE": [py, "-m", "mlxq", "inspect", dense],
            "mlxq inspect QUANTIZED": [py, "-m", "mlxq", "inspect", quantized],
        }
        # As an installed package runs: with bytecode cached. PYTHONDONTWRITEBYTECODE (set
        # in some CI and sandbox environments) would recompile every module at every start;
        # the cache goes to a temporary prefix, so nothing is written into the checkout.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(d, "pycache")
        for argv in commands.values():  # warm the page cache and the bytecode cache
            _time(argv, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_time(argv, env))

    med = {k: statistics.median(v) for k, v in times.items()}
    bare, peer = med["python -c pass (peer)"], med["python -m json.tool --help (peer)"]
    print(f"start-up, median of {args.runs} runs each (interleaved); target {TARGET} s "
          f"for mlxq --help and mlxq inspect")
    head = f"{'command':<36}{'median s':>10}{'x pass':>8}{'x json.tool':>12}{'over pass s':>13}"
    print(head)
    print("-" * len(head))
    for name, m in med.items():
        mark = ""
        if name.startswith("mlxq "):
            mark = "  ok" if m <= TARGET else "  over target"
        print(f"{name:<36}{m:>10.3f}{m / bare:>8.2f}{m / peer:>12.2f}{m - bare:>13.3f}{mark}")


if __name__ == "__main__":
    main()
