// verify_batch.c: hass-verify --batch N: records decoded N at a time, written in input order
// through a bounded reorder buffer (see verify_batch.h).
#include "verify_batch.h"

#include <stdlib.h>
#include <string.h>

// A record in flight.
typedef struct job {
    int64_t ticket;       // its place in the output order (-1: finish order)
    json_t *in;           // the input record (a reference)
    char *where;          // its position in the input, for an error record
    hass_verify_delta d;  // its deltas' writer and id
} job;

// A place of the reorder buffer: a record, once it is done.
typedef struct held {
    json_t *rec;
    int ready;
} held;

struct hass_verify_batch {
    hass_verify_batch_cfg cfg;
    hass_gen_batch *gb;
    hass_stream_writer *w;    // borrowed
    held *q;                  // (cap) ring of the reorder buffer, tickets first .. end - 1
    int cap, V;               // places; the vocabulary's size
    int64_t first, end;
    int passing;              // writes go out now (inside a step: deltas, records in turn)
    int drafting;             // speculative decoding (hass_verify_batch_set_draft)
    hass_verify_batch_stats st;
};

// Records waiting for their turn or for their generation.
static int64_t held_n(const hass_verify_batch *vb) { return vb->end - vb->first; }

// Write rec now (a failed write is kept in w->failed).
static void write_now(hass_verify_batch *vb, const json_t *rec) {
    int p = vb->passing;
    vb->passing = 1;
    hass_stream_write(vb->w, rec);
    vb->passing = p;
}

// Write the records at the head of the buffer that are done.
static void flush(hass_verify_batch *vb) {
    while (held_n(vb) && vb->q[vb->first % vb->cap].ready) {
        held *h = &vb->q[vb->first % vb->cap];
        if (!vb->w->failed) write_now(vb, h->rec);
        json_decref(h->rec);
        *h = (held){NULL, 0};
        vb->first++;
    }
}

// A new place at the end of the buffer (there is room): its ticket.
static int64_t take_ticket(hass_verify_batch *vb, json_t *rec) {
    vb->q[vb->end % vb->cap] = (held){rec, rec != NULL};
    return vb->end++;
}

// A record that ended: its output (or error) record into its place, its metrics, the counts.
static void on_done(void *ctx, void *rec, hass_err e, const hass_gen_out *r,
                    const hass_spec_stats *st) {
    hass_verify_batch *vb = ctx;
    job *j = rec;
    json_t *o = hass_verify_record_out(j->in, vb->cfg.gen, j->where, e, r);
    if (e) {
        HASS_ERROR("%s", json_string_value(json_object_get(o, "error")));
        if (!vb->st.n_failed++) vb->st.exit_code = hass_record_exit_code(e);
    } else if (vb->cfg.metrics) { // as hass_gen_write_metrics: the cycles of speculative decoding
        hass_spec_stats ms = *st;
        if (!vb->drafting) ms.n_cycles = 0;
        if (hass_spec_metrics_write(vb->cfg.metrics, json_object_get(j->in, "id"), &ms))
            HASS_WARN("%s", hass_errmsg());
    }
    if (vb->cfg.done) vb->cfg.done(vb->cfg.done_ctx, e ? NULL : o);
    if (j->ticket < 0) {
        write_now(vb, o);
        json_decref(o);
    } else {
        vb->q[j->ticket % vb->cap] = (held){o, 1};
        flush(vb);
    }
    json_decref(j->in);
    free(j->where);
    free(j);
}

// One step of the records in flight; their deltas and finished records are written.
static void step(hass_verify_batch *vb) {
    int p = vb->passing;
    vb->passing = 1;
    hass_gen_batch_step(vb->gb, on_done, vb);
    vb->passing = p;
}

// Decode until a slot is free (need_slot) and the buffer has room, or the output failed.
static void make_room(hass_verify_batch *vb, int need_slot) {
    while (!vb->w->failed && hass_gen_batch_running(vb->gb) &&
           ((need_slot && !hass_gen_batch_has_room(vb->gb)) || held_n(vb) >= vb->cap))
        step(vb);
}

// The writer's hold hook: a record written while earlier ones are still decoding waits in the
// buffer for its turn.
static int hold(void *ctx, const json_t *rec) {
    hass_verify_batch *vb = ctx;
    if (vb->passing || vb->cfg.finish_order || !held_n(vb)) return 0;
    make_room(vb, 0);
    if (!held_n(vb) || vb->w->failed) return 0;
    take_ticket(vb, json_incref((json_t *)rec));
    return 1;
}

