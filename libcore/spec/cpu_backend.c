// cpu_backend.c: the CPU backend of backend.h: the engine of forward.h, unchanged.
#include "backend.h"

#include <stdlib.h>

#include "forward.h"

// A hass_kv as a sequence.
static hass_seq *cpu_seq_new(hass_backend *b, int n_ctx, int max_tok, hass_err *err) {
    hass_seq *s = calloc(1, sizeof *s);
    if (!s) {
        *err = hass_seterr(HASS_ENOMEM, "cpu backend: out of memory");
        return NULL;
    }
    s->b = b;
    s->impl = hass_kv_new(b->m, n_ctx, err);
    if (!s->impl) {
        free(s);
        return NULL;
    }
    s->n_ctx = hass_kv_capacity(s->impl);
    return s;
}

// Free the hass_kv.
static void cpu_seq_free(hass_seq *s) {
    hass_kv_free(s->impl);
    free(s);
}

static int cpu_seq_len(const hass_seq *s) { return hass_kv_len(s->impl); }
static void cpu_seq_truncate(hass_seq *s, int n) { hass_kv_truncate(s->impl, n); }
static hass_err cpu_seq_commit(hass_seq *s, const int *idx, int n_keep) {
    return hass_kv_commit(s->impl, idx, n_keep);
}
static hass_err cpu_seq_reserve(hass_seq *s, int n) { return hass_kv_reserve(s->impl, n); }

// hass_forward (all rows) or hass_forward_rows.
static hass_err cpu_forward(hass_seq *s, const int32_t *tok, const int32_t *pos, int n,
                            const uint8_t *mask, const int *rows, int n_rows, float *logits,
                            float *feats) {
    if (!rows) return hass_forward(s->b->m, s->impl, tok, pos, n, mask, logits, feats);
    return hass_forward_rows(s->b->m, s->impl, tok, pos, n, mask, rows, n_rows, logits, feats);
}

// hass_model_lm_head.
static hass_err cpu_lm_head(hass_backend *b, const float *x, int n, float *logits) {
    return hass_model_lm_head(b->m, x, n, logits);
}

// Free the CPU backend (the model is borrowed).
static void cpu_free(hass_backend *b) { free(b); }

static const hass_backend_ops cpu_ops = {
    "cpu", cpu_seq_new, cpu_seq_free, cpu_seq_len, cpu_seq_truncate, cpu_seq_commit,
    cpu_seq_reserve, cpu_forward, NULL, cpu_lm_head, cpu_free,
};

// The hass_kv of a CPU sequence.
hass_kv *hass_seq_cpu_kv(hass_seq *s) { return s->b->ops == &cpu_ops ? s->impl : NULL; }

// A backend record for m with the given table (impl left NULL).
hass_backend *hass_backend_alloc(hass_model *m, const hass_backend_ops *ops, hass_device dev,
                                 hass_err *err) {
    hass_backend *b = calloc(1, sizeof *b);
    if (!b) {
        *err = hass_seterr(HASS_ENOMEM, "%s backend: out of memory", ops->name);
        return NULL;
    }
    const hass_model_cfg *c = hass_model_config(m);
    b->ops = ops;
    b->m = m;
    b->dev = dev;
    b->n_vocab = c->n_vocab;
    b->n_embd = c->n_embd;
    return b;
}

// The CPU backend.
hass_backend *hass_backend_cpu(hass_model *m, hass_err *err) {
    return hass_backend_alloc(m, &cpu_ops, HASS_DEVICE_CPU, err);
}
