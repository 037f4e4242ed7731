/*
 * ref_gpu.c - the executable specification of MLX's GPU quantization (MLXQ_DEVICE_GPU):
 * the Metal kernels of MLX 0.32.4, one thread's work after another, in float32 with
 * Metal's round/min/max (kernels.h's "MLX's GPU arithmetic").
 *
 *   affine_quantize   (kernels/quantized.h): per group, w_min from +inf and w_max from 0
 *                     over the elements (simd_min/simd_max across the 32 lanes); scale and
 *                     bias by mlxq_affine_params_gpu; codes uint8(min(round(...), n_bins));
 *                     scale and bias stored as static_cast<T>.
 *   affine_dequantize (kernels/quantized.h): out = scale * d + bias in T (a fused
 *                     multiply-add, mlxq_gpu_affine_value), then MLX's astype to the
 *                     requested dtype.
 *   fp_quantize       (kernels/fp_quantized.h): amax = simd_max(|w|) over the group (nvfp4:
 *                     over half a SIMD group, the other lanes contributing 0); s = amax /
 *                     maxval; nvfp4 with a global scale: s *= 2688 / global_scale; mx:
 *                     s = mx_scale_round_up(s); the scale byte fp8_e8m0(s) or fp8_e4m3(s);
 *                     elements Quantize(w * (scale_enc / float(scale))) (a reciprocal
 *                     times w, not w / scale as on the CPU), fp4 by fp4_e2m1's thresholds.
 *   fp_dequantize     (kernels/fp_quantized.h): static_cast<T>(scale * value) with scale =
 *                     float(byte) (times global_scale / 2688), in float32: one rounding, to
 *                     the requested T, whatever the global scale.
 * The CUDA backend runs the same affine_quantize (backend/cuda/quantized/affine_quantize.cu);
 * its fp and dequantize kernels differ (docs/formats.md).
 */
#include "kernels.h"

/* Appends `bits`-bit codes to a little-endian, LSB-first bit stream. */
typedef struct {
    uint8_t *out;
    uint64_t acc;
    int n;
} bitwriter;

static inline void bw_put(bitwriter *w, uint32_t code, int bits) {
    w->acc |= (uint64_t)code << w->n;
    w->n += bits;
    while (w->n >= 8) {
        *w->out++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->n -= 8;
    }
}

static inline float load_f(const uint8_t *p, mlxq_dtype dt) {
    return (float)mlxq_load_float(p, dt);
}

void mlxq_ref_affine_quant_row_gpu(mlxq_dtype dt, const uint8_t *src, int64_t stride,
                                   int64_t cols, int group_size, int bits, uint8_t *wq,
                                   uint8_t *scales, uint8_t *biases) {
    const float n_bins = (float)((1u << bits) - 1u);
    const size_t tsize = mlxq_dtype_size(dt);
    bitwriter bw = {wq, 0, 0};
    for (int64_t g = 0; g < cols / group_size; g++) {
        const uint8_t *gp = src + g * group_size * stride;
        float w_min = INFINITY, w_max = 0.0f; /* Limits<T>::max, and 0 */
        for (int j = 0; j < group_size; j++) {
            float v = load_f(gp + j * stride, dt);
            w_min = mlxq_min_num(w_min, v); /* metal::min: a NaN element is ignored */
            w_max = mlxq_max_num(w_max, v);
        }
        float scale, bias;
        mlxq_affine_params_gpu(w_min, w_max, bits, &scale, &bias);
        for (int j = 0; j < group_size; j++)
            bw_put(&bw, mlxq_affine_code_gpu(load_f(gp + j * stride, dt), bias, scale, n_bins),
                   bits);
        mlxq_gpu_store_float(scales + g * tsize, dt, scale);
        mlxq_gpu_store_float(biases + g * tsize, dt, bias);
    }
}

/* Reads the code at bit offset `pos` of a stream held in uint32 words `stride` bytes apart. */
static inline uint32_t read_code(const uint8_t *wq, int64_t stride, int64_t pos, int bits) {
    int64_t word = pos >> 5;
    int shift = (int)(pos & 31);
    uint32_t lo, hi = 0;
    memcpy(&lo, wq + word * stride, 4);
    uint64_t v = lo;
    if (shift + bits > 32) {
        memcpy(&hi, wq + (word + 1) * stride, 4);
        v |= (uint64_t)hi << 32;
    }
    return (uint32_t)(v >> shift) & ((1u << bits) - 1u);
}

