/*
 * search_internal.h - internal: the per-group kernels behind mlxq_search.h. Not installed.
 *
 * Kernels work on a list of n groups: src[k] points at group k's group_size contiguous
 * elements (input dtype), imp[k] at its group_size float32 importances (imp NULL: all 1).
 * Outputs are the n groups' slices, contiguous: wq bytes k * gs * bits / 8, scales (and
 * biases) element k. The result of a group depends on that group alone, so how the driver
 * batches groups never changes it.
 */
#ifndef MLXQ_SEARCH_INTERNAL_H
#define MLXQ_SEARCH_INTERNAL_H

#include "kernels.h"
#include "mlxq_search.h"

/* Shape of the affine search (see mlxq_search.h); the fast kernels use the same. */
#ifndef MLXQ_SEARCH_GRID
#define MLXQ_SEARCH_GRID 4     /* grid points per end: 0, 0.5, 1, 1.5 steps */
#endif
#ifndef MLXQ_SEARCH_TOPK
#define MLXQ_SEARCH_TOPK 2     /* grid candidates refined */
#endif
#ifndef MLXQ_SEARCH_ROUNDS
#define MLXQ_SEARCH_ROUNDS 2   /* evaluations per refined candidate (a refit in between) */
#endif
extern const float mlxq_search_grid[MLXQ_SEARCH_GRID];

/* dev: whose quantize is "MLX's own choice" and whose dequantize measures the error. */
typedef void (*mlxq_affine_search_fn)(int64_t n, const uint8_t *const *src,
                                      const float *const *imp, int gs, int bits,
                                      uint8_t *wq, uint8_t *scales, uint8_t *biases,
                                      mlxq_device dev);

/* The scalar specification (search_affine.c); dt is f16, bf16 or f32. */
void mlxq_ref_affine_search(mlxq_dtype dt, int64_t n, const uint8_t *const *src,
                            const float *const *imp, int gs, int bits, uint8_t *wq,
                            uint8_t *scales, uint8_t *biases, mlxq_device dev);

/* The same with the dtype fixed, as mlxq_affine_search_fn values. */
void mlxq_ref_affine_search_f16(int64_t n, const uint8_t *const *src, const float *const *imp,
                                int gs, int bits, uint8_t *wq, uint8_t *scales,
                                uint8_t *biases, mlxq_device dev);
void mlxq_ref_affine_search_bf16(int64_t n, const uint8_t *const *src, const float *const *imp,
                                 int gs, int bits, uint8_t *wq, uint8_t *scales,
                                 uint8_t *biases, mlxq_device dev);
void mlxq_ref_affine_search_f32(int64_t n, const uint8_t *const *src, const float *const *imp,
                                int gs, int bits, uint8_t *wq, uint8_t *scales,
                                uint8_t *biases, mlxq_device dev);

/* The fp modes' search (search_fp.c): scalar, few candidates per group; dt any float. */
void mlxq_fp_search(const mlxq_qparams *p, mlxq_dtype dt, int64_t n,
                    const uint8_t *const *src, const float *const *imp, uint8_t *wq,
                    uint8_t *scales);

/* The active ISA's vectorised affine search for dt, or NULL (fast.c). */
mlxq_affine_search_fn mlxq_fast_affine_search(mlxq_dtype dt);

/* One ISA's affine search kernels, indexed by dtype (search_tmpl.h). */
typedef struct {
    mlxq_affine_search_fn affine[MLXQ_DTYPE_COUNT];
} mlxq_search_kernels;
const mlxq_search_kernels *mlxq_search_kernels_avx2(void);
const mlxq_search_kernels *mlxq_search_kernels_avx512(void);

#endif /* MLXQ_SEARCH_INTERNAL_H */
