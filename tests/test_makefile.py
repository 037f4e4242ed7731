"""`make deps` re-runs the editable install only when something changed: no stamp yet,
pyproject.toml or setup.py newer than the stamp, or ``import mlxq`` not finding this
checkout. Run on a copy of the Makefile with a stand-in interpreter that logs what pip is
asked to do (nothing is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_PY = """#!/bin/sh
# -c: the "does import mlxq find this checkout" check, answered by a marker file
if [ "$1" = "-c" ]; then [ -e "{marker}" ]; exit $?; fi
echo "$@" >> "{log}"
"""


@pytest.fixture
def checkout(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(os.path.join(ROOT, "Makefile"), tmp_path / "Makefile")
    for f in ("pyproject.toml", "setup.py"):
        (tmp_path / f).write_text("")
    (tmp_path / "bin").mkdir()
    py = tmp_path / "bin" / "py"
    py.write_text(FAKE_PY.format(marker=tmp_path / "imports-here", log=tmp_path / "pip.log"))
    pkg = tmp_path / "bin" / "pkg-config"  # json-c "present": no apt-get
    pkg.write_text("#!/bin/sh\nexit 0\n")
    for f in (py, pkg):
        f.chmod(0o755)
    (tmp_path / "imports-here").write_text("")
    return tmp_path


def deps(d) -> list[str]:
    """Runs `make deps`; returns the pip commands it ran."""
    log = d / "pip.log"
    if log.exists():
        log.unlink()
    env = dict(os.environ, PATH=f"{d / 'bin'}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["make", "-s", "deps", f"PY={d / 'bin' / 'py'}"], cwd=d, env=env,
                   check=True, capture_output=True, text=True)
    return log.read_text().splitlines() if log.exists() else []


def edited_after(path, stamp) -> None:
    """As if ``path`` had been edited after ``stamp`` was made."""
    now = time.time()
    os.utime(stamp, (now - 100, now - 100))
    os.utime(path, (now - 50, now - 50))


def test_deps_installs_once_then_skips_until_something_changes(checkout):
    first = deps(checkout)
    assert any("install --no-build-isolation -e .[test]" in c for c in first), first
    assert deps(checkout) == []  # nothing changed: no pip at all
    for changed in ("pyproject.toml", "setup.py"):
        edited_after(checkout / changed, checkout / "build" / "deps.stamp")
        assert any("-e .[test]" in c for c in deps(checkout)), changed
        assert deps(checkout) == []

def test_deps_reinstalls_when_import_mlxq_finds_another_checkout(checkout):
    deps(checkout)
    (checkout / "imports-here").unlink()
    assert any("-e .[test]" in c for c in deps(checkout))
