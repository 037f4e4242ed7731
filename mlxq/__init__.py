"""mlxq: Apple MLX's quantized weight formats on any machine, bit-identical to MLX.

>>> import numpy as np, mlxq
>>> w = np.random.default_rng(0).standard_normal((8, 128)).astype(mlxq.bfloat16)
>>> wq, scales, biases = mlxq.quantize(w, group_size=64, bits=4)
>>> mlxq.dequantize(wq, scales, biases).dtype == mlxq.bfloat16
True
"""

from __future__ import annotations

from . import errors
from ._dtypes import bfloat16
from ._threads import get_num_threads, set_num_threads
from .errors import MlxqError
from .quant import QuantMode, astype, default_params, dequantize, quantize

__version__ = "0.1.0"

__all__ = [
    "MlxqError",
    "QuantMode",
    "astype",
    "bfloat16",
    "default_params",
    "dequantize",
    "errors",
    "get_num_threads",
    "quantize",
    "set_num_threads",
]
