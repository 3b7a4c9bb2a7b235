// test_spec_batch.c: spec.h's stepwise API (begin / prepare / complete / end) driving several
// decoders through ONE hass_forward_batch per step (as hass-verify --batch --draft does) gives
// every prompt exactly the tokens, finish and cycle count of hass_spec_generate decoding it alone:
// stories260K, a random head (one drafter per decoder over the one head), a fixed tree, T = 0
// and T = 1.2 seeded, prompts of different lengths that end at different steps; at T = 1.2 the
// drafts were accepted at times (else acceptance past the root would go unchecked).
#include "spec.h"
#include "unit.h"

enum { NS = 3, NEW = 30 };
static const int32_t PR[NS][5] = {{1, 403, 407, 261, 378}, {1, 300}, {1, 260, 270}};
static const int PN[NS] = {5, 2, 3};
static const int MAXN[NS] = {NEW, 7, 19}; // different ends
static const int IDENT[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; // rows of a whole tree

// NS decoders, each with its own drafter over head h, tree tc, sampler smp, seeds 11 + i.
static void make(hass_backend *b, const hass_head *h, const hass_tree_cfg *tc,
                 const hass_sampler *smp, hass_draft **d, hass_spec **s) {
    hass_err e;
    for (int i = 0; i < NS; i++) {
        d[i] = hass_draft_new(h, b->m, 128, tc, &e);
        hass_drafter dr = hass_drafter_local(d[i]);
        hass_spec_cfg sc = {*tc, 0, *smp, 11 + (uint64_t)i, 128, NULL};
        s[i] = hass_spec_new_on(b, &dr, &sc, &e);
    }
}

// Decode the NS prompts together: each step every running decoder's block in one forward.
static int batched(hass_model *m, hass_spec **s, int32_t (*out)[NEW + 1], int *n,
                   hass_spec_stats *st) {
    hass_err e = HASS_OK;
    hass_stop_cfg stop[NS];
    for (int i = 0; i < NS; i++) {
        stop[i] = (hass_stop_cfg){.max_new = MAXN[i]};
        if (hass_spec_begin(s[i], PR[i], PN[i], &stop[i], out[i], NULL, NULL, NULL)) return -1;
    }
    int running = NS, live[NS] = {1, 1, 1};
    hass_fwd_scratch *sc = hass_fwd_scratch_new(m, &e);
    while (running) {
        hass_spec_block blk[NS];
        hass_fwd_seq q[NS];
        int who[NS], k = 0;
        for (int i = 0; i < NS; i++) {
            if (!live[i]) continue;
            if (hass_spec_prepare(s[i], &blk[i])) return -1;
            hass_spec_block *b = &blk[i];
            q[k] = (hass_fwd_seq){b->kv, b->tok, b->pos, b->n, b->mask, b->rows,
                                  b->rows ? b->n_rows : b->logits ? b->n : 0, b->logits, b->feats};
            if (b->logits && !b->rows) q[k].rows = IDENT; // every row's logits
            who[k++] = i;
        }
        e = hass_forward_batch(m, sc, q, k);
        for (int j = 0; j < k; j++) {
            int i = who[j];
            if (hass_spec_complete(s[i], &blk[i], e)) return -1;
            if (hass_spec_done(s[i])) {
                n[i] = hass_spec_end(s[i], HASS_OK, &st[i]);
                live[i] = 0, running--;
            }
        }
    }
    hass_fwd_scratch_free(sc);
    return 0;
}

// One temperature: batched == alone for every prompt; want_acc: drafts were accepted (a random
// head's greedy drafts rarely match, its T > 0 ones do).
static void compare(hass_backend *b, const hass_head *h, const hass_sampler *smp, const char *name,
                    int want_acc) {
    hass_tree_cfg tc = {12, 3, 3};
    hass_draft *d[NS];
    hass_spec *s[NS];
    int32_t ref[NS][NEW + 1], got[NS][NEW + 1];
    int nr[NS], ng[NS], cr[NS], acc = 0;
    hass_spec_stats st[NS];
    make(b, h, &tc, smp, d, s);
    for (int i = 0; i < NS; i++) {
        hass_stop_cfg stop = {.max_new = MAXN[i]};
        nr[i] = hass_spec_generate(s[i], PR[i], PN[i], &stop, ref[i], NULL, &st[i], NULL, NULL);
        cr[i] = st[i].n_cycles;
        for (int c = 0; c < st[i].n_cycles; c++) acc += st[i].cycles[c].n_acc;
    }
    int ok = batched(b->m, s, got, ng, st) == 0;
    char label[96];
    for (int i = 0; i < NS; i++) {
        snprintf(label, sizeof label, "%s_prompt%d", name, i);
        CHECK(label, ok && ng[i] == nr[i] && !memcmp(got[i], ref[i], sizeof(int32_t) * nr[i]) &&
                         st[i].n_cycles == cr[i],
              "batched %d tokens, %d cycles; alone %d tokens, %d cycles (%s)", ok ? ng[i] : -1,
              ok ? st[i].n_cycles : -1, nr[i], cr[i], hass_errmsg());
    }
    snprintf(label, sizeof label, "%s_drafts_accepted", name);
    if (want_acc) CHECK(label, acc > 0, "no draft token accepted alone");
    for (int i = 0; i < NS; i++) hass_spec_free(s[i]), hass_draft_free(d[i]);
}

int main(void) {
    char path[1024];
    unit_data(path, sizeof path, "models/stories260K/stories260K-v3-f32.gguf");
    if (!unit_exists(path)) {
        SKIP("spec_batch", "model missing");
        UNIT_DONE();
    }
    hass_err e;
    hass_model *m = hass_model_load(path, 1, &e);
    hass_backend *b = m ? hass_backend_cpu(m, &e) : NULL;
    CHECK("load_stories260K", b != NULL, "%s", hass_errmsg());
    if (!b) UNIT_DONE();
    hass_head_target tg;
    hass_head_target_of(m, 0, &tg);
    hass_head *h = hass_head_random(&tg, 1, 42, &e);
    compare(b, h, &(hass_sampler){0.f, 0, 1.f}, "batched_eq_alone_T0", 0);
    compare(b, h, &(hass_sampler){1.2f, 0, 0.95f}, "batched_eq_alone_T1.2", 1);
    hass_head_free(h);
    hass_backend_free(b);
    hass_model_free(m);
    UNIT_DONE();
}
