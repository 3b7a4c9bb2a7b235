// gen_batch.c: plain generation of several records per forward (see gen_batch.h). Each slot
// follows spec.c's plain decoding step for step: prefill, sample the root from the last row,
// offer it to the stop rules, then one row a step until the stop rules or the context end it.
#include "gen_batch.h"

#include <stdlib.h>
#include <string.h>

#include "forward.h"

enum { SLOT_FREE = 0, SLOT_NEW, SLOT_RUN, SLOT_END };

// One record in flight.
typedef struct slot {
    int state;               // SLOT_*
    hass_kv *kv;             // its cache (kept across records)
    int32_t *prompt;         // (n_ctx) its prompt
    int n_prompt;
    int32_t next;            // the token to forward at the next step (the last sampled)
    int row;                 // the block row whose logits are sampled
    hass_gen_cfg cfg;        // the record's settings
    hass_stop_cfg stop_cfg;  // its stop rules (the tracker points here)
    hass_stop st;
    hass_rng rng;
    int32_t *out;            // (n_ctx + 1) kept tokens
    float *margins;          // (n_ctx + 1) their steps' top1 - top2 logit
    int n_out;
    hass_gen_emit_fn emit;
    void *ectx, *rec;
    hass_err e;              // the emit's error, or a failed forward
    int n_steps;             // decode steps after the prefill
    double t0, t_pre, cpu0;  // when it was added, when its prefill ended, CPU time then
} slot;

struct hass_gen_batch {
    hass_model *m;               // borrowed
    const hass_tokenizer *tok;   // borrowed
    int n_slots, n_ctx, V, running;
    slot *slots;                 // (n_slots)
    hass_fwd_scratch *sc;        // the steps' scratch
    hass_fwd_seq *seqs;          // (n_slots) this step's sequences
    int *who;                    // (n_slots) their slots
    float *logits;               // (n_slots, V) one sampled row per sequence, in order
    float *probs;                // (V) the sampler's scratch
};

// Free a slot's buffers.
static void slot_free(slot *s) {
    hass_kv_free(s->kv);
    free(s->prompt);
    free(s->out);
    free(s->margins);
}

void hass_gen_batch_free(hass_gen_batch *b) {
    if (!b) return;
    for (int i = 0; b->slots && i < b->n_slots; i++) {
        if (b->slots[i].state != SLOT_FREE) hass_stop_free(&b->slots[i].st);
        slot_free(&b->slots[i]);
    }
    free(b->slots);
    hass_fwd_scratch_free(b->sc);
    free(b->seqs);
    free(b->who);
    free(b->logits);
    free(b->probs);
    free(b);
}

// Forward a short dummy prompt once, so that the weights' one-off packing is not timed inside
// the first records (as hass_gen_new's warm-up).
static hass_err warm_up(hass_gen_batch *b) {
    enum { N = 8 };
    if (b->n_ctx < N) return HASS_OK;
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)(i % b->V);
    int last = N - 1;
    hass_fwd_seq q = {b->slots[0].kv, tok, NULL, N, NULL, &last, 1, b->logits, NULL};
    hass_err e = hass_forward_batch(b->m, b->sc, &q, 1);
    hass_kv_truncate(b->slots[0].kv, 0);
    return e;
}

hass_gen_batch *hass_gen_batch_new(hass_model *m, const hass_tokenizer *tok, int n_slots,
                                   int n_ctx, hass_err *err) {
    hass_gen_batch *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->m = m;
    b->tok = tok;
    b->n_slots = n_slots;
    b->V = hass_model_config(m)->n_vocab;
    b->slots = calloc((size_t)n_slots, sizeof *b->slots);
    b->seqs = calloc((size_t)n_slots, sizeof *b->seqs);
    b->who = calloc((size_t)n_slots, sizeof *b->who);
    b->logits = malloc((size_t)n_slots * b->V * sizeof(float));
    b->probs = malloc((size_t)b->V * sizeof(float));
    if (!b->slots || !b->seqs || !b->who || !b->logits || !b->probs) goto oom;
    if (!(b->sc = hass_fwd_scratch_new(m, err))) goto fail;
    for (int i = 0; i < n_slots; i++) {
        slot *s = &b->slots[i];
        if (!(s->kv = hass_kv_new(m, n_ctx, err))) goto fail;
        b->n_ctx = hass_kv_capacity(s->kv);
        s->prompt = malloc((size_t)b->n_ctx * sizeof(int32_t));
        s->out = malloc((size_t)(b->n_ctx + 1) * sizeof(int32_t));
        s->margins = malloc((size_t)(b->n_ctx + 1) * sizeof(float));
        if (!s->prompt || !s->out || !s->margins) goto oom;
    }
    // a step of one new record of up to 64 rows and every other slot's decode row, allocation-free
    if ((*err = hass_fwd_scratch_reserve(b->sc, 64 + n_slots, b->n_ctx))) goto fail;
    if ((*err = warm_up(b))) goto fail;
    return b;
oom:
    *err = hass_seterr(HASS_ENOMEM, "batch: out of memory for %d slots", n_slots);
fail:
    hass_gen_batch_free(b);
    return NULL;
}

