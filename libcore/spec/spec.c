// spec.c: speculative decode loop: prefill, draft tree, one target tree pass, acceptance, KV
// compaction, feature feedback; plus the --tree auto budget from a measured cost profile.
#include "spec.h"
#include "spec_auto.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUTO_EVERY 4     // re-choose every this many cycles
#define AUTO_EXPLORE 16  // first re-exploration with the largest tree (then at doubling gaps)
#define AUTO_WINDOW 32   // --tree auto: pairs kept for the drafter while decoding plainly
#define AUTO_COST_CAP 4.0 // --tree auto considers trees whose verify costs at most this many steps

// The output side of one generation: the stop rules, where kept tokens go, the callback.
typedef struct gen_out {
    hass_stop st;
    int32_t *out;       // (capacity, see hass_spec_generate) kept tokens
    float *margins;     // (same) their steps' top1 - top2 logit, or NULL
    int n_out;
    hass_spec_emit emit;
    void *ud;
    int halted;         // emit asked to stop
} gen_out;

// What the next target forward is (hass_spec_prepare), for hass_spec_complete.
enum { BLK_PROMPT, BLK_PLAIN, BLK_TREE };
// Where a generation is: not begun, the prompt's forward next, cycles, ended.
enum { PH_IDLE, PH_PROMPT, PH_CYCLE, PH_DONE };

struct hass_spec {
    hass_backend *b;      // the target (borrowed, or owned when own_b)
    int own_b;            // made by hass_spec_new (the CPU backend)
    hass_seq *kv;         // owned
    hass_drafter dr;      // drafter (valid when has_dr)
    int has_dr;
    hass_spec_cfg cfg;
    int n_ctx, V, C;
    hass_tree *t_max;     // tree for the fixed/largest configuration
    hass_tree *t_cur;     // tree for the current auto configuration (may equal t_max)
    hass_tree *t_root;    // a one-node tree (plain decoding step)
    hass_tree_cfg cur;    // current budget
    float *logits;        // (max(n_total, 1), V)
    float *feats;         // (max(n_ctx, n_total), C)
    float *gath;          // (levels + 1, C) features of the accepted path
    float *probs;         // (V)
    int32_t *nxt;         // (n_ctx) next tokens for the drafter
    int32_t *pos;         // (n_total) positions of tree nodes
    hass_rng rng;
    hass_spec_cycle *cycles;
    int cap_cycles;
    hass_auto au;         // --tree auto's cost and acceptance model (spec_auto.h)
    int cycle_no;         // cycles since hass_spec_new (for exploration)
    int just_explored;    // the last cycle ran the exploration tree
    // --tree auto while decoding plainly: the pairs the drafter has not seen, the last
    // AUTO_WINDOW of them (a ring); stale = older ones were dropped (the drafter restarts
    // from the window, so a plain stretch costs no catch-up of its own)
    float *ring_f;        // (AUTO_WINDOW, C)
    int32_t *ring_t;      // (AUTO_WINDOW)
    int ring_n, ring_head, ring_stale;
    int droppable;        // a failed drafter call drops the drafter (hass_spec_set_droppable)
    int dr_lost;          // it was dropped: the rest of this generation is plain
    // the generation in progress (hass_spec_begin .. hass_spec_end)
    int phase;            // PH_*
    gen_out g;            // its output side
    hass_spec_stats sx;   // its statistics so far
    const int32_t *prompt; // (n_prompt) borrowed
    int n_prompt, last;   // last: the prompt's row that gets logits
    double t_start, c1;   // when it began; process CPU time after the prefill
    int32_t root;         // the token the next cycle starts from
    int kind;             // the block prepared: BLK_*
    hass_tree *t;         // its tree (BLK_TREE)
    int lazy;             // its logits come row by row during acceptance (node_row)
    double t_prep, t_drafted; // when its preparation began, when its tree was drafted
    const float *lg;      // the logits of the last forward (hass_spec_block.logits)
};

// Vtable glue of the in-process drafter.
static hass_err local_reset(void *ctx) { hass_draft_reset(ctx); return HASS_OK; }
static hass_err local_push(void *ctx, const float *f, const int32_t *t, int m) {
    return hass_draft_push(ctx, f, t, m);
}
static hass_err local_tree(void *ctx, int32_t root, hass_tree *t) { return hass_draft_tree(ctx, root, t); }

// The in-process drafter.
hass_drafter hass_drafter_local(hass_draft *d) {
    hass_drafter x = {d, local_reset, local_push, local_tree};
    return x;
}

// Free a decoder.
void hass_spec_free(hass_spec *s) {
    if (!s) return;
    hass_seq_free(s->kv);
    if (s->own_b) hass_backend_free(s->b);
    if (s->t_cur != s->t_max) hass_tree_free(s->t_cur);
    hass_tree_free(s->t_max);
    hass_tree_free(s->t_root);
    free(s->logits); free(s->feats); free(s->gath); free(s->probs); free(s->nxt); free(s->pos);
    free(s->cycles);
    free(s->ring_f); free(s->ring_t);
    free(s);
}

// Median of three numbers.
static double med3(double a, double b, double c) {
    if (a > b) { double t = a; a = b; b = t; }
    if (b > c) b = c;
    return a > b ? a : b;
}

#define MEASURE_CTX 32 // dummy context of the start measurements

