"""The live oracle is the pinned MLX and mlx-lm (tests/oracle.py): the test extra pins exact
versions, and another installed version skips the live checks with the reason."""

from __future__ import annotations

import pytest

import oracle


def test_the_test_extra_pins_exact_mlx_and_mlx_lm_versions():
    pins = oracle.pinned()
    assert set(pins) == {"mlx", "mlx-lm"}
    assert all(v[0].isdigit() for v in pins.values())


def test_the_pinned_versions_need_no_skip():
    pins = oracle.pinned()
    assert oracle.mismatch(pins, pins) is None
    assert oracle.mismatch(pins, {}) is None  # not installed: importorskip's own skip


def test_another_mlx_version_makes_mlx_unimportable_with_the_reason():
    reason = oracle.mismatch({"mlx": "0.32.4", "mlx-lm": "0.32.2"},
                             {"mlx": "0.33.0", "mlx-lm": "0.32.2"})
    assert reason.startswith("live-oracle check skipped: mlx 0.33.0 is installed, the tests "
                             "pin mlx==0.32.4")
    finder = oracle.Refuse(reason)
    for name in ("mlx", "mlx.core", "mlx_lm", "mlx_lm.utils"):
        with pytest.raises(ImportError, match="mlx 0.33.0 is installed"):
            finder.find_spec(name)
    assert finder.find_spec("mlxq") is None and finder.find_spec("mlxq.io") is None