void mlxq_ref_affine_dequant_row_gpu(const uint8_t *wq, int64_t wq_stride,
                                     const uint8_t *scales, int64_t s_stride,
                                     const uint8_t *biases, int64_t b_stride, mlxq_dtype T,
                                     int64_t cols, int group_size, int bits, mlxq_dtype odt,
                                     uint8_t *out) {
    const size_t osize = mlxq_dtype_size(odt);
    for (int64_t g = 0; g < cols / group_size; g++) {
        float s = load_f(scales + g * s_stride, T);
        float b = load_f(biases + g * b_stride, T);
        for (int j = 0; j < group_size; j++) {
            int64_t k = g * group_size + j;
            float q = (float)read_code(wq, wq_stride, k * bits, bits);
            /* the kernel's T result, then astype(out dtype) (a GPU conversion) */
            mlxq_gpu_store_float(out + k * osize, odt, mlxq_gpu_affine_value(T, s, q, b));
        }
    }
}

void mlxq_ref_fp_quant_row_gpu(const mlxq_qparams *p, mlxq_dtype dt, const uint8_t *src,
                               int64_t stride, int64_t cols, uint8_t *wq, uint8_t *scales) {
    const int gs = p->group_size, fp8 = p->bits == 8, nv = p->mode == MLXQ_MODE_NVFP4;
    /* scale_enc = (F8E4M3_MAX * F4E2M1_MAX) / *global_scale, in float */
    const float enc = p->has_global_scale ? mlxq_gpu_div(2688.0f, p->global_scale) : 1.0f;
    for (int64_t g = 0; g < cols / gs; g++) {
        const uint8_t *gp = src + g * gs * stride;
        uint8_t *out = wq + g * gs * p->bits / 8;
        /* simd_max(abs(w)): maxNum over the lanes; nvfp4's other half-group adds zeros */
        float amax = nv ? 0.0f : NAN;
        for (int j = 0; j < gs; j++)
            amax = mlxq_max_num(amax, fabsf(load_f(gp + j * stride, dt)));
        float factor;
        mlxq_gpu_fp_group_scale(p, amax, enc, &scales[g], &factor);
        for (int j = 0; j < gs; j++) {
            float x = mlxq_gpu_mul(load_f(gp + j * stride, dt), factor);
            uint8_t c = fp8 ? mlxq_f32_to_e4m3(x) : mlxq_gpu_fp4_code(x);
            if (fp8)
                out[j] = c;
            else if (j & 1)
                out[j / 2] |= (uint8_t)(c << 4);
            else
                out[j / 2] = c;
        }
    }
}

float mlxq_gpu_fp_dequant_scale(const mlxq_qparams *p, uint8_t byte) {
    float scale = p->mode == MLXQ_MODE_NVFP4 ? mlxq_e4m3_to_f32(byte) : mlxq_gpu_e8m0_value(byte);
    if (p->has_global_scale) /* inv_scale_enc = *global_scale / 2688, in float */
        scale = mlxq_gpu_mul(scale, mlxq_gpu_div(p->global_scale, 2688.0f));
    return scale;
}

void mlxq_ref_fp_dequant_row_gpu(const mlxq_qparams *p, const uint8_t *wq, int64_t wq_stride,
                                 const uint8_t *scales, int64_t s_stride, int64_t cols,
                                 mlxq_dtype odt, uint8_t *out) {
    const int gs = p->group_size, fp8 = p->bits == 8;
    const size_t osize = mlxq_dtype_size(odt);
    for (int64_t g = 0; g < cols / gs; g++) {
        float sc = mlxq_gpu_fp_dequant_scale(p, scales[g * s_stride]);
        for (int j = 0; j < gs; j++) {
            int64_t k = g * gs + j;
            int64_t byte = fp8 ? k : k / 2;
            uint32_t word;
            memcpy(&word, wq + (byte / 4) * wq_stride, 4);
            uint8_t b = (uint8_t)(word >> (8 * (byte % 4)));
            float v = fp8 ? mlxq_e4m3_to_f32(b) : mlxq_fp4_lut[(k & 1) ? (b >> 4) : (b & 15)];
            mlxq_gpu_store_float(out + k * osize, odt, mlxq_gpu_mul(sc, v));
        }
    }
}