// The dummy context's tokens: tok[i] = (i * 7 + 1) % V.
static void dummy_tokens(const hass_spec *s, int32_t *tok, int n) {
    for (int i = 0; i < n; i++) tok[i] = (int32_t)((i * 7 + 1) % s->V);
}

// Time target forwards of 1, 2, 4, ... tokens after a short context, and the LM head per row;
// when it measured (s->au.curve_n > 0) the context's features stay in s->feats (rows 0 ..
// MEASURE_CTX-1) for measure_draft.
static hass_err measure_curve(hass_spec *s) {
    enum { CTX = MEASURE_CTX };
    int nmax = s->cfg.tree.n_total;
    if (CTX + nmax + 1 > s->n_ctx) return HASS_OK; // context too small to measure: no curve
    int32_t *tok = malloc(sizeof(int32_t) * (CTX + nmax));
    if (!tok) return hass_seterr(HASS_ENOMEM, "spec: out of memory");
    dummy_tokens(s, tok, CTX + nmax);
    hass_seq_truncate(s->kv, 0);
    hass_err e = hass_seq_forward(s->kv, tok, NULL, CTX, NULL, NULL, s->feats);
    if (e) { free(tok); return e; }
    s->au.curve_n = 0;
    for (int n = 1; s->au.curve_n < HASS_AUTO_CURVE; n *= 2) {
        if (n > nmax) n = nmax;
        double t[3];
        for (int r = 0; r < 3; r++) {
            double t0 = hass_now();
            e = hass_seq_forward(s->kv, tok + CTX, NULL, n, NULL, NULL, s->feats + (size_t)CTX * s->C);
            t[r] = (hass_now() - t0) * 1e3;
            hass_seq_truncate(s->kv, CTX);
            if (e) { free(tok); return e; }
        }
        s->au.curve_tok[s->au.curve_n] = n;
        s->au.curve_ms[s->au.curve_n++] = med3(t[0], t[1], t[2]);
        // on a CPU a tree costs about its size in steps: stop past the affordable ones
        if (s->au.curve_ms[s->au.curve_n - 1] <= AUTO_COST_CAP * s->au.curve_ms[0]) s->au.n_cap = n;
        else break;
        if (n == nmax) break;
    }
    if (s->au.n_cap < 2) s->au.n_cap = 2;
    free(tok);
    double t[3], t1[3];
    int k = s->cfg.tree.top_k > 1 ? s->cfg.tree.top_k : 2;
    for (int r = 0; r < 3; r++) {
        double t0 = hass_now();
        e = hass_backend_lm_head(s->b, s->feats, k, s->logits);
        double t_mid = hass_now();
        if (!e) e = hass_backend_lm_head(s->b, s->feats, 1, s->logits);
        t[r] = (t_mid - t0) * 1e3 / k;
        t1[r] = (hass_now() - t_mid) * 1e3;
        if (e) return e;
    }
    s->au.rowk_ms = med3(t[0], t[1], t[2]);
    s->au.row1_ms = med3(t1[0], t1[1], t1[2]);
    double lm_row_ms = s->au.rowk_ms * 1.3; // until the drafter is timed: a row costs an LM-head row
    s->au.dr_c0 = lm_row_ms, s->au.dr_lvl = 0.0, s->au.dr_row = lm_row_ms, s->au.dr_scale = 1.0;
    hass_seq_truncate(s->kv, 0);
    return HASS_OK;
}

// Median time of drafting tree t from root (ms), three tries.
static hass_err time_tree(hass_spec *s, int32_t root, hass_tree *t, double *ms) {
    double v[3];
    for (int r = 0; r < 3; r++) {
        double t0 = hass_now();
        hass_err e = s->dr.tree(s->dr.ctx, root, t);
        if (e) return e;
        v[r] = (hass_now() - t0) * 1e3;
    }
    *ms = med3(v[0], v[1], v[2]);
    return HASS_OK;
}

// Time the drafter on a short dummy context: a one-level tree (c0), a 3-level chain and a
// 3-level tree of top-k Kx give the cost per expansion level and per beam row (on a CPU a row
// costs the most; on a GPU, where the rows of a level run together, the level does).
static hass_err measure_draft(hass_spec *s) {
    enum { CTX = MEASURE_CTX };
    const hass_tree_cfg *mx = &s->cfg.tree;
    int Kx = mx->top_k < 4 ? mx->top_k : 4;
    if (mx->levels < 3 || Kx < 2 || CTX + 1 > s->n_ctx) return HASS_OK; // keep the LM-head model
    int32_t tok[CTX], nxt[CTX];
    dummy_tokens(s, tok, CTX);
    for (int i = 0; i < CTX; i++) nxt[i] = (int32_t)(((i + 1) * 7 + 1) % s->V);
    hass_err e = HASS_OK;
    if (!s->au.curve_n) { // measure_curve did not measure: the context's features
        hass_seq_truncate(s->kv, 0);
        e = hass_seq_forward(s->kv, tok, NULL, CTX, NULL, NULL, s->feats);
    }
    if (!e) e = s->dr.reset(s->dr.ctx);
    if (!e) e = s->dr.push(s->dr.ctx, s->feats, nxt, CTX);
    hass_tree_cfg cf[3] = {{1 + Kx, 1, Kx}, {4, 3, 1}, {1 + Kx + 2 * Kx, 3, Kx}};
    double ms[3];
    for (int i = 0; i < 3 && !e; i++) {
        hass_tree *t = hass_tree_new(&cf[i], &e);
        if (!t) break;
        e = time_tree(s, nxt[CTX - 1], t, &ms[i]);
        hass_tree_free(t);
    }
    hass_seq_truncate(s->kv, 0);
    if (!e) e = s->dr.reset(s->dr.ctx);
    if (e) return e;
    double row = (ms[2] - ms[1]) / (2.0 * (Kx - 1)), lvl = (ms[1] - ms[0]) / 2.0 - row;
    s->au.dr_c0 = ms[0];
    s->au.dr_row = row > 0.0 ? row : 0.0;
    s->au.dr_lvl = lvl > 0.0 ? lvl : 0.0;
    HASS_INFO("tree auto: draft %.2f ms + %.3f ms per level + %.3f ms per row", s->au.dr_c0, s->au.dr_lvl,
              s->au.dr_row);
    return HASS_OK;
}

