/*
 * kernels.h - internal: the per-row kernels behind mlxq_quant.h, and the value helpers the
 * reference kernels share. Not installed, not part of the API.
 *
 * A "row" is one slice along the last axis of the logical [rows, cols] view. Reference
 * kernels take element strides (bytes) for their inputs; fast kernels require contiguous
 * rows (the driver gathers strided rows into a scratch buffer first). Outputs are always
 * contiguous row slices. Every kernel writes every output byte of its row.
 */
#ifndef MLXQ_KERNELS_H
#define MLXQ_KERNELS_H

#include "mlxq_float.h"
#include "mlxq_qparams.h"

/* ---- values as the reference kernels see them --------------------------------------- */

/* Loads a float-typed element as a double (exact for every float dtype). */
static inline double mlxq_load_float(const uint8_t *p, mlxq_dtype dt) {
    switch (dt) {
    case MLXQ_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return mlxq_f16_to_f32(h);
    }
    case MLXQ_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return mlxq_bf16_to_f32(h);
    }
    case MLXQ_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    default: {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    }
}

/* Rounds x to dtype dt the way MLX stores an op's result: a float32 computation rounded to
 * the narrow type. Computing an f32 op in double and rounding once to float gives the
 * correctly rounded f32 result for + - * / (53 >= 2*24 + 2), so callers may do the op in
 * double and pass it here. */
static inline double mlxq_round_to(mlxq_dtype dt, double x) {
    switch (dt) {
    case MLXQ_F16:
        return mlxq_f16_to_f32(mlxq_f32_to_f16((float)x));
    case MLXQ_BF16:
        return mlxq_bf16_to_f32(mlxq_f32_to_bf16((float)x));
    case MLXQ_F32:
        return (float)x;
    default:
        return x;
    }
}

/* Stores x (already representable, or to be rounded as mlxq_round_to does) as dtype dt. */
static inline void mlxq_store_float(uint8_t *p, mlxq_dtype dt, double x) {
    switch (dt) {
    case MLXQ_F16: {
        uint16_t h = mlxq_f32_to_f16((float)x);
        memcpy(p, &h, 2);
        break;
    }
    case MLXQ_BF16: {
        uint16_t h = mlxq_f32_to_bf16((float)x);
        memcpy(p, &h, 2);
        break;
    }
    case MLXQ_F32: {
        float f = (float)x;
        memcpy(p, &f, 4);
        break;
    }
    default:
        memcpy(p, &x, 8);
        break;
    }
}

/* MLX's affine group parameters from the group's float32 min and max (NaN elements
 * excluded): the float32 scale and bias the codes are computed with, before their rounding
 * to the stored dtype. Shared by every affine kernel so there is one statement of it. */
static inline void mlxq_affine_params(float w_min, float w_max, int bits, float *scale_out,
                                      float *bias_out) {
    const float n_bins = (float)((1u << bits) - 1u);
    const float eps = 1e-7f;
    int mask = fabsf(w_min) > fabsf(w_max);
    float scale = (w_max - w_min) / n_bins;
    scale = (scale < eps) ? eps : scale; /* std::max(scale, eps) */
    scale = mask ? scale : -scale;
    float edge = mask ? w_min : w_max;
    float q0 = rintf(edge / scale);
    float bias = 0.0f;
    if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
    }
    *scale_out = scale;
    *bias_out = bias;
}

/* a * b and a + b with x86's NaN rule made explicit: when the first operand is a NaN the
 * result is that NaN (quieted), else a NaN second operand. The C compiler may commute a
 * product's operands, and MLX's NaN bit patterns depend on which NaN survives. */
static inline double mlxq_mul(double a, double b) {
    return isnan(a) ? a : isnan(b) ? b : a * b;
}
static inline double mlxq_add(double a, double b) {
    return isnan(a) ? a : isnan(b) ? b : a + b;
}

/* E2M1 code values in MLX's table order; the order decides argmin ties (lowest index). */
extern const float mlxq_fp4_lut[16];

/* ---- per-group scalar steps of the fp formats (ref_fp.c), shared by every kernel ----- */

