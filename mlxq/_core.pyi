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
    device: int,
) -> tuple[np.ndarray, ...]:
    """(wq, scales, biases) for affine (mode 0), (wq, scales) otherwise. device: 0 MLX's CPU
    backend, 1 its GPU (Metal) kernels (src/mlxq_qparams.h)."""

def quantize_search(
    w: np.ndarray,
    code: int,
    mode: int,
    group_size: int,
    bits: int,
    global_scale: Optional[float],
    importance: Optional[np.ndarray],
    impl: int,
    device: int,
) -> tuple[np.ndarray, ...]:
    """As quantize, each group's scale (and bias) chosen to minimise the importance-weighted
    squared error after MLX's dequantization (src/mlxq_search.h). importance: float32 [C]
    or w.shape[:-2] + [C], finite and >= 0, or None (all ones)."""

def gptq(
    w: np.ndarray,
    code: int,
    hessian: np.ndarray,
    hessian_code: int,
    group_size: int,
    bits: int,
    damp: float,
    act_order: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GPTQ of the 2-D w with its input Hessian into MLX's affine triple (src/mlxq_gptq.h)."""

def gptq_factor(hessian: np.ndarray, hessian_code: int, damp: float, act_order: bool) -> object:
    """The Hessian's part of GPTQ, an opaque handle for gptq_apply."""

def gptq_apply(
    w: np.ndarray, code: int, factor: object, group_size: int, bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GPTQ of w with a gptq_factor handle."""

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
    device: int,
) -> np.ndarray:
    """requested_code: the dtype asked for; out: the dtype produced (they differ only on the
    CPU device for nvfp4 with a global scale, whose output is float32/float64)."""
def check_params(mode: int, group_size: int, bits: int) -> None:
    """Raises the kernels' OutOfRangeError when (mode, group_size, bits) is unsupported."""
def cast(a: np.ndarray, code: int, out_descr: np.dtype, out_code: int, impl: int) -> np.ndarray:
    """MLX-exact astype between float16/bfloat16/float32/float64 (a C-contiguous copy)."""

def set_num_threads(n: int) -> int: ...
def get_num_threads() -> int: ...
def isa() -> tuple[str, str]:
    """(active, detected) instruction set names: 'scalar', 'avx2' or 'avx512'."""

def set_isa(name: str) -> str:
    """Caps the instruction set the fast kernels use; returns the previous active name."""

# ---- safetensors I/O (src/python/py_io.c) -------------------------------------------------
# Policy (numpy dtypes, folders, shards, friendly argument errors) lives in mlxq/io.py.

import os

# (name, safetensors dtype name, shape, begin, end): offsets within the data section.
_TensorInfoTuple = tuple[str, str, tuple[int, ...], int, int]

class SafetensorsFile:
    """A validated safetensors file mapped read-only. Raises mlxq.errors.SafetensorsError
    for a malformed file and MlxqIOError when it cannot be opened or mapped."""

    def __new__(cls, path: str | bytes | os.PathLike[str]) -> SafetensorsFile: ...
    @property
    def path(self) -> str: ...
    @property
    def data_start(self) -> int:
        """File offset of the data section (8 + header length)."""
    @property
    def size(self) -> int:
        """File size in bytes."""
    def __len__(self) -> int: ...
    def names(self) -> list[str]:
        """Tensor names, sorted bytewise."""
    def infos(self) -> list[_TensorInfoTuple]: ...
    def info(self, name: str) -> _TensorInfoTuple:
        """Raises KeyError when absent."""
    def metadata(self) -> Optional[dict[str, str]]:
        """The __metadata__ map; None when the header has none (or it is null)."""
    def array(self, name: str, descr: np.dtype) -> np.ndarray:
        """A read-only C-contiguous view of the tensor with dtype ``descr`` (whose itemsize
        must match the tensor's dtype); its base is this object, keeping the map alive."""

class StWriter:
    """A safetensors file put tensor by tensor, in any order, committed atomically
    (src/python/py_stwriter.c). Dropping an uncommitted writer aborts it."""

    def __new__(
        cls,
        path: str | bytes | os.PathLike[str],
        entries: list[tuple[str, str, tuple[int, ...] | list[int]]],
        metadata: Optional[list[tuple[str, str]]] = None,
    ) -> StWriter: ...
    @property
    def open(self) -> bool:
        """True until commit or abort."""
    def put(self, index: int, array: np.ndarray, offset: int = ...) -> None:
        """Entry ``index`` whole (C-contiguous, the header's dtype and shape), or with
        ``offset`` the part at that byte offset (parts in order)."""
    def commit(self) -> None: ...
    def abort(self) -> None: ...

def st_save(
    path: str | bytes | os.PathLike[str],
    items: list[tuple[str, np.ndarray, str]],
    metadata: Optional[list[tuple[str, str]]],
) -> None:
    """Writes (name, array, safetensors dtype name) items atomically; arrays of any strides,
    native byte order. metadata None writes no __metadata__."""

def st_validate(
    buffer: bytes, header_only: bool = False
) -> tuple[list[_TensorInfoTuple], Optional[dict[str, str]], int, int]:
    """Parses a whole file image (or, with header_only, bare header JSON) with every check
    of the file reader: (tensors sorted by name, metadata, data_start, data_size)."""

def st_dtypes() -> dict[str, int]:
    """Every safetensors dtype name the parser knows, with its bits per element."""

# ---- AutoAWQ / GPTQ codes (src/python/py_repack.c) ---------------------------------------

def awq_repack(qweight: np.ndarray, code: int) -> np.ndarray:
    """AutoAWQ qweight [in, out/8] (int32 code 6 or uint32 code 5) -> MLX wq [out, in/8]."""

def awq_unpack(q: np.ndarray, code: int, transpose: bool) -> np.ndarray:
    """AutoAWQ-packed words [r, c] -> codes [r, 8c] (or [8c, r] transposed), uint32."""

def transpose_u32(a: np.ndarray, code: int) -> np.ndarray:
    """a.T as a C-contiguous uint32 array (GPTQ qweight -> MLX wq)."""

def gptq_unpack_zeros(qzeros: np.ndarray, code: int, bits: int, offset: int) -> np.ndarray:
    """GPTQ qzeros [groups, out*bits/32] -> zeros + offset, uint32 [out, groups]."""

# ---- float8 checkpoints (src/python/py_fp8.c) ---------------------------------------------
# Policy (block size parsing, per-channel broadcasting, row slices) lives in mlxq/fp8.py.

def fp8_block_dequant(
    weight: np.ndarray,
    w_code: int,
    row0: int,
    total_rows: int,
    scale_inv: np.ndarray,
    s_code: int,
    block_rows: int,
    block_cols: int,
    out_descr: np.dtype,
    out_code: int,
    out: Optional[np.ndarray],
    impl: int,
) -> np.ndarray:
    """weight: rows [row0, row0 + n) of a [total_rows, cols] E4M3 matrix (uint8 or
    float8_e4m3fn); scale_inv covers the whole matrix in blocks. Returns out (allocated when
    None) [n, cols] of out_descr."""

def fp8_scaled_dequant(
    weight: np.ndarray,
    w_code: int,
    scale: np.ndarray,
    s_code: int,
    out_descr: np.dtype,
    out_code: int,
    out: Optional[np.ndarray],
    impl: int,
) -> np.ndarray:
    """scale: broadcast to weight's shape (zero strides allowed). Returns out."""

# ---- compressed-tensors pack-quantized (src/python/py_packint.c) ---------------------------

def packint_dequant(
    weight_packed: np.ndarray,
    p_code: int,
    bits: int,
    weight_scale: np.ndarray,
    s_code: int,
    cols: int,
    group_size: int,
    out_descr: np.dtype,
    out_code: int,
    impl: int,
) -> np.ndarray:
    """(code - 2^(bits-1)) * scale rounded to the scale dtype, cast to out_descr:
    [rows, cols]. bits 2, 4 or 8."""

# ---- GGUF blocks (src/python/py_gguf.c) -------------------------------------------------------
# Policy (which tensors are kept, dequantized or reordered) lives in mlxq/formats/gguf.py.

def gguf_to_mlx(
    type: int, src: np.ndarray, rows: Optional[np.ndarray], impl: int
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Q4_0/Q4_1/Q8_0/MXFP4 rows (uint8 [n_src, row_bytes]; output row i from source row
    rows[i] when rows, int64, is given) -> MLX's (wq uint32, scales float16 or uint8 for
    MXFP4, biases float16 or None for MXFP4), bit for bit what mx.load gives."""

def gguf_dequant(
    type: int, src: np.ndarray, rows: Optional[np.ndarray], impl: int, code: int = ...
) -> np.ndarray:
    """Rows of Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q2_K..Q6_K/MXFP4 -> [n, elements]: float32, bit for
    bit what gguf.quants.dequantize gives, or (code float16/bfloat16) those values rounded as
    MLX's astype, returned as uint16 for the caller to view."""

def gguf_read_to_mlx(
    type: int, fd: int, offset: int, n: int, row_bytes: int, impl: int
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], int]:
    """gguf_to_mlx of n rows of row_bytes read from fd at offset (pread by the pool's
    threads); the last item is the bytes read."""

def gguf_read_dequant(
    type: int, fd: int, offset: int, n: int, row_bytes: int, impl: int, code: int = ...
) -> tuple[np.ndarray, int]:
    """gguf_dequant of n rows read from fd at offset; and the bytes read."""

def gguf_block(type: int) -> tuple[int, int, int]:
    """(kind, block_size, type_size) of a ggml type id: kind 0 not handled in C, 1
    dequantized, 2 also repacked into MLX's layout."""
