// gen_batch.c: generation of several records per forward (see gen_batch.h). Each slot is a
// decoder of spec.h driven by its two halves (hass_spec_prepare, hass_spec_complete) around one
// hass_forward_batch per step over every slot's block: the cycle (sampling, acceptance,
// compaction, feedback, stop rules) is spec.c's, not a copy.
#include "gen_batch.h"

#include <stdlib.h>
#include <string.h>

#include "forward.h"

enum { SLOT_FREE = 0, SLOT_RUN, SLOT_END };

// One record in flight.
typedef struct slot {
    int state;               // SLOT_*
    hass_spec *sp;           // its decoder (its cache and buffers kept across records)
    hass_head_drafter *fork; // its drafter when it forks the batch's (owned), else NULL
    int32_t *prompt;         // (n_ctx) its prompt
    int n_prompt;
    hass_stop_cfg stop_cfg;  // its stop rules (the tracker points here)
    int margins;             // the record asked for margins
    int32_t *out;            // (n_ctx + 1) kept tokens
    float *mg;               // (n_ctx + 1) their steps' top1 - top2 logit
    hass_gen_emit_fn emit;
    void *ectx, *rec;
    hass_err e;              // the first error: the emit's, the decoder's or the forward's
    char why[256];           // its message (other slots may leave theirs before it is reported)
    hass_spec_block blk;     // this step's block
} slot;

struct hass_gen_batch {
    hass_backend *be;            // the CPU backend over the model (owned)
    const hass_tokenizer *tok;   // borrowed
    int n_slots, n_ctx, V, running;
    int rows;                    // most logits rows of one slot's block (the tree's total, or 1)
    slot *slots;                 // (n_slots)
    hass_fwd_scratch *sc;        // the steps' scratch
    hass_fwd_seq *seqs;          // (n_slots) this step's sequences
    int *who;                    // (n_slots) their slots
    int *all;                    // (rows) 0, 1, 2, ...: the rows of a block that wants all logits
    float *logits;               // (n_slots * rows, V) the step's logits rows, block after block
};

// Free a slot's decoder and buffers.
static void slot_free(slot *s) {
    hass_spec_free(s->sp);
    hass_head_drafter_free(s->fork);
    free(s->prompt);
    free(s->out);
    free(s->mg);
}

void hass_gen_batch_free(hass_gen_batch *b) {
    if (!b) return;
    for (int i = 0; b->slots && i < b->n_slots; i++) {
        if (b->slots[i].state != SLOT_FREE) hass_spec_end(b->slots[i].sp, HASS_EINVAL, NULL);
        slot_free(&b->slots[i]);
    }
    free(b->slots);
    hass_fwd_scratch_free(b->sc);
    hass_backend_free(b->be);
    free(b->seqs);
    free(b->who);
    free(b->all);
    free(b->logits);
    free(b);
}

// Size the per-step buffers for blocks of up to rows logits rows per slot, allocation-free for a
// step of one new record of up to 64 rows and every other slot's block.
static hass_err size_step(hass_gen_batch *b, int rows) {
    int *all = malloc((size_t)rows * sizeof(int));
    float *lg = malloc((size_t)b->n_slots * rows * b->V * sizeof(float));
    if (!all || !lg) {
        free(all), free(lg);
        return hass_seterr(HASS_ENOMEM, "batch: out of memory for %d slots", b->n_slots);
    }
    for (int i = 0; i < rows; i++) all[i] = i;
    free(b->all), free(b->logits);
    b->all = all, b->logits = lg, b->rows = rows;
    return hass_fwd_scratch_reserve(b->sc, 64 + b->n_slots * rows, b->n_ctx);
}

