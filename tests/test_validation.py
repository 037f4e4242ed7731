"""Argument validation: one test per rule.

Each rule is checked for the exact exception class from mlxq.errors, the builtin it also
derives from (so ``except ValueError`` keeps working), and a message that names the argument
at fault and its offending value.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import mlxq
from mlxq import errors
from support import BF16

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 128)).astype(np.float32)
WQ, S, B = mlxq.quantize(W)
WQ4, S4 = mlxq.quantize(W, mode="mxfp4")
WQ_NV, S_NV = mlxq.quantize(W, mode="nvfp4")


def raises(cls: type, builtin: type, *needles: str):
    """pytest.raises for ``cls`` that also checks the builtin base and message parts."""
    assert issubclass(cls, errors.MlxqError) and issubclass(cls, builtin)

    class _Check:
        def __enter__(self):
            self._cm = pytest.raises(cls)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self._cm.__exit__(*exc)
            if suppressed:
                e = self.info.value
                assert type(e) is cls, f"{type(e).__name__} raised, expected exactly {cls.__name__}"
                assert isinstance(e, builtin) and isinstance(e, errors.MlxqError)
                msg = str(e)
                for n in needles:
                    assert n in msg, f"{n!r} not in message {msg!r}"
            return suppressed

    return _Check()


# ---- mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["int4", "AFFINE", "", "mxfp6", 3, None])
def test_unknown_mode_is_rejected(mode):
    with raises(errors.UnknownEnumValueError, ValueError, "mode=", repr(mode)):
        mlxq.quantize(W, mode=mode)
    with raises(errors.UnknownEnumValueError, ValueError, "mode=", repr(mode)):
        mlxq.dequantize(WQ, S, B, mode=mode)


def test_unknown_mode_in_default_params_is_rejected():
    with raises(errors.UnknownEnumValueError, ValueError, "mode='q4'"):
        mlxq.default_params("q4")


def test_mode_accepts_quantmode_members_and_strings():
    assert mlxq.QuantMode("nvfp4") is mlxq.QuantMode.NVFP4
    a = mlxq.quantize(W, mode=mlxq.QuantMode.MXFP8)
    b = mlxq.quantize(W, mode="mxfp8")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_unknown_impl_is_rejected():
    with raises(errors.UnknownEnumValueError, ValueError, "impl='slow'"):
        mlxq.quantize(W, impl="slow")
    with raises(errors.UnknownEnumValueError, ValueError, "impl='slow'"):
        mlxq.dequantize(WQ, S, B, impl="slow")


# ---- bits and group size per mode ---------------------------------------------------


@pytest.mark.parametrize("bits", [0, 1, 7, 9, 16, -4])
def test_affine_bits_outside_2_3_4_5_6_8_are_rejected(bits):
    with raises(errors.OutOfRangeError, ValueError, f"bits={bits}", "affine"):
        mlxq.quantize(W, bits=bits)
    with raises(errors.OutOfRangeError, ValueError, f"bits={bits}"):
        mlxq.dequantize(WQ, S, B, bits=bits)


@pytest.mark.parametrize("gs", [16, 0, 48, 256, -64])
def test_affine_group_sizes_outside_32_64_128_are_rejected(gs):
    with raises(errors.OutOfRangeError, ValueError, f"group_size={gs}", "affine"):
        mlxq.quantize(W, group_size=gs)
    with raises(errors.OutOfRangeError, ValueError, f"group_size={gs}"):
        mlxq.dequantize(WQ, S, B, group_size=gs)


@pytest.mark.parametrize("mode, gs, bits", [
    ("mxfp4", 64, 4), ("mxfp4", 16, 4), ("mxfp8", 64, 8), ("nvfp4", 32, 4)])
def test_fp_modes_reject_other_group_sizes(mode, gs, bits):
    with raises(errors.OutOfRangeError, ValueError, f"group_size={gs}", mode):
        mlxq.quantize(W, gs, bits, mode=mode)


@pytest.mark.parametrize("mode, gs, bits", [
    ("mxfp4", 32, 8), ("mxfp4", 32, 2), ("mxfp8", 32, 4), ("nvfp4", 16, 8)])
def test_fp_modes_reject_other_bits(mode, gs, bits):
    with raises(errors.OutOfRangeError, ValueError, f"bits={bits}", mode):
        mlxq.quantize(W, gs, bits, mode=mode)
    with raises(errors.OutOfRangeError, ValueError, f"bits={bits}", mode):
        mlxq.dequantize(WQ4, S4, group_size=gs, bits=bits, mode=mode)


@pytest.mark.parametrize("name, value", [("bits", 4.0), ("bits", "4"), ("bits", True),
                                         ("group_size", 64.0), ("group_size", "64"),
                                         ("group_size", np.float32(64))])
def test_non_int_bits_and_group_size_are_rejected(name, value):
    with raises(errors.ArgumentTypeError, TypeError, name, repr(value)):
        mlxq.quantize(W, **{name: value})
    with raises(errors.ArgumentTypeError, TypeError, name, repr(value)):
        mlxq.dequantize(WQ, S, B, **{name: value})


@pytest.mark.parametrize("name", ["bits", "group_size"])
def test_bits_and_group_size_beyond_int32_are_out_of_range(name):
    with raises(errors.OutOfRangeError, ValueError, f"{name}={2**40}"):
        mlxq.quantize(W, **{name: 2**40})


def test_numpy_integers_are_accepted_for_bits_and_group_size():
    a = mlxq.quantize(W, np.int64(64), np.uint8(4))
    b = mlxq.quantize(W, 64, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


# ---- input dtype, rank, shape -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, np.int64, np.complex64,
                                   mlxq._dtypes.float8_e4m3fn])
def test_non_float_input_is_rejected(dtype):
    w = np.zeros((2, 64), dtype)
    with raises(errors.UnsupportedDtypeError, TypeError, "w", np.dtype(dtype).name):
        mlxq.quantize(w)


def test_float64_input_is_rejected_for_affine_like_mlx():
    with raises(errors.UnsupportedDtypeError, TypeError, "w", "float64", "affine"):
        mlxq.quantize(W.astype(np.float64))


@pytest.mark.parametrize("mode", ["mxfp4", "mxfp8", "nvfp4"])
def test_float64_input_is_accepted_by_fp_modes(mode):
    out = mlxq.quantize(W.astype(np.float64), mode=mode)
    assert out[0].dtype == np.uint32 and out[1].dtype == np.uint8


@pytest.mark.parametrize("shape", [(), (64,), (128,)])
def test_input_of_rank_below_2_is_rejected(shape):
    w = np.zeros(shape, np.float32)
    with raises(errors.RankMismatchError, ValueError, "w", f"got {len(shape)}"):
        mlxq.quantize(w, group_size=64)


@pytest.mark.parametrize("mode, cols", [("affine", 48), ("affine", 96), ("mxfp4", 48),
                                        ("mxfp8", 16), ("nvfp4", 24)])
def test_last_dimension_not_divisible_by_group_size_is_rejected(mode, cols):
    gs = mlxq.default_params(mode)[0]
    with raises(errors.DivisibilityError, ValueError, f"({cols})", f"group_size={gs}"):
        mlxq.quantize(np.zeros((2, cols), np.float32), mode=mode)


# ---- dequantize arguments -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint8, np.uint64, np.int64])
def test_dequantize_requires_uint32_packed_weights(dtype):
    wq = WQ.view(dtype) if np.dtype(dtype).itemsize == 4 else WQ.astype(dtype)
    with raises(errors.UnsupportedDtypeError, TypeError, "uint32", np.dtype(dtype).name):
        mlxq.dequantize(wq, S, B)


@pytest.mark.parametrize("mode", ["mxfp4", "mxfp8", "nvfp4"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.float32, BF16])
def test_fp_dequantize_requires_uint8_scales(mode, dtype):
    wq, sc = mlxq.quantize(W, mode=mode)
    with raises(errors.UnsupportedDtypeError, TypeError, "scales", "uint8",
                np.dtype(dtype).name):
        mlxq.dequantize(wq, sc.astype(dtype), mode=mode)


@pytest.mark.parametrize("which", ["scales", "biases"])
@pytest.mark.parametrize("dtype", [np.int32, np.uint8])
def test_affine_dequantize_requires_float_scales_and_biases(which, dtype):
    args = {"scales": S, "biases": B}
    args[which] = args[which].astype(dtype)
    with raises(errors.UnsupportedDtypeError, TypeError, which, np.dtype(dtype).name):
        mlxq.dequantize(WQ, **args)


def test_affine_dequantize_requires_biases():
    with raises(errors.InvalidArgumentError, ValueError, "biases", "affine"):
        mlxq.dequantize(WQ, S)


@pytest.mark.parametrize("mode", ["mxfp4", "mxfp8", "nvfp4"])
def test_fp_dequantize_rejects_biases(mode):
    wq, sc = mlxq.quantize(W, mode=mode)
    with raises(errors.InvalidArgumentError, ValueError, "biases", mode):
        mlxq.dequantize(wq, sc, sc, mode=mode)


@pytest.mark.parametrize("dtype", ["int8", np.int32, "float8", "complex64"])
def test_dequantize_rejects_non_float_output_dtype(dtype):
    with raises(errors.UnsupportedDtypeError, TypeError, "dtype", repr(dtype)):
        mlxq.dequantize(WQ, S, B, dtype=dtype)


def test_dequantize_rejects_packed_width_inconsistent_with_scales():
    # 8 words hold 64 4-bit elements, the scales describe 2 groups of 64
    with raises(errors.ShapeMismatchError, ValueError, "8 words", "2 groups", "64", "4 bits"):
        mlxq.dequantize(WQ[:, :8], S, B)


def test_dequantize_rejects_group_size_inconsistent_with_shapes():
    with raises(errors.ShapeMismatchError, ValueError, "16 words", "32 elements"):
        mlxq.dequantize(WQ, S, B, group_size=32)


def test_dequantize_rejects_bits_inconsistent_with_shapes():
    with raises(errors.ShapeMismatchError, ValueError, "16 words", "8 bits"):
        mlxq.dequantize(WQ, S, B, bits=8)


def test_dequantize_rejects_scales_and_biases_of_different_shapes():
    with raises(errors.ShapeMismatchError, ValueError, "scales", "biases", "(4, 1)", "(4, 2)"):
        mlxq.dequantize(WQ, S, B[:, :1])


def test_dequantize_rejects_batch_shapes_that_differ():
    with raises(errors.ShapeMismatchError, ValueError, "leading dimensions", "(4,", "(2,"):
        mlxq.dequantize(WQ, S[:2], B[:2])


def test_dequantize_shape_mismatches_raise_shape_mismatch_error():
    """The class (not the message) of the two cases above, which must hold already."""
    for args in [(WQ, S, B[:, :1]), (WQ, S[:2], B[:2]), (WQ[None], S, B)]:
        with pytest.raises(errors.ShapeMismatchError, match="scales"):
            mlxq.dequantize(*args)


@pytest.mark.parametrize("which", ["w", "scales"])
def test_dequantize_inputs_of_rank_below_2_are_rejected(which):
    args = {"w": WQ, "scales": S, "biases": B}
    args[which] = args[which][0]
    name = "wq" if which == "w" else which
    with raises(errors.RankMismatchError, ValueError, name, "got 1"):
        mlxq.dequantize(**args)


# ---- global_scale -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["affine", "mxfp4", "mxfp8"])
def test_global_scale_outside_nvfp4_is_rejected(mode):
    with raises(errors.InvalidArgumentError, ValueError, "global_scale", mode):
        mlxq.quantize(W, mode=mode, global_scale=1.0)
    q = mlxq.quantize(W, mode=mode)
    with raises(errors.InvalidArgumentError, ValueError, "global_scale", mode):
        mlxq.dequantize(*q, mode=mode, global_scale=1.0)


@pytest.mark.parametrize("value", [np.float64(2.0), np.float16(2.0), np.array(2.0),
                                   np.array([2], np.int32)])
def test_global_scale_array_must_be_float32(value):
    dt = np.asarray(value).dtype.name
    with raises(errors.UnsupportedDtypeError, TypeError, "global_scale", "float32", dt):
        mlxq.quantize(W, mode="nvfp4", global_scale=value)
    with raises(errors.UnsupportedDtypeError, TypeError, "global_scale", dt):
        mlxq.dequantize(WQ_NV, S_NV, mode="nvfp4", global_scale=value)


@pytest.mark.parametrize("shape", [(2,), (0,), (1, 2)])
def test_global_scale_array_must_have_one_element(shape):
    with raises(errors.ShapeMismatchError, ValueError, "global_scale", str(shape)):
        mlxq.quantize(W, mode="nvfp4", global_scale=np.ones(shape, np.float32))


@pytest.mark.parametrize("value", ["2.0", [2.0], True, None.__class__])
def test_global_scale_of_a_non_number_type_is_rejected(value):
    with raises(errors.ArgumentTypeError, TypeError, "global_scale", type(value).__name__):
        mlxq.quantize(W, mode="nvfp4", global_scale=value)


def test_global_scale_accepts_python_numbers_and_size_1_float32_arrays():
    ref = mlxq.quantize(W, mode="nvfp4", global_scale=np.float32(0.37))
    for v in (0.37, np.array(0.37, np.float32), np.array([[0.37]], np.float32)):
        got = mlxq.quantize(W, mode="nvfp4", global_scale=v)
        assert all(np.array_equal(x, y) for x, y in zip(got, ref))


# ---- threads ------------------------------------------------------------------------


def test_set_num_threads_rejects_negative_counts():
    with raises(errors.OutOfRangeError, ValueError, "n=-1"):
        mlxq.set_num_threads(-1)


@pytest.mark.parametrize("value", [1.5, "2", True, [2]])
def test_set_num_threads_rejects_non_integers(value):
    with raises(errors.ArgumentTypeError, TypeError, "n", type(value).__name__):
        mlxq.set_num_threads(value)


def test_set_num_threads_sets_and_restores():
    prev = mlxq.get_num_threads()
    try:
        assert mlxq.set_num_threads(1) == 1 and mlxq.get_num_threads() == 1
        assert mlxq.set_num_threads(np.int64(2)) == 2
        default = mlxq.set_num_threads(None)
        assert default >= 1 and mlxq.set_num_threads(0) == default
    finally:
        mlxq.set_num_threads(prev)


# ---- inputs are never modified ------------------------------------------------------


def _snapshot(*arrays):
    return [(a.dtype, a.shape, a.tobytes()) for a in arrays]


@pytest.mark.parametrize("impl", ["reference", "fast"])
@pytest.mark.parametrize("mode, dtype", [("affine", np.float16), ("affine", BF16),
                                         ("affine", np.float32), ("mxfp4", np.float64),
                                         ("mxfp8", BF16), ("nvfp4", np.float16)])
def test_inputs_are_never_modified(mode, dtype, impl):
    w = RNG.standard_normal((3, 2, 128)).astype(dtype)
    u = w.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[w.dtype.itemsize])
    u[0, 0, :3] = [u.dtype.type(x) for x in (np.iinfo(u.dtype).max, np.iinfo(u.dtype).max // 2 + 1, 0)]
    view = w[:, :, ::-1]  # a view into the same buffer
    before = _snapshot(w)
    gscale = np.array([0.5], np.float32) if mode == "nvfp4" else None
    g_before = None if gscale is None else gscale.tobytes()
    q = mlxq.quantize(view, mode=mode, global_scale=gscale, impl=impl)
    assert _snapshot(w) == before
    q_before = _snapshot(*q)
    for dt in (None, "float32"):
        mlxq.dequantize(*q, mode=mode, global_scale=gscale, dtype=dt, impl=impl)
    assert _snapshot(*q) == q_before
    assert gscale is None or gscale.tobytes() == g_before


def test_failed_calls_leave_inputs_alone():
    w = W.copy()
    with pytest.raises(errors.MlxqError):
        mlxq.quantize(w, group_size=48)
    assert w.tobytes() == W.tobytes()


def test_every_error_class_derives_from_mlxq_error_and_a_builtin():
    builtins = (ValueError, TypeError, KeyError, OverflowError, RuntimeError, OSError,
                MemoryError, ImportError)
    for name in errors.__all__:
        cls = getattr(errors, name)
        if cls is errors.MlxqWarning:  # the one warning category, not an error
            assert issubclass(cls, UserWarning) and not issubclass(cls, errors.MlxqError)
            continue
        assert issubclass(cls, errors.MlxqError)
        if cls is not errors.MlxqError:
            assert issubclass(cls, builtins), name


def test_every_public_exception_is_importable_from_the_top_level():
    for name in errors.__all__:
        assert getattr(mlxq, name) is getattr(errors, name), name
        assert name in mlxq.__all__
    from mlxq import SafetensorsError  # as docs/io.md names it

    assert SafetensorsError is errors.SafetensorsError


def test_error_messages_do_not_leak_placeholders():
    with pytest.raises(errors.MlxqError) as info:
        mlxq.quantize(W, bits=7)
    assert not re.search(r"%[dsl]", str(info.value))


def test_empty_batch_quantizes_to_empty_outputs_like_mlx():
    wq, scales, biases = mlxq.quantize(np.zeros((0, 64), np.float32), group_size=64)
    assert wq.shape == (0, 8) and scales.shape == (0, 1) and biases.shape == (0, 1)