#define COST_CACHE_VERSION 1

// A finite number >= 0 from a JSON value, or -1 (every valid field is >= 0).
static double cache_num(json_t *v) {
    double x = json_is_number(v) ? json_number_value(v) : -1.0;
    return isfinite(x) && x >= 0.0 ? x : -1.0;
}

// Fill the start measurements from the cost cache file; 0 (nothing changed) when it is missing
// or anything in it is off (then it is measured and rewritten).
static int cache_load(hass_spec *s, const char *path) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) { // a missing file is the first run; anything else is worth a word
        if (access(path, F_OK) == 0)
            HASS_INFO("tree auto: %s does not hold valid costs (%s); measuring", path, je.text);
        return 0;
    }
    hass_auto a = s->au;
    json_t *cv = json_object_get(o, "curve");
    int ok = json_integer_value(json_object_get(o, "version")) == COST_CACHE_VERSION &&
             json_is_array(cv) && json_array_size(cv) >= 1 && json_array_size(cv) <= HASS_AUTO_CURVE;
    a.curve_n = ok ? (int)json_array_size(cv) : 0;
    for (int i = 0; ok && i < a.curve_n; i++) {
        json_t *pt = json_array_get(cv, (size_t)i);
        json_t *tk = json_array_get(pt, 0);
        a.curve_tok[i] = json_is_integer(tk) ? (int)json_integer_value(tk) : 0;
        a.curve_ms[i] = cache_num(json_array_get(pt, 1));
        ok = a.curve_tok[i] > (i ? a.curve_tok[i - 1] : 0) && a.curve_tok[i] <= s->cfg.tree.n_total &&
             a.curve_ms[i] > 0.0;
    }
    json_t *cap = json_object_get(o, "n_cap");
    a.n_cap = json_is_integer(cap) ? (int)json_integer_value(cap) : 0;
    a.row1_ms = cache_num(json_object_get(o, "row1_ms"));
    a.rowk_ms = cache_num(json_object_get(o, "rowk_ms"));
    a.dr_c0 = cache_num(json_object_get(o, "draft_ms"));
    a.dr_lvl = cache_num(json_object_get(o, "draft_level_ms"));
    a.dr_row = cache_num(json_object_get(o, "draft_row_ms"));
    ok = ok && a.n_cap >= 2 && a.n_cap <= s->cfg.tree.n_total && a.row1_ms >= 0 && a.rowk_ms >= 0 &&
         a.dr_c0 >= 0 && a.dr_lvl >= 0 && a.dr_row >= 0;
    json_decref(o);
    if (!ok) {
        HASS_INFO("tree auto: %s does not hold valid costs; measuring", path);
        return 0;
    }
    s->au = a; // dr_scale stays hass_auto_init's 1
    return 1;
}

// Write the start measurements to the cost cache file (a temporary file renamed over it, so a
// concurrent reader sees the old or the new whole); a failure only costs the next run a
// measurement, so it is reported at -v and otherwise ignored.
static void cache_save(const hass_spec *s, const char *path) {
    const hass_auto *a = &s->au;
    json_t *cv = json_array();
    for (int i = 0; i < a->curve_n; i++)
        json_array_append_new(cv, json_pack("[i,f]", a->curve_tok[i], a->curve_ms[i]));
    json_t *o = json_pack("{s:i,s:o,s:i,s:f,s:f,s:f,s:f,s:f}", "version", COST_CACHE_VERSION,
                          "curve", cv, "n_cap", a->n_cap, "row1_ms", a->row1_ms, "rowk_ms",
                          a->rowk_ms, "draft_ms", a->dr_c0, "draft_level_ms", a->dr_lvl,
                          "draft_row_ms", a->dr_row);
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    int ok = o && tmp;
    if (ok) {
        snprintf(tmp, n, "%s.%ld.tmp", path, (long)getpid());
        ok = json_dump_file(o, tmp, JSON_COMPACT | JSON_REAL_PRECISION(17)) == 0 &&
             rename(tmp, path) == 0;
        if (!ok) remove(tmp);
    }
    if (ok) HASS_INFO("tree auto: costs saved to %s", path);
    else HASS_INFO("tree auto: could not save the costs to %s", path);
    free(tmp);
    json_decref(o);
}

// Re-choose the budget, saying so when it changes.
static void choose_tree(hass_spec *s) {
    double rate;
    hass_tree_cfg pick = hass_auto_choose(&s->au, &rate);
    if (pick.n_total != s->cur.n_total || pick.levels != s->cur.levels || pick.top_k != s->cur.top_k)
        HASS_INFO("tree auto: total %d depth %d top-k %d (expected %.1f tokens/s)", pick.n_total,
                  pick.levels, pick.top_k, rate * 1e3);
    s->cur = pick;
}

