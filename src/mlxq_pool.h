/*
 * mlxq_pool.h - the process-wide worker pool the kernels split their rows over.
 *
 * Contract:
 *   mlxq_parallel_for(n, grain, fn, ctx) calls fn(ctx, begin, end) over disjoint ranges
 *   that together cover [0, n) exactly once, and returns when all calls have returned.
 *   Ranges hold at least `grain` items except possibly the last. The caller's thread takes
 *   part. If the pool is busy with another caller's job (two Python threads quantizing at
 *   once), or threading is off, the whole range runs on the calling thread instead: the
 *   result is the same, only slower. fn must not fail and must not call mlxq_parallel_for.
 *
 *   The thread count is, in order: the last mlxq_set_num_threads(n > 0); else the
 *   MLXQ_NUM_THREADS environment variable when it is a positive integer; else the number of
 *   CPUs this process may run on. Workers start lazily and survive fork() safely (the child
 *   starts new ones when it first needs them).
 */
#ifndef MLXQ_POOL_H
#define MLXQ_POOL_H

#include <stddef.h>

typedef void (*mlxq_range_fn)(void *ctx, size_t begin, size_t end);

void mlxq_parallel_for(size_t n, size_t grain, mlxq_range_fn fn, void *ctx);

/* n >= 1 sets the thread count (1 = no workers); n <= 0 returns to the default.
 * Returns the count now in effect. Waits for a running job to finish first. */
int mlxq_set_num_threads(int n);

/* The thread count the next parallel job will use. */
int mlxq_get_num_threads(void);

#endif /* MLXQ_POOL_H */
