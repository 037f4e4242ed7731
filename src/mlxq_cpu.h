/*
 * mlxq_cpu.h - which instruction set the fast kernels may use, decided at run time.
 *
 * Contract: mlxq_active_isa() never returns an ISA this CPU (and OS) cannot run. It is the
 * best detected ISA, capped by the MLXQ_ISA environment variable ("scalar", "avx2",
 * "avx512") read once, and by mlxq_set_isa(), which tests use to run every kernel variant
 * on one machine. "scalar" means the portable kernels (the reference implementation).
 */
#ifndef MLXQ_CPU_H
#define MLXQ_CPU_H

#include "mlxq_common.h"

typedef enum { MLXQ_ISA_SCALAR = 0, MLXQ_ISA_AVX2 = 1, MLXQ_ISA_AVX512 = 2 } mlxq_isa;

const char *mlxq_isa_name(mlxq_isa isa);
/* Parses "scalar" / "avx2" / "avx512"; returns -1 for anything else. */
int mlxq_isa_parse(const char *name);
/* The best ISA this machine supports, ignoring any cap. */
mlxq_isa mlxq_detected_isa(void);
/* The ISA the fast kernels use now. */
mlxq_isa mlxq_active_isa(void);
/* Caps the active ISA; fails (MLXQ_EVALUE) if this machine cannot run `isa`. */
mlxq_status mlxq_set_isa(mlxq_isa isa, mlxq_error *err);

#endif /* MLXQ_CPU_H */
