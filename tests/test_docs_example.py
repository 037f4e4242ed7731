"""The example test file of docs/validation.md runs and passes (so the page cannot rot),
and its report format on failure is the one the page shows."""

from __future__ import annotations

import os
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "docs", "examples", "test_my_conversion.py")


def test_example_file_passes(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "tmp"),
                        EXAMPLE], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "passed" in r.stdout


def test_exact_failure_report_is_the_documented_one(tmp_path):
    test = tmp_path / "test_fail.py"
    test.write_text(
        "import numpy as np\n"
        "from mlxq.testing import exact\n"
        "def test_x():\n"
        "    a = np.float32([1, 2, 3, 4])\n"
        "    b = np.float32([1, 2, 3.5, 4])\n"
        "    assert a == exact(b)\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--basetemp", str(tmp_path / "tmp"), str(test)], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 1
    assert "1 of 4 elements differ" in r.stdout
    assert "first at index (2,): 3.0 vs 3.5" in r.stdout
