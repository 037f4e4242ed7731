"""pytest plugin for mlxq, registered through the ``pytest11`` entry point.

Fixtures: ``assert_arrays_equal``, ``assert_weights_equal``, ``assert_checkpoints_equal``
(the functions of :mod:`mlxq.testing`, for suites that prefer fixtures to imports), and
``mlx_device``: the device the installed MLX quantizes on (``"gpu"`` on Apple silicon,
``"cpu"`` with ``mlx[cpu]``), to pass as ``device=`` to the mlxq conversion a test compares
with ``mlx_lm.convert``; the test is skipped when MLX is not installed.

Assertion reports: ``assert actual == mlxq.testing.exact(expected)`` (or ``close(...)``)
fails with mlxq's per-tensor report — counts, max abs/rel/ULP difference, first differing
index — in pytest's usual assertion explanation.

    def test_conversion(assert_checkpoints_equal, tmp_path):
        ...
        assert_checkpoints_equal(tmp_path / "ours", tmp_path / "mlx_lm")
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from . import testing


@pytest.fixture
def assert_arrays_equal() -> Callable[..., None]:
    return testing.assert_arrays_equal


@pytest.fixture
def assert_weights_equal() -> Callable[..., None]:
    return testing.assert_weights_equal


@pytest.fixture
def assert_checkpoints_equal() -> Callable[..., None]:
    return testing.assert_checkpoints_equal


@pytest.fixture
def mlx_device() -> str:
    pytest.importorskip("mlx.core")
    return testing.mlx_device()


def pytest_assertrepr_compare(config: Any, op: str, left: Any, right: Any) -> list[str] | None:
    if op != "==":
        return None
    if isinstance(right, testing._Expected):
        expected, actual = right, left
    elif isinstance(left, testing._Expected):
        expected, actual = left, right
    else:
        return None
    lines = expected.report(actual)
    return [f"value == {expected!r} failed:"] + lines