// Acceptance's row provider: node u's logits from its features, on demand.
static hass_err node_row(void *ctx, int u, int V, const float **row) {
    hass_spec *s = ctx;
    float *dst = s->logits + (size_t)u * V;
    *row = dst;
    return hass_backend_lm_head(s->b, s->feats + (size_t)u * s->C, 1, dst);
}

// A decoder on the CPU backend (see spec.h).
hass_spec *hass_spec_new(hass_model *m, const hass_drafter *dr, const hass_spec_cfg *cfg,
                         hass_err *err) {
    hass_err e;
    hass_backend *b = hass_backend_cpu(m, &e);
    hass_spec *s = b ? hass_spec_new_on(b, dr, cfg, &e) : NULL;
    if (!s) {
        hass_backend_free(b);
        if (err) *err = e;
        return NULL;
    }
    s->own_b = 1;
    return s;
}

// A decoder on a backend (see spec.h).
hass_spec *hass_spec_new_on(hass_backend *b, const hass_drafter *dr, const hass_spec_cfg *cfg,
                            hass_err *err) {
    return hass_spec_new_shared(b, dr, cfg, NULL, err);
}

// --tree auto's start: the costs copied from another decoder's (costs_from, when it measured),
// read from the cost cache, or measured (then cached); the candidate budgets.
static hass_err auto_start(hass_spec *s, const hass_spec *costs_from) {
    const hass_spec_cfg *cfg = &s->cfg;
    if (costs_from && costs_from->au.curve_n) {
        s->au = costs_from->au; // before any cycle: the measurements and the candidates only
        return HASS_OK;
    }
    if (cfg->cost_cache && cache_load(s, cfg->cost_cache)) {
        HASS_INFO("tree auto: costs from %s", cfg->cost_cache);
    } else {
        hass_err e = measure_curve(s);
        if (!e) e = measure_draft(s);
        if (e) return e;
        if (cfg->cost_cache && s->au.curve_n) cache_save(s, cfg->cost_cache);
    }
    hass_auto_candidates(&s->au, &s->cfg.tree);
    for (int i = 0; i < s->au.curve_n; i++)
        HASS_INFO("tree auto: verify %d tokens %.2f ms", s->au.curve_tok[i], s->au.curve_ms[i]);
    return HASS_OK;
}

// A decoder on a backend, --tree auto's costs possibly from another one (see spec.h).
hass_spec *hass_spec_new_shared(hass_backend *b, const hass_drafter *dr, const hass_spec_cfg *cfg,
                                const hass_spec *costs_from, hass_err *err) {
    hass_err e = hass_tree_cfg_check(&cfg->tree);
    if (e) { if (err) *err = e; return NULL; }
    hass_spec *s = calloc(1, sizeof(*s));
    if (!s) { if (err) *err = hass_seterr(HASS_ENOMEM, "spec: out of memory"); return NULL; }
    s->b = b;
    s->cfg = *cfg;
    s->V = b->n_vocab;
    s->C = b->n_embd;
    if (dr) { s->dr = *dr; s->has_dr = 1; }
    hass_auto_init(&s->au);
    int N = cfg->tree.n_total;
    s->kv = hass_seq_new(b, cfg->n_ctx, N > 64 ? N : 64, &e);
    if (!s->kv) goto fail;
    s->n_ctx = hass_seq_capacity(s->kv);
    hass_tree_cfg one = {1, 1, 1};
    s->t_max = hass_tree_new(&cfg->tree, &e);
    s->t_root = hass_tree_new(&one, &e);
    if (!s->t_max || !s->t_root) goto fail;
    s->t_cur = s->t_max;
    s->cur = cfg->tree;
    int nf = s->n_ctx > N ? s->n_ctx : N;
    s->logits = malloc(sizeof(float) * (size_t)(N > 64 ? N : 64) * s->V);
    s->feats = calloc((size_t)nf, sizeof(float) * s->C);
    s->gath = malloc(sizeof(float) * (size_t)(cfg->tree.levels + 1) * s->C);
    s->probs = malloc(sizeof(float) * s->V);
    s->nxt = malloc(sizeof(int32_t) * (size_t)s->n_ctx);
    s->pos = malloc(sizeof(int32_t) * N);
    s->ring_f = malloc(sizeof(float) * AUTO_WINDOW * s->C);
    s->ring_t = malloc(sizeof(int32_t) * AUTO_WINDOW);
    if (!s->logits || !s->feats || !s->gath || !s->probs || !s->nxt || !s->pos || !s->ring_f ||
        !s->ring_t) {
        e = hass_seterr(HASS_ENOMEM, "spec: out of memory");
        goto fail;
    }
    if ((e = hass_seq_reserve(s->kv, N > 64 ? N : 64))) goto fail;
    if (cfg->tree_auto && s->has_dr && (e = auto_start(s, costs_from))) goto fail;
    return s;
fail:
    hass_spec_free(s);
    if (err) *err = e;
    return NULL;
}

// Sampler of later calls.
void hass_spec_set_sampler(hass_spec *s, const hass_sampler *smp) { s->cfg.sampler = *smp; }

