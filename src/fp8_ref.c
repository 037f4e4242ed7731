/*
 * fp8_ref.c - the executable specification of E4M3 checkpoint dequantization (mlxq_fp8.h):
 * one element at a time, each step of mlx-lm's `dequant` graph rounded to the dtype MLX
 * gives its result.
 */
#include "kernels.h"
#include "mlxq_fp8.h"

mlxq_dtype mlxq_fp8_product_dtype(mlxq_dtype sdt) {
    /* bfloat16 * sdt under MLX's promotion: bfloat16 only with itself, else float32 */
    return sdt == MLXQ_BF16 ? MLXQ_BF16 : mlxq_promote_float(MLXQ_BF16, sdt);
}

void mlxq_ref_fp8_dequant_row(const uint8_t *w, int64_t w_stride, const uint8_t *s,
                              int64_t s_stride, int64_t block_cols, mlxq_dtype sdt, int64_t n,
                              mlxq_dtype odt, uint8_t *out) {
    const mlxq_dtype pdt = mlxq_fp8_product_dtype(sdt);
    const size_t osize = mlxq_dtype_size(odt);
    for (int64_t j = 0; j < n; j++) {
        double scale = mlxq_load_float(s + (j / block_cols) * s_stride, sdt);
        double p = mlxq_fp8_scaled_value(w[j * w_stride], scale, pdt);
        mlxq_store_float(out + (size_t)j * osize, odt, p);
    }
}
