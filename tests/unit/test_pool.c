// test_pool.c: the kernels' thread team (libcore/base/pool.h) runs every task of a job exactly
// once, and hass_pool_run returns only after all of them finished.
//  - Many short jobs back to back whose task counts alternate small and large, on 2, 3 and 4
//    threads (on a 2-core machine 3 and 4 oversubscribe it, so workers are preempted anywhere).
//    Each task counts itself in its job's row; when hass_pool_run returns the row must be all
//    ones, and it is checked again RING jobs later (a late or repeated run shows then).
//  - This caught a stale claim word: a worker that had read the previous job's last claim could
//    claim it again once the next, larger job's task count was written, and ran the new job's
//    tasks a second time under the old generation, counting them down twice.
#include "pool.h"
#include "unit.h"

#include <stdatomic.h>

enum { RING = 256, MAXT = 64 };

// One job's per-task run counts.
typedef struct job {
    atomic_int cnt[MAXT];
    int n;
} job;

// Pool task: count tasks [i0, i1) of the job in ctx.
static void count_tasks(void *ctx, int k, int i0, int i1) {
    job *j = ctx;
    (void)k;
    for (int i = i0; i < i1; i++) atomic_fetch_add_explicit(&j->cnt[i], 1, memory_order_relaxed);
}

// Whether every task of j ran exactly once; *bad gets the first task that did not.
static int all_once(job *j, int *bad) {
    for (int i = 0; i < j->n; i++)
        if (atomic_load(&j->cnt[i]) != 1) {
            *bad = i;
            return 0;
        }
    return 1;
}

// Run n_jobs jobs on a team of n_threads; returns the number of bad jobs (detail in why).
static int stress(int n_threads, int n_jobs, char *why, size_t wn) {
    hass_err e;
    hass_pool *p = hass_pool_new(n_threads, &e);
    if (!p) {
        snprintf(why, wn, "pool: %s", hass_errmsg());
        return 1;
    }
    job *ring = calloc(RING, sizeof *ring);
    int bad_jobs = 0, bad = -1;
    static const int sizes[] = {2, 64, 3, 40, 1, 17, 64, 5, 33, 8};
    for (int t = 0; t < n_jobs + RING; t++) {
        job *j = &ring[t % RING];
        if (t >= RING && !all_once(j, &bad) && bad_jobs++ == 0) // the job RING ago, again
            snprintf(why, wn, "job %d (n %d, %d threads): task %d ran %d times (checked later)",
                     t - RING, j->n, n_threads, bad, atomic_load(&j->cnt[bad]));
        if (t >= n_jobs) continue;
        j->n = sizes[t % 10];
        for (int i = 0; i < MAXT; i++) atomic_store(&j->cnt[i], 0);
        for (volatile int spin = (t * 7919) % 700; spin > 0; spin--) {} // the caller's own work
        hass_pool_run(p, j->n, count_tasks, j);
        if (!all_once(j, &bad) && bad_jobs++ == 0)
            snprintf(why, wn, "job %d (n %d, %d threads): task %d ran %d times at return", t,
                     j->n, n_threads, bad, atomic_load(&j->cnt[bad]));
    }
    hass_pool_free(p);
    free(ring);
    return bad_jobs;
}

int main(void) {
    char why[200] = "";
    for (int nt = 2; nt <= 4; nt++) {
        char name[64];
        snprintf(name, sizeof name, "pool_every_task_once_%d_threads", nt);
        int bad = stress(nt, 100000, why, sizeof why);
        CHECK(name, bad == 0, "%d bad jobs; first: %s", bad, why);
    }
    // n_tasks <= 1 and a NULL pool run on the caller
    job j = {.n = 1};
    hass_pool_run(NULL, 1, count_tasks, &j);
    int b;
    CHECK("pool_null_runs_on_caller", all_once(&j, &b), "task %d", b);
    UNIT_DONE();
}
