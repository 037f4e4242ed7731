/*
 * packint_ref.c - the executable specification of mlxq_packint.h: one element at a time,
 * the code read from its bit position, the producer's product rounded to the scale dtype.
 */
#include "kernels.h"
#include "mlxq_packint.h"

void mlxq_ref_packint_dequant_row(const uint8_t *words, int64_t w_stride, int bits,
                                  const uint8_t *s, int64_t s_stride, mlxq_dtype sdt,
                                  int64_t group_size, int64_t cols, mlxq_dtype odt,
                                  uint8_t *out) {
    const size_t osize = mlxq_dtype_size(odt);
    const uint32_t mask = (1u << bits) - 1u;
    const int off = 1 << (bits - 1);
    for (int64_t j = 0; j < cols; j++) {
        /* bits divides 32, so no code straddles two words */
        const int64_t bit = j * bits;
        uint32_t word;
        memcpy(&word, words + (bit / 32) * w_stride, 4);
        const int code = (int)((word >> (bit % 32)) & mask);
        const double scale = mlxq_load_float(s + (j / group_size) * s_stride, sdt);
        mlxq_store_float(out + (size_t)j * osize, odt,
                         mlxq_packint_value(code - off, scale, sdt));
    }
}
