// trainfeat.c: conversations -> feature shard (hass-train --features).
#include "trainfeat.h"

#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "convo.h"
#include "forward.h"
#include "model.h"
#include "shard.h"
#include "tokenizer.h"
#include "trainlog.h"

// One kept conversation.
typedef struct {
    int32_t *ids;  // (n)
    uint8_t *mask; // (n)
    int n;
} fconv;

// The conversations read so far.
typedef struct {
    const hass_features_cfg *a;
    const hass_tokenizer *tk;
    const char *file;
    fconv *v;
    int64_t n, cap, n_rejected, n_seen;
    int64_t n_masked, n_trunc;
    hass_err err;
} fctx;

// Renderer for hass_convo_render: the chat template named in the config (NULL/auto: the model's).
static hass_err render_chat(void *p, const json_t *messages, int add_generation_prompt, char **out) {
    const fctx *c = p;
    return hass_chat_render(c->tk, c->a->tmpl, messages, add_generation_prompt, out);
}

// Per record: normalise, render, tokenize, mark, truncate, keep.
static int feat_record(void *p, int64_t idx, json_t *rec) {
    fctx *c = p;
    if (c->a->limit && c->n >= c->a->limit) return 0;
    c->n_seen++;
    const char *why = NULL;
    json_t *msgs = hass_convo_messages(rec, &why);
    if (!msgs) {
        HASS_INFO("%s: record %lld skipped: %s", c->file, (long long)idx, why);
        c->n_rejected++;
        return 0;
    }
    char *text = NULL;
    size_t len = 0, *spans = NULL;
    int n_spans = 0;
    int32_t *ids = NULL;
    uint8_t *mask = NULL;
    int64_t n = 0;
    hass_err e = hass_convo_render(render_chat, c, msgs, &text, &len, &spans, &n_spans);
    if (!e) e = hass_convo_tokens(c->tk, text, len, spans, n_spans, &ids, &mask, &n);
    json_decref(msgs);
    free(text), free(spans);
    if (e || n < 2) {
        HASS_INFO("%s: record %lld skipped: %s", c->file, (long long)idx, e ? hass_errmsg() : "too short");
        free(ids), free(mask);
        c->n_rejected++;
        return 0;
    }
    if (n > c->a->max_len) n = c->a->max_len, c->n_trunc++;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        fconv *nv = realloc(c->v, sizeof(fconv) * (size_t)c->cap);
        if (!nv) return c->err = hass_seterr(HASS_ENOMEM, "out of memory after %lld conversations", (long long)c->n);
        c->v = nv;
    }
    for (int64_t i = 0; i < n; i++) c->n_masked += mask[i];
    c->v[c->n++] = (fconv){ids, mask, (int)n};
    return 0;
}

// The chat template to render with: the one named, else the model's; NULL with an error.
static const char *pick_template(const hass_features_cfg *a, const hass_tokenizer *tk, hass_err *e) {
    int named = a->tmpl && strcmp(a->tmpl, "auto");
    const char *tn = named ? hass_chat_canonical(a->tmpl) : hass_chat_detect(hass_tokenizer_chat_template(tk));
    if (tn) return tn;
    if (named) *e = hass_seterr(HASS_EINVAL, "--template: unknown '%s' (%s)", a->tmpl, hass_chat_names());
    else
        *e = hass_seterr(HASS_EFORMAT, "%s: no chat template recognised in the model; name one with --template (%s)",
                         a->model, hass_chat_names());
    return NULL;
}

