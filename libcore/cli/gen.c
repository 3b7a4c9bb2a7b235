// gen.c: plain autoregressive decoding, stop conditions and the hass-verify record glue.
#include "gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct hass_gen {
    hass_backend *b;            // the target (borrowed, or owned when own_b)
    int own_b;                  // b was made by hass_gen_new (the CPU backend)
    const hass_tokenizer *tok;  // borrowed
    hass_seq *kv;               // owned cache
    int n_vocab;                // V
    int n_ctx;                  // cache capacity
    float *logits;              // (V) last logits
    float *scratch;             // (V) sampler scratch
    int32_t *out;               // (n_ctx + 1) generated ids
    float *margins;             // (n_ctx + 1) top1 - top2 logit of each step
    hass_spec *spec;            // borrowed speculative decoder, or NULL
    FILE *metrics;              // borrowed metrics output, or NULL
    hass_spec_stats last;       // statistics of the last speculative run
};

// Use a speculative decoder (see gen.h).
void hass_gen_set_spec(hass_gen *g, hass_spec *s, FILE *metrics) {
    g->spec = s;
    g->metrics = metrics;
}

// Process CPU time in seconds (all threads).
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// What the speculative emit callback needs.
typedef struct spec_emit_ctx {
    hass_gen *g;
    hass_stop *st;
    hass_gen_out *out;
    hass_gen_emit_fn emit;
    void *ectx;
    hass_err e;
    double c1; // process CPU time when the root came (the prefill's end), else -1
} spec_emit_ctx;

// Feed a chunk of accepted tokens through the stop tracker; non-zero ends the generation.
static int spec_emit(void *ctx, const int32_t *tok, int n, const hass_spec_cycle *cyc) {
    spec_emit_ctx *c = ctx;
    if (!cyc) c->c1 = cpu_now();
    for (int i = 0; i < n; i++) {
        int keep = 0;
        hass_finish f = hass_stop_push(c->st, tok[i], &keep);
        if (keep) {
            c->g->out[c->out->n_tokens++] = tok[i];
            if (c->emit && (c->e = c->emit(c->ectx, &tok[i], 1))) return 1;
        }
        if (f != HASS_FINISH_NONE) {
            c->out->finish = f;
            c->out->stop_idx = c->st->stop_idx;
            return 1;
        }
    }
    return 0;
}

// Generation through the speculative decoder; same stop rules as plain decoding.
static hass_err spec_run(hass_gen *g, const hass_gen_cfg *cfg, uint64_t seed,
                         const int32_t *prompt, int n_prompt, hass_gen_emit_fn emit, void *ectx,
                         hass_gen_out *out) {
    hass_stop st;
    hass_stop_init(&st, g->tok, cfg);
    int cap = cfg->max_new + 1;
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)cap);
    if (!buf) return hass_seterr(HASS_ENOMEM, "out of memory");
    hass_spec_set_seed(g->spec, seed);
    hass_spec_set_sampler(g->spec, &cfg->sampler);
    spec_emit_ctx c = {g, &st, out, emit, ectx, HASS_OK, -1.0};
    int n = hass_spec_generate(g->spec, prompt, n_prompt, cap, NULL, 0, buf, &g->last, spec_emit, &c);
    if (c.c1 >= 0) out->decode_cpu_ms = 1e3 * (cpu_now() - c.c1);
    free(buf);
    hass_stop_free(&st);
    if (n < 0) return (hass_err)n;
    if (c.e) return c.e;
    if (out->finish == HASS_FINISH_NONE) out->finish = HASS_FINISH_LENGTH; // context full
    out->prefill_ms = g->last.prefill_ms;
    out->decode_ms = g->last.total_ms - g->last.prefill_ms;
    out->n_decode = g->last.n_cycles;
    return HASS_OK;
}

// Name of a finish reason.
const char *hass_finish_name(hass_finish f) {
    switch (f) {
    case HASS_FINISH_EOS: return "eos";
    case HASS_FINISH_LENGTH: return "length";
    case HASS_FINISH_STOP: return "stop";
    default: return "none";
    }
}

// Start a stop tracker.
void hass_stop_init(hass_stop *s, const hass_tokenizer *tok, const hass_gen_cfg *cfg) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->cfg = cfg;
    s->stop_idx = -1;
}

