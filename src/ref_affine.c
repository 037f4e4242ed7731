/*
 * ref_affine.c - the executable specification of MLX's affine quantization.
 *
 * Matches MLX's CPU `quantize<T, U>` (fast::Quantize::eval_cpu) operation for operation:
 * float32 arithmetic on each group, std::max/std::min comparison order (NaN elements never
 * become the min or max), true division rather than a reciprocal multiply, rint (round half
 * to even), and NaN codes stored as 0. Dequantize matches MLX's op graph: q * scale rounded
 * to the scales' dtype, then + bias rounded to the promoted dtype, then cast to the output.
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

void mlxq_ref_affine_quant_row(mlxq_dtype dt, const uint8_t *src, int64_t stride,
                               int64_t cols, int group_size, int bits, uint8_t *wq,
                               uint8_t *scales, uint8_t *biases) {
    const float n_bins = (float)((1u << bits) - 1u);
    const size_t tsize = mlxq_dtype_size(dt);
    bitwriter bw = {wq, 0, 0};
    for (int64_t g = 0; g < cols / group_size; g++) {
        const uint8_t *gp = src + g * group_size * stride;
        float w_max = -INFINITY, w_min = INFINITY;
        for (int j = 0; j < group_size; j++) {
            float v = (float)mlxq_load_float(gp + j * stride, dt);
            w_max = (w_max < v) ? v : w_max; /* std::max(w_max, v) */
            w_min = (v < w_min) ? v : w_min; /* std::min(w_min, v) */
        }
        float scale, bias;
        mlxq_affine_params(w_min, w_max, bits, &scale, &bias);
        for (int j = 0; j < group_size; j++) {
            float v = (float)mlxq_load_float(gp + j * stride, dt);
            float q = rintf((v - bias) / scale);
            q = (q < 0.0f) ? 0.0f : q;       /* std::max(q, 0.0f) keeps NaN */
            q = (n_bins < q) ? n_bins : q;   /* std::min(q, n_bins) keeps NaN */
            bw_put(&bw, isnan(q) ? 0u : (uint32_t)q, bits);
        }
        mlxq_store_float(scales + g * tsize, dt, scale);
        mlxq_store_float(biases + g * tsize, dt, bias);
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

void mlxq_ref_affine_dequant_row(const uint8_t *wq, int64_t wq_stride, const uint8_t *scales,
                                 int64_t s_stride, mlxq_dtype sdt, const uint8_t *biases,
                                 int64_t b_stride, mlxq_dtype bdt, int64_t cols,
                                 int group_size, int bits, mlxq_dtype odt, uint8_t *out) {
    const mlxq_dtype sum_dt = mlxq_promote_float(sdt, bdt);
    const size_t osize = mlxq_dtype_size(odt);
    for (int64_t g = 0; g < cols / group_size; g++) {
        double s = mlxq_load_float(scales + g * s_stride, sdt);
        double b = mlxq_load_float(biases + g * b_stride, bdt);
        for (int j = 0; j < group_size; j++) {
            int64_t k = g * group_size + j;
            double q = read_code(wq, wq_stride, k * bits, bits);
            double v = mlxq_round_to(sdt, q * s);   /* multiply(uint32 q, scales) */
            v = mlxq_round_to(sum_dt, mlxq_add(v, b)); /* add(., biases) */
            mlxq_store_float(out + k * osize, odt, v); /* astype(out dtype) */
        }
    }
}