// Run the target over every kept conversation and write the shard (removed again on failure).
static hass_err write_shard(const hass_features_cfg *a, hass_model *m, const fctx *c, int64_t n_tok,
                            int64_t max_n) {
    const hass_model_cfg *cfg = hass_model_config(m);
    hass_err e = HASS_OK;
    hass_kv *kv = hass_kv_new(m, (int)max_n, &e);
    float *feats = kv ? malloc(sizeof(float) * (size_t)max_n * cfg->n_embd) : NULL; // (max_n, n_embd)
    if (kv && !feats) e = hass_seterr(HASS_ENOMEM, "out of memory");
    hass_shard_writer *w = feats ? hass_shard_writer_open(a->out, a->dtype && !strcmp(a->dtype, "f16") ?
                                                          HASS_SHARD_F16 : HASS_SHARD_BF16, cfg->n_embd,
                                                          cfg->n_vocab, hass_model_fingerprint(m), &e) : NULL;
    if (!w) {
        hass_kv_free(kv), free(feats);
        return e;
    }
    hass_progress pg;
    hass_progress_init(&pg, "positions", n_tok, a->progress);
    int64_t done = 0;
    for (int64_t i = 0; i < c->n && !e; i++) {
        hass_kv_truncate(kv, 0);
        e = hass_forward(m, kv, c->v[i].ids, NULL, c->v[i].n, NULL, NULL, feats);
        if (!e) e = hass_shard_writer_add(w, c->v[i].n, c->v[i].ids, c->v[i].mask, feats);
        if (e) hass_errprefix("conversation %lld", (long long)i);
        done += c->v[i].n;
        hass_progress_update(&pg, done);
    }
    hass_progress_end(&pg, done);
    if (e) hass_shard_writer_abort(w);
    else if ((e = hass_shard_writer_close(w)) && hass_exit_code(e) != 1) e = HASS_EIO; // a write failure
    hass_kv_free(kv);
    free(feats);
    return e;
}

// Read the files, say what is kept, write the shard.
static hass_err make(const hass_features_cfg *a, hass_model *m, fctx *c, const char *const *files, int n_files) {
    hass_err e = HASS_OK;
    for (int i = 0; i < n_files && !e; i++) {
        c->file = files[i];
        if (!(e = hass_convo_read(files[i], feat_record, c))) e = c->err;
    }
    const hass_model_cfg *cfg = hass_model_config(m);
    int64_t n_tok = 0, max_n = 1;
    uint64_t bytes = 64;
    for (int64_t i = 0; i < c->n; i++) {
        n_tok += c->v[i].n;
        if (c->v[i].n > max_n) max_n = c->v[i].n;
        bytes += 8 + 4 * (uint64_t)c->v[i].n + (((uint64_t)c->v[i].n + 3) & ~3ull) + 2ull * c->v[i].n * cfg->n_embd;
    }
    if (!e && c->n == 0) e = hass_seterr(HASS_EFORMAT, "no usable conversation (%lld rejected)", (long long)c->n_rejected);
    if (e) return e;
    hass_trainlog_note("features: %lld conversations (%lld skipped, %lld truncated to %lld), %lld positions, %lld in "
                       "the loss mask; shard %s: %.1f MiB (%s, width %d)", (long long)c->n, (long long)c->n_rejected,
                       (long long)c->n_trunc, (long long)a->max_len, (long long)n_tok, (long long)c->n_masked, a->out,
                       (double)bytes / 1048576.0, a->dtype ? a->dtype : "bf16", cfg->n_embd);
    if ((e = write_shard(a, m, c, n_tok, max_n))) return e;
    hass_trainlog_note("wrote %s (target fingerprint %08x)", a->out, hass_model_fingerprint(m));
    return HASS_OK;
}

// Make a feature shard from conversation files.
hass_err hass_features_make(const hass_features_cfg *a, const char *const *files, int n_files) {
    hass_err e;
    hass_model *m = hass_model_load(a->model, a->threads, &e);
    if (!m) return e;
    if (a->f32) hass_model_set_precision(m, HASS_PREC_F32);
    hass_tokenizer *tk = hass_tokenizer_load(a->model, &e);
    const char *tn = tk ? pick_template(a, tk, &e) : NULL;
    if (tn) {
        hass_trainlog_note("chat template: %s", tn);
        fctx c = {.a = a, .tk = tk};
        e = make(a, m, &c, files, n_files);
        for (int64_t i = 0; i < c.n; i++) free(c.v[i].ids), free(c.v[i].mask);
        free(c.v);
    }
    hass_tokenizer_free(tk);
    hass_model_free(m);
    return e;
}
