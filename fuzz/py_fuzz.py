"""libFuzzer (through atheris) on one Python target of fuzz/py_targets.py.

    python fuzz/py_fuzz.py TARGET [libFuzzer flags] [corpus folders]

Any exception other than an MlxqError escapes the target, which atheris reports as a
crash (the input is saved under -artifact_prefix). `make fuzz` runs every target for
FUZZ_PY_TIME seconds from its seeds in fuzz/corpus/py_TARGET/.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["mlxq"]):
    import mlxq  # noqa: F401
    import mlxq.conversion  # noqa: F401
    import mlxq.models  # noqa: F401
    import mlxq.formats.external  # noqa: F401
    import mlxq.formats.gguf  # noqa: F401
    import mlxq.conversion.gguf_source  # noqa: F401
    import mlxq.shards  # noqa: F401
    import mlxq.stored  # noqa: F401

import py_targets  # noqa: E402


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in py_targets.TARGETS:
        raise SystemExit(f"usage: py_fuzz.py {{{','.join(py_targets.TARGETS)}}} [libFuzzer args]")
    target = py_targets.TARGETS[sys.argv.pop(1)]
    sys.setrecursionlimit(10_000)  # a parser must not depend on a small stack to be safe
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
