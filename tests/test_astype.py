"""mlxq.astype: MLX's astype between float dtypes, bit for bit."""

import numpy as np
import pytest

import mlxq
from mlxq import _core

BF16 = np.dtype(mlxq.bfloat16)
FLOATS = [np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def bits(a):
    return a.view(UINT[a.itemsize])


@pytest.fixture(params=["avx512", "avx2", "scalar"])
def isa(request):
    active, detected = _core.isa()
    order = ["scalar", "avx2", "avx512"]
    if order.index(request.param) > order.index(detected):
        pytest.skip(f"this CPU has no {request.param}")
    prev = _core.set_isa(request.param)
    yield request.param
    _core.set_isa(prev)


def sources(rng):
    f32 = np.concatenate([
        rng.integers(0, 2**32, 50000, dtype=np.uint64).astype(np.uint32),
        np.array([0x7F800001, 0xFF800001, 0x7FC00000, 0x477FF000, 0x477FEFFF, 0x33000000,
                  0x33000001, 0x387FC000, 0x7F7FFFFF, 0x7F7F8000, 0x3F808000, 0x3F818000],
                 np.uint32)]).view(np.float32)
    return {
        np.dtype(np.float16): np.arange(65536, dtype=np.uint16).view(np.float16),
        BF16: np.arange(65536, dtype=np.uint16).view(BF16),
        np.dtype(np.float32): f32,
        np.dtype(np.float64): np.concatenate([
            rng.standard_normal(20000) * 10.0 ** rng.integers(-320, 308, 20000),
            rng.integers(0, 2**63, 1000).view(np.float64)]),
    }


def test_rules_without_mlx():
    # round to nearest even on the bfloat16 boundary, MLX's NaN patterns
    x = np.array([0x3F808000, 0x3F818000, 0x7FC00001, 0xFFC00000], np.uint32).view(np.float32)
    assert [hex(v) for v in bits(mlxq.astype(x, "bfloat16"))] == ["0x3f80", "0x3f82", "0x7fc0", "0x7fc0"]
    assert [hex(v) for v in bits(mlxq.astype(x[2:], np.float16))] == ["0x7d00", "0xfd00"]
    # float64 narrows through float32: 1 + 2^-8 + 2^-30 rounds up to bf16 1+2^-7 in one step,
    # but to the tie 1 + 2^-8 in float32 first, which then goes to even (1.0)
    v = np.float64(1 + 2**-8 + 2**-30)
    assert mlxq.astype(np.array([v]), BF16)[0] == 1.0
    # same dtype: a bit-exact copy, signalling NaNs included
    s = np.array([0x7F800001], np.uint32).view(np.float32)
    assert bits(mlxq.astype(s, np.float32))[0] == 0x7F800001


def test_strided_and_batched_inputs(isa):
    a = np.random.default_rng(0).standard_normal((5, 6, 70)).astype(np.float32)
    for view in [a[:, ::2], a.transpose(2, 0, 1), a[..., ::-1], a[0, 0, 3]]:
        got = mlxq.astype(view, BF16)
        assert got.flags.c_contiguous and got.shape == np.shape(view)
        assert bits(got).tobytes() == bits(mlxq.astype(np.ascontiguousarray(view), BF16, impl="reference")).tobytes()


def test_non_float_dtypes_rejected():
    with pytest.raises(mlxq.errors.UnsupportedDtypeError):
        mlxq.astype(np.zeros(3, np.int32), np.float32)
    with pytest.raises(mlxq.errors.UnsupportedDtypeError):
        mlxq.astype(np.zeros(3, np.float32), np.int8)


def test_matches_live_mlx(isa):
    mx = pytest.importorskip("mlx.core")
    to_mx = {np.dtype(np.float16): mx.float16, BF16: mx.bfloat16,
             np.dtype(np.float32): mx.float32, np.dtype(np.float64): mx.float64}
    for src, a in sources(np.random.default_rng(1)).items():
        x = (mx.array(bits(a)).view(mx.bfloat16) if src == BF16 else mx.array(a, dtype=to_mx[src]))
        for dst in FLOATS:
            y = x.astype(to_mx[dst])
            want = np.array(y.view(mx.uint16)) if dst == BF16 else bits(np.array(y))
            for impl in ["fast", "reference"]:
                got = bits(mlxq.astype(a, dst, impl=impl))
                diff = np.flatnonzero(got != want)
                assert diff.size == 0, (
                    f"{src} -> {dst} ({impl}): {diff.size} differ, first input "
                    f"{hex(bits(a)[diff[0]])}: MLX {hex(want[diff[0]])}, mlxq {hex(got[diff[0]])}")
