"""mlxq.testing: one test per comparison rule, and the content of failure reports."""

import numpy as np
import pytest

import mlxq
from mlxq._dtypes import float8_e4m3fn
from mlxq.testing import (
    assert_arrays_equal,
    assert_weights_equal,
    close,
    compare_arrays,
    exact,
)


def test_identical_arrays_pass():
    a = np.arange(10, dtype=np.float32)
    assert_arrays_equal(a, a.copy())


def test_exact_compares_bits_so_signed_zeros_differ():
    with pytest.raises(AssertionError, match=r"1 of 1 elements differ.*0.0 vs -0.0"):
        assert_arrays_equal(np.float32([0.0]), np.float32([-0.0]))


def test_exact_nan_matches_only_the_same_payload():
    a = np.array([np.nan], np.float32)
    assert_arrays_equal(a, a.copy())
    b = np.array([0x7FC00001], np.uint32).view(np.float32)
    with pytest.raises(AssertionError):
        assert_arrays_equal(a, b)


def test_bfloat16_compared_by_bit_pattern():
    a = np.array([1.0, 2.0], mlxq.bfloat16)
    b = a.copy()
    b.view(np.uint16)[1] += 1  # next bf16 above 2.0
    with pytest.raises(AssertionError, match=r"max ULP diff 1.*index \(1,\): 2.0 vs 2.015625"):
        assert_arrays_equal(a, b)


def test_fp8_compared_by_bit_pattern():
    a = np.array([1.0, -2.0], float8_e4m3fn)
    b = a.copy()
    b.view(np.uint8)[0] ^= 1
    with pytest.raises(AssertionError, match="1 of 2 elements differ"):
        assert_arrays_equal(a, b)


def test_dtype_and_shape_differences_are_reported_first():
    with pytest.raises(AssertionError, match="dtype float32 != float16"):
        assert_arrays_equal(np.zeros(2, np.float32), np.zeros(2, np.float16))
    with pytest.raises(AssertionError, match=r"shape \[2\] != \[3\]"):
        assert_arrays_equal(np.zeros(2), np.zeros(3))


def test_report_counts_and_first_index_in_nd_arrays():
    a = np.zeros((3, 4), np.float32)
    b = a.copy()
    b[1, 2] = 0.5
    b[2, 3] = -4.0
    d = compare_arrays(a, b)
    assert d.n_diff == 2 and d.size == 12
    assert d.first_index == (1, 2) and d.first_values == (0.0, 0.5)
    assert d.max_abs == 4.0
    with pytest.raises(AssertionError, match=r"2 of 12 elements differ .*max abs diff 4;"):
        assert_arrays_equal(a, b)


def test_tolerance_modes():
    a = np.float32([1.0, 100.0])
    b = np.float32([1.0 + 1e-6, 100.0])
    with pytest.raises(AssertionError):
        assert_arrays_equal(a, b)
    assert_arrays_equal(a, b, exact=False, rtol=1e-5)
    assert_arrays_equal(a, b, exact=False, max_ulp=10)
    with pytest.raises(AssertionError, match="max ULP diff 8"):
        assert_arrays_equal(a, b, exact=False, max_ulp=7)
    assert_arrays_equal(a, b, exact=False, atol=1e-5)


def test_ulp_distance_across_zero():
    tiny = np.array([1, 0x80000001], np.uint32).view(np.float32)  # +min subnormal, -min subnormal
    d = compare_arrays(tiny[:1], tiny[1:])
    assert d.max_ulp == 2


def test_tolerance_mode_treats_nans_as_equal():
    a = np.float32([np.nan, 1.0])
    assert_arrays_equal(a, a.copy(), exact=False, rtol=0.0)


def test_integer_arrays():
    a = np.arange(5, dtype=np.uint32)
    b = a.copy()
    b[4] = 7
    with pytest.raises(AssertionError, match=r"index \(4,\): 4 vs 7"):
        assert_arrays_equal(a, b)


def test_large_arrays_compared_in_chunks(monkeypatch):
    import mlxq.testing as t

    monkeypatch.setattr(t, "_CHUNK", 7)
    a = np.arange(100, dtype=np.float32)
    b = a.copy()
    b[[3, 50, 99]] += 1
    d = compare_arrays(a, b)
    assert d.n_diff == 3 and d.first_index == (3,)


def test_weight_maps_report_every_problem():
    a = {"x.weight": np.zeros(2, np.float32), "y": np.ones(3), "only_a": np.zeros(1)}
    b = {"x.weight": np.float32([0, 1]), "y": np.ones(4), "only_b": np.zeros(1)}
    with pytest.raises(AssertionError) as info:
        assert_weights_equal(a, b)
    msg = str(info.value)
    assert "only in a (1): only_a" in msg
    assert "only in b (1): only_b" in msg
    assert "y: shape [3] != [4]" in msg
    assert "x.weight: 1 of 2 elements differ" in msg
    assert msg.startswith("weight maps differ (4 problems)")


def test_exact_wrapper_compares_arrays_and_maps():
    a = np.float32([1, 2])
    assert a == exact(a.copy())
    assert not (a == exact(np.float32([1, 3])))
    assert {"k": a} == exact({"k": a.copy()})
    assert a == close(np.float32([1, 2.0000002]), max_ulp=2)
    assert exact(a).report(np.float32([1, 3]))[0].startswith("array: 1 of 2 elements differ")
