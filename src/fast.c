/*
 * fast.c - picks the fast kernel for a call: the active instruction set's table
 * (mlxq_cpu.h), then the dtype combination. A NULL answer makes the driver run the
 * reference kernel, so a combination without a fast version is slower, never different.
 */
#include <pthread.h>
#include <stdlib.h>

#include "kernels.h"
#include "mlxq_cpu.h"
#include "search_internal.h"

static const mlxq_fast_kernels *active_table(void) {
    switch (mlxq_active_isa()) {
    case MLXQ_ISA_AVX512: return mlxq_fast_kernels_avx512();
    case MLXQ_ISA_AVX2: return mlxq_fast_kernels_avx2();
    default: return NULL;
    }
}

static int small_dtype(mlxq_dtype dt) { return (unsigned)dt < MLXQ_DTYPE_COUNT; }

mlxq_affine_quant_fn mlxq_fast_affine_quant(mlxq_dtype dt, int bits, mlxq_device device) {
    const mlxq_fast_kernels *t = active_table();
    (void)bits;
    if (!t || !small_dtype(dt))
        return NULL;
    return device == MLXQ_DEVICE_GPU ? t->affine_quant_gpu[dt] : t->affine_quant[dt];
}

mlxq_affine_dequant_fn mlxq_fast_affine_dequant(mlxq_dtype sdt, mlxq_dtype bdt,
                                                mlxq_dtype odt, int bits, mlxq_device device) {
    const mlxq_fast_kernels *t = active_table();
    (void)bits;
    if (!t || sdt != bdt || !small_dtype(sdt) || !small_dtype(odt))
        return NULL;
    return device == MLXQ_DEVICE_GPU ? t->affine_dequant_gpu[sdt][odt]
                                     : t->affine_dequant[sdt][odt];
}

mlxq_fp_quant_fn mlxq_fast_fp_quant(const mlxq_qparams *p, mlxq_dtype dt) {
    const mlxq_fast_kernels *t = active_table();
    if (!t || !small_dtype(dt))
        return NULL;
    return p->device == MLXQ_DEVICE_GPU ? t->fp_quant_gpu[dt] : t->fp_quant[dt];
}

mlxq_fp_dequant_fn mlxq_fast_fp_dequant(const mlxq_qparams *p, mlxq_dtype odt) {
    const mlxq_fast_kernels *t = active_table();
    mlxq_dtype rdt = mlxq_dequantize_result_dtype(p, odt);
    if (!t || !small_dtype(odt) || !small_dtype(rdt))
        return NULL;
    return p->device == MLXQ_DEVICE_GPU ? t->fp_dequant_gpu[odt] : t->fp_dequant[odt][rdt];
}

mlxq_cast_fn mlxq_fast_cast(mlxq_dtype from, mlxq_dtype to) {
    const mlxq_fast_kernels *t = active_table();
    return t && small_dtype(from) && small_dtype(to) ? t->cast[from][to] : NULL;
}

mlxq_fp8_dequant_fn mlxq_fast_fp8_dequant(mlxq_dtype pdt, mlxq_dtype odt) {
    const mlxq_fast_kernels *t = active_table();
    return t && small_dtype(pdt) && small_dtype(odt) ? t->fp8_dequant[pdt][odt] : NULL;
}

mlxq_packint_dequant_fn mlxq_fast_packint_dequant(mlxq_dtype sdt, mlxq_dtype odt, int bits) {
    const mlxq_fast_kernels *t = active_table();
    (void)bits;
    return t && small_dtype(sdt) && small_dtype(odt) ? t->packint_dequant[sdt][odt] : NULL;
}

mlxq_affine_search_fn mlxq_fast_affine_search(mlxq_dtype dt) {
    const mlxq_search_kernels *t = NULL;
    switch (mlxq_active_isa()) {
    case MLXQ_ISA_AVX512: t = mlxq_search_kernels_avx512(); break;
    case MLXQ_ISA_AVX2: t = mlxq_search_kernels_avx2(); break;
    default: break;
    }
    return t && small_dtype(dt) ? t->affine[dt] : NULL;
}

/* ---- E2M1 code tables for the 16-bit dtypes -------------------------------------------- */

static uint8_t code_table[2][65536];
static pthread_once_t table_once[2] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void build_table(mlxq_dtype dt, uint8_t *table) {
    for (uint32_t h = 0; h < 65536; h++) {
        double v = dt == MLXQ_BF16 ? mlxq_bf16_to_f32((uint16_t)h) : mlxq_f16_to_f32((uint16_t)h);
        table[h] = mlxq_fp4_code(dt, v);
    }
}
static void build_bf16(void) { build_table(MLXQ_BF16, code_table[0]); }
static void build_f16(void) { build_table(MLXQ_F16, code_table[1]); }

const uint8_t *mlxq_fp4_code_table(mlxq_dtype dt) {
    int i = dt == MLXQ_BF16 ? 0 : 1;
    pthread_once(&table_once[i], i == 0 ? build_bf16 : build_f16);
    return code_table[i];
}

/* ---- group scale tables for the 16-bit dtypes ------------------------------------------ */

/* [bf16, f16][mxfp4, mxfp8, nvfp4 without a global scale] */
static mlxq_mx_scale_table scale_table[2][3];
static pthread_once_t scale_once[2][3] = {
    {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT},
    {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT}};

static void build_scales(int d, int kind) {
    mlxq_dtype dt = d == 0 ? MLXQ_BF16 : MLXQ_F16;
    mlxq_mx_scale_table *t = &scale_table[d][kind];
    for (uint32_t h = 0; h < 65536; h++) {
        double amax = d == 0 ? mlxq_bf16_to_f32((uint16_t)h) : mlxq_f16_to_f32((uint16_t)h);
        double divisor;
        if (kind == 2)
            mlxq_nv_group_scale(dt, amax, 1.0, &divisor, &t->byte[h]);
        else
            mlxq_mx_group_scale(dt, amax, kind, &divisor, &t->byte[h]);
        t->divisor[h] = (float)divisor;
    }
}
#define BUILD(d, k) static void build_##d##_##k(void) { build_scales(d, k); }
BUILD(0, 0) BUILD(0, 1) BUILD(0, 2) BUILD(1, 0) BUILD(1, 1) BUILD(1, 2)
#undef BUILD

const mlxq_mx_scale_table *mlxq_scale_table_for(mlxq_dtype dt, int kind) {
    static void (*const build[2][3])(void) = {{build_0_0, build_0_1, build_0_2},
                                              {build_1_0, build_1_1, build_1_2}};
    int d = dt == MLXQ_BF16 ? 0 : 1;
    pthread_once(&scale_once[d][kind], build[d][kind]);
    return &scale_table[d][kind];
}