/* The factor nvfp4 multiplies into its scales: 1, or 2688 / global_scale in float32. */
double mlxq_nv_encode(const mlxq_qparams *p);
/* E2M1 code of v: argmin over mlxq_fp4_lut of |v - lut| rounded to dtype ct. */
uint8_t mlxq_fp4_code(mlxq_dtype ct, double v);
/* mx formats: from a group's max |w| (NaN if any element is NaN), the power of two the
 * elements are divided by (a T value) and the E8M0 scale byte. */
void mlxq_mx_group_scale(mlxq_dtype T, double amax, int fp8, double *divisor, uint8_t *byte);
/* nvfp4: the E4M3 scale byte and the T value elements are divided by (before * enc). */
void mlxq_nv_group_scale(mlxq_dtype T, double amax, double enc, double *divisor,
                         uint8_t *byte);
/* The factor a group's decoded elements are multiplied by on dequantize, as a value of
 * mlxq_dequantize_result_dtype(p, O). */
double mlxq_fp_dequant_scale(const mlxq_qparams *p, mlxq_dtype O, uint8_t byte);

/* ---- E4M3 checkpoints (mlxq_fp8.h) ------------------------------------------------ */

/* A NaN scale as x86's multiply returns it: quieted, sign and payload kept. Done on the
 * float bits because the compiler may elide a float -> double -> float round trip (it
 * assumes no signalling NaNs), which would otherwise let a signalling NaN through. */
static inline double mlxq_quiet_nan_f32(double s) {
    return mlxq_f32_from_bits(mlxq_f32_bits((float)s) | 0x400000u);
}

/* One element of an E4M3 dequantization: MLX's from_fp8(code, bfloat16) times the scale s
 * (a value of the scale dtype), rounded to the product dtype pdt. The caller stores it with
 * mlxq_store_float, which rounds to the output dtype as MLX's astype does. */
static inline double mlxq_fp8_scaled_value(uint8_t code, double s, mlxq_dtype pdt) {
    double v = mlxq_round_to(MLXQ_BF16, mlxq_e4m3_to_f32(code)); /* NaN -> +0x7FC0 */
    if (isnan(v)) /* the first operand's NaN wins */
        return mlxq_round_to(pdt, v);
    if (isnan(s))
        return mlxq_round_to(pdt, mlxq_quiet_nan_f32(s));
    return mlxq_round_to(pdt, v * s);
}

/* One element of a compressed-tensors pack-quantized row (mlxq_packint.h): the signed
 * integer q times the scale s (a value of dtype sdt), rounded to sdt. */
static inline double mlxq_packint_value(int q, double s, mlxq_dtype sdt) {
    return mlxq_round_to(sdt, isnan(s) ? mlxq_quiet_nan_f32(s) : (double)q * s);
}

/* ---- MLX's GPU arithmetic (the Metal kernels; mlxq_qparams.h's MLXQ_DEVICE_GPU) ------
 * The GPU kernels compute in float32 (scales and elements are loaded into `float`), with
 * Metal's functions: round() rounds halfway cases away from zero, min()/max() are IEEE
 * minNum/maxNum (MLX builds its kernels with -fno-fast-math, so metal::min/max are the
 * precise ones: a NaN operand is ignored). NaN bits follow the rule of ARM and IEEE 754's
 * recommendation: an operation returns its first NaN operand, quieted, and an invalid
 * operation on numbers (inf - inf, 0 * inf, ...) returns the default NaN +0x7FC00000 (x86,
 * where this code runs, would return the negative one); a conversion to half or bfloat
 * keeps the NaN's sign and truncates its payload. NaN bits are this assumption, not a
 * measurement: no Apple GPU was available to check them (docs/formats.md). */

#define MLXQ_GPU_QNAN 0x7FC00000u

/* metal::max / metal::min without fast math: IEEE maxNum / minNum, a NaN operand (quiet or
 * signalling: GPUs have no signalling NaNs) gives the other. Not C's fmaxf/fminf, which
 * glibc makes return NaN for a signalling operand. */
