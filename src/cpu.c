#include "mlxq_cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};

const char *mlxq_isa_name(mlxq_isa isa) {
    return (unsigned)isa <= MLXQ_ISA_AVX512 ? isa_names[isa] : "?";
}

int mlxq_isa_parse(const char *name) {
    for (int i = 0; i <= MLXQ_ISA_AVX512; i++)
        if (name && strcmp(name, isa_names[i]) == 0)
            return i;
    return -1;
}

mlxq_isa mlxq_detected_isa(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV). */
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
               __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return MLXQ_ISA_AVX512;
    if (avx2)
        return MLXQ_ISA_AVX2;
#endif
    return MLXQ_ISA_SCALAR;
}

/* -1 = not yet decided. Atomic so concurrent first calls from several threads are fine. */
static atomic_int active = -1;

mlxq_isa mlxq_active_isa(void) {
    int a = atomic_load(&active);
    if (a >= 0)
        return (mlxq_isa)a;
    a = mlxq_detected_isa();
    int cap = mlxq_isa_parse(getenv("MLXQ_ISA"));
    if (cap >= 0 && cap < a)
        a = cap;
    atomic_store(&active, a);
    return (mlxq_isa)a;
}

mlxq_status mlxq_set_isa(mlxq_isa isa, mlxq_error *err) {
    if ((unsigned)isa > MLXQ_ISA_AVX512)
        return mlxq_fail(err, MLXQ_EVALUE, "isa=%d is not an instruction set", (int)isa);
    if (isa > mlxq_detected_isa())
        return mlxq_fail(err, MLXQ_EVALUE, "this CPU cannot run the '%s' kernels (best: '%s')",
                         mlxq_isa_name(isa), mlxq_isa_name(mlxq_detected_isa()));
    atomic_store(&active, (int)isa);
    return MLXQ_OK;
}