// Seed of later calls.
void hass_spec_set_seed(hass_spec *s, uint64_t seed) { s->cfg.seed = seed; }

// Current budget.
hass_tree_cfg hass_spec_current_tree(const hass_spec *s) { return s->cur; }

// Measured curve.
int hass_spec_cost_curve(const hass_spec *s, const int **n_tok, const double **ms) {
    *n_tok = s->au.curve_tok;
    *ms = s->au.curve_ms;
    return s->au.curve_n;
}

// Make sure a tree object for the current budget exists.
static hass_err cur_tree(hass_spec *s, hass_tree **out) {
    const hass_tree_cfg *c = &s->cur;
    if (c->n_total <= 1) { *out = s->t_root; return HASS_OK; }
    hass_tree *t = s->t_cur;
    if (t->cfg.n_total != c->n_total || t->cfg.levels != c->levels || t->cfg.top_k != c->top_k) {
        if (t != s->t_max) hass_tree_free(t);
        const hass_tree_cfg *mc = &s->cfg.tree;
        if (mc->n_total == c->n_total && mc->levels == c->levels && mc->top_k == c->top_k) t = s->t_max;
        else {
            hass_err e;
            t = hass_tree_new(c, &e);
            if (!t) { s->t_cur = s->t_max; return e; }
        }
        s->t_cur = t;
    }
    *out = t;
    return HASS_OK;
}

// Keep m committed pairs (features, next tokens) for the drafter in the ring, the oldest
// dropped past AUTO_WINDOW (pairs that would be dropped at once are not copied).
static void ring_put(hass_spec *s, const float *f, const int32_t *tok, int m) {
    if (m > AUTO_WINDOW) {
        f += (size_t)(m - AUTO_WINDOW) * s->C, tok += m - AUTO_WINDOW, m = AUTO_WINDOW;
        s->ring_stale = 1;
    }
    for (int i = 0; i < m; i++) {
        int slot = (s->ring_head + s->ring_n) % AUTO_WINDOW;
        if (s->ring_n == AUTO_WINDOW) { // full: drop the oldest
            s->ring_head = (s->ring_head + 1) % AUTO_WINDOW;
            s->ring_stale = 1;
        } else {
            s->ring_n++;
        }
        memcpy(s->ring_f + (size_t)slot * s->C, f + (size_t)i * s->C, sizeof(float) * s->C);
        s->ring_t[slot] = tok[i];
    }
}

// Hand the ring's pairs to the drafter before it drafts, in order (at most two contiguous
// runs): all of them when none was dropped (the drafter's state is then exactly as if fed every
// cycle), else restart it from the window.
static hass_err ring_sync(hass_spec *s) {
    hass_err e = HASS_OK;
    if (s->ring_stale) e = s->dr.reset(s->dr.ctx);
    for (int done = 0; !e && done < s->ring_n;) {
        int slot = (s->ring_head + done) % AUTO_WINDOW;
        int run = AUTO_WINDOW - slot < s->ring_n - done ? AUTO_WINDOW - slot : s->ring_n - done;
        e = s->dr.push(s->dr.ctx, s->ring_f + (size_t)slot * s->C, &s->ring_t[slot], run);
        done += run;
    }
    s->ring_n = s->ring_head = s->ring_stale = 0;
    return e;
}

// Offer a step's n tokens (cyc NULL: the root) to the stop rules; the kept ones go to the output
// (with the margin of the last forward's first logits row: a plain step has one token), then to
// emit. Non-zero when the generation ends.
static int take(hass_spec *s, gen_out *g, const int32_t *tok, int n, const hass_spec_cycle *cyc) {
    int n0 = g->n_out;
    for (int i = 0; i < n && g->st.finish == HASS_FINISH_NONE; i++) {
        int keep;
        hass_stop_push(&g->st, tok[i], &keep);
        if (!keep) continue;
        if (g->margins) g->margins[g->n_out] = hass_top2_margin(s->lg, s->V);
        g->out[g->n_out++] = tok[i];
    }
    if (g->emit && g->n_out > n0 && g->emit(g->ud, g->out + n0, g->n_out - n0, cyc)) g->halted = 1;
    return g->halted || g->st.finish != HASS_FINISH_NONE;
}

// Whether the context has no room for another step; the generation then ends with "length".
static int context_full(hass_spec *s, gen_out *g) {
    if (hass_seq_len(s->kv) + 1 <= s->n_ctx) return 0;
    g->st.finish = HASS_FINISH_LENGTH;
    return 1;
}

// The result e of a drafter call; a failure of a droppable drafter drops it for the rest of the
// generation (s->dr_lost): the caller then goes on plainly.
static hass_err dr_call(hass_spec *s, hass_err e) {
    if (e && s->droppable) s->dr_lost = 1;
    return e;
}

// Whether the drafter drafts (there is one, and it was not dropped).
static int drafting(const hass_spec *s) { return s->has_dr && !s->dr_lost; }

// The CPU cache of the decoder's sequence for a batched forward (NULL on another backend).
static hass_kv *block_kv(hass_spec *s) { return hass_seq_cpu_kv(s->kv); }