hass_gen_batch *hass_gen_batch_new(hass_model *m, const hass_tokenizer *tok, int n_slots,
                                   int n_ctx, hass_err *err) {
    hass_gen_batch *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->tok = tok;
    b->n_slots = n_slots;
    b->V = hass_model_config(m)->n_vocab;
    b->slots = calloc((size_t)n_slots, sizeof *b->slots);
    b->seqs = calloc((size_t)n_slots, sizeof *b->seqs);
    b->who = calloc((size_t)n_slots, sizeof *b->who);
    if (!b->slots || !b->seqs || !b->who) goto oom;
    if (!(b->be = hass_backend_cpu(m, err)) || !(b->sc = hass_fwd_scratch_new(m, err))) goto fail;
    hass_spec_cfg pc = {{1, 1, 1}, 0, {0.f, 0, 1.f}, 0, n_ctx, NULL}; // plain decoding (gen.c's)
    for (int i = 0; i < n_slots; i++) {
        slot *s = &b->slots[i];
        if (!(s->sp = hass_spec_new_on(b->be, NULL, &pc, err))) goto fail;
        b->n_ctx = hass_spec_ctx(s->sp);
        s->prompt = malloc((size_t)b->n_ctx * sizeof(int32_t));
        s->out = malloc((size_t)(b->n_ctx + 1) * sizeof(int32_t));
        s->mg = malloc((size_t)(b->n_ctx + 1) * sizeof(float));
        if (!s->prompt || !s->out || !s->mg) goto oom;
    }
    if ((*err = size_step(b, 1))) goto fail;
    // the weights' one-off packing, not timed inside the first records (as hass_gen_new)
    if ((*err = hass_spec_warm_up(b->slots[0].sp))) goto fail;
    return b;
oom:
    *err = hass_seterr(HASS_ENOMEM, "batch: out of memory for %d slots", n_slots);
fail:
    hass_gen_batch_free(b);
    return NULL;
}

hass_err hass_gen_batch_set_draft(hass_gen_batch *b, hass_head_drafter *hd, const hass_spec_cfg *sc) {
    if (b->running) return hass_seterr(HASS_EINVAL, "batch: records in flight");
    int n = b->n_slots;
    hass_spec **sp = calloc((size_t)n, sizeof *sp);
    hass_head_drafter **fk = calloc((size_t)n, sizeof *fk);
    hass_err e = sp && fk ? HASS_OK : hass_seterr(HASS_ENOMEM, "batch: out of memory");
    hass_spec_cfg c = *sc;
    c.n_ctx = b->n_ctx;
    for (int i = 0; i < n && !e; i++) { // slot 0 measures --tree auto's costs, the others copy
        if (i && !(fk[i] = hass_head_drafter_fork(hd, &e))) break;
        hass_drafter dr = hass_head_drafter_iface(i ? fk[i] : hd);
        sp[i] = hass_spec_new_shared(b->be, &dr, &c, i ? sp[0] : NULL, &e);
    }
    if (!e) e = size_step(b, sc->tree.n_total > 1 ? sc->tree.n_total : 1);
    for (int i = 0; i < n && sp && fk; i++) { // the new decoders in, or (failed) out
        slot *s = &b->slots[i];
        hass_spec *old_sp = e ? sp[i] : s->sp;
        hass_head_drafter *old_fk = e ? fk[i] : s->fork;
        if (!e) s->sp = sp[i], s->fork = fk[i];
        hass_spec_free(old_sp);
        hass_head_drafter_free(old_fk);
    }
    free(sp);
    free(fk);
    return e;
}

int hass_gen_batch_ctx(const hass_gen_batch *b) { return b->n_ctx; }
int hass_gen_batch_running(const hass_gen_batch *b) { return b->running; }
int hass_gen_batch_has_room(const hass_gen_batch *b) { return b->running < b->n_slots; }

// End a slot's record with error e (the first one kept, with its message).
static void fail_slot(slot *s, hass_err e) {
    if (!s->e) {
        s->e = e;
        snprintf(s->why, sizeof s->why, "%s", hass_errmsg());
    }
    s->state = SLOT_END;
}