int hass_gen_batch_ctx(const hass_gen_batch *b) { return b->n_ctx; }
int hass_gen_batch_running(const hass_gen_batch *b) { return b->running; }
int hass_gen_batch_has_room(const hass_gen_batch *b) { return b->running < b->n_slots; }

hass_err hass_gen_batch_add(hass_gen_batch *b, const hass_gen_cfg *cfg, uint64_t seed,
                            const int32_t *prompt, int n_prompt, hass_gen_emit_fn emit,
                            void *ectx, void *rec) {
    hass_err e = hass_gen_check_prompt(b->n_ctx, b->V, prompt, n_prompt);
    if (e) return e;
    slot *s = NULL;
    for (int i = 0; i < b->n_slots && !s; i++)
        if (b->slots[i].state == SLOT_FREE) s = &b->slots[i];
    if (!s) return hass_seterr(HASS_EINVAL, "batch: no free slot");
    memcpy(s->prompt, prompt, (size_t)n_prompt * sizeof(int32_t));
    s->n_prompt = n_prompt;
    s->cfg = *cfg;
    s->stop_cfg = (hass_stop_cfg){cfg->max_new, cfg->ignore_eos, b->tok, NULL, 0, cfg->stop,
                                  cfg->n_stop};
    hass_stop_init(&s->st, &s->stop_cfg);
    hass_rng_seed(&s->rng, seed);
    hass_kv_truncate(s->kv, 0);
    s->n_out = s->n_steps = 0;
    s->emit = emit, s->ectx = ectx, s->rec = rec;
    s->e = HASS_OK;
    s->t0 = hass_now();
    s->t_pre = s->t0;
    s->cpu0 = hass_cpu_now();
    s->state = cfg->max_new > 0 ? SLOT_NEW : SLOT_END; // nothing to generate: "length" at once
    if (s->state == SLOT_END) s->st.finish = HASS_FINISH_LENGTH;
    b->running++;
    return HASS_OK;
}

// Offer the token sampled from logits lg to the slot's stop rules (spec.c's take for one
// token), keep it and emit it; then end the record when the rules or a full context say so.
static void take(hass_gen_batch *b, slot *s, int32_t t, const float *lg) {
    int keep;
    hass_stop_push(&s->st, t, &keep);
    if (keep) {
        s->margins[s->n_out] = s->cfg.margins ? hass_top2_margin(lg, b->V) : 0.f;
        s->out[s->n_out++] = t;
        if (s->emit && (s->e = s->emit(s->ectx, &t, 1))) s->state = SLOT_END;
    }
    if (s->st.finish == HASS_FINISH_NONE && hass_kv_len(s->kv) + 1 > b->n_ctx)
        s->st.finish = HASS_FINISH_LENGTH; // no room for another step
    if (s->st.finish != HASS_FINISH_NONE) s->state = SLOT_END;
    s->next = t;
}

// Report a slot that ended and free it.
static void report(hass_gen_batch *b, slot *s, hass_gen_done_fn done, void *ctx) {
    double now = hass_now();
    hass_gen_out o = {s->out, s->cfg.margins ? s->margins : NULL, s->n_out, s->st.finish,
                      s->st.stop_idx, s->n_prompt, (s->t_pre - s->t0) * 1e3,
                      (now - s->t_pre) * 1e3, (hass_cpu_now() - s->cpu0) * 1e3, s->n_steps};
    hass_stop_free(&s->st);
    s->state = SLOT_FREE;
    b->running--;
    done(ctx, s->rec, s->e, &o);
}

void hass_gen_batch_step(hass_gen_batch *b, hass_gen_done_fn done, void *ctx) {
    int n = 0;
    for (int i = 0; i < b->n_slots; i++) {
        slot *s = &b->slots[i];
        if (s->state != SLOT_NEW && s->state != SLOT_RUN) continue;
        int pre = s->state == SLOT_NEW;
        s->row = pre ? s->n_prompt - 1 : 0;
        b->seqs[n] = (hass_fwd_seq){s->kv, pre ? s->prompt : &s->next, NULL, pre ? s->n_prompt : 1,
                                    NULL, &s->row, 1, b->logits + (size_t)n * b->V, NULL};
        b->who[n++] = i;
    }
    hass_err e = n ? hass_forward_batch(b->m, b->sc, b->seqs, n) : HASS_OK;
    double now = hass_now(), cpu = hass_cpu_now();
    for (int k = 0; k < n; k++) {
        slot *s = &b->slots[b->who[k]];
        if (e) { // a failed forward (out of memory): every record of the step fails
            s->e = e;
            s->state = SLOT_END;
            continue;
        }
        const float *lg = b->logits + (size_t)k * b->V;
        int32_t t = hass_sample_token(&s->cfg.sampler, lg, b->V, &s->rng, b->probs);
        if (s->state == SLOT_NEW) {
            s->t_pre = now, s->cpu0 = cpu;
            s->state = SLOT_RUN;
        } else {
            s->n_steps++;
        }
        take(b, s, t, lg);
    }
    for (int i = 0; i < b->n_slots; i++)
        if (b->slots[i].state == SLOT_END) report(b, &b->slots[i], done, ctx);
}
