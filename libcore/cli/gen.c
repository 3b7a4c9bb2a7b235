// gen.c: generation through the decode loop, plain (no drafter) or speculative, and the
// hass-verify record glue (see gen.h).
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

// Check a prompt against the context and the vocabulary.
static hass_err check_prompt(const hass_gen *g, const int32_t *prompt, int n_prompt) {
    if (n_prompt <= 0) return hass_seterr(HASS_ERANGE, "\"tokens\" is empty");
    if (n_prompt > g->n_ctx)
        return hass_seterr(HASS_ERANGE, "prompt of %d tokens is longer than the context (%d)",
                           n_prompt, g->n_ctx);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= g->n_vocab)
            return hass_seterr(HASS_ERANGE, "\"tokens\"[%d] = %d is outside [0, %d)", i,
                               prompt[i], g->n_vocab);
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
    hass_err e = check_prompt(g, prompt, n_prompt);
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

// splitmix64 finaliser: a well-mixed 64-bit value from x.
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Sampler seed of a record.
uint64_t hass_gen_record_seed(uint64_t seed, const json_t *rec, int64_t index) {
    const json_t *s = json_object_get(rec, "seed");
    if (json_is_integer(s)) return (uint64_t)json_integer_value(s);
    const json_t *id = json_object_get(rec, "id");
    if (id) {
        char *txt = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
        uint64_t h = 0xcbf29ce484222325ull; // FNV-1a over the id's JSON text
        for (const char *p = txt; p && *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
        free(txt);
        return mix64(seed ^ h);
    }
    return mix64(seed + 0x5851f42d4c957f2dull * (uint64_t)(index + 1));
}

// Streaming state of one record.
typedef struct delta_ctx {
    hass_stream_writer *w;
    const json_t *id; // borrowed "id" of the input (may be NULL)
} delta_ctx;

// Write one delta record for a chunk of accepted tokens.
static hass_err emit_delta(void *ctx, const int32_t *ids, int n) {
    delta_ctx *d = ctx;
    json_t *o = json_object();
    if (d->id) json_object_set(o, "id", (json_t *)d->id);
    json_object_set_new(o, "type", json_string("delta"));
    hass_jsonl_set_ids(o, "tokens", ids, n);
    hass_err e = hass_stream_write(d->w, o);
    json_decref(o);
    return e;
}

// Error record of hass-verify for input in: copy, "finish":"error", "error": where: message.
static json_t *error_out(const json_t *in, const char *where) {
    hass_errprefix("%s", where);
    json_t *o = json_deep_copy(in);
    json_object_set_new(o, "finish", json_string("error"));
    json_object_set_new(o, "error", json_string(hass_errmsg()));
    return o;
}

// One record: tokens in, generation out.
hass_err hass_gen_record(hass_gen *g, const hass_gen_cfg *cfg, const json_t *in,
                         const char *where, int64_t index, int stream, hass_stream_writer *w,
                         json_t **out) {
    *out = NULL;
    const char *type = json_string_value(json_object_get(in, "type"));
    if (type && !strcmp(type, "delta")) { // a streaming delta of an earlier stage: forward it
        *out = json_incref((json_t *)in);
        return HASS_OK;
    }
    int32_t *ids = NULL;
    int64_t n = 0;
    hass_err e = hass_jsonl_get_ids(in, "tokens", hass_gen_vocab(g), &ids, &n);
    if (!e && n > hass_gen_ctx(g))
        e = hass_seterr(HASS_ERANGE, "prompt of %lld tokens is longer than the context (%d)",
                        (long long)n, hass_gen_ctx(g));
    if (e) {
        free(ids);
        *out = error_out(in, where);
        return e;
    }
    hass_gen_cfg rc = *cfg;
    const json_t *mx = json_object_get(in, "max_new");
    if (json_is_integer(mx) && json_integer_value(mx) >= 0 && json_integer_value(mx) < INT32_MAX)
        rc.max_new = (int)json_integer_value(mx);
    delta_ctx d = {w, json_object_get(in, "id")};
    hass_gen_out r;
    e = hass_gen_run(g, &rc, hass_gen_record_seed(cfg->seed, in, index), ids, (int)n,
                     stream ? emit_delta : NULL, &d, &r);
    free(ids);
    if (e) {
        *out = error_out(in, where);
        return e;
    }
    if (hass_gen_write_metrics(g, json_object_get(in, "id"), &r)) HASS_WARN("%s", hass_errmsg());
    json_t *o = json_deep_copy(in);
    hass_jsonl_set_ids(o, "generated", r.tokens, r.n_tokens);
    json_object_set_new(o, "finish", json_string(hass_finish_name(r.finish)));
    if (r.stop_idx >= 0) json_object_set_new(o, "stop", json_string(cfg->stop[r.stop_idx]));
    if (r.margins) {
        json_t *a = json_array();
        for (int i = 0; i < r.n_tokens; i++) json_array_append_new(a, json_real(r.margins[i]));
        json_object_set_new(o, "margins", a);
    }
    double tok_s = r.decode_ms > 0 ? 1e3 * r.n_decode / r.decode_ms : 0;
    json_object_set_new(o, "timing",
                        json_pack("{s:f,s:f,s:f,s:f}", "prefill_ms", r.prefill_ms, "decode_ms",
                                  r.decode_ms, "tok_s", tok_s, "decode_cpu_ms", r.decode_cpu_ms));
    *out = o;
    return HASS_OK;
}
