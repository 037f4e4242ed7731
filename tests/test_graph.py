"""The lazy weight graph (mlxq.conversion.graph): each operation computes what MLX's does,
bit for bit (checked live against MLX), and any block of rows equals the same rows of the
whole result, so the converter may evaluate outputs in row blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlxq
from mlxq.conversion import graph as g
from support import as_bits

mx = pytest.importorskip("mlx.core")

BF16 = mlxq.bfloat16
DTYPES = {"bfloat16": BF16, "float16": np.dtype(np.float16), "float32": np.dtype(np.float32)}


class ArrayReader:
    """The reader protocol Source needs (info, dtype, read_rows, path), over arrays; it
    counts the rows read so tests can see what streams."""

    path = "<memory>"

    def __init__(self, arrays):
        self.arrays = arrays
        self.rows_read = 0

    class _Info:
        def __init__(self, shape):
            self.shape = shape

    def info(self, name):
        return self._Info(self.arrays[name].shape)

    def dtype(self, name):
        return self.arrays[name].dtype

    def read_rows(self, name, start, out):
        a = self.arrays[name]
        flat = a.reshape(-1, a.shape[-1] if a.ndim else 1)
        out[...] = flat[start:start + out.shape[0]]
        self.rows_read += out.shape[0]
        return out


def source(arr, name="t"):
    return g.Source(ArrayReader({name: arr}), name)


def to_mx(a):
    if a.dtype == BF16:
        return mx.array(a.view(np.uint16)).view(mx.bfloat16)
    return mx.array(a)


def from_mx(x):
    if x.dtype == mx.bfloat16:
        return np.array(x.view(mx.uint16)).view(BF16)
    return np.array(x)


def rand(shape, dtype, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal(shape) * 3).astype(np.float32).astype(dtype)


def assert_same(t: g.Tensor, want: np.ndarray, what=""):
    got = t.numpy()
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, want.dtype,
                                                                  got.shape, want.shape)
    np.testing.assert_array_equal(as_bits(got), as_bits(np.ascontiguousarray(want)), what)
    # every split into row blocks gives the same rows
    n = t.nrows
    for step in sorted({1, 2, 3, max(1, n // 3), n or 1}):
        blocks = [t.rows(r, min(n, r + step)) for r in range(0, n, step)]
        if blocks:
            whole = np.concatenate(blocks).reshape(t.shape)
            np.testing.assert_array_equal(as_bits(whole), as_bits(got), f"{what} step {step}")


# ---- each operation against MLX -------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(DTYPES))
def test_stack_concatenate_split_equal_mlx(dtype):
    a, b = rand((3, 4, 8), DTYPES[dtype], 1), rand((3, 4, 8), DTYPES[dtype], 2)
    ta, tb = source(a, "a"), source(b, "b")
    for axis in (0, 1, 2, 3, -1):
        assert_same(g.stack([ta, tb, ta], axis), from_mx(mx.stack([to_mx(a), to_mx(b),
                                                                    to_mx(a)], axis)), f"stack {axis}")
    for axis in (0, 1, 2):
        assert_same(g.concatenate([ta, tb], axis),
                    from_mx(mx.concatenate([to_mx(a), to_mx(b)], axis)), f"concat {axis}")
        for parts in (2, [1, 3]):
            want = mx.split(to_mx(a), parts if isinstance(parts, int) or axis != 0 else [1, 2],
                            axis) if not (isinstance(parts, int) and a.shape[axis] % parts) \
                else None
            if want is None:
                continue
            got = g.split(ta, parts if isinstance(parts, int) or axis != 0 else [1, 2], axis)
            for x, w in zip(got, want):
                assert_same(x, from_mx(w), f"split {axis} {parts}")


def test_indexing_equals_mlx():
    a = rand((4, 6, 10), BF16)
    t = source(a)
    for key in [(slice(1, 3),), (slice(None), slice(None, None, 2)), (Ellipsis, slice(2, 7)),
                (1,), (slice(None), 2), (Ellipsis, slice(None, None, 3)),
                (slice(None, None, 2), slice(1, None, 2), slice(None))]:
        assert_same(t[key], from_mx(to_mx(a)[key]), str(key))
    assert_same(t[:, :, 3], from_mx(to_mx(a)[:, :, 3]), "int on the last axis")


def test_reshape_transpose_view_equal_mlx():
    a = rand((4, 6, 8), BF16)
    t, x = source(a), to_mx(a)
    assert_same(t.reshape(8, 24), from_mx(x.reshape(8, 24)), "reshape")
    assert_same(t.reshape(-1, 16), from_mx(x.reshape(-1, 16)), "reshape -1")
    assert_same(t.reshape(2, 2, 6, 2, 4), from_mx(x.reshape(2, 2, 6, 2, 4)), "reshape up")
    assert_same(t.flatten(-2), from_mx(x.flatten(-2)), "flatten")
    assert_same(t.swapaxes(0, 1), from_mx(x.swapaxes(0, 1)), "swap leading")
    assert_same(t.swapaxes(-1, -2), from_mx(x.swapaxes(-1, -2)), "swap last")
    assert_same(t.moveaxis(2, 1), from_mx(mx.moveaxis(x, 2, 1)), "moveaxis")
    assert_same(t.transpose(1, 0, 2), from_mx(x.transpose(1, 0, 2)), "transpose")
    assert_same(t.view(np.uint32), np.array(x.view(mx.uint32)), "view")
    assert not t.swapaxes(-1, -2).streams and t.swapaxes(0, 1).streams


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_astype_equals_mlx(dtype):
    a = rand((5, 7), np.float32)
    a[0, :3] = [np.nan, np.inf, -np.nan]
    for to in DTYPES.values():
        assert_same(source(a).astype(DTYPES[dtype]).astype(to),
                    from_mx(to_mx(a).astype(getattr(mx, dtype)).astype(
                        getattr(mx, str(np.dtype(to))))), f"{dtype}->{to}")


@pytest.mark.parametrize("da", list(DTYPES))
@pytest.mark.parametrize("db", list(DTYPES) + ["scalar", "int"])
def test_arithmetic_promotes_and_rounds_as_mlx(da, db):
    a = rand((4, 8), DTYPES[da], 3)
    x = to_mx(a)
    if db == "scalar":
        others = [(0.2, 0.2), (1.0, 1.0), (-8, -8)]
    elif db == "int":
        others = [(source(np.arange(8, dtype=np.int32)), mx.arange(8, dtype=mx.int32))]
    else:
        b = rand((4, 8), DTYPES[db], 4)
        v = rand((8,), DTYPES[db], 5)
        c = rand((4, 1), DTYPES[db], 6)
        others = [(source(b, "b"), to_mx(b)), (source(v, "v"), to_mx(v)), (source(c, "c"), to_mx(c))]
    for ob, xb in others:
        t = source(a)
        for name, f in (("add", lambda p, q: p + q), ("mul", lambda p, q: p * q),
                        ("sub", lambda p, q: p - q), ("rmul", lambda p, q: q * p),
                        ("radd", lambda p, q: q + p)):
            assert_same(f(t, ob), from_mx(f(x, xb)), f"{da} {name} {db}")


def test_pad_equals_mlx():
    a = rand((5, 6), BF16)
    assert_same(g.pad(source(a), ((0, 3), (0, 2))), from_mx(mx.pad(to_mx(a), ((0, 3), (0, 2)))))
    assert_same(g.pad(source(a), ((0, 0), (1, 2))), from_mx(mx.pad(to_mx(a), ((0, 0), (1, 2)))))


@pytest.mark.parametrize("mode,gs,bits", [("affine", 64, 4), ("affine", 32, 3), ("mxfp4", 32, 4),
                                          ("nvfp4", 16, 4)])
def test_quantize_and_dequantize_equal_mlx(mode, gs, bits):
    a = rand((6, 128), BF16)
    got = g.quantize(source(a), gs, bits, mode)
    want = mx.quantize(to_mx(a), gs, bits, mode=mode)
    for t, w in zip(got, want):
        assert_same(t, from_mx(w), f"quantize {mode}")
    deq = g.dequantize(*got[:2], got[2] if mode == "affine" else None, gs, bits, mode)
    assert_same(deq, from_mx(mx.dequantize(*want[:2], want[2] if mode == "affine" else None,
                                           gs, bits, mode=mode)), f"dequantize {mode}")


def test_fp8_block_dequant_equals_mlx_lm_dequant():
    """mlx-lm's deepseek_v3 dequant, on every code, with a size not a multiple of 128."""
    r = np.random.default_rng(0)
    w = r.integers(0, 256, (300, 257)).astype(np.uint8)
    s = (r.random((3, 3)) * 4).astype(np.float32)
    got = g.fp8_block_dequant(source(w.view(mlxq._dtypes.float8_e4m3fn)), source(s, "s"))

    def dequant(weight, scale_inv):  # mlx_lm.models.deepseek_v3's, as written there
        weight = mx.from_fp8(weight, dtype=mx.bfloat16)
        bs = 128
        m, n = weight.shape
        pad_bottom, pad_side = (-m) % bs, (-n) % bs
        weight = mx.pad(weight, ((0, pad_bottom), (0, pad_side)))
        weight = weight.reshape(((m + pad_bottom) // bs, bs, (n + pad_side) // bs, bs))
        weight = (weight * scale_inv[:, None, :, None]).reshape(m + pad_bottom, n + pad_side)
        return weight[:m, :n].astype(mx.bfloat16)
    assert_same(got, from_mx(dequant(mx.array(w), mx.array(s))))


def test_sources_are_recorded_and_nothing_is_read_until_asked():
    rd = ArrayReader({"a": rand((4, 8), BF16), "b": rand((4, 8), BF16)})
    a, b = g.Source(rd, "a"), g.Source(rd, "b")
    t = g.stack([a, b]) * 2.0
    assert rd.rows_read == 0
    assert {s.name for s in t.sources()} == {"a", "b"}
    t.rows(0, 2)
    assert rd.rows_read == 2  # only the rows asked for: the first two of a


def test_a_stacked_tensor_is_read_one_expert_at_a_time():
    experts = {f"e{i}": rand((16, 32), BF16, i) for i in range(8)}
    rd = ArrayReader(experts)
    t = g.stack([g.Source(rd, f"e{i}") for i in range(8)]).astype(np.float32)
    blocks = [t.rows(r, r + 16) for r in range(0, t.nrows, 16)]
    assert rd.rows_read == 8 * 16 and t.streams
    np.testing.assert_array_equal(np.concatenate(blocks)[16:32], experts["e1"].astype(np.float32))


def test_an_expert_tensor_transposed_is_read_one_expert_at_a_time():
    """[E, in, out] swapped into [E, out, in] (the Hub's fused expert layout into MLX's):
    each expert is read once, whatever the row blocks, and never the whole tensor."""
    w = rand((6, 16, 24), BF16)
    rd = ArrayReader({"w": w})
    t = g.Source(rd, "w").swapaxes(-1, -2)
    blocks = [t.rows(r, min(r + 5, t.nrows)) for r in range(0, t.nrows, 5)]
    np.testing.assert_array_equal(np.concatenate(blocks).reshape(t.shape),
                                  w.swapaxes(-1, -2))
    assert rd.rows_read == 6 * 16
    rd.rows_read = 0
    t2 = g.Source(rd, "w").swapaxes(-1, -2)
    np.testing.assert_array_equal(t2.rows(2, 10), w.swapaxes(-1, -2).reshape(-1, 16)[2:10])
    assert rd.rows_read == 16  # rows 2:10 lie in expert 0 (24 rows each)
    np.testing.assert_array_equal(t2.rows(0, t2.nrows).reshape(t2.shape), w.swapaxes(-1, -2))


# ---- random chains: rows always equal the whole ---------------------------------------------

OPS = ["astype", "slice0", "slicelast", "swap01", "reshape", "mul", "add_vec", "stack",
       "concat0", "concatlast", "pad", "transpose_last"]


@settings(max_examples=120)
@given(st.lists(st.sampled_from(OPS), min_size=1, max_size=5), st.integers(0, 2**31))
def test_any_chain_of_operations_gives_the_same_rows_as_the_whole(ops, seed):
    r = np.random.default_rng(seed)
    a = (r.standard_normal((4, 6, 8)) * 2).astype(np.float32).astype(BF16)
    t = source(a)
    x = to_mx(a)
    for op in ops:
        if t.ndim < 2 or t.size == 0:
            break
        if op == "astype":
            t, x = t.astype(np.float32), x.astype(mx.float32)
        elif op == "slice0" and t.shape[0] > 1:
            t, x = t[1:], x[1:]
        elif op == "slicelast" and t.shape[-1] > 2:
            t, x = t[..., ::2], x[..., ::2]
        elif op == "swap01" and t.ndim >= 3:
            t, x = t.swapaxes(0, 1), x.swapaxes(0, 1)
        elif op == "reshape" and t.shape[-1] % 2 == 0:
            t, x = t.reshape(-1, 2), x.reshape(-1, 2)
        elif op == "mul":
            t, x = t * 0.3, x * 0.3
        elif op == "add_vec":
            v = r.standard_normal(t.shape[-1]).astype(np.float32)
            t, x = t + g.constant(v), x + mx.array(v)
        elif op == "stack":
            t, x = g.stack([t, t * 2.0]), mx.stack([x, x * 2.0])
        elif op == "concat0":
            t, x = g.concatenate([t, t], 0), mx.concatenate([x, x], 0)
        elif op == "concatlast":
            t, x = g.concatenate([t, t * -1.0], -1), mx.concatenate([x, x * -1.0], -1)
        elif op == "pad":
            w = [(0, 0)] * (t.ndim - 1) + [(1, 2)]
            t, x = g.pad(t, w), mx.pad(x, w)
        elif op == "transpose_last":
            t, x = t.swapaxes(-1, -2), x.swapaxes(-1, -2)
    assert_same(t, from_mx(x), " ".join(ops))


@pytest.mark.parametrize("shape,axis", [((37, 70), -1), ((37, 70), 0), ((3, 5, 9), -1),
                                        ((300, 4), 0), ((9,), 0)])
def test_norm_equals_mlx_linalg_norm(shape, axis):
    """mx.linalg.norm on the CPU, bit for bit: the summation order is MLX's, not numpy's
    pairwise one (the values are spread over many binades so that the order shows)."""
    r = np.random.default_rng(7)
    a = (r.standard_normal(shape) * np.exp(r.uniform(-8, 8, shape))).astype(np.float32)
    t = source(a)
    for keepdims in (True, False):
        got = g.norm(t, axis=axis, keepdims=keepdims)
        assert_same(got, from_mx(mx.linalg.norm(mx.array(a), axis=axis, keepdims=keepdims)),
                    f"{shape} {axis} {keepdims}")
    # the summation order matters for these inputs: numpy's own (pairwise) sum along the
    # contiguous axis differs somewhere
    if axis == -1 and a.shape[axis] >= 64:
        pairwise = np.sqrt(np.square(a).sum(axis=axis, dtype=np.float32))
        assert not np.array_equal(pairwise, g.norm(t, axis=axis).numpy())


def test_norm_refuses_what_it_does_not_compute():
    with pytest.raises(mlxq.errors.InvalidArgumentError, match="float32"):
        g.norm(source(rand((4, 8), BF16)))
    with pytest.raises(mlxq.errors.InvalidArgumentError, match="axis"):
        g.norm(source(rand((2, 4, 8), np.float32)), axis=0)


def test_a_division_by_a_row_norm_reads_each_row_once():
    """baichuan_m1's ``w / (norm(w, axis=-1) + 1e-7)``: the per-row divisor is row-aligned
    with the rows asked for, so a row block reads only its own rows."""
    a = rand((64, 16), np.float32)
    rd = ArrayReader({"w": a})
    w = g.Source(rd, "w")
    t = (w / (g.norm(w, axis=-1, keepdims=True) + 1e-7)).astype(BF16)
    blocks = [t.rows(r, r + 8) for r in range(0, 64, 8)]
    assert rd.rows_read == 2 * 64  # the rows, and the same rows for their norms
    x = mx.array(a)
    want = from_mx((x / (mx.linalg.norm(x, axis=-1, keepdims=True) + 1e-7)).astype(mx.bfloat16))
    np.testing.assert_array_equal(as_bits(np.concatenate(blocks)), as_bits(want))
