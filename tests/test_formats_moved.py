"""The source-format modules moved into mlxq.formats; their old paths keep working for a
release, give the same module objects and say so with a DeprecationWarning."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

OLD = ["awq", "gptq", "compressed_tensors", "fp8", "mxfp4_checkpoint", "external"]


def run(code: str) -> subprocess.CompletedProcess:
    """A fresh interpreter: the first import of an old path is the one that warns."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", OLD)
def test_an_old_import_path_gives_the_new_module_with_a_deprecation_warning(name):
    r = run(f"""
        import importlib, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            old = importlib.import_module("mlxq.{name}")
        new = importlib.import_module("mlxq.formats.{name}")
        assert old is new, (old, new)
        dep = [w for w in caught if w.category is DeprecationWarning]
        assert len(dep) == 1, [str(w.message) for w in caught]
        assert "mlxq.formats.{name}" in str(dep[0].message), dep[0].message
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_the_warning_points_at_the_importing_line():
    r = run("""
        import warnings
        warnings.simplefilter("always")
        from mlxq.awq import AwqLoadConfig  # the line the warning names
    """)
    assert r.returncode == 0, r.stderr
    assert "<string>:4: DeprecationWarning: mlxq.awq moved to mlxq.formats.awq" in r.stderr


def test_old_paths_follow_the_deprecation_filters():
    r = run("import mlxq.fp8")  # Python shows a script's own deprecations by default
    assert r.returncode == 0 and "DeprecationWarning: mlxq.fp8 moved" in r.stderr
    r = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c",
                        "import mlxq.fp8"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "DeprecationWarning" in r.stderr


def test_the_old_attribute_path_and_from_import_work_too():
    r = run("""
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import mlxq
        from mlxq import external
        import mlxq.formats.external as new
        assert mlxq.external is new and external is new
        assert mlxq.fp8.dequantize_fp8_block is mlxq.dequantize_fp8_block
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_the_new_paths_and_the_top_level_names_do_not_warn():
    r = run("""
        import warnings
        warnings.simplefilter("error")
        import mlxq
        from mlxq.formats import awq, gptq, compressed_tensors, fp8, mxfp4_checkpoint, external
        from mlxq import AwqLoadConfig, GptqConfig, transform_mxfp4_weights, dequantize_fp8_block
        assert mlxq.formats.external is external
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_a_name_that_never_existed_is_still_a_module_not_found_error():
    r = run("""
        try:
            import mlxq.no_such_module
        except ModuleNotFoundError as e:
            print(e.name)
    """)
    assert r.stdout.strip() == "mlxq.no_such_module", r.stderr
