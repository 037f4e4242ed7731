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
from .quant import QuantMethod, QuantMode, astype, default_params, dequantize, quantize

# The weight-map API (docs/weights.md).
from . import recipes
from .config import SKIP, PerLayerQuantization, Quantization, parse_quantization
from .predicates import default_eligible, linear_like
from .weights import dequantize_weights, quantize_weights

# Checkpoint I/O: safetensors files and sharded folders (docs/io.md).
from .io import (
    SafetensorsFile,
    load_checkpoint,
    load_safetensors,
    open_safetensors,
    safetensors_metadata,
    save_checkpoint,
    save_safetensors,
)

# Other producers' quantized checkpoints: AutoAWQ, GPTQ, gpt-oss MXFP4 (docs/awq.md,
# docs/gptq.md, docs/mxfp4-checkpoints.md).
from . import external
from .awq import AwqLoadConfig, transform_awq_weights, unpack_awq_weights
from .gptq import GptqConfig, transform_gptq_weights
from .mxfp4_checkpoint import transform_mxfp4_weights

# Pre-quantized sources: float8 checkpoints and compressed-tensors (docs/source-formats.md).
from . import compressed_tensors, fp8
from .fp8 import dequantize_fp8_block, dequantize_fp8_scaled

__version__ = "0.1.0"


def __getattr__(name: str):
    # mlxq.convert (the converter, docs/convert.md) is imported on first use: it loads
    # every model family, which `import mlxq` alone should not pay for.
    if name == "convert":
        from .conversion import convert

        globals()["convert"] = convert
        return convert
    raise AttributeError(f"module 'mlxq' has no attribute {name!r}")


__all__ = [
    "MlxqError",
    "QuantMethod",
    "QuantMode",
    "astype",
    "bfloat16",
    "convert",
    "default_params",
    "dequantize",
    "errors",
    "get_num_threads",
    "quantize",
    "set_num_threads",
    # weight maps (docs/weights.md)
    "SKIP",
    "PerLayerQuantization",
    "Quantization",
    "default_eligible",
    "dequantize_weights",
    "linear_like",
    "parse_quantization",
    "quantize_weights",
    "recipes",
    # checkpoint I/O (docs/io.md)
    "SafetensorsFile",
    "load_checkpoint",
    "load_safetensors",
    "open_safetensors",
    "safetensors_metadata",
    "save_checkpoint",
    "save_safetensors",
    # other producers' checkpoints (docs/awq.md, docs/gptq.md, docs/mxfp4-checkpoints.md)
    "AwqLoadConfig",
    "GptqConfig",
    "external",
    "transform_awq_weights",
    "transform_gptq_weights",
    "transform_mxfp4_weights",
    "unpack_awq_weights",
    # pre-quantized sources (docs/source-formats.md)
    "compressed_tensors",
    "dequantize_fp8_block",
    "dequantize_fp8_scaled",
    "fp8",
]
