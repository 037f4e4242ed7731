"""Empty arrays (docs/api.md, "Empty arrays"): mlxq answers every empty quantize and
dequantize with empty outputs of the formulas' shapes; the live MLX answers the same where
it answers at all, and raises where the page says it does."""

from __future__ import annotations

import numpy as np
import pytest

import mlxq

MODES = {"affine": (64, 4), "mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}
# (mode, input shape) -> whether MLX 0.32.4's quantize answers (else it raises)
QUANTIZE = {(m, s): m == "affine" or (m == "mxfp8" and s[-1] == 0 and all(s[:-1]))
            for m in MODES for s in ((0, 64), (4, 0), (0, 0), (2, 0, 64))}


def _mlx():
    return pytest.importorskip("mlx.core")


@pytest.mark.parametrize("mode,shape", sorted(QUANTIZE))
def test_empty_quantize_gives_empty_outputs(mode, shape):
    gs, bits = MODES[mode]
    out = mlxq.quantize(np.zeros(shape, np.float32), gs, bits, mode)
    lead, cols = shape[:-1], shape[-1]
    assert out[0].shape == lead + (cols * bits // 32,) and out[0].dtype == np.uint32
    assert all(o.shape == lead + (cols // gs,) for o in out[1:])
    assert len(out) == (3 if mode == "affine" else 2)


@pytest.mark.parametrize("mode,shape", sorted(QUANTIZE))
def test_empty_quantize_against_mlx(mode, shape):
    mx = _mlx()
    gs, bits = MODES[mode]
    ours = mlxq.quantize(np.zeros(shape, np.float32), gs, bits, mode)
    if QUANTIZE[mode, shape]:
        theirs = mx.quantize(mx.zeros(shape), gs, bits, mode=mode)
        mx.eval(theirs)
        assert [o.shape for o in ours] == [tuple(t.shape) for t in theirs]
    else:
        with pytest.raises(ValueError):
            mx.eval(mx.quantize(mx.zeros(shape), gs, bits, mode=mode))


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("rows,cols", [(0, 64), (4, 0)])
def test_empty_dequantize_against_mlx(mode, rows, cols):
    mx = _mlx()
    gs, bits = MODES[mode]
    parts = mlxq.quantize(np.zeros((rows, cols), np.float32), gs, bits, mode)
    ours = mlxq.dequantize(*parts, group_size=gs, bits=bits, mode=mode)
    assert ours.shape == (rows, cols)
    args = [mx.array(p) for p in parts]
    if rows == 0:  # MLX cannot infer the shape of an empty array
        with pytest.raises(ValueError, match="empty array"):
            mx.eval(mx.dequantize(*args, group_size=gs, bits=bits, mode=mode))
    else:
        theirs = mx.dequantize(*args, group_size=gs, bits=bits, mode=mode)
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).rsplit(".", 1)[-1]
