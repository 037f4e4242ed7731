"""The whole suite's setup: what pytest collects, which mlxq the tests' subprocesses import,
and the rule that tests leave nothing in the temporary folder."""

import os
import tempfile

import pytest

# Doctests run over the package too (pyproject: --doctest-modules); __main__ would run the CLI.
collect_ignore = ["mlxq/__main__.py", "setup.py", "tools", "benchmarks"]

ROOT = os.path.dirname(os.path.abspath(__file__))
# `python -m mlxq ...` in a test's subprocess imports this checkout's mlxq, as the tests
# themselves do (whatever an editable install elsewhere points at).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != ROOT])

# The live oracle of this suite is mlx[cpu]: MLX's CPU backend, whose quantization arithmetic
# differs from its GPU kernels' (docs/formats.md). mlxq's default device is "gpu" (what
# mlx_lm.convert writes on Apple silicon), so every test that compares a default mlxq result
# with live MLX / mlx_lm.convert or with the CPU golden vectors would compare two devices.
# The whole suite (and the subprocesses it starts, which inherit the environment) therefore
# defaults to the CPU device, the one place this is decided; tests about the devices pass
# device= explicitly (tests/test_devices.py, tests/test_golden_gpu.py).
os.environ["MLXQ_DEVICE"] = "cpu"


@pytest.fixture(scope="session", autouse=True)
def _nothing_is_left_in_the_temporary_folder(tmp_path_factory):
    """Tests write under pytest's temporary folders only. For the session, the temporary
    folder that ``tempfile`` and subprocesses (``TMPDIR``) use is an empty folder of its
    own; whatever is still in it at the end was left behind by a test or doctest, and fails
    the run. (A folder of its own rather than a before/after listing of the machine's
    temporary folder, which other programs write to at the same time.)"""
    system = tmp_path_factory.getbasetemp() / "system-temp"  # basetemp first: it lives
    system.mkdir()                                            # in the real temp folder
    # MLX's CPU backend compiles kernels into TMPDIR/mlx/VERSION and reuses them in every
    # later process: a cache MLX keeps for itself, as in any use of MLX. The live-oracle
    # tests keep using the machine's (compiling them all again would take minutes).
    mlx_cache = os.path.join(tempfile.gettempdir(), "mlx")
    os.makedirs(mlx_cache, exist_ok=True)
    os.symlink(mlx_cache, system / "mlx")
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(system)
    try:
        yield
    finally:
        tmpdir, tempfile.tempdir = saved
        if tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = tmpdir
    left = sorted(n for n in os.listdir(system) if n != "mlx")
    if left:
        what = "1 entry" if len(left) == 1 else f"{len(left)} entries"
        pytest.fail(f"tests left {what} in the temporary folder: {', '.join(left[:10])}",
                    pytrace=False)