static inline float mlxq_max_num(float a, float b) {
    return isnan(a) ? b : isnan(b) ? a : (b > a ? b : a);
}
static inline float mlxq_min_num(float a, float b) {
    return isnan(a) ? b : isnan(b) ? a : (b < a ? b : a);
}

static inline float mlxq_gpu_quiet(float a) {
    return mlxq_f32_from_bits(mlxq_f32_bits(a) | 0x400000u);
}

/* r = op(a, b) computed on x86, given the GPU's NaN rule. */
static inline float mlxq_gpu_nan(float r, float a, float b) {
    if (!isnan(r))
        return r;
    if (isnan(a))
        return mlxq_gpu_quiet(a);
    if (isnan(b))
        return mlxq_gpu_quiet(b);
    return mlxq_f32_from_bits(MLXQ_GPU_QNAN);
}
static inline float mlxq_gpu_mul(float a, float b) { return mlxq_gpu_nan(a * b, a, b); }
static inline float mlxq_gpu_div(float a, float b) { return mlxq_gpu_nan(a / b, a, b); }

/* static_cast<half>(float) / static_cast<bfloat>(float) on the GPU: round to nearest even;
 * NaN keeps its sign and the top of its payload (MLX's CPU types write 0x7D00 / 0x7FC0). */
static inline uint16_t mlxq_gpu_f32_to_f16(float f) {
    uint32_t u = mlxq_f32_bits(f);
    if (isnan(f))
        return (uint16_t)(((u >> 16) & 0x8000u) | 0x7E00u | ((u >> 13) & 0x3FFu));
    return mlxq_f32_to_f16(f);
}
static inline uint16_t mlxq_gpu_f32_to_bf16(float f) {
    if (isnan(f))
        return (uint16_t)((mlxq_f32_bits(f) >> 16) | 0x40u);
    return mlxq_f32_to_bf16(f);
}

/* A float32 value rounded to dtype dt (f16, bf16 or f32) as the GPU converts it. */
static inline float mlxq_gpu_round_to(mlxq_dtype dt, float x) {
    if (dt == MLXQ_F16)
        return mlxq_f16_to_f32(mlxq_gpu_f32_to_f16(x));
    if (dt == MLXQ_BF16)
        return mlxq_bf16_to_f32(mlxq_gpu_f32_to_bf16(x));
    return x;
}

static inline void mlxq_gpu_store_float(uint8_t *p, mlxq_dtype dt, float x) {
    if (dt == MLXQ_F16 || dt == MLXQ_BF16) {
        uint16_t h = dt == MLXQ_F16 ? mlxq_gpu_f32_to_f16(x) : mlxq_gpu_f32_to_bf16(x);
        memcpy(p, &h, 2);
    } else {
        memcpy(p, &x, 4);
    }
}

/* Metal's affine_quantize, per group, from the group's w_min (from +inf: Limits<T>::max is
 * infinity for float types) and w_max (from 0, not -inf as on the CPU, so an all-negative
 * group gets w_max = 0), NaN elements ignored by min/max: the float32 scale and bias. The
 * differences from mlxq_affine_params (the CPU's quantize<T, U>): max(range / n_bins, eps)
 * turns a NaN range into eps; round() instead of rint(). A NaN scale (only an invalid
 * operation makes one) is the GPU's default NaN. */
static inline void mlxq_affine_params_gpu(float w_min, float w_max, int bits, float *scale_out,
                                          float *bias_out) {
    const float n_bins = (float)((1u << bits) - 1u);
    const float eps = 1e-7f;
    float scale = mlxq_max_num((w_max - w_min) / n_bins, eps);
    int side = fabsf(w_min) > fabsf(w_max);
    scale = side ? scale : -scale;
    float edge = side ? w_min : w_max;
    float q0 = roundf(edge / scale);
    int at_zero = q0 == 0.0f;
    scale = at_zero ? scale : edge / q0;
    *scale_out = isnan(scale) ? mlxq_f32_from_bits(MLXQ_GPU_QNAN) : scale;
    *bias_out = at_zero ? 0.0f : edge;
}

