// verify_record.c: hass-verify's per-record glue: record keys in, generation, record out.
#include "verify_record.h"

#include <stdlib.h>
#include <string.h>

// splitmix64 finaliser: a well-mixed 64-bit value from x.
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Sampler seed of a record.
uint64_t hass_verify_record_seed(uint64_t seed, const json_t *rec, int64_t index) {
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

// Write one delta record for a chunk of accepted tokens (see verify_record.h).
hass_err hass_verify_record_delta(void *ctx, const int32_t *ids, int n) {
    hass_verify_delta *d = ctx;
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

// A record's optional integer key: absent, or an integer in [lo, hi] (else an error naming it).
static hass_err int_key(const json_t *in, const char *key, int64_t lo, int64_t hi) {
    const json_t *x = json_object_get(in, key);
    if (!x) return HASS_OK;
    if (!json_is_integer(x)) {
        char *txt = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
        hass_err e = hass_seterr(HASS_EFORMAT, "\"%s\" is not an integer: %.40s%s", key,
                                 txt ? txt : "?", txt && strlen(txt) > 40 ? "..." : "");
        free(txt);
        return e;
    }
    int64_t v = json_integer_value(x);
    if (v < lo || v > hi)
        return hass_seterr(HASS_ERANGE, "\"%s\" = %lld is outside [%lld, %lld]", key, (long long)v,
                           (long long)lo, (long long)hi);
    return HASS_OK;
}

// Check the per-record settings ("max_new", "seed"; see verify_record.h) and apply "max_new".
static hass_err record_overrides(const json_t *in, hass_gen_cfg *rc) {
    hass_err e = int_key(in, "max_new", 0, HASS_RECORD_MAX_NEW);
    if (!e) e = int_key(in, "seed", 0, INT64_MAX);
    if (e) return e;
    const json_t *mx = json_object_get(in, "max_new");
    if (mx) rc->max_new = (int)json_integer_value(mx);
    return HASS_OK;
}

// A record read for generation (see verify_record.h).
hass_err hass_verify_record_read(int n_ctx, int n_vocab, const hass_gen_cfg *cfg, const json_t *in,
                                 const char *where, int64_t index, hass_verify_in *vi,
                                 json_t **out) {
    *out = NULL;
    memset(vi, 0, sizeof *vi);
    const char *type = json_string_value(json_object_get(in, "type"));
    if (type && !strcmp(type, "delta")) { // a streaming delta of an earlier stage: forward it
        *out = json_incref((json_t *)in);
        return HASS_OK;
    }
    hass_err e = hass_jsonl_get_ids(in, "tokens", n_vocab, &vi->ids, &vi->n);
    if (!e && vi->n > n_ctx)
        e = hass_seterr(HASS_ERANGE, "prompt of %lld tokens is longer than the context (%d)",
                        (long long)vi->n, n_ctx);
    vi->cfg = *cfg;
    if (!e) e = record_overrides(in, &vi->cfg);
    if (e) {
        free(vi->ids);
        vi->ids = NULL;
        *out = error_out(in, where);
        return e;
    }
    vi->seed = hass_verify_record_seed(cfg->seed, in, index);
    return HASS_OK;
}

// The output record of a generation (see verify_record.h).
json_t *hass_verify_record_out(const json_t *in, const hass_gen_cfg *cfg, const char *where,
                               hass_err e, const hass_gen_out *r) {
    if (e) return error_out(in, where);
    json_t *o = json_deep_copy(in);
    hass_jsonl_set_ids(o, "generated", r->tokens, r->n_tokens);
    json_object_set_new(o, "finish", json_string(hass_finish_name(r->finish)));
    if (r->stop_idx >= 0) json_object_set_new(o, "stop", json_string(cfg->stop[r->stop_idx]));
    if (r->margins) {
        json_t *a = json_array();
        for (int i = 0; i < r->n_tokens; i++) json_array_append_new(a, json_real(r->margins[i]));
        json_object_set_new(o, "margins", a);
    }
    double tok_s = r->decode_ms > 0 ? 1e3 * r->n_decode / r->decode_ms : 0;
    json_object_set_new(o, "timing",
                        json_pack("{s:f,s:f,s:f,s:f}", "prefill_ms", r->prefill_ms, "decode_ms",
                                  r->decode_ms, "tok_s", tok_s, "decode_cpu_ms", r->decode_cpu_ms));
    return o;
}

// One record: tokens in, generation out.
hass_err hass_verify_record(hass_gen *g, const hass_gen_cfg *cfg, const json_t *in,
                            const char *where, int64_t index, int stream, hass_stream_writer *w,
                            json_t **out) {
    hass_verify_in vi;
    hass_err e = hass_verify_record_read(hass_gen_ctx(g), hass_gen_vocab(g), cfg, in, where, index,
                                         &vi, out);
    if (e || *out) return e;
    hass_verify_delta d = {w, json_object_get(in, "id")};
    hass_gen_out r;
    e = hass_gen_run(g, &vi.cfg, vi.seed, vi.ids, (int)vi.n, stream ? hass_verify_record_delta : NULL,
                     &d, &r);
    free(vi.ids);
    if (!e && hass_gen_write_metrics(g, json_object_get(in, "id"), &r)) HASS_WARN("%s", hass_errmsg());
    *out = hass_verify_record_out(in, cfg, where, e, &r);
    return e;
}
