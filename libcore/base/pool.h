// pool.h: internal to libcore: the kernels' thread team. A fixed set of worker threads that
// spin briefly (~tens of microseconds) between jobs and then sleep, so that a decode step's
// ~200 short parallel loops start fast on a quiet machine without burning a core when the
// machine is oversubscribed (OpenMP's default spin-waiting collapsed 2-thread decoding 5x on a
// loaded 2-core machine).
#ifndef HASS_POOL_H
#define HASS_POOL_H

#include "hass.h"

typedef struct hass_pool hass_pool;

// Run tasks [i0, i1) of a job on thread k (0 = the caller; k < hass_pool_threads).
typedef void (*hass_pool_fn)(void *ctx, int k, int i0, int i1);

// A team of n_threads (the caller counts as one; n_threads <= 1 gives a pool without workers).
// NULL with *err set when a thread cannot be started.
hass_pool *hass_pool_new(int n_threads, hass_err *err);
// Stop and join the workers; NULL is a no-op.
void hass_pool_free(hass_pool *p);
// Threads of the team (1 for NULL).
int hass_pool_threads(const hass_pool *p);
// Run tasks [0, n_tasks): the threads (the caller included) claim contiguous ranges of about
// n_tasks / (4 T) tasks from a shared counter until none is left; returns when all are done.
// Which thread runs a task varies from run to run, so a task's result must not depend on it
// (k only selects per-thread scratch). p may be NULL (the caller runs everything). Not
// reentrant: one job at a time per pool.
void hass_pool_run(hass_pool *p, int n_tasks, hass_pool_fn fn, void *ctx);

#endif