/* affine_quantize's code: uint8_t(min(round((w - bias) / scale), n_bins)). Clamped only
 * from above, so a NaN quotient becomes n_bins (the CPU clamps to [0, n_bins] and stores a
 * NaN as 0); the quotient is never below -0.5 (w - bias has the sign of scale), so the
 * conversion to uint8 never sees a negative value. */
static inline uint32_t mlxq_affine_code_gpu(float w, float bias, float scale, float n_bins) {
    float q = mlxq_min_num(roundf((w - bias) / scale), n_bins);
    return q > 0.0f ? (uint32_t)q : 0u;
}

/* One element of Metal's affine_dequantize: `scale * d + bias` in the scales' type T. The
 * expression is contracted into a fused multiply-add: MLX compiles its kernels without
 * `#pragma METAL fp contract(off)` and Metal contracts a*b+c under every math mode.
 *   f32:  fmaf(scale, q, bias);
 *   f16:  the half FMA, the exact scale * q + bias rounded once to half;
 *   bf16: Apple GPUs have no bfloat ALU: the fused op runs in float32 (scale * q is exact
 *         there) and the result is rounded to bfloat.
 * Returned as a float holding the T value (NaN by the GPU's rule). */
static inline float mlxq_gpu_affine_value(mlxq_dtype T, float s, float q, float b) {
    if (isnan(s))
        return mlxq_gpu_round_to(T, mlxq_gpu_quiet(s));
    if (isnan(b))
        return mlxq_gpu_round_to(T, mlxq_gpu_quiet(b));
    float r;
    if (T == MLXQ_F32) {
        r = fmaf(s, q, b);
    } else if (T == MLXQ_F16) {
        /* exact in double (half operands span < 53 bits); rounded to float with round-to-odd
         * so that the rounding to half below is the only one that counts */
        double e = (double)s * q + (double)b;
        r = (float)e;
        if (!isnan(e) && !isinf(e) && (double)r != e && !(mlxq_f32_bits(r) & 1u))
            r = mlxq_f32_from_bits(mlxq_f32_bits(r) + (fabs(e) > fabs((double)r) ? 1u : ~0u));
    } else {
        r = s * q + b;
    }
    if (isnan(r))
        r = mlxq_f32_from_bits(MLXQ_GPU_QNAN);
    return mlxq_gpu_round_to(T, r);
}

/* fp4_e2m1 (kernels/fp4.h): |x| against the midpoints of the E2M1 values, ties to the even
 * code (0.25 -> 0, 0.75 -> 1.0, 1.25 -> 1.0, 1.75 -> 2.0, 2.5 -> 2.0, 3.5 -> 4.0, 5 -> 4.0),
 * saturating, the sign bit from signbit(x) (so -0 and tiny negatives give code 8); NaN gives
 * 0x7 (+6). The CPU backend takes the argmin of |x - LUT| instead (ties to the lower LUT
 * index, and never a negative zero). */
static inline uint8_t mlxq_gpu_fp4_code(float x) {
    if (isnan(x))
        return 0x7;
    uint8_t sign = signbit(x) ? 0x8 : 0x0;
    float a = fabsf(x);
    uint8_t b = a > 5.0f ? 7 : a >= 3.5f ? 6 : a > 2.5f ? 5 : a >= 1.75f ? 4
              : a > 1.25f ? 3 : a >= 0.75f ? 2 : a > 0.25f ? 1 : 0;
    return b | sign;
}

/* Metal's fp_quantize for mx groups: mx_scale_round_up(amax / maxval) then fp8_e8m0: the
 * smallest power of two >= s, as the byte clamp(ceil(log2 s), -127, 127) + 127. s = 0 (an
 * all-zero group) gives byte 0: fp8_e8m0 rounds log2(0) = -inf to int, which Apple GPUs
 * saturate to INT_MIN (assumed; the CPU backend writes 127 for such a group); a NaN or inf
 * s gives 0xFF. */