// Start a request: the prompt's block (the root token is sampled from its last row's logits).
static hass_err prompt_prepare(hass_spec *s, hass_spec_block *blk) {
    hass_err e;
    hass_seq_truncate(s->kv, 0);
    hass_rng_seed(&s->rng, s->cfg.seed);
    s->dr_lost = 0;
    if (s->has_dr && (e = dr_call(s, s->dr.reset(s->dr.ctx))) && !s->dr_lost) return e;
    s->ring_n = s->ring_head = s->ring_stale = 0;
    s->last = s->n_prompt - 1;
    s->kind = BLK_PROMPT;
    *blk = (hass_spec_block){s->kv, block_kv(s), s->prompt, NULL, s->n_prompt, NULL, &s->last, 1,
                             s->logits, s->has_dr ? s->feats : NULL};
    return HASS_OK;
}

// Hand the prompt's pairs (feature i, token i + 1; the root last) to the drafter.
static hass_err feed_prompt(hass_spec *s, const int32_t *prompt, int n_prompt, int32_t root) {
    for (int i = 0; i < n_prompt - 1; i++) s->nxt[i] = prompt[i + 1];
    s->nxt[n_prompt - 1] = root;
    // --tree auto settled on plain decoding: the prompt waits in the ring like plain steps
    if (s->cfg.tree_auto && s->au.curve_n && s->cur.n_total == 1) {
        ring_put(s, s->feats, s->nxt, n_prompt);
        return HASS_OK;
    }
    return s->dr.push(s->dr.ctx, s->feats, s->nxt, n_prompt);
}

// The generation ended: the phase and the CPU time of its cycles.
static void finish_decode(hass_spec *s) {
    s->phase = PH_DONE;
    s->sx.decode_cpu_ms = 1e3 * (hass_cpu_now() - s->c1);
}

// After the prompt's forward: sample the root, offer it to the stop rules, hand the prompt's
// pairs to the drafter.
static hass_err prompt_complete(hass_spec *s) {
    hass_err e;
    int32_t root = hass_sample_token(&s->cfg.sampler, s->lg, s->V, &s->rng, s->probs);
    s->sx.prefill_ms = (hass_now() - s->t_start) * 1e3;
    s->c1 = hass_cpu_now();
    int done = take(s, &s->g, &root, 1, NULL) || context_full(s, &s->g);
    if (!done && drafting(s) && (e = dr_call(s, feed_prompt(s, s->prompt, s->n_prompt, root))) &&
        !s->dr_lost)
        return e;
    s->root = root;
    s->phase = PH_CYCLE;
    if (done) finish_decode(s);
    return HASS_OK;
}

// The cycle record n (the array grows as needed); NULL when out of memory.
static hass_spec_cycle *cycle_slot(hass_spec *s, int n) {
    if (n >= s->cap_cycles) {
        int nc = s->cap_cycles ? 2 * s->cap_cycles : 64;
        hass_spec_cycle *p = realloc(s->cycles, sizeof(*p) * (size_t)nc);
        if (!p) return NULL;
        s->cycles = p;
        s->cap_cycles = nc;
    }
    return &s->cycles[n];
}

// One step without a drafter: the root alone through the target (its next token is sampled from
// its logits on the host: plain_complete).
static void plain_prepare(hass_spec *s, hass_spec_block *blk) {
    s->t_prep = hass_now();
    s->kind = BLK_PLAIN;
    *blk = (hass_spec_block){s->kv, block_kv(s), &s->root, NULL, 1, NULL, NULL, 0, s->logits, NULL};
}

// The plain step's next token, sampled from the root's logits (exactly plain sampling's
// arithmetic and RNG use).
static void plain_complete(hass_spec *s, hass_spec_cycle *cy, hass_accept_result *r) {
    int32_t id = hass_sample_token(&s->cfg.sampler, s->lg, s->V, &s->rng, s->probs);
    r->n_acc = 0;
    r->path[0] = 0;
    r->tokens[0] = r->bonus = id;
    r->n_tokens = 1;
    *cy = (hass_spec_cycle){0, 1, 0, 1, 1, 1, 0.0, (hass_now() - s->t_prep) * 1e3};
}

// --tree auto: this cycle's budget; explore with the deepest affordable tree at cycles 0, 1,
// then 16, 32, 64, ... (doubling gaps, so a head that never pays costs little); re-choose every
// few cycles.
static void pick_budget(hass_spec *s) {
    if (!s->cfg.tree_auto || !s->au.curve_n) return;
    int c = s->cycle_no;
    int explore = c < 2 || (c >= AUTO_EXPLORE && (c & (c - 1)) == 0);
    if (explore) {
        s->cur = hass_auto_explore(&s->au);
        s->just_explored = 1;
    } else if (c % AUTO_EVERY == 0 || s->just_explored) {
        choose_tree(s);
        s->just_explored = 0;
    }
}

// One speculative cycle's block: draft a tree for the root (the root alone when the tree does not
// fit the context or --tree auto chose plain decoding), at positions L0 + depth under its tree
// mask; its logits where acceptance reads them (on the GPU: the device; lazily: node_row).
static hass_err tree_prepare(hass_spec *s, hass_spec_block *blk) {
    int L0 = hass_seq_len(s->kv);
    pick_budget(s);
    s->cycle_no++;
    hass_tree *t = NULL;
    hass_err e = cur_tree(s, &t);
    if (e) return e;
    s->t_prep = hass_now();
    if (t->cfg.n_total > 1 && L0 + t->cfg.n_total > s->n_ctx) t = s->t_root;
    if (t == s->t_root) {
        int32_t par = -1;
        hass_tree_set(t, 1, &s->root, &par);
    } else if ((e = dr_call(s, ring_sync(s))) || (e = dr_call(s, s->dr.tree(s->dr.ctx, s->root, t)))) {
        return e; // before the target's forward: a dropped drafter leaves the cache as it was
    }
    s->t_drafted = hass_now();
    for (int j = 0; j < t->n; j++) s->pos[j] = L0 + t->depth[j];
    int dev = s->b->ops->accept != NULL; // acceptance where the logits are: only features come back
    s->lazy = !dev && hass_auto_lazy_wins(&s->au, t->n, s->au.tok_cycle); // LM head on visited rows
    s->t = t;
    s->kind = BLK_TREE;
    *blk = (hass_spec_block){s->kv, block_kv(s), t->tok, s->pos, t->n, t->mask, NULL, 0,
                             dev || s->lazy ? NULL : s->logits, s->feats};
    return HASS_OK;
}

