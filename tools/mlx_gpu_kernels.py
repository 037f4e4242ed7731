"""MLX 0.32.4's GPU quantization kernels, transliterated to numpy: the oracle of the GPU
golden vectors (tools/gen_golden_gpu.py -> tests/golden/gpu_*.npz).

Written from MLX's Metal sources as shipped in the mlx 0.32.4 wheel
(``mlx/include/mlx/backend/metal/kernels/{quantized.h,fp_quantized.h,fp4.h,fp8.h,utils.h}``),
one function per kernel or device struct, named after it. It shares no code with mlxq's C
core (src/ref_gpu.c) and imports nothing from mlxq: the two are independent readings of
the same source, and the golden test holds the C core to this one.

Execution model. A Metal kernel runs one thread per element (fp_quantize, fp_dequantize) or
per ``group_size / 32`` elements (affine_quantize, one SIMD group of 32 threads per group),
or per packed byte (the dequantize kernels). Here the threads of a dispatch are the lanes of
numpy arrays: a thread's local variable is an array over threads, ``simd_max`` a reduction
over the 32 lanes of a SIMD group, and every float operation is a float32 numpy operation
(IEEE, round to nearest even, no fusion). What Metal does that C++ leaves open is modelled
by the helpers below, each an assumption the documentation states (docs/formats.md):

* MLX compiles with ``-fno-fast-math``: ``metal::min`` / ``max`` are the precise ones
  (IEEE minNum / maxNum: a NaN operand is ignored); ``round`` rounds halves away from zero.
* ``a * b + c`` in one expression is contracted into a fused multiply-add (Metal contracts
  under every math mode; MLX has no ``#pragma METAL fp contract(off)``). Only
  affine_dequantize has such an expression.
* NaN: an operation returns its first NaN operand, quieted; an invalid operation on numbers
  returns +0x7FC00000; converting to half/bfloat keeps the sign and the top of the payload.
* float -> int conversion saturates (fp8_e8m0 rounds log2(0) = -inf to int).
* Subnormals are kept (not flushed), as the MLX CPU backend keeps them.
* ``simd_max`` over a SIMD group is maxNum over the lanes (NaN lanes ignored unless all are).
* ``bfloat`` arithmetic runs in float32 (Apple GPUs have no bfloat ALU); ``half`` arithmetic
  is native (one rounding to half per operation, the fused multiply-add included).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

F32 = np.float32
QNAN32 = np.uint32(0x7FC00000)
_WIDTH = {"float16": 2, "bfloat16": 2, "float32": 4}


# ---- Metal's scalar semantics -------------------------------------------------------------


def as_f32(bits) -> np.ndarray:
    return np.asarray(bits, np.uint32).view(np.float32)


def bits_f32(x) -> np.ndarray:
    return np.asarray(x, np.float32).view(np.uint32)


def quiet(x: np.ndarray) -> np.ndarray:
    return as_f32(bits_f32(x) | np.uint32(0x400000))


def nan_rule(r: np.ndarray, *operands: np.ndarray) -> np.ndarray:
    """The result of an operation under the GPU's NaN rule: the first NaN operand, quieted;
    a NaN from numbers (an invalid operation) becomes the default NaN +0x7FC00000."""
    r = np.asarray(r, np.float32)
    out = np.where(np.isnan(r), as_f32(np.full(r.shape, QNAN32)), r)
    for a in reversed(operands):  # the first NaN operand wins: apply it last
        a = np.broadcast_to(np.asarray(a, np.float32), r.shape)
        out = np.where(np.isnan(a), quiet(a), out)
    return out.astype(np.float32)


def mul(a, b):
    with np.errstate(all="ignore"):
        return nan_rule(np.float32(a) * np.float32(b) if np.ndim(a) == np.ndim(b) == 0
                        else np.multiply(a, b, dtype=np.float32), a, b)


def div(a, b):
    with np.errstate(all="ignore"):
        return nan_rule(np.divide(a, b, dtype=np.float32), a, b)


def add(a, b):
    with np.errstate(all="ignore"):
        return nan_rule(np.add(a, b, dtype=np.float32), a, b)


def sub(a, b):
    with np.errstate(all="ignore"):
        return nan_rule(np.subtract(a, b, dtype=np.float32), a, b)


def metal_round(x: np.ndarray) -> np.ndarray:
    """``metal::round``: the integral value nearest to x, halfway cases away from zero."""
    x = np.asarray(x, np.float32)
    with np.errstate(invalid="ignore"):
        t = np.trunc(x)
        frac = np.abs(x - t)
        step = np.where(np.signbit(x), np.float32(-1), np.float32(1))
        return np.where(frac >= np.float32(0.5), t + step, t).astype(np.float32)


def metal_max(a, b):
    """``metal::max`` without fast math: maxNum, a NaN operand (quiet or signalling: GPUs
    have no signalling NaNs) gives the other. Not numpy's fmax, which calls libm's fmaxf
    and so returns NaN for a signalling operand."""
    a, b = np.float32(a), np.float32(b)
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(a), b, np.where(np.isnan(b), a, np.maximum(a, b))).astype(
            np.float32)


def metal_min(a, b):
    a, b = np.float32(a), np.float32(b)
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(a), b, np.where(np.isnan(b), a, np.minimum(a, b))).astype(
            np.float32)


def simd_reduce(x: np.ndarray, op) -> np.ndarray:
    """``simd_max`` / ``simd_min`` (op: metal_max / metal_min) over the last axis, the lanes
    of a SIMD group."""
    acc = x[..., 0]
    for i in range(1, x.shape[-1]):
        acc = op(acc, x[..., i])
    return np.asarray(acc, np.float32)


def float_to_int_saturating(x: np.ndarray) -> np.ndarray:
    """``int(x)`` on the GPU: toward zero, saturating, NaN -> 0."""
    x = np.asarray(x, np.float64)
    y = np.where(np.isnan(x), 0.0, np.clip(np.trunc(x), -2.0**31, 2.0**31 - 1))
    return y.astype(np.int64)


# ---- loads and static_cast between float and half / bfloat --------------------------------


def load(bits: np.ndarray, T: str) -> np.ndarray:
    """``float val = w[i]`` for a T element given as its bit pattern: exact; a half NaN comes
    out quiet (the conversion instruction), a bfloat one is its bits shifted up."""
    b = np.asarray(bits)
    if T == "float32":
        return b.astype(np.uint32).view(np.float32)
    if T == "bfloat16":
        return (b.astype(np.uint32) << np.uint32(16)).view(np.float32)
    h = b.astype(np.uint16)
    out = h.view(np.float16).astype(np.float32)
    nan = (h & 0x7C00) == 0x7C00
    nan &= (h & 0x3FF) != 0
    payload = (h.astype(np.uint32) & 0x3FF) << np.uint32(13)
    sign = (h.astype(np.uint32) & 0x8000) << np.uint32(16)
    nan_f = (sign | np.uint32(0x7F800000) | payload | np.uint32(0x400000)).view(np.float32)
    return np.where(nan, nan_f, out).astype(np.float32)


def static_cast(x: np.ndarray, T: str) -> np.ndarray:
    """``static_cast<T>(float)``: round to nearest even (half: with subnormals and overflow
    to inf); a NaN keeps its sign and payload top, quiet. Returns the bit pattern."""
    x = np.asarray(x, np.float32)
    u = x.view(np.uint32)
    nan = np.isnan(x)
    if T == "float32":
        return u.copy()
    if T == "bfloat16":
        import ml_dtypes  # round to nearest even, as Metal's bfloat conversion

        with np.errstate(over="ignore", invalid="ignore"):
            r = x.astype(ml_dtypes.bfloat16).view(np.uint16)
        return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), r)
    with np.errstate(over="ignore"):
        r = x.astype(np.float16).view(np.uint16)  # numpy: round to nearest even
    nanh = (((u >> 16) & 0x8000) | 0x7E00 | ((u >> 13) & 0x3FF)).astype(np.uint16)
    return np.where(nan, nanh, r)


def cast_f64_to(x: np.ndarray, T: str) -> np.ndarray:
    """An exact float64 value rounded once to T (bit pattern), NaN-free inputs."""
    if T == "float16":
        with np.errstate(over="ignore"):
            return np.asarray(x, np.float64).astype(np.float16).view(np.uint16)
    raise ValueError(T)


def round_fraction_to_f32(v: Fraction) -> float:
    """The exact rational v rounded to float32 (nearest, ties to even)."""
    if v == 0:
        return 0.0
    sign = -1.0 if v < 0 else 1.0
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, -126)  # subnormals share the exponent of the smallest normal
    if e > 127:
        return sign * float("inf")
    m = a / Fraction(2) ** (e - 23)  # 24-bit significand, to round
    q, r = divmod(m.numerator, m.denominator)
    if 2 * r > m.denominator or (2 * r == m.denominator and q & 1):
        q += 1
    val = Fraction(q) * Fraction(2) ** (e - 23)
    if val >= Fraction(2) ** 128 - Fraction(2) ** 103:  # rounds past FLT_MAX
        return sign * float("inf")
    return sign * float(val)


# ---- fp4.h / fp8.h --------------------------------------------------------------------------


def fp4_e2m1(x: np.ndarray) -> np.ndarray:
    """``fp4_e2m1(float x)``: the E2M1 code of x (NaN -> 0x7)."""
    x = np.asarray(x, np.float32)
    sign = np.where(np.signbit(x), 0x8, 0x0)
    a = np.abs(x)
    with np.errstate(invalid="ignore"):
        b = np.select([a > 5.0, a >= 3.5, a > 2.5, a >= 1.75, a > 1.25, a >= 0.75, a > 0.25],
                      [7, 6, 5, 4, 3, 2, 1], 0)
    return np.where(np.isnan(x), 0x7, b | sign).astype(np.uint8)


def fp4_e2m1_to_float(code: np.ndarray) -> np.ndarray:
    """``fp4_e2m1::operator float``: ``as_type<half>((bits & 7) << 9) * 16384``, negated when
    bit 3 is set, widened to float."""
    c = np.asarray(code, np.uint16)
    h = ((c & 7) << 9).astype(np.uint16).view(np.float16).astype(np.float32) * np.float32(16384)
    return np.where(c & 8, -h, h).astype(np.float32)


def fp8_e4m3(x: np.ndarray) -> np.ndarray:
    """``fp8_e4m3(T f)``: float32 to E4M3 bits (PyTorch's algorithm, saturating to 0x7E)."""
    f_bits = bits_f32(x).astype(np.uint32)
    sign = f_bits & np.uint32(0x80000000)
    f_bits = f_bits ^ sign
    fp8_max = np.uint32(543 << 21)
    denorm_mask = np.uint32(141 << 23)
    with np.errstate(over="ignore"):
        sub = (as_f32(f_bits) + as_f32(np.full(f_bits.shape, denorm_mask))).view(np.uint32)
        sub = (sub - denorm_mask).astype(np.uint8)
        mant_odd = (f_bits >> 20) & 1
        nrm = f_bits + np.uint32(((7 - 127) << 23) % 2**32) + np.uint32(0x7FFFF) + mant_odd
        nrm = (nrm >> 20).astype(np.uint8)
    out = np.where(f_bits >= fp8_max, np.uint8(0x7E), np.where(f_bits < (121 << 23), sub, nrm))
    return (out | (sign >> 24).astype(np.uint8)).astype(np.uint8)


def fp8_e4m3_to_float(code: np.ndarray) -> np.ndarray:
    """``fp8_e4m3::operator float16_t`` (the 0.32.4 branchless decode; 0x7F/0xFF are NaN)
    widened to float."""
    b = np.asarray(code, np.uint16)
    v = b & 127
    sign_bit = ((b >> 7) & 1) << 15
    u = (v << 7) | (((v + 1) >> 7) << 14) | sign_bit
    return load((u.astype(np.uint16).view(np.float16) * np.float16(256)).view(np.uint16),
                "float16")


def fp8_e8m0(x: np.ndarray) -> np.ndarray:
    """``fp8_e8m0(float x)``: 0xFF for non-finite, 0 for negative, else
    clamp(int(round(log2 x)), -127, 127) + 127."""
    x = np.asarray(x, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = float_to_int_saturating(metal_round(np.log2(x)))
    n = np.clip(n, -127, 127)
    out = (n + 127).astype(np.uint8)
    out = np.where(x < 0, np.uint8(0), out)
    return np.where(~np.isfinite(x), np.uint8(0xFF), out).astype(np.uint8)


def fp8_e8m0_to_float(code: np.ndarray) -> np.ndarray:
    """``fp8_e8m0::operator float``: bits << 23, and 0x400000 (2^-127) for bits 0."""
    b = np.asarray(code, np.uint32)
    return as_f32(np.where(b == 0, np.uint32(0x400000), b << np.uint32(23)))


def mx_scale_round_up(x: np.ndarray) -> np.ndarray:
    """``mx_scale_round_up``: the smallest E8M0 >= x (one step up when fp8_e8m0 rounded x
    down, below 0xFE)."""
    s = fp8_e8m0(x)
    with np.errstate(invalid="ignore"):
        up = (s < 0xFE) & (fp8_e8m0_to_float(s) < x)
    return fp8_e8m0_to_float(np.where(up, s + np.uint8(1), s).astype(np.uint8))


# ---- kernels/quantized.h ---------------------------------------------------------------------


def affine_quantize(w_bits: np.ndarray, T: str, group_size: int, bits: int):
    """``affine_quantize<T, group_size, bits>``. w_bits: [rows, cols] bit patterns of T.
    Returns (codes [rows, cols] uint8, scales bits, biases bits), codes before packing."""
    eps = np.float32(1e-7)
    n_bins = np.float32((1 << bits) - 1)
    rows, cols = w_bits.shape
    w = load(w_bits, T).reshape(rows, cols // group_size, group_size)
    # each of the SIMD group's 32 threads reduces its group_size / 32 values from
    # w_min = Limits<T>::max (+inf for float types) and w_max = 0
    per = group_size // 32
    lanes = w.reshape(rows, cols // group_size, 32, per)
    w_min = np.full(lanes.shape[:-1], np.inf, np.float32)
    w_max = np.zeros(lanes.shape[:-1], np.float32)
    for i in range(per):
        w_min = metal_min(w_min, lanes[..., i])
        w_max = metal_max(w_max, lanes[..., i])
    w_min = simd_reduce(w_min, metal_min)
    w_max = simd_reduce(w_max, metal_max)
    with np.errstate(all="ignore"):
        scale = metal_max(div(sub(w_max, w_min), n_bins), eps)
        side = np.abs(w_min) > np.abs(w_max)
        scale = np.where(side, scale, -scale).astype(np.float32)
        edge = np.where(side, w_min, w_max).astype(np.float32)
        q0 = metal_round(div(edge, scale))
        at_zero = q0 == 0.0
        scale = np.where(at_zero, scale, div(edge, q0)).astype(np.float32)
        bias = np.where(at_zero, np.float32(0), edge).astype(np.float32)
        q = metal_min(metal_round(div(sub(w, bias[..., None]), scale[..., None])), n_bins)
    # uint8_t val = q: q is in [0, n_bins] or -0 (w - bias has scale's sign)
    assert not np.any(q < 0), "affine_quantize: a negative code (not expected)"
    codes = q.astype(np.uint8).reshape(rows, cols)
    return codes, static_cast(scale, T), static_cast(bias, T)


def affine_dequantize(codes: np.ndarray, scale_bits: np.ndarray, bias_bits: np.ndarray,
                      T: str, group_size: int) -> np.ndarray:
    """``affine_dequantize<T, group_size, bits>``: ``out = scale * d + bias`` in T, one
    fused multiply-add. codes [rows, cols] (unpacked), scales/biases [rows, groups] bit
    patterns of T. Returns the T bit patterns."""
    rows, cols = codes.shape
    s = np.repeat(load(scale_bits, T), group_size, axis=1)
    b = np.repeat(load(bias_bits, T), group_size, axis=1)
    d = codes.astype(np.float32)
    with np.errstate(all="ignore"):
        if T == "float32":
            p = s.astype(np.float64) * d  # exact: 24 x 8 bits
            bd = b.astype(np.float64)
            hi = p + bd
            r = hi.astype(np.float32)
            # where the double sum was inexact (TwoSum's error term), rounding it again to
            # float32 may differ from one rounding: redo those exactly
            bb = hi - p
            lo = (p - (hi - bb)) + (bd - bb)
            redo = np.isfinite(hi) & (lo != 0)
            for idx in zip(*np.nonzero(redo)):
                v = Fraction(float(s[idx])) * int(d[idx]) + Fraction(float(b[idx]))
                r[idx] = np.float32(round_fraction_to_f32(v))
            out = static_cast(r, T)
        elif T == "float16":
            exact = s.astype(np.float64) * d + b.astype(np.float64)  # exact for half operands
            out = cast_f64_to(exact, T)
        else:  # bfloat: in float32, where s * d is exact, then one rounding to bfloat
            r = np.add(np.multiply(s, d, dtype=np.float32), b, dtype=np.float32)
            out = static_cast(r, T)
        r_nan = np.isnan(s.astype(np.float64) * d + b.astype(np.float64))
    # NaN: the first NaN operand of the fma (scale, then bias), else the default NaN
    nan_val = nan_rule(np.full(s.shape, np.nan, np.float32), s, b)
    invalid = r_nan & ~np.isnan(s) & ~np.isnan(b)
    nan_val = np.where(invalid, as_f32(np.full(s.shape, QNAN32)), nan_val)
    return np.where(r_nan, static_cast(nan_val, T), out)


def astype(t_bits: np.ndarray, T: str, O: str) -> np.ndarray:
    """MLX's ``astype`` on the GPU (a copy kernel's static_cast), T to O, bit patterns."""
    if T == O:
        return t_bits
    return static_cast(load(t_bits, T), O)


# ---- kernels/fp_quantized.h ------------------------------------------------------------------


def fp_quantize(w_bits: np.ndarray, T: str, group_size: int, bits: int,
                global_scale: float | None):
    """``fp_quantize<T, group_size, bits, has_global_scale>``: one thread per element.
    Returns (codes [rows, cols] uint8, scale bytes [rows, groups])."""
    use_mx_scale = group_size == 32
    rows, cols = w_bits.shape
    w = load(w_bits, T).reshape(rows, cols // group_size, group_size)
    scale_enc = np.float32(1.0)
    if global_scale is not None:
        scale_enc = div(np.float32(448.0 * 6.0), np.float32(global_scale))[()]
    if use_mx_scale:  # scale_dec_b = simd_max(abs(w_thread)) over the 32-element group
        scale_dec_b = simd_reduce(np.abs(w), metal_max)
    else:  # simd_max(simd_lid < 16 ? abs(w) : 0.0): the other half contributes zeros
        scale_dec_b = metal_max(simd_reduce(np.abs(w), metal_max), np.float32(0.0))
    scale_dec_b = div(scale_dec_b, np.float32(6.0 if bits == 4 else 448.0))
    if global_scale is not None:
        scale_dec_b = mul(scale_dec_b, scale_enc)
    elif use_mx_scale:
        scale_dec_b = mx_scale_round_up(scale_dec_b)
    if use_mx_scale:
        q_scale = fp8_e8m0(scale_dec_b)
        s = fp8_e8m0_to_float(q_scale)
    else:
        q_scale = fp8_e4m3(scale_dec_b)
        s = fp8_e4m3_to_float(q_scale)
    scale_enc_b = np.where(s == 0, np.float32(0), div(scale_enc, s)).astype(np.float32)
    x = mul(w, scale_enc_b[..., None])
    codes = fp8_e4m3(x) if bits == 8 else fp4_e2m1(x)
    return codes.reshape(rows, cols), q_scale


def fp_dequantize(codes: np.ndarray, scale_bytes: np.ndarray, T: str, group_size: int,
                  bits: int, global_scale: float | None) -> np.ndarray:
    """``fp_dequantize<T, group_size, bits, has_global_scale>``: ``static_cast<T>(scale *
    Dequantize(d))`` with scale = float(byte) (times global_scale / 2688). Returns T bits."""
    use_mx_scale = group_size == 32
    inv_scale_enc = np.float32(1.0)
    if global_scale is not None:
        inv_scale_enc = div(np.float32(global_scale), np.float32(448.0 * 6.0))[()]
    scale = fp8_e8m0_to_float(scale_bytes) if use_mx_scale else fp8_e4m3_to_float(scale_bytes)
    if global_scale is not None:
        scale = mul(scale, inv_scale_enc)
    scale = np.repeat(scale, group_size, axis=1)
    value = fp8_e4m3_to_float(codes) if bits == 8 else fp4_e2m1_to_float(codes)
    return static_cast(mul(scale, value), T)


# ---- packing (MLX's layout: an LSB-first bit stream of uint32 words per row) ----------------


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    rows, cols = codes.shape
    bit = (codes[..., None].astype(np.uint32) >> np.arange(bits, dtype=np.uint32)) & 1
    stream = bit.reshape(rows, cols * bits // 32, 32).astype(np.uint64)
    return (stream << np.arange(32, dtype=np.uint64)).sum(-1).astype(np.uint32)


def unpack(wq: np.ndarray, bits: int) -> np.ndarray:
    rows, words = wq.shape
    bit = (wq[..., None].astype(np.uint64) >> np.arange(32, dtype=np.uint64)) & 1
    stream = bit.reshape(rows, words * 32 // bits, bits)
    return (stream << np.arange(bits, dtype=np.uint64)).sum(-1).astype(np.uint8)