static inline uint8_t mlxq_gpu_mx_scale_byte(float s) {
    if (!isfinite(s))
        return 0xFF;
    if (s <= 0.0f)
        return 0x00;
    const uint32_t u = mlxq_f32_bits(s), e = u >> 23;
    if (e == 0) /* subnormal: s < 2^-126, ceil(log2 s) <= -126 and clamps... */
        return (u & 0x7FFFFFu) > 0x400000u ? 1 : 0; /* ...to -127 unless s > 2^-127 */
    /* s = 2^(e-127) * (1 + m): ceil(log2 s) is e - 127, or one more when m != 0 */
    int k = (int)e - 127 + ((u & 0x7FFFFFu) != 0);
    k = k > 127 ? 127 : k;
    return (uint8_t)(k + 127);
}

/* float(fp8_e8m0): 2^(byte - 127), byte 0 -> 2^-127 (a subnormal), 0xFF -> +inf. */
static inline float mlxq_gpu_e8m0_value(uint8_t b) {
    return mlxq_f32_from_bits(b == 0 ? 0x400000u : (uint32_t)b << 23);
}

/* The GPU's fp-mode group scale (fp_quantize): from the group's amax (maxNum over |w|; mx:
 * NaN when every element is NaN, nvfp4: from 0), the scale byte and the float factor the
 * elements are multiplied by (scale_enc / float(scale), 0 for a zero scale). enc: 1, or
 * 2688 / global_scale in float. */
static inline void mlxq_gpu_fp_group_scale(const mlxq_qparams *p, float amax, float enc,
                                           uint8_t *byte, float *factor) {
    float s = mlxq_gpu_div(amax, p->bits == 4 ? 6.0f : 448.0f);
    float sf;
    if (p->mode != MLXQ_MODE_NVFP4) {
        *byte = mlxq_gpu_mx_scale_byte(s);
        sf = mlxq_gpu_e8m0_value(*byte);
    } else {
        if (p->has_global_scale)
            s = mlxq_gpu_mul(s, enc);
        *byte = mlxq_f32_to_e4m3(s); /* fp8_e4m3: the same ToFP8 as the CPU */
        sf = mlxq_e4m3_to_f32(*byte);
    }
    *factor = sf == 0.0f ? 0.0f : mlxq_gpu_div(enc, sf);
}

/* ---- reference (portable scalar) kernels ------------------------------------------- */

void mlxq_ref_affine_quant_row(mlxq_dtype dt, const uint8_t *src, int64_t stride,
                               int64_t cols, int group_size, int bits, uint8_t *wq,
                               uint8_t *scales, uint8_t *biases);

void mlxq_ref_affine_dequant_row(const uint8_t *wq, int64_t wq_stride, const uint8_t *scales,
                                 int64_t s_stride, mlxq_dtype sdt, const uint8_t *biases,
                                 int64_t b_stride, mlxq_dtype bdt, int64_t cols,
                                 int group_size, int bits, mlxq_dtype odt, uint8_t *out);

void mlxq_ref_fp_quant_row(const mlxq_qparams *p, mlxq_dtype dt, const uint8_t *src,
                           int64_t stride, int64_t cols, uint8_t *wq, uint8_t *scales);

void mlxq_ref_fp_dequant_row(const mlxq_qparams *p, const uint8_t *wq, int64_t wq_stride,
                             const uint8_t *scales, int64_t s_stride, int64_t cols,
                             mlxq_dtype odt, uint8_t *out);

/* n E4M3 codes (w: byte stride w_stride) to dtype odt: code j is scaled by the sdt value at
 * s + (j / block_cols) * s_stride (block scales: block_cols = the block width; broadcast
 * scales: block_cols = 1 and s_stride the scale's element stride, 0 for one scale). */
void mlxq_ref_fp8_dequant_row(const uint8_t *w, int64_t w_stride, const uint8_t *s,
                              int64_t s_stride, int64_t block_cols, mlxq_dtype sdt, int64_t n,
                              mlxq_dtype odt, uint8_t *out);