// Free the tracker's text.
void hass_stop_free(hass_stop *s) {
    if (!s) return;
    free(s->text);
    s->text = NULL;
    s->len = s->cap = 0;
}

// Whether needle (n bytes) occurs in hay (h bytes).
static int contains(const char *hay, size_t h, const char *needle, size_t n) {
    if (n == 0 || n > h) return 0;
    return memmem(hay, h, needle, n) != NULL;
}

// Offer the next accepted token to the tracker.
hass_finish hass_stop_push(hass_stop *s, int32_t id, int *keep) {
    const hass_gen_cfg *c = s->cfg;
    *keep = 0;
    if (!c->ignore_eos && s->tok && hass_tokenizer_is_eog(s->tok, id)) return HASS_FINISH_EOS;
    *keep = 1;
    s->n_gen++;
    if (c->n_stop && s->tok) {
        size_t plen = 0;
        const char *p = hass_tokenizer_piece(s->tok, id, &plen);
        size_t old = s->len;
        if (p && plen) {
            if (s->len + plen > s->cap) {
                size_t cap = s->cap ? s->cap : 256;
                while (cap < s->len + plen) cap *= 2;
                char *b = realloc(s->text, cap);
                if (b) s->text = b, s->cap = cap;
            }
            if (s->len + plen <= s->cap) memcpy(s->text + s->len, p, plen), s->len += plen;
        }
        // A stop string can only newly appear in a window ending at the new bytes.
        for (int i = 0; i < c->n_stop && s->len > old; i++) {
            size_t n = strlen(c->stop[i]);
            size_t from = old >= n ? old - n + 1 : 0;
            if (contains(s->text + from, s->len - from, c->stop[i], n)) {
                s->stop_idx = i;
                return HASS_FINISH_STOP;
            }
        }
    }
    if (s->n_gen >= c->max_new) return HASS_FINISH_LENGTH;
    return HASS_FINISH_NONE;
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

// Warm the backend: the first forwards' one-off work (the CPU's weight packing, a GPU's kernel
// and library setup) happens here, not inside the first record's timing, so plain and
// speculative decoding (which measures its costs at start) are timed alike.
static hass_err warm_up(hass_gen *g) {
    enum { N = 8 };
    if (g->n_ctx < N + 1) return HASS_OK;
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)(i % g->n_vocab);
    int last = N - 1;
    hass_err e = hass_seq_forward_rows(g->kv, tok, NULL, N, NULL, &last, 1, g->logits, NULL);
    if (!e) e = hass_seq_forward(g->kv, tok, NULL, 1, NULL, g->logits, NULL);
    hass_seq_truncate(g->kv, 0);
    return e;
}

// Create generation state on a backend.
hass_gen *hass_gen_new_on(hass_backend *b, const hass_tokenizer *tok, int n_ctx, hass_err *err) {
    hass_gen *g = calloc(1, sizeof *g);
    if (!g) {
        *err = hass_seterr(HASS_ENOMEM, "out of memory");
        return NULL;
    }
    g->b = b;
    g->tok = tok;
    g->kv = hass_seq_new(b, n_ctx, 0, err);
    if (!g->kv) {
        free(g);
        return NULL;
    }
    g->n_vocab = b->n_vocab;
    g->n_ctx = hass_seq_capacity(g->kv);
    g->logits = malloc((size_t)g->n_vocab * sizeof(float));
    g->scratch = malloc((size_t)g->n_vocab * sizeof(float));
    g->out = malloc((size_t)(g->n_ctx + 1) * sizeof(int32_t));
    g->margins = malloc((size_t)(g->n_ctx + 1) * sizeof(float));
    if (!g->logits || !g->scratch || !g->out || !g->margins) {
        hass_gen_free(g);
        *err = hass_seterr(HASS_ENOMEM, "out of memory for generation buffers");
        return NULL;
    }
    if ((*err = warm_up(g))) {
        hass_gen_free(g);
        return NULL;
    }
    return g;
}

// Free generation state.
void hass_gen_free(hass_gen *g) {
    if (!g) return;
    hass_seq_free(g->kv);
    if (g->own_b) hass_backend_free(g->b);
    free(g->logits);
    free(g->scratch);
    free(g->out);
    free(g->margins);
    free(g);
}

