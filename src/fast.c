#include "kernels.h"
mlxq_affine_quant_fn mlxq_fast_affine_quant(mlxq_dtype dt, int bits) { return NULL; }
mlxq_affine_dequant_fn mlxq_fast_affine_dequant(mlxq_dtype s, mlxq_dtype b, mlxq_dtype o, int bits) { return NULL; }
mlxq_fp_quant_fn mlxq_fast_fp_quant(const mlxq_qparams *p, mlxq_dtype dt) { return NULL; }
mlxq_fp_dequant_fn mlxq_fast_fp_dequant(const mlxq_qparams *p, mlxq_dtype odt) { return NULL; }
