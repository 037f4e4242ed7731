#include "mlxq_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 256

/* One job at a time: job_lock is held by the submitting thread for the whole job, so the
 * job fields below are only written while no worker reads them. */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static pthread_t workers[MAX_THREADS];
static int n_workers;        /* running worker threads */
static int requested;        /* from mlxq_set_num_threads; 0 = default */
static unsigned generation;  /* bumped per job; workers wait for a new value */
static int shutting_down;
static int active;           /* workers still inside the current job */

static mlxq_range_fn job_fn;
static void *job_ctx;
static size_t job_n, job_chunk;
static atomic_size_t job_next;

static int default_threads(void) {
    const char *env = getenv("MLXQ_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v > 0)
            return v > MAX_THREADS ? MAX_THREADS : (int)v;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0)
            return c > MAX_THREADS ? MAX_THREADS : c;
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (c > MAX_THREADS ? MAX_THREADS : (int)c) : 1;
}

int mlxq_get_num_threads(void) {
    pthread_mutex_lock(&state_lock);
    int r = requested;
    pthread_mutex_unlock(&state_lock);
    return r > 0 ? r : default_threads();
}

static void run_chunks(void) {
    for (;;) {
        size_t begin = atomic_fetch_add(&job_next, job_chunk);
        if (begin >= job_n)
            break;
        size_t end = begin + job_chunk < job_n ? begin + job_chunk : job_n;
        job_fn(job_ctx, begin, end);
    }
}

static void *worker_main(void *arg) {
    /* The generation at creation time comes in as the argument: reading `generation` here
     * instead could already see the first job's value and sleep through that job. */
    unsigned seen = (unsigned)(uintptr_t)arg;
    pthread_mutex_lock(&state_lock);
    for (;;) {
        while (generation == seen && !shutting_down)
            pthread_cond_wait(&work_cv, &state_lock);
        if (shutting_down)
            break;
        seen = generation;
        pthread_mutex_unlock(&state_lock);
        run_chunks();
        pthread_mutex_lock(&state_lock);
        if (--active == 0)
            pthread_cond_signal(&done_cv);
    }
    pthread_mutex_unlock(&state_lock);
    return NULL;
}

/* Called with job_lock held. */
static void stop_workers(void) {
    pthread_mutex_lock(&state_lock);
    shutting_down = 1;
    pthread_cond_broadcast(&work_cv);
    pthread_mutex_unlock(&state_lock);
    for (int i = 0; i < n_workers; i++)
        pthread_join(workers[i], NULL);
    pthread_mutex_lock(&state_lock);
    n_workers = 0;
    shutting_down = 0;
    pthread_mutex_unlock(&state_lock);
}

/* Threads do not survive fork: the child forgets the parent's workers and starts anew. */
static void atfork_prepare(void) { pthread_mutex_lock(&job_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&job_lock); }
static void atfork_child(void) {
    n_workers = 0;
    shutting_down = 0;
    active = 0;
    pthread_mutex_init(&state_lock, NULL);
    pthread_cond_init(&work_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
    pthread_mutex_unlock(&job_lock);
}
static void install_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* Called with job_lock held: brings the worker count to want - 1. A failed pthread_create
 * just leaves fewer workers; the job still completes on the threads that exist. */
static void ensure_workers(int want) {
    if (n_workers == want - 1)
        return;
    if (n_workers > 0)
        stop_workers();
    pthread_mutex_lock(&state_lock);
    unsigned gen = generation;
    pthread_mutex_unlock(&state_lock);
    for (int i = 0; i < want - 1; i++) {
        if (pthread_create(&workers[i], NULL, worker_main, (void *)(uintptr_t)gen) != 0)
            break;
        n_workers++;
    }
}

int mlxq_set_num_threads(int n) {
    pthread_once(&atfork_once, install_atfork);
    pthread_mutex_lock(&job_lock);
    pthread_mutex_lock(&state_lock);
    requested = n > 0 ? (n > MAX_THREADS ? MAX_THREADS : n) : 0;
    pthread_mutex_unlock(&state_lock);
    int now = requested > 0 ? requested : default_threads();
    if (n_workers != now - 1 && n_workers > 0)
        stop_workers();
    pthread_mutex_unlock(&job_lock);
    return now;
}

void mlxq_parallel_for(size_t n, size_t grain, mlxq_range_fn fn, void *ctx) {
    if (n == 0)
        return;
    if (grain == 0)
        grain = 1;
    int threads = mlxq_get_num_threads();
    if (threads <= 1 || n <= grain || pthread_mutex_trylock(&job_lock) != 0) {
        fn(ctx, 0, n);
        return;
    }
    pthread_once(&atfork_once, install_atfork);
    ensure_workers(threads);
    if (n_workers == 0) {
        pthread_mutex_unlock(&job_lock);
        fn(ctx, 0, n);
        return;
    }
    /* About four chunks per thread balances uneven rows without much claiming traffic. */
    size_t parts = (size_t)(n_workers + 1) * 4;
    size_t chunk = (n + parts - 1) / parts;
    if (chunk < grain)
        chunk = grain;
    job_fn = fn;
    job_ctx = ctx;
    job_n = n;
    job_chunk = chunk;
    atomic_store(&job_next, 0);
    pthread_mutex_lock(&state_lock);
    active = n_workers;
    generation++;
    pthread_cond_broadcast(&work_cv);
    pthread_mutex_unlock(&state_lock);

    run_chunks();

    pthread_mutex_lock(&state_lock);
    while (active > 0)
        pthread_cond_wait(&done_cv, &state_lock);
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(&job_lock);
}