// Cache capacity.
int hass_gen_ctx(const hass_gen *g) { return g->n_ctx; }

// Difference between the largest and the second largest of n logits.
static float top2_margin(const float *x, int n) {
    float a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] > a) b = a, a = x[i];
        else if (x[i] > b) b = x[i];
    }
    return a - b;
}

// Prefill and decode one token at a time.
hass_err hass_gen_run(hass_gen *g, const hass_gen_cfg *cfg, uint64_t seed,
                      const int32_t *prompt, int n_prompt, hass_gen_emit_fn emit, void *ectx,
                      hass_gen_out *out) {
    memset(out, 0, sizeof *out);
    out->tokens = g->out;
    out->margins = cfg->margins && !g->spec ? g->margins : NULL; // no per-step logits in a cycle
    out->stop_idx = -1;
    out->n_prompt = n_prompt;
    if (n_prompt <= 0) return hass_seterr(HASS_ERANGE, "\"tokens\" is empty");
    if (n_prompt > g->n_ctx)
        return hass_seterr(HASS_ERANGE, "prompt of %d tokens is longer than the context (%d)",
                           n_prompt, g->n_ctx);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= g->n_vocab)
            return hass_seterr(HASS_ERANGE, "\"tokens\"[%d] = %d is outside [0, %d)", i,
                               prompt[i], g->n_vocab);
    if (g->spec && cfg->max_new > 0) return spec_run(g, cfg, seed, prompt, n_prompt, emit, ectx, out);
    hass_rng rng;
    hass_rng_seed(&rng, seed);
    hass_stop st;
    hass_stop_init(&st, g->tok, cfg);
    hass_seq_truncate(g->kv, 0);
    hass_err e = HASS_OK;
    double t0 = hass_now(), t1 = t0, c1 = 0;
    int last = n_prompt - 1;
    if (cfg->max_new <= 0) {
        out->finish = HASS_FINISH_LENGTH;
        goto done;
    }
    e = hass_seq_forward_rows(g->kv, prompt, NULL, n_prompt, NULL, &last, 1, g->logits, NULL);
    for (;;) {
        if (e) break;
        int32_t id = hass_sample_token(&cfg->sampler, g->logits, g->n_vocab, &rng, g->scratch);
        if (out->n_decode == 0 && out->n_tokens == 0) t1 = hass_now(), c1 = cpu_now();
        int keep = 0;
        hass_finish f = hass_stop_push(&st, id, &keep);
        if (keep) {
            if (cfg->margins) g->margins[out->n_tokens] = top2_margin(g->logits, g->n_vocab);
            g->out[out->n_tokens++] = id;
            if (emit && (e = emit(ectx, &id, 1))) break;
        }
        if (f == HASS_FINISH_NONE && hass_seq_len(g->kv) >= g->n_ctx) f = HASS_FINISH_LENGTH;
        if (f != HASS_FINISH_NONE) {
            out->finish = f;
            out->stop_idx = st.stop_idx;
            break;
        }
        e = hass_seq_forward(g->kv, &id, NULL, 1, NULL, g->logits, NULL);
        out->n_decode++;
    }
done:;
    double t2 = hass_now();
    if (out->n_tokens == 0 && out->n_decode == 0) t1 = t2, c1 = cpu_now();
    out->prefill_ms = 1e3 * (t1 - t0);
    out->decode_ms = 1e3 * (t2 - t1);
    out->decode_cpu_ms = 1e3 * (cpu_now() - c1);
    hass_stop_free(&st);
    return e;
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
    hass_err e = hass_jsonl_get_ids(in, "tokens", g->n_vocab, &ids, &n);
    if (!e && n > g->n_ctx)
        e = hass_seterr(HASS_ERANGE, "prompt of %lld tokens is longer than the context (%d)",
                        (long long)n, g->n_ctx);
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
    if (g->metrics) {
        hass_spec_stats ms = {r.n_tokens, 0, r.prefill_ms, r.prefill_ms + r.decode_ms, NULL};
        if (g->spec) ms = g->last;
        ms.n_gen = r.n_tokens; // tokens kept in the output, in both modes
        if (hass_spec_metrics_write(g->metrics, json_object_get(in, "id"), &ms))
            HASS_WARN("%s", hass_errmsg());
    }
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
