// head_drafter.c: a draft head's in-process drafter on the CPU or the GPU (head_drafter.h).
#include "head_drafter.h"

#include <stdlib.h>

#include "cuda_draft.h"

struct hass_head_drafter {
    hass_head *head;         // the CPU drafter borrows it; owned unless forked
    int own_head;            // opened here (else a fork's, borrowed from the drafter it forks)
    hass_draft *cpu;         // the CPU drafter, or NULL
    hass_cuda_draft *gpu;    // the GPU drafter, or NULL
    hass_drafter iface;      // over the one in use
    hass_backend *b;         // what it was opened with, for forks (borrowed)
    int n_ctx, exact;
    hass_tree_cfg max;
};

// The CPU drafter of d->head over b's model, Q8_0 unless exact.
static hass_err open_cpu(hass_head_drafter *d, hass_backend *b, int n_ctx,
                         const hass_tree_cfg *max, int exact) {
    hass_err e;
    d->cpu = hass_draft_new(d->head, b->m, n_ctx, max, &e);
    if (!d->cpu) return e;
    if (!exact && (e = hass_draft_quantize(d->cpu))) {
        if (e != HASS_EUNSUP) return e;
        HASS_INFO("%s; the drafter stays exact", hass_errmsg());
    }
    d->iface = hass_drafter_local(d->cpu);
    return HASS_OK;
}

// The GPU drafter of d->head over the CUDA backend b.
static hass_err open_gpu(hass_head_drafter *d, hass_backend *b, int n_ctx,
                         const hass_tree_cfg *max) {
#ifdef HASS_WITH_CUDA
    hass_err e;
    d->gpu = hass_cuda_draft_new(d->head, b, n_ctx, max, &e);
    if (!d->gpu) return e;
    d->iface = hass_drafter_cuda(d->gpu);
    return HASS_OK;
#else
    return hass_seterr(HASS_ENODEV, "draft head: a CUDA backend in a CPU-only build");
#endif
}

// Load the head at path and its drafter on b's device.
hass_head_drafter *hass_head_drafter_open(const char *path, hass_backend *b, uint32_t tok_fp,
                                          int n_ctx, const hass_tree_cfg *max, int exact,
                                          hass_err *err) {
    hass_head_drafter *d = calloc(1, sizeof *d);
    if (!d) {
        *err = hass_seterr(HASS_ENOMEM, "draft head: out of memory");
        return NULL;
    }
    hass_head_target tg;
    hass_head_target_of(b->m, tok_fp, &tg);
    hass_err e = HASS_OK;
    d->head = hass_head_load(path, &tg, &e);
    d->own_head = 1;
    d->b = b, d->n_ctx = n_ctx, d->exact = exact, d->max = *max;
    if (d->head)
        e = b->dev == HASS_DEVICE_CUDA ? open_gpu(d, b, n_ctx, max) : open_cpu(d, b, n_ctx, max, exact);
    if (!d->head || e) {
        *err = e;
        hass_head_drafter_free(d);
        return NULL;
    }
    return d;
}

// Another CPU drafter over d's head (see head_drafter.h).
hass_head_drafter *hass_head_drafter_fork(const hass_head_drafter *d, hass_err *err) {
    if (!d->cpu) {
        *err = hass_seterr(HASS_EUNSUP, "draft head: only a CPU drafter forks");
        return NULL;
    }
    hass_head_drafter *f = calloc(1, sizeof *f);
    if (!f) {
        *err = hass_seterr(HASS_ENOMEM, "draft head: out of memory");
        return NULL;
    }
    *f = (hass_head_drafter){d->head, 0, NULL, NULL, {0}, d->b, d->n_ctx, d->exact, d->max};
    hass_err e = open_cpu(f, d->b, d->n_ctx, &d->max, d->exact);
    if (e) {
        *err = e;
        hass_head_drafter_free(f);
        return NULL;
    }
    return f;
}

// The interface.
hass_drafter hass_head_drafter_iface(hass_head_drafter *d) { return d->iface; }

// Feature width.
int hass_head_drafter_n_embd(const hass_head_drafter *d) { return d->head->n_embd; }

// Free the drafter, then the head it borrows.
void hass_head_drafter_free(hass_head_drafter *d) {
    if (!d) return;
    hass_draft_free(d->cpu);
#ifdef HASS_WITH_CUDA
    hass_cuda_draft_free(d->gpu);
#endif
    if (d->own_head) hass_head_free(d->head);
    free(d);
}