// After the tree's forward: the acceptance walk into r, the cache compacted to the accepted
// path, --tree auto's counts.
static hass_err tree_complete(hass_spec *s, hass_spec_cycle *cy, hass_accept_result *r) {
    hass_tree *t = s->t;
    hass_err e = HASS_OK;
    if (s->b->ops->accept) e = s->b->ops->accept(s->kv, t, &s->cfg.sampler, &s->rng, r);
    else if (s->lazy) e = hass_accept_sample_rows(t, node_row, s, s->V, &s->cfg.sampler, &s->rng, s->probs, r);
    else hass_accept_sample(t, s->lg, s->V, &s->cfg.sampler, &s->rng, s->probs, r);
    if (e) return e;
    if (t != s->t_root) s->au.tok_cycle = 0.9 * s->au.tok_cycle + 0.1 * (r->n_acc + 1);
    if ((e = hass_seq_commit(s->kv, r->path, r->n_acc + 1))) return e;
    if (s->cfg.tree_auto && t != s->t_root) hass_auto_record(&s->au, t, r);
    double t2 = hass_now();
    *cy = (hass_spec_cycle){r->n_acc, t->n, t->max_depth, t->cfg.n_total, t->cfg.levels,
                            t->cfg.top_k, (s->t_drafted - s->t_prep) * 1e3, (t2 - s->t_drafted) * 1e3};
    if (s->cfg.tree_auto && t != s->t_root && t->n > 1) {
        double q = cy->draft_ms / hass_auto_draft_ms(&s->au, &t->cfg);
        s->au.dr_scale = 0.8 * s->au.dr_scale + 0.2 * (q < 0.25 ? 0.25 : q > 4.0 ? 4.0 : q);
    }
    return HASS_OK;
}

// Hand the accepted path's target features and next tokens to the drafter (while --tree auto
// decodes plainly: to the ring).
static hass_err feed_back(hass_spec *s, const hass_tree *t, const hass_accept_result *r) {
    int C = s->C;
    for (int j = 0; j <= r->n_acc; j++)
        memcpy(s->gath + (size_t)j * C, s->feats + (size_t)r->path[j] * C, sizeof(float) * C);
    if (s->cfg.tree_auto && t == s->t_root) {
        ring_put(s, s->gath, r->tokens, r->n_tokens);
        return HASS_OK;
    }
    return s->dr.push(s->dr.ctx, s->gath, r->tokens, r->n_tokens);
}

// Start a generation (see spec.h).
hass_err hass_spec_begin(hass_spec *s, const int32_t *prompt, int n_prompt,
                         const hass_stop_cfg *stop, int32_t *out, float *margins,
                         hass_spec_emit emit, void *ud) {
    s->t_start = hass_now();
    if (n_prompt < 1) return hass_seterr(HASS_EINVAL, "spec: empty prompt");
    if (n_prompt > s->n_ctx)
        return hass_seterr(HASS_ERANGE, "spec: prompt of %d tokens does not fit the context of %d",
                           n_prompt, s->n_ctx);
    s->g = (gen_out){.out = out, .margins = s->has_dr ? NULL : margins, .emit = emit, .ud = ud};
    hass_stop_init(&s->g.st, stop);
    s->sx = (hass_spec_stats){0};
    s->prompt = prompt;
    s->n_prompt = n_prompt;
    s->phase = stop->max_new > 0 ? PH_PROMPT : PH_DONE;
    if (s->phase == PH_DONE) s->g.st.finish = HASS_FINISH_LENGTH;
    return HASS_OK;
}

// Whether the generation begun has ended.
int hass_spec_done(const hass_spec *s) { return s->phase == PH_DONE; }

// The next forward's block: the prompt, then a cycle's tree or plain step (see spec.h).
hass_err hass_spec_prepare(hass_spec *s, hass_spec_block *blk) {
    if (s->phase == PH_PROMPT) return prompt_prepare(s, blk);
    if (!cycle_slot(s, s->sx.n_cycles)) return hass_seterr(HASS_ENOMEM, "spec: out of memory");
    int dr = drafting(s);
    hass_err e = dr ? tree_prepare(s, blk) : HASS_OK;
    if (!dr || (e && s->dr_lost)) { // no drafter, or it just failed: a plain step
        plain_prepare(s, blk);
        e = HASS_OK;
    }
    return e;
}

