#!/usr/bin/env python3
"""Tests what users install: the built wheel, in a fresh virtual environment, outside the
checkout (``make test-installed``; ``.ci/run`` runs it after ``make test``).

1. ``python -m build`` makes the sdist, then the wheel *from the sdist* (so a file the sdist
   forgets breaks the build here, as it would on a user's machine).
2. A fresh venv (no system site-packages) gets ``pip install <wheel>[test]``: no editable
   install, nothing of the source tree on ``sys.path``.
3. The test suite runs against that installed package from a copy of the checkout *without
   its* ``mlxq/`` *folder* (tests, fixtures, docs, Makefile, fuzz seeds: what the tests
   read), with ``MLXQ_TEST_INSTALLED`` set so that tests/test_packaging.py checks the
   package under test is the installed one and that its files are the source tree's. Then
   the installed package's own doctests (``--pyargs mlxq``), and the commands a new user
   runs first: ``mlxq --help``, ``mlxq demo``, ``python -m mlxq inspect``.

Everything but the tests that need the in-place build's internals runs: those are marked
``needs_checkout`` (tests/conftest.py lists why each does) and skipped here with that
reason.

    python tools/test_installed.py             # build, install, test; remove everything
    python tools/test_installed.py --keep      # keep the work folder (printed)
    python tools/test_installed.py --wheel W   # test an existing wheel
    python tools/test_installed.py -- -k hub   # extra pytest arguments
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the copy of the checkout leaves out: the package itself (the installed one must be
# the one imported), build artefacts and caches.
_NOT_COPIED = {"mlxq", "build", "dist", ".git", "fuzz-out", ".pytest_cache", ".hypothesis",
               "__pycache__", ".venv"}


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def _ignore(folder: str, names: list[str]) -> set[str]:
    top = os.path.abspath(folder) == str(ROOT)
    return {n for n in names if (top and n in _NOT_COPIED) or n == "__pycache__"
            or n.endswith((".egg-info", ".so", ".o"))}


def build(work: Path) -> Path:
    dist = work / "dist"
    # from outside the checkout: its build/ folder would shadow the `build` package. Its
    # long log is shown only when the build fails.
    cmd = [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)]
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout[-20000:], r.stderr[-20000:], sep="\n", file=sys.stderr)
        raise subprocess.CalledProcessError(r.returncode, cmd)
    wheels = glob.glob(str(dist / "mlxq-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {dist}, found {wheels}")
    return Path(wheels[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, default=None, help="an existing wheel to test")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mlxq-installed-"))
    try:
        wheel = args.wheel.resolve() if args.wheel else build(work)
        venv = work / "venv"
        _run([sys.executable, "-m", "venv", venv])
        py = venv / "bin" / "python"
        pip = [py, "-m", "pip", "--disable-pip-version-check", "-q"]
        _run([*pip, "install", f"{wheel}[test]"])
        tree = work / "checkout"
        shutil.copytree(ROOT, tree, ignore=_ignore, symlinks=True)
        env = dict(os.environ, MLXQ_TEST_INSTALLED="1", MLXQ_SOURCE_TREE=str(ROOT),
                   PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        # the suite, then the installed package's doctests (its own files, in site-packages)
        _run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", *args.pytest_args],
             cwd=tree, env=env)
        _run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules",
              "--pyargs", "mlxq", "--ignore-glob=*/__main__.py"], cwd=tree, env=env)
        # what a new user runs first, from a folder that has nothing of mlxq in it
        scratch = work / "scratch"
        scratch.mkdir()
        _run([venv / "bin" / "mlxq", "--help"], cwd=scratch, env=env,
             stdout=subprocess.DEVNULL)
        _run([venv / "bin" / "mlxq", "demo", "--dir", scratch / "demo"], cwd=scratch, env=env)
        _run([py, "-m", "mlxq", "inspect", "--summary", scratch / "demo" /
              "tiny-llama-mlx-4bit"], cwd=scratch, env=env)
        print(f"installed-package tests passed in {time.monotonic() - t0:.0f} s ({wheel.name})")
        return 0
    except subprocess.CalledProcessError as e:
        print(f"installed-package tests failed: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
