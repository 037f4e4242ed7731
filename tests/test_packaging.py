"""What users install holds the whole package.

In the checkout's run: the sdist has every source file the build and the package need (a
header left out makes ``pip install mlxq-*.tar.gz`` fail to compile). In the run against the
installed wheel (``make test-installed``: tools/test_installed.py sets
``MLXQ_TEST_INSTALLED`` and ``MLXQ_SOURCE_TREE``): the package under test is the installed
one, not the source tree, and its files are exactly the source tree's package files, so the
next new subpackage or stub cannot be forgotten."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import mlxq

INSTALLED = bool(os.environ.get("MLXQ_TEST_INSTALLED"))
SOURCE_TREE = Path(os.environ.get("MLXQ_SOURCE_TREE") or Path(__file__).resolve().parent.parent)

#: The package's files in a source tree: what the wheel must install (the compiled _core
#: aside). Suffixes of build and cache artefacts are not package files.
_PACKAGE_SUFFIXES = (".py", ".pyi", ".typed")


def package_files(tree: Path) -> set[str]:
    """``mlxq/...`` paths of the package's files in the source tree (tracked by git when it
    is a git checkout, so a stray local file does not count)."""
    try:
        out = subprocess.run(["git", "-C", str(tree), "ls-files", "-z", "mlxq"],
                             capture_output=True, check=True, text=True).stdout
        names = {n for n in out.split("\0") if n}
    except (OSError, subprocess.CalledProcessError):
        names = {p.relative_to(tree).as_posix() for p in (tree / "mlxq").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    return {n for n in names if n.endswith(_PACKAGE_SUFFIXES)}


def source_files(tree: Path) -> set[str]:
    """The C sources and headers the extension is built from."""
    return {p.relative_to(tree).as_posix() for p in (tree / "src").rglob("*")
            if p.suffix in (".c", ".h")}


@pytest.mark.skipif(INSTALLED, reason="the checkout's run builds the sdist")
def test_the_sdist_holds_every_source_header_and_package_file(tmp_path):
    pytest.importorskip("build", reason="the build frontend (the test extra) makes the sdist")
    # from tmp_path: the checkout's build/ folder would shadow the `build` package
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                    str(tmp_path / "dist"), str(SOURCE_TREE)], cwd=tmp_path, check=True,
                   capture_output=True)
    (sdist,) = (tmp_path / "dist").glob("mlxq-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    want = (package_files(SOURCE_TREE) | source_files(SOURCE_TREE)
            | {"setup.py", "pyproject.toml", "README.md"})
    assert not want - names, f"missing from the sdist: {sorted(want - names)}"


@pytest.mark.skipif(not INSTALLED, reason="only against the installed wheel "
                    "(make test-installed)")
def test_the_package_under_test_is_the_installed_one_not_the_source_tree():
    here = Path(mlxq.__file__).resolve()
    assert not here.is_relative_to(SOURCE_TREE.resolve()), here
    assert Path(sys.prefix).resolve() in here.parents, (here, sys.prefix)
    assert str(SOURCE_TREE) not in sys.path


@pytest.mark.skipif(not INSTALLED, reason="only against the installed wheel "
                    "(make test-installed)")
def test_the_installed_files_are_the_source_trees_package_files():
    files = importlib.metadata.files("mlxq") or []
    installed = {f.as_posix() for f in files if f.as_posix().startswith("mlxq/")}
    py = {f for f in installed if f.endswith(_PACKAGE_SUFFIXES)}
    want = package_files(SOURCE_TREE)
    assert not want - py, f"in the source tree, not installed: {sorted(want - py)}"
    assert not py - want, f"installed, not in the source tree: {sorted(py - want)}"
    assert any(f.startswith("mlxq/_core.") and f.endswith(".so") for f in installed)


@pytest.mark.skipif(not INSTALLED, reason="only against the installed wheel "
                    "(make test-installed)")
def test_the_command_and_the_pytest_plugin_are_registered(request):
    eps = importlib.metadata.entry_points()
    assert [e.value for e in eps.select(group="console_scripts", name="mlxq")] == \
        ["mlxq.cli:main"]
    assert request.config.pluginmanager.hasplugin("mlxq")
