// gen.c: generation through the decode loop, plain (no drafter) or speculative (see gen.h).
#include "gen.h"

#include <stdlib.h>
#include <string.h>

struct hass_gen {
    hass_backend *b;            // the target (borrowed, or owned when own_b)
    int own_b;                  // b was made by hass_gen_new (the CPU backend)
    const hass_tokenizer *tok;  // borrowed
    hass_spec *plain;           // owned decoder without a drafter
    hass_spec *spec;            // borrowed speculative decoder, or NULL
    FILE *metrics;              // borrowed metrics output, or NULL
    int n_vocab;                // V
    int n_ctx;                  // cache capacity
    int32_t *out;               // (n_ctx + 1) generated ids
    float *margins;             // (n_ctx + 1) top1 - top2 logit of each step
    hass_spec_stats last;       // statistics of the last run
};

// Use a speculative decoder (see gen.h).
void hass_gen_set_spec(hass_gen *g, hass_spec *s, FILE *metrics) {
    g->spec = s;
    g->metrics = metrics;
}

// Create generation state on the CPU backend.
hass_gen *hass_gen_new(hass_model *m, const hass_tokenizer *tok, int n_ctx, hass_err *err) {
    hass_backend *b = hass_backend_cpu(m, err);
    if (!b) return NULL;
    hass_gen *g = hass_gen_new_on(b, tok, n_ctx, err);
    if (!g) {
        hass_backend_free(b);
        return NULL;
    }
    g->own_b = 1;
    return g;
}

// Create generation state on a backend: the plain decoder, warmed up (so that plain and
// speculative decoding, which measures its costs at start, are timed alike).
hass_gen *hass_gen_new_on(hass_backend *b, const hass_tokenizer *tok, int n_ctx, hass_err *err) {
    hass_gen *g = calloc(1, sizeof *g);
    if (!g) {
        *err = hass_seterr(HASS_ENOMEM, "out of memory");
        return NULL;
    }
    g->b = b;
    g->tok = tok;
    hass_spec_cfg sc = {{1, 1, 1}, 0, {0.f, 0, 1.f}, 0, n_ctx, NULL};
    g->plain = hass_spec_new_on(b, NULL, &sc, err);
    if (!g->plain) {
        free(g);
        return NULL;
    }
    g->n_vocab = b->n_vocab;
    g->n_ctx = hass_spec_ctx(g->plain);
    g->out = malloc((size_t)(g->n_ctx + 1) * sizeof(int32_t));
    g->margins = malloc((size_t)(g->n_ctx + 1) * sizeof(float));
    if (!g->out || !g->margins) {
        hass_gen_free(g);
        *err = hass_seterr(HASS_ENOMEM, "out of memory for generation buffers");
        return NULL;
    }
    if ((*err = hass_spec_warm_up(g->plain))) {
        hass_gen_free(g);
        return NULL;
    }
    return g;
}

// Free generation state.
void hass_gen_free(hass_gen *g) {
    if (!g) return;
    hass_spec_free(g->plain);
    if (g->own_b) hass_backend_free(g->b);
    free(g->out);
    free(g->margins);
    free(g);
}

// Cache capacity.
int hass_gen_ctx(const hass_gen *g) { return g->n_ctx; }

// Vocabulary size.
int hass_gen_vocab(const hass_gen *g) { return g->n_vocab; }

// The caller's emit callback and its first error.
typedef struct emit_ctx {
    hass_gen_emit_fn emit;
    void *ectx;
    hass_err e;
} emit_ctx;

// Hand a step's kept tokens to the caller one at a time; non-zero (stop) on its error.
static int emit_each(void *ctx, const int32_t *tok, int n, const hass_spec_cycle *cyc) {
    emit_ctx *c = ctx;
    for (int i = 0; i < n && !c->e; i++) c->e = c->emit(c->ectx, &tok[i], 1);
    return c->e != HASS_OK;
}

// Check a prompt against the context and the vocabulary (see gen.h).
hass_err hass_gen_check_prompt(int n_ctx, int n_vocab, const int32_t *prompt, int n_prompt) {
    if (n_prompt <= 0) return hass_seterr(HASS_ERANGE, "\"tokens\" is empty");
    if (n_prompt > n_ctx)
        return hass_seterr(HASS_ERANGE, "prompt of %d tokens is longer than the context (%d)",
                           n_prompt, n_ctx);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= n_vocab)
            return hass_seterr(HASS_ERANGE, "\"tokens\"[%d] = %d is outside [0, %d)", i,
                               prompt[i], n_vocab);
    return HASS_OK;
}

// Prefill and decode through the speculative decoder if set, else the plain one.
hass_err hass_gen_run(hass_gen *g, const hass_gen_cfg *cfg, uint64_t seed,
                      const int32_t *prompt, int n_prompt, hass_gen_emit_fn emit, void *ectx,
                      hass_gen_out *out) {
    memset(out, 0, sizeof *out);
    out->tokens = g->out;
    out->margins = cfg->margins && !g->spec ? g->margins : NULL; // no per-step logits in a cycle
    out->stop_idx = -1;
    out->n_prompt = n_prompt;
    hass_err e = hass_gen_check_prompt(g->n_ctx, g->n_vocab, prompt, n_prompt);
    if (e) return e;
    hass_spec *s = g->spec ? g->spec : g->plain;
    hass_spec_set_seed(s, seed);
    hass_spec_set_sampler(s, &cfg->sampler);
    hass_stop_cfg stop = {cfg->max_new, cfg->ignore_eos, g->tok, NULL, 0, cfg->stop, cfg->n_stop};
    emit_ctx c = {emit, ectx, HASS_OK};
    int n = hass_spec_generate(s, prompt, n_prompt, &stop, g->out, (float *)out->margins,
                               &g->last, emit ? emit_each : NULL, &c);
    if (n < 0) return (hass_err)n;
    if (c.e) return c.e;
    out->n_tokens = n;
    out->finish = g->last.finish;
    out->stop_idx = g->last.stop_idx;
    out->prefill_ms = g->last.prefill_ms;
    out->decode_ms = g->last.total_ms - g->last.prefill_ms;
    out->decode_cpu_ms = g->last.decode_cpu_ms;
    out->n_decode = g->last.n_cycles;
    return HASS_OK;
}

// Metrics of the last run (see gen.h).
hass_err hass_gen_write_metrics(hass_gen *g, const void *id_json, const hass_gen_out *r) {
    if (!g->metrics) return HASS_OK;
    hass_spec_stats ms = g->last;
    if (!g->spec) ms.n_cycles = 0; // plain decoding: the request record only
    ms.n_gen = r->n_tokens;        // tokens kept in the output, in both modes
    return hass_spec_metrics_write(g->metrics, id_json, &ms);
}
