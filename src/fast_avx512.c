/* The AVX-512 instantiation of fast_tmpl.h. The whole file is compiled for AVX-512 via a
 * target pragma; the dispatcher in fast.c calls it only when the CPU has AVX-512. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2,popcnt"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2,popcnt")
#endif

#include "simd_avx512.h"
#define FN(name) name##_avx512
#include "fast_tmpl.h"
#include "search_tmpl.h"

const mlxq_fast_kernels *mlxq_fast_kernels_avx512(void) { return &FN(kernels); }
const mlxq_search_kernels *mlxq_search_kernels_avx512(void) { return &FN(search_kernels); }

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
#include "search_internal.h"
const mlxq_fast_kernels *mlxq_fast_kernels_avx512(void) { return NULL; }
const mlxq_search_kernels *mlxq_search_kernels_avx512(void) { return NULL; }
#endif
