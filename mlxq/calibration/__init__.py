"""Calibration: what each linear layer of a model sees on real text, and quantization
that uses it (docs/methods.md).

- :func:`collect_statistics` runs the source model forward on calibration text through
  transformers + torch (``pip install "mlxq[calibrate]"``), one decoder layer at a time,
  and records per linear layer the mean square of each input column (an importance
  vector, as llama.cpp's importance matrices hold) and the input Hessian ``X^T X``;
- :func:`save_statistics` / :func:`load_statistics` keep them in a safetensors file for
  other conversions (``mlxq convert --save-imatrix`` / ``--imatrix``);
- :func:`gptq_quantize` is GPTQ (error feedback through the Hessian's inverse Cholesky
  factor, in C) into MLX's plain affine layout, which ``mlx_lm.load`` reads unchanged.

>>> import numpy as np
>>> from mlxq.calibration import gptq_quantize
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((256, 64)).astype(np.float32)
>>> w = rng.standard_normal((8, 64)).astype(np.float32)
>>> wq, scales, biases = gptq_quantize(w, x.T @ x, group_size=32, bits=4)
>>> wq.shape, scales.shape
((8, 8), (8, 2))
"""

from .gptq import GptqFactor, gptq_factor, gptq_quantize
from .stats import LayerStatistics, Statistics, load_statistics, save_statistics

__all__ = ["GptqFactor", "LayerStatistics", "Statistics", "collect_statistics", "gptq_factor",
           "gptq_quantize",
           "load_statistics", "save_statistics"]


def collect_statistics(*args, **kwargs):  # noqa: D401 - re-exported with its docstring
    from .collect import collect_statistics as _collect

    return _collect(*args, **kwargs)


def _doc() -> None:
    from . import collect

    collect_statistics.__doc__ = collect.collect_statistics.__doc__


try:  # the docstring without importing torch: collect imports it lazily too
    _doc()
except Exception:  # pragma: no cover
    pass
