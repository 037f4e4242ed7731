/*
 * drivers.h - internal: what the drivers (quant.c, and search.c and gptq.c which reuse its
 * shape rules) share. Kernels never include this: a kernel calls down, never up into a driver.
 */
#ifndef MLXQ_DRIVERS_H
#define MLXQ_DRIVERS_H

#include "mlxq_quant.h"

/* Number of rows of the [rows, cols] view (the product of all but the last dimension). */
int64_t mlxq_count_rows(const mlxq_tensor *t);
/* Byte offset of row r of t (all axes but the last flattened, C order). */
int64_t mlxq_row_offset(const mlxq_tensor *t, int64_t r);
/* mlxq_quantize's checks of its outputs (w and p already checked). */
mlxq_status mlxq_quantize_check_outputs(const mlxq_tensor *w, const mlxq_qparams *p,
                                        mlxq_tensor *wq, mlxq_tensor *scales,
                                        mlxq_tensor *biases, mlxq_error *err);

#endif /* MLXQ_DRIVERS_H */