// The decoder's emit: the record's kept tokens to its emit one at a time (as hass_gen_run);
// non-zero (stop) on its error.
static int slot_emit(void *ud, const int32_t *tok, int n, const hass_spec_cycle *cyc) {
    slot *s = ud;
    for (int i = 0; i < n && !s->e; i++) {
        hass_err e = s->emit(s->ectx, &tok[i], 1);
        if (e) fail_slot(s, e);
    }
    return s->e != HASS_OK;
}

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
    s->margins = cfg->margins;
    s->stop_cfg = (hass_stop_cfg){cfg->max_new, cfg->ignore_eos, b->tok, NULL, 0, cfg->stop,
                                  cfg->n_stop};
    s->emit = emit, s->ectx = ectx, s->rec = rec;
    s->e = HASS_OK;
    hass_spec_set_seed(s->sp, seed);
    hass_spec_set_sampler(s->sp, &cfg->sampler);
    e = hass_spec_begin(s->sp, s->prompt, n_prompt, &s->stop_cfg, s->out,
                        cfg->margins ? s->mg : NULL, emit ? slot_emit : NULL, s);
    if (e) return e;
    s->state = hass_spec_done(s->sp) ? SLOT_END : SLOT_RUN; // max_new 0: "length" at once
    b->running++;
    return HASS_OK;
}

// Report a slot that ended and free it: its result as hass_gen_run gives it.
static void report(hass_gen_batch *b, slot *s, hass_gen_done_fn done, void *ctx) {
    hass_spec_stats st;
    int n = hass_spec_end(s->sp, s->e, &st);
    hass_gen_out o = {s->out, NULL, 0, HASS_FINISH_NONE, -1, s->n_prompt, 0, 0, 0, 0};
    if (n >= 0)
        o = (hass_gen_out){s->out, s->margins && !hass_spec_has_drafter(s->sp) ? s->mg : NULL, n,
                           st.finish, st.stop_idx, s->n_prompt, st.prefill_ms,
                           st.total_ms - st.prefill_ms, st.decode_cpu_ms, st.n_cycles};
    else
        hass_seterr(s->e, "%s", s->why);
    s->state = SLOT_FREE;
    b->running--;
    done(ctx, s->rec, s->e, &o, n >= 0 ? &st : NULL);
}

// Prepare slot s's block and add it to the step's sequences (its logits rows after *off).
static void add_block(hass_gen_batch *b, int i, int *n, int *off) {
    slot *s = &b->slots[i];
    hass_err e = hass_spec_prepare(s->sp, &s->blk);
    if (e) {
        fail_slot(s, e);
        return;
    }
    hass_spec_block *k = &s->blk;
    int nr = !k->logits ? 0 : k->rows ? k->n_rows : k->n;
    if (k->logits) k->logits = b->logits + (size_t)*off * b->V; // one LM-head matmul for all
    *off += nr;
    b->seqs[*n] = (hass_fwd_seq){k->kv, k->tok, k->pos, k->n, k->mask, k->rows ? k->rows : b->all,
                                 nr, k->logits, k->feats};
    b->who[(*n)++] = i;
}

void hass_gen_batch_step(hass_gen_batch *b, hass_gen_done_fn done, void *ctx) {
    int n = 0, off = 0;
    for (int i = 0; i < b->n_slots; i++)
        if (b->slots[i].state == SLOT_RUN) add_block(b, i, &n, &off);
    hass_err fe = n ? hass_forward_batch(b->be->m, b->sc, b->seqs, n) : HASS_OK;
    for (int k = 0; k < n; k++) { // a failed forward (out of memory) fails every record of it
        slot *s = &b->slots[b->who[k]];
        hass_err e = hass_spec_complete(s->sp, &s->blk, fe);
        if (e) fail_slot(s, e);
        else if (s->e || hass_spec_done(s->sp)) s->state = SLOT_END;
    }
    for (int i = 0; i < b->n_slots; i++)
        if (b->slots[i].state == SLOT_END) report(b, &b->slots[i], done, ctx);
}