// The writer's idle hook: while the next input record has not arrived, the records in flight
// decode on (a slow producer does not hold them back until N records are in).
static int idle(void *ctx) {
    hass_verify_batch *vb = ctx;
    if (vb->w->failed || !hass_gen_batch_running(vb->gb)) return 0;
    step(vb);
    return 1;
}

hass_verify_batch *hass_verify_batch_new(hass_model *m, const hass_tokenizer *tok,
                                         const hass_verify_batch_cfg *cfg, hass_stream_writer *w,
                                         hass_err *err) {
    hass_verify_batch *vb = calloc(1, sizeof *vb);
    if (!vb) {
        *err = hass_seterr(HASS_ENOMEM, "batch: out of memory");
        return NULL;
    }
    vb->cfg = *cfg;
    vb->w = w;
    vb->cap = 4 * cfg->n;
    vb->V = hass_model_config(m)->n_vocab;
    vb->q = calloc((size_t)vb->cap, sizeof *vb->q);
    if (!vb->q) *err = hass_seterr(HASS_ENOMEM, "batch: out of memory");
    else vb->gb = hass_gen_batch_new(m, tok, cfg->n, cfg->n_ctx, err);
    if (!vb->gb) {
        hass_verify_batch_free(vb);
        return NULL;
    }
    w->hold = hold;
    w->hold_ctx = vb;
    w->idle = idle;
    w->idle_ctx = vb;
    return vb;
}

void hass_verify_batch_free(hass_verify_batch *vb) {
    if (!vb) return;
    if (vb->w && vb->w->hold == hold) vb->w->hold = NULL, vb->w->hold_ctx = NULL;
    if (vb->w && vb->w->idle == idle) vb->w->idle = NULL, vb->w->idle_ctx = NULL;
    for (int64_t t = vb->first; vb->q && t < vb->end; t++) json_decref(vb->q[t % vb->cap].rec);
    free(vb->q);
    hass_gen_batch_free(vb->gb);
    free(vb);
}

int hass_verify_batch_ctx(const hass_verify_batch *vb) { return hass_gen_batch_ctx(vb->gb); }

hass_err hass_verify_batch_set_draft(hass_verify_batch *vb, hass_head_drafter *hd,
                                     const hass_spec_cfg *sc) {
    hass_err e = hass_gen_batch_set_draft(vb->gb, hd, sc);
    if (!e) vb->drafting = 1;
    return e;
}

hass_err hass_verify_batch_record(hass_verify_batch *vb, const json_t *in, const char *where,
                                  int64_t index, json_t **out) {
    hass_verify_in vi;
    hass_err e = hass_verify_record_read(hass_gen_batch_ctx(vb->gb), vb->V, vb->cfg.gen, in, where,
                                         index, &vi, out);
    if (e || *out) return e;
    make_room(vb, 1);
    job *j = calloc(1, sizeof *j);
    char *wh = strdup(where);
    if (!j || !wh) {
        free(j);
        free(wh);
        free(vi.ids);
        hass_seterr(HASS_ENOMEM, "batch: out of memory");
        *out = hass_verify_record_out(in, vb->cfg.gen, where, HASS_ENOMEM, NULL);
        return HASS_ENOMEM;
    }
    *j = (job){-1, json_incref((json_t *)in), wh, {vb->w, json_object_get(in, "id")}};
    e = hass_gen_batch_add(vb->gb, &vi.cfg, vi.seed, vi.ids, (int)vi.n,
                           vb->cfg.stream ? hass_verify_record_delta : NULL, &j->d, j);
    free(vi.ids);
    if (e) {
        *out = hass_verify_record_out(in, vb->cfg.gen, where, e, NULL);
        json_decref(j->in);
        free(j->where);
        free(j);
        return e;
    }
    if (!vb->cfg.finish_order) j->ticket = take_ticket(vb, NULL);
    return HASS_OK;
}

hass_err hass_verify_batch_finish(hass_verify_batch *vb, hass_verify_batch_stats *st) {
    while (!vb->w->failed && hass_gen_batch_running(vb->gb)) step(vb);
    flush(vb);
    *st = vb->st;
    return vb->w->failed ? HASS_EIO : HASS_OK;
}
