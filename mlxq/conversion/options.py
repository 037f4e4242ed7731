"""What a conversion is asked to do: ``mlx_lm.convert``'s arguments, plus mlxq's own."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Union

if TYPE_CHECKING:  # tensorspec imports numpy, which `mlxq --help` need not load
    from ..tensorspec import TensorSpec

__all__ = ["CONVERSION_DTYPES", "MODE_DEFAULTS", "QUANT_RECIPES", "Options", "QuantPredicate"]

#: ``--quant-predicate`` choices (mlx-lm's ``QUANT_RECIPES``).
QUANT_RECIPES = ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6")
#: ``--dtype`` choices (mlx-lm's ``MODEL_CONVERSION_DTYPES``).
CONVERSION_DTYPES = ("float16", "bfloat16", "float32")
#: Per-mode defaults of ``quantize_model`` (``defaults_for_mode``).
MODE_DEFAULTS = {"affine": (64, 4), "mxfp4": (32, 4), "nvfp4": (16, 4), "mxfp8": (32, 8)}

#: ``quant_predicate(path, weight_spec) -> bool | dict``: a callable, as mlx-lm's
#: ``convert(quant_predicate=...)`` takes one (there: ``(path, module)``).
QuantPredicate = Callable[[str, "TensorSpec"], Union[bool, Mapping[str, Any]]]


@dataclasses.dataclass(frozen=True)
class Options:
    """What ``mlx_lm.convert``'s arguments ask for (see :func:`mlxq.convert`)."""

    quantize: bool = False
    q_group_size: Optional[int] = None
    q_bits: Optional[int] = None
    q_mode: str = "affine"
    quant_predicate: Union[str, QuantPredicate, None] = None
    dtype: Optional[str] = None
    dequantize: bool = False
    max_shard_size: int = 5 << 30
    report: bool = False
    allow_requantize: bool = False
    allow_unknown_architecture: bool = False
    #: "mlx" (mx.quantize's choice, bit-identical), "mse" (mlxq.quantize method="mse") or
    #: "gptq" (GPTQ with each layer's input Hessian, mlxq.calibration)
    q_method: str = "mlx"
    #: a llama.cpp importance matrix (GGUF or legacy .dat), or an mlxq calibration
    #: statistics file (--save-imatrix), weighting each layer's columns
    imatrix: Optional[str] = None
    #: its llama.cpp architecture name, when the model_type does not say it
    imatrix_arch: Optional[str] = None
    #: bits per layer chosen from 2/3/4/5/6/8 for at most this many bits per weight
    target_bpw: Optional[float] = None
    #: whose quantization arithmetic: "gpu" (MLX's Metal kernels, mlx_lm.convert on Apple
    #: silicon) or "cpu" (MLX's CPU backend, mlx[cpu])
    device: str = "gpu"
    #: a text file the source model runs forward on to collect each layer's statistics
    calibrate: Optional[str] = None
    #: where to write those statistics (mlxq.calibration.save_statistics)
    save_imatrix: Optional[str] = None
    #: torch device of the calibration forward: "cpu" or "cuda"
    calibration_device: str = "cpu"
    #: at most this many tokens of the calibration text are run
    calibration_tokens: int = 16384
    #: statistics collected by convert() (mlxq.calibration.Statistics), not an argument
    statistics: Any = dataclasses.field(default=None, compare=False, repr=False)