// After the block's forward (see spec.h).
hass_err hass_spec_complete(hass_spec *s, const hass_spec_block *blk, hass_err fe) {
    if (fe) return fe;
    s->lg = blk->logits;
    if (s->kind == BLK_PROMPT) return prompt_complete(s);
    hass_spec_cycle *cy = &s->cycles[s->sx.n_cycles];
    hass_accept_result r;
    hass_tree *t = s->kind == BLK_TREE ? s->t : s->t_root;
    hass_err e = HASS_OK;
    if (s->kind == BLK_TREE) e = tree_complete(s, cy, &r);
    else plain_complete(s, cy, &r);
    if (e) return e;
    s->sx.n_cycles++;
    int done = take(s, &s->g, r.tokens, r.n_tokens, cy) || context_full(s, &s->g);
    if (!done && drafting(s) && (e = dr_call(s, feed_back(s, t, &r))) && !s->dr_lost) return e;
    s->root = r.bonus;
    if (done) finish_decode(s);
    return HASS_OK;
}

// End the generation (see spec.h).
int hass_spec_end(hass_spec *s, hass_err e, hass_spec_stats *st) {
    hass_stop_free(&s->g.st);
    s->phase = PH_IDLE;
    if (e) return e;
    if (st) {
        *st = s->sx;
        st->n_gen = s->g.n_out;
        st->total_ms = (hass_now() - s->t_start) * 1e3;
        st->cycles = s->cycles;
        st->finish = s->g.st.finish;
        st->stop_idx = s->g.st.stop_idx;
    }
    return s->g.n_out;
}

// One block through the decoder's own sequence.
static hass_err forward_block(const hass_spec_block *k) {
    if (!k->rows) return hass_seq_forward(k->seq, k->tok, k->pos, k->n, k->mask, k->logits, k->feats);
    return hass_seq_forward_rows(k->seq, k->tok, k->pos, k->n, k->mask, k->rows, k->n_rows,
                                 k->logits, k->feats);
}

// The decode loop (see spec.h): prefill, then one cycle after another until the stop rules or
// the context end the generation.
int hass_spec_generate(hass_spec *s, const int32_t *prompt, int n_prompt, const hass_stop_cfg *stop,
                       int32_t *out, float *margins, hass_spec_stats *st, hass_spec_emit emit,
                       void *ud) {
    hass_err e = hass_spec_begin(s, prompt, n_prompt, stop, out, margins, emit, ud);
    if (e) return e;
    while (!e && !hass_spec_done(s)) {
        hass_spec_block blk;
        if (!(e = hass_spec_prepare(s, &blk))) e = hass_spec_complete(s, &blk, forward_block(&blk));
    }
    return hass_spec_end(s, e, st);
}

// One-off work of the first forwards, done now (see spec.h): a prefill of 8 dummy tokens and one
// decode step.
hass_err hass_spec_warm_up(hass_spec *s) {
    enum { N = 8 };
    if (s->n_ctx < N + 1) return HASS_OK;
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)(i % s->V);
    int last = N - 1;
    hass_err e = hass_seq_forward_rows(s->kv, tok, NULL, N, NULL, &last, 1, s->logits, NULL);
    if (!e) e = hass_seq_forward(s->kv, tok, NULL, 1, NULL, s->logits, NULL);
    hass_seq_truncate(s->kv, 0);
    return e;
}

// Whether a failed drafter call drops the drafter.
void hass_spec_set_droppable(hass_spec *s, int on) { s->droppable = on; }

// Whether there is a drafter.
int hass_spec_has_drafter(const hass_spec *s) { return s->has_dr; }

// Context capacity.
int hass_spec_ctx(const hass_spec *s) { return s->n_ctx; }

// Per-cycle and per-request metrics as JSONL (see spec.h).
hass_err hass_spec_metrics_write(FILE *f, const void *id_json, const hass_spec_stats *st) {
    json_t *id = (json_t *)id_json;
    for (int i = 0; i < st->n_cycles; i++) {
        const hass_spec_cycle *c = &st->cycles[i];
        json_t *o = json_object();
        if (id) json_object_set(o, "id", id);
        json_object_set_new(o, "type", json_string("cycle"));
        json_object_set_new(o, "accepted", json_integer(c->n_acc));
        json_object_set_new(o, "tree", json_integer(c->tree_n));
        json_object_set_new(o, "depth", json_integer(c->tree_depth));
        json_object_set_new(o, "budget", json_pack("[iii]", c->cfg_total, c->cfg_levels, c->cfg_top_k));
        json_object_set_new(o, "draft_ms", json_real(round(c->draft_ms * 1e3) / 1e3));
        json_object_set_new(o, "verify_ms", json_real(round(c->verify_ms * 1e3) / 1e3));
        char *line = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        int bad = !line || fprintf(f, "%s\n", line) < 0;
        free(line);
        if (bad) return hass_seterr(HASS_EIO, "metrics: write failed");
    }
    json_t *o = json_object();
    if (id) json_object_set(o, "id", id);
    json_object_set_new(o, "type", json_string("request"));
    json_object_set_new(o, "generated", json_integer(st->n_gen));
    json_object_set_new(o, "cycles", json_integer(st->n_cycles));
    json_object_set_new(o, "prefill_ms", json_real(round(st->prefill_ms * 1e3) / 1e3));
    json_object_set_new(o, "total_ms", json_real(round(st->total_ms * 1e3) / 1e3));
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int bad = !line || fprintf(f, "%s\n", line) < 0 || fflush(f) != 0;
    free(line);
    return bad ? hass_seterr(HASS_EIO, "metrics: write failed") : HASS_OK;
}
