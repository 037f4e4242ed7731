"""Type stubs for mlxq._core, the C extension. Use the mlxq package API instead: these
functions take dtype/mode codes the Python layer computes and validate only what the C core
needs for memory safety and MLX-exact results."""

from typing import Optional

import numpy as np

# ---- quantization (src/python/py_quant.c) ------------------------------------------------

def quantize(
    w: np.ndarray,
    code: int,
    mode: int,
    group_size: int,
    bits: int,
    global_scale: Optional[float],
    impl: int,
) -> tuple[np.ndarray, ...]:
    """(wq, scales, biases) for affine (mode 0), (wq, scales) otherwise."""

def dequantize(
    wq: np.ndarray,
    scales: np.ndarray,
    s_code: int,
    biases: Optional[np.ndarray],
    b_code: int,
    mode: int,
    group_size: int,
    bits: int,
    global_scale: Optional[float],
    requested_code: int,
    out_descr: np.dtype,
    out_code: int,
    impl: int,
) -> np.ndarray:
    """requested_code: the dtype asked for; out: the dtype produced (they differ only for
    nvfp4 with a global scale, whose output is float32/float64)."""
def cast(a: np.ndarray, code: int, out_descr: np.dtype, out_code: int, impl: int) -> np.ndarray:
    """MLX-exact astype between float16/bfloat16/float32/float64 (a C-contiguous copy)."""

def set_num_threads(n: int) -> int: ...
def get_num_threads() -> int: ...
def isa() -> tuple[str, str]:
    """(active, detected) instruction set names: 'scalar', 'avx2' or 'avx512'."""

def set_isa(name: str) -> str:
    """Caps the instruction set the fast kernels use; returns the previous active name."""
