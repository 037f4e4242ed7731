"""mlxq: Apple MLX's quantized weight formats on any machine, bit-identical to MLX.

>>> import numpy as np, mlxq
>>> w = np.random.default_rng(0).standard_normal((8, 128)).astype(mlxq.bfloat16)
>>> wq, scales, biases = mlxq.quantize(w, group_size=64, bits=4)
>>> mlxq.dequantize(wq, scales, biases).dtype == mlxq.bfloat16
True
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _moved, errors
from .errors import *  # noqa: F401,F403 - every public exception and MlxqWarning, as mlxq.X
from .errors import __all__ as _error_names

__version__ = "0.1.0"

_moved.install()  # mlxq.awq, mlxq.fp8, ... -> mlxq.formats.* with a DeprecationWarning

# Everything else is imported on first use (PEP 562): ``import mlxq`` stays cheap, and so
# do the commands that need none of it (``mlxq --help``, ``mlxq inspect``): numpy's
# bfloat16 comes from ml_dtypes, whose import alone takes about half a second.
_LAZY: dict[str, tuple[str, str | None]] = {
    # name: (module, attribute; None for the module itself)
    "bfloat16": ("._dtypes", "bfloat16"),
    "get_num_threads": ("._threads", "get_num_threads"),
    "set_num_threads": ("._threads", "set_num_threads"),
    "Device": ("._device", "Device"),
    "default_device": ("._device", "default_device"),
    "set_default_device": ("._device", "set_default_device"),
    "using_device": ("._device", "using_device"),
    "QuantMethod": (".quant", "QuantMethod"),
    "QuantMode": (".quant", "QuantMode"),
    "astype": (".quant", "astype"),
    "default_params": (".quant", "default_params"),
    "dequantize": (".quant", "dequantize"),
    "quantize": (".quant", "quantize"),
    # the converter (docs/convert.md)
    "convert": (".conversion", "convert"),
    # the weight-map API (docs/weights.md)
    "recipes": (".recipes", None),
    "SKIP": (".config", "SKIP"),
    "PerLayerQuantization": (".config", "PerLayerQuantization"),
    "Quantization": (".config", "Quantization"),
    "parse_quantization": (".config", "parse_quantization"),
    "default_eligible": (".predicates", "default_eligible"),
    "linear_like": (".predicates", "linear_like"),
    "dequantize_weights": (".weights", "dequantize_weights"),
    "quantize_weights": (".weights", "quantize_weights"),
    # checkpoint I/O (docs/io.md)
    "SafetensorsFile": (".io", "SafetensorsFile"),
    "load_checkpoint": (".io", "load_checkpoint"),
    "load_safetensors": (".io", "load_safetensors"),
    "open_safetensors": (".io", "open_safetensors"),
    "safetensors_metadata": (".io", "safetensors_metadata"),
    "save_checkpoint": (".io", "save_checkpoint"),
    "save_safetensors": (".io", "save_safetensors"),
    # other producers' formats, one module each in mlxq.formats: AutoAWQ, GPTQ, gpt-oss
    # MXFP4 (docs/awq.md, docs/gptq.md, docs/mxfp4-checkpoints.md), float8 checkpoints and
    # compressed-tensors (docs/source-formats.md); mlxq.external, mlxq.fp8 and
    # mlxq.compressed_tensors are their old, deprecated paths (mlxq._moved)
    "formats": (".formats", None),
    "AwqLoadConfig": (".formats.awq", "AwqLoadConfig"),
    "transform_awq_weights": (".formats.awq", "transform_awq_weights"),
    "unpack_awq_weights": (".formats.awq", "unpack_awq_weights"),
    "GptqConfig": (".formats.gptq", "GptqConfig"),
    "transform_gptq_weights": (".formats.gptq", "transform_gptq_weights"),
    "transform_mxfp4_weights": (".formats.mxfp4_checkpoint", "transform_mxfp4_weights"),
    "dequantize_fp8_block": (".formats.fp8", "dequantize_fp8_block"),
    "dequantize_fp8_scaled": (".formats.fp8", "dequantize_fp8_scaled"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module, __name__)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    if not name.startswith("_"):  # a submodule (mlxq.io, mlxq.testing, ...), imported now
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'mlxq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["errors", *_error_names, *_LAZY]