/* One row of mlxq_packint_dequant: `words` is the row's packed words (word k at
 * words + k * w_stride), the group scales of dtype sdt at s + g * s_stride. */
void mlxq_ref_packint_dequant_row(const uint8_t *words, int64_t w_stride, int bits,
                                  const uint8_t *s, int64_t s_stride, mlxq_dtype sdt,
                                  int64_t group_size, int64_t cols, mlxq_dtype odt,
                                  uint8_t *out);

/* The GPU device's reference kernels (ref_gpu.c): Metal's affine_quantize,
 * affine_dequantize (+ astype to the output dtype), fp_quantize and fp_dequantize. The
 * affine dequantize takes scales and biases of one dtype T (Metal reads both as T). */
void mlxq_ref_affine_quant_row_gpu(mlxq_dtype dt, const uint8_t *src, int64_t stride,
                                   int64_t cols, int group_size, int bits, uint8_t *wq,
                                   uint8_t *scales, uint8_t *biases);
void mlxq_ref_affine_dequant_row_gpu(const uint8_t *wq, int64_t wq_stride,
                                     const uint8_t *scales, int64_t s_stride,
                                     const uint8_t *biases, int64_t b_stride, mlxq_dtype T,
                                     int64_t cols, int group_size, int bits, mlxq_dtype odt,
                                     uint8_t *out);
void mlxq_ref_fp_quant_row_gpu(const mlxq_qparams *p, mlxq_dtype dt, const uint8_t *src,
                               int64_t stride, int64_t cols, uint8_t *wq, uint8_t *scales);
void mlxq_ref_fp_dequant_row_gpu(const mlxq_qparams *p, const uint8_t *wq, int64_t wq_stride,
                                 const uint8_t *scales, int64_t s_stride, int64_t cols,
                                 mlxq_dtype odt, uint8_t *out);

/* The float factor fp_dequantize multiplies a group's decoded elements by. */
float mlxq_gpu_fp_dequant_scale(const mlxq_qparams *p, uint8_t byte);

/* ---- fast kernels ------------------------------------------------------------------ */

/* A fast implementation of one operation for one dtype combination, chosen once per call by
 * the dispatcher; NULL when the combination has no fast version (the reference runs). */
typedef void (*mlxq_affine_quant_fn)(const uint8_t *src, int64_t cols, int group_size,
                                     int bits, uint8_t *wq, uint8_t *scales, uint8_t *biases);
typedef void (*mlxq_affine_dequant_fn)(const uint8_t *wq, const uint8_t *scales,
                                       const uint8_t *biases, int64_t cols, int group_size,
                                       int bits, uint8_t *out);
typedef void (*mlxq_fp_quant_fn)(const mlxq_qparams *p, const uint8_t *src, int64_t cols,
                                 uint8_t *wq, uint8_t *scales);
typedef void (*mlxq_fp_dequant_fn)(const mlxq_qparams *p, const uint8_t *wq,
                                   const uint8_t *scales, int64_t cols, uint8_t *out);
/* n contiguous E4M3 codes to dtype odt through the product dtype pdt (mlxq_fp8.h): code j
 * is scaled by s[j * s_step] (s_step 0: one scale for the run, 1: one per element), the
 * scales given as floats (exact for every scale dtype). */
typedef void (*mlxq_fp8_dequant_fn)(const uint8_t *w, const float *s, int s_step, int64_t n,
                                    uint8_t *out);
/* One row of mlxq_packint_dequant: `packed` holds the row's code stream, readable (zero
 * padded) up to n rounded up to 16 codes; s one float per group of group_size codes (the
 * scale values, exact); codes a scratch of n rounded up to 16 bytes. The product is rounded
 * to the scale dtype the kernel was built for, then stored as its output dtype. */
typedef void (*mlxq_packint_dequant_fn)(const uint8_t *packed, int bits, const float *s,
                                        int64_t group_size, int64_t n, uint8_t *codes,
                                        uint8_t *out);
/* n contiguous elements from one float dtype to another (mlxq_cast's fast path). */
typedef void (*mlxq_cast_fn)(const uint8_t *src, uint8_t *dst, int64_t n);

