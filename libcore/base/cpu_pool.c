// cpu_pool.c: the kernels' thread team (pool.h): bounded spinning, then a condition variable.
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { POOL_MAX = 256, SPIN_WAIT = 4000, SPIN_DONE = 2000 };

struct hass_pool;

typedef struct worker {
    struct hass_pool *p;
    int k; // thread index (1..n-1; the caller is 0)
} worker;

struct hass_pool {
    int n;                       // threads including the caller
    pthread_t th[POOL_MAX];
    worker w[POOL_MAX];
    int n_started;
    atomic_uint gen;             // job generation: bumped to start a job
    atomic_ullong claim;         // (generation << 32) | next unclaimed task
    atomic_int remaining;        // tasks of the current job not yet finished
    atomic_int step;             // tasks per claim
    atomic_int stop;
    hass_pool_fn fn;             // the current job
    void *ctx;
    atomic_int n_tasks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int n_sleeping;       // workers waiting on cv
};

// Claim and run ranges of job generation g on thread k until none is left. A claim succeeds
// only while the job is still generation g and open, and the job cannot end before a claimed
// range is finished, so fn/ctx read after a successful claim belong to that job. n and step may
// already be the next job's (hass_pool_run writes them after closing the claim): then the claim
// read before them is stale and its compare-exchange fails.
static void work(hass_pool *p, int k, unsigned g) {
    for (;;) {
        unsigned long long v = atomic_load_explicit(&p->claim, memory_order_acquire);
        if ((unsigned)(v >> 32) != g) return;
        unsigned next_u = (unsigned)(v & 0xffffffffu); // UINT32_MAX: closed
        int n = atomic_load_explicit(&p->n_tasks, memory_order_relaxed);
        int step = atomic_load_explicit(&p->step, memory_order_relaxed);
        if (next_u >= (unsigned)n) return;
        int next = (int)next_u;
        int end = next + step < n ? next + step : n;
        unsigned long long nv = ((unsigned long long)g << 32) | (unsigned)end;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, nv, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        p->fn(p->ctx, k, next, end);
        atomic_fetch_sub_explicit(&p->remaining, end - next, memory_order_release);
    }
}

// Worker loop: wait for a new generation (spin, then sleep), then claim and run its tasks.
static void *worker_main(void *arg) {
    worker *w = arg;
    hass_pool *p = w->p;
    unsigned seen = 0; // gen is 0 until the first job, which may start before this line runs
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire) && spins < SPIN_WAIT) {
            CPU_RELAX();
            spins++;
        }
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = g;
        work(p, w->k, g);
    }
    return NULL;
}

hass_pool *hass_pool_new(int n_threads, hass_err *err) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > POOL_MAX) n_threads = POOL_MAX;
    hass_pool *p = calloc(1, sizeof *p);
    if (!p) {
        *err = hass_seterr(HASS_ENOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int k = 1; k < n_threads; k++) {
        p->w[k].p = p;
        p->w[k].k = k;
        if (pthread_create(&p->th[k], NULL, worker_main, &p->w[k]) != 0) {
            hass_pool_free(p);
            *err = hass_seterr(HASS_EIO, "thread pool: cannot start thread %d of %d", k, n_threads);
            return NULL;
        }
        p->n_started = k;
    }
    *err = HASS_OK;
    return p;
}

void hass_pool_free(hass_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int k = 1; k <= p->n_started; k++) pthread_join(p->th[k], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int hass_pool_threads(const hass_pool *p) { return p ? p->n : 1; }

void hass_pool_run(hass_pool *p, int n_tasks, hass_pool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1) {
        fn(ctx, 0, 0, n_tasks);
        return;
    }
    // The previous job is over (remaining reached 0), but a worker may still hold the claim word
    // it read last, (g - 1, its n_tasks): with the new, larger n_tasks that word would look
    // claimable, and the worker would run the new job's tasks under the old generation (twice,
    // with remaining counted down twice: the job could end before its tasks did). So the claim
    // is closed first (next = UINT32_MAX), and the acquire-release exchange keeps the writes
    // below after it; a stale word then fails its compare-exchange.
    unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    atomic_exchange_explicit(&p->claim, ((unsigned long long)(g - 1) << 32) | 0xffffffffu,
                             memory_order_acq_rel);
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&p->step, n_tasks / (4 * p->n) > 1 ? n_tasks / (4 * p->n) : 1,
                          memory_order_relaxed);
    atomic_store_explicit(&p->remaining, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (unsigned long long)g << 32, memory_order_release);
    atomic_store_explicit(&p->gen, g, memory_order_release);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    // the caller works too: when a worker is not running (a loaded machine) the caller takes
    // its tasks instead of waiting for it
    work(p, 0, g);
    int spins = 0;
    while (atomic_load_explicit(&p->remaining, memory_order_acquire) > 0) {
        if (spins < SPIN_DONE) {
            CPU_RELAX();
            spins++;
        } else {
            sched_yield();
        }
    }
}
