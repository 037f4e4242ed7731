"""The suite's rule that tests leave nothing in the temporary folder (the root conftest.py)
holds: a run whose test leaves a folder there fails, one that uses tmp_path passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    shutil.copy(os.path.join(ROOT, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_it.py").write_text(body)
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")  # only the rule under test
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--basetemp", str(tmp_path / "base"), "test_it.py"],
                          cwd=tmp_path, capture_output=True, text=True, env=env)


def test_a_test_that_leaves_a_temporary_folder_fails_the_run(tmp_path):
    r = _run(tmp_path, "import tempfile\n\ndef test_leak():\n"
                       "    tempfile.mkdtemp(prefix='leak-')\n")
    assert r.returncode != 0, r.stdout
    assert "tests left 1 entry in the temporary folder: leak-" in r.stdout, r.stdout


def test_a_subprocess_that_leaves_a_temporary_file_fails_the_run(tmp_path):
    r = _run(tmp_path, "import subprocess, sys\n\ndef test_leak():\n"
                       "    subprocess.run([sys.executable, '-c', 'import tempfile; "
                       "tempfile.mkstemp(prefix=\"child-\")'], check=True)\n")
    assert r.returncode != 0 and "temporary folder: child-" in r.stdout, r.stdout


def test_a_test_that_writes_under_tmp_path_passes(tmp_path):
    r = _run(tmp_path, "def test_ok(tmp_path):\n    (tmp_path / 'f').write_text('x')\n")
    assert r.returncode == 0, r.stdout