/* One instruction set's kernels, indexed by dtype; NULL where that combination has none.
 * affine_dequant is [scales/biases dtype][output dtype] (scales and biases must share it). */
typedef struct {
    mlxq_affine_quant_fn affine_quant[MLXQ_DTYPE_COUNT];
    mlxq_affine_dequant_fn affine_dequant[MLXQ_DTYPE_COUNT][MLXQ_DTYPE_COUNT];
    mlxq_fp_quant_fn fp_quant[MLXQ_DTYPE_COUNT];
    mlxq_fp_dequant_fn fp_dequant[MLXQ_DTYPE_COUNT][MLXQ_DTYPE_COUNT]; /* [asked][result] */
    mlxq_cast_fn cast[MLXQ_DTYPE_COUNT][MLXQ_DTYPE_COUNT]; /* [from][to] */
    mlxq_fp8_dequant_fn fp8_dequant[MLXQ_DTYPE_COUNT][MLXQ_DTYPE_COUNT]; /* [product][out] */
    mlxq_packint_dequant_fn packint_dequant[MLXQ_DTYPE_COUNT][MLXQ_DTYPE_COUNT]; /* [s][out] */
    /* the GPU device's arithmetic (ref_gpu.c); fp_dequant_gpu is [output dtype] */
    mlxq_affine_quant_fn affine_quant_gpu[MLXQ_DTYPE_COUNT];
    mlxq_affine_dequant_fn affine_dequant_gpu[MLXQ_DTYPE_COUNT][MLXQ_DTYPE_COUNT];
    mlxq_fp_quant_fn fp_quant_gpu[MLXQ_DTYPE_COUNT];
    mlxq_fp_dequant_fn fp_dequant_gpu[MLXQ_DTYPE_COUNT];
} mlxq_fast_kernels;

const mlxq_fast_kernels *mlxq_fast_kernels_avx2(void);
const mlxq_fast_kernels *mlxq_fast_kernels_avx512(void);

/* The dispatcher (fast.c): the active ISA's kernel, or NULL (then the reference runs). */
mlxq_affine_quant_fn mlxq_fast_affine_quant(mlxq_dtype dt, int bits, mlxq_device device);
mlxq_affine_dequant_fn mlxq_fast_affine_dequant(mlxq_dtype sdt, mlxq_dtype bdt,
                                                mlxq_dtype odt, int bits, mlxq_device device);
mlxq_fp_quant_fn mlxq_fast_fp_quant(const mlxq_qparams *p, mlxq_dtype dt);
mlxq_fp_dequant_fn mlxq_fast_fp_dequant(const mlxq_qparams *p, mlxq_dtype odt);
mlxq_cast_fn mlxq_fast_cast(mlxq_dtype from, mlxq_dtype to);
mlxq_fp8_dequant_fn mlxq_fast_fp8_dequant(mlxq_dtype pdt, mlxq_dtype odt);
mlxq_packint_dequant_fn mlxq_fast_packint_dequant(mlxq_dtype sdt, mlxq_dtype odt, int bits);

/* mlxq_fp4_code(dt, v) for every bit pattern of the 16-bit dtype dt (bf16 or f16), built
 * on first use; thread-safe. */
const uint8_t *mlxq_fp4_code_table(mlxq_dtype dt);

/* The per-group scale step for every bit pattern of amax in the 16-bit dtype dt (a group's
 * max |w| of bf16/f16 input is one of its elements, so it has such a pattern), so the step
 * becomes two loads. kind 0: mlxq_mx_group_scale(dt, amax, 0); 1: the same with fp8;
 * 2: mlxq_nv_group_scale(dt, amax, enc = 1), nvfp4 without a global scale. Built on first
 * use from the reference functions, so equal to them by construction; thread-safe. */
typedef struct {
    uint8_t byte[65536];
    float divisor[65536];
} mlxq_mx_scale_table;
const mlxq_mx_scale_table *mlxq_scale_table_for(mlxq_dtype dt, int kind);

#endif /* MLXQ_KERNELS_H */
