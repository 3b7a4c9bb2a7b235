// test_spec.c: speculative decoding is lossless.
//  - T = 0: for stories260K (and SmolLM2 when models/ has it) with random heads and several tree
//    budgets, every prompt's speculative output equals plain greedy decoding through the same
//    engine token for token; a failure names the first differing position.
//  - T > 0: with fixed seeds, the tokens generated after the root follow the target's exact
//    processed distribution (chi-square), with an oracle drafter that proposes the target's own
//    top-K (so deep acceptance, rejections and leaf bonuses all happen) and with a random head;
//    the same test fails when the residual renormalisation or the bonus processor is broken.
//  - AR through the loop (no drafter) equals plain sampling at T > 0 too; --tree auto stays
//    lossless; a drafter that fails mid-run gives an error, never a hang.
#include "chi2.h"
#include "spec.h"
#include "unit.h"

#include <unistd.h>

// Stop rules of a run that ends only by length (or the context).
#define UPTO(n) (&(hass_stop_cfg){.max_new = (n)})

static int32_t PROMPTS[4][6] = {{1, 403, 407, 261, 378, 432}, {1, 300}, {1}, {1, 260, 270, 280, 290, 300}};
static int PROMPT_N[4] = {6, 2, 1, 6};

// Compare spec output with plain greedy; returns the first differing position or -1.
static int first_diff(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = na < nb ? na : nb;
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return i;
    return na == nb ? -1 : n;
}

static int g_quant; // lossless_greedy: the drafter's layer in Q8_0 (hass_draft_quantize)

// T = 0 losslessness for one model and head over the prompts and tree budgets.
static void lossless_greedy(const char *label, hass_model *m, const hass_head *h,
                            const hass_tree_cfg *trees, int n_trees, int32_t (*prompts)[6],
                            const int *pn, int n_prompts, int n_new, int tree_auto) {
    hass_err e;
    hass_kv *kv = hass_kv_new(m, 0, &e);
    int32_t *ref = malloc(sizeof(int32_t) * n_new), *got = malloc(sizeof(int32_t) * n_new);
    for (int ti = 0; ti < n_trees; ti++) {
        hass_draft *d = hass_draft_new(h, m, 0, &trees[ti], &e);
        if (d && g_quant && hass_draft_quantize(d)) hass_draft_free(d), d = NULL;
        hass_drafter dr = hass_drafter_local(d);
        hass_spec_cfg sc = {trees[ti], tree_auto, {0.f, 0, 1.f}, 1, 0, NULL};
        hass_spec *s = d ? hass_spec_new(m, &dr, &sc, &e) : NULL;
        char name[160];
        snprintf(name, sizeof name, "%s_greedy_lossless_tree%d_%d_%d%s%s", label, trees[ti].n_total,
                 trees[ti].levels, trees[ti].top_k, tree_auto ? "_auto" : "", g_quant ? "_q8" : "");
        if (!s) {
            CHECK(name, 0, "setup: %s", hass_errmsg());
            hass_draft_free(d);
            continue;
        }
        int ok = 1, cycles = 0, acc = 0;
        char why[200] = "";
        for (int p = 0; p < n_prompts && ok; p++) {
            hass_sample_cfg g = {0.f, 1.f, 0, 0};
            int nr = hass_generate(m, kv, prompts[p], pn[p], n_new, &g, -1, ref, NULL);
            hass_spec_stats st;
            int ng =
                hass_spec_generate(s, prompts[p], pn[p], UPTO(n_new), got, NULL, &st, NULL, NULL);
            int at = first_diff(ref, nr, got, ng);
            if (nr < 0 || ng < 0 || at >= 0) {
                ok = 0;
                snprintf(why, sizeof why, "prompt %d: first difference at position %d (plain %d, spec %d; n %d vs %d) %s",
                         p, at, at >= 0 && at < nr ? ref[at] : -1, at >= 0 && at < ng ? got[at] : -1,
                         nr, ng, ng < 0 ? hass_errmsg() : "");
            }
            cycles += st.n_cycles;
            for (int c = 0; c < st.n_cycles; c++) acc += st.cycles[c].n_acc;
        }
        CHECK(name, ok, "%s", why);
        printf("# %s: %d cycles, %d accepted drafts\n", name, cycles, acc);
        hass_spec_free(s);
        hass_draft_free(d);
    }
    free(ref);
    free(got);
    hass_kv_free(kv);
}

// --tree auto over long plain stretches: the drafter is fed only the last window of pairs and
// restarted from it before an exploration; the output must still equal plain decoding, and at
// least one exploration must have come after such a restart (more than 32 plain cycles). The
// last request's 60-token prompt goes into the ring whole (more pairs than it keeps).
static void auto_window(hass_model *m, const hass_head *h, int32_t (*prompts)[6], const int *pn) {
    hass_err e;
    hass_tree_cfg tc = {60, 6, 10};
    hass_draft *d = hass_draft_new(h, m, 0, &tc, &e);
    hass_drafter dr = hass_drafter_local(d);
    hass_spec_cfg sc = {tc, 1, {0.f, 0, 1.f}, 1, 0, NULL};
    hass_spec *s = d ? hass_spec_new(m, &dr, &sc, &e) : NULL;
    hass_kv *kv = hass_kv_new(m, 0, &e);
    enum { N_NEW = 200 };
    int32_t ref[N_NEW], got[N_NEW];
    int ok = s && kv, restarts = 0;
    int32_t longp[60];
    for (int i = 0; i < 60; i++) longp[i] = i ? (int32_t)((i * 37 + 11) % 512) : 1;
    for (int p = 0; ok && p < 4; p++) {
        const int32_t *pr = p < 3 ? prompts[p] : longp;
        int np = p < 3 ? pn[p] : 60;
        hass_sample_cfg g = {0.f, 1.f, 0, 0};
        int nr = hass_generate(m, kv, pr, np, N_NEW, &g, -1, ref, NULL);
        hass_spec_stats st;
        int ng = hass_spec_generate(s, pr, np, UPTO(N_NEW), got, NULL, &st, NULL, NULL);
        if (nr < 0 || ng != nr || first_diff(ref, nr, got, ng) >= 0) ok = 0;
        for (int c = 0, plain = 0; ok && c < st.n_cycles; c++) {
            if (st.cycles[c].tree_n > 1 && plain > 32) restarts++;
            plain = st.cycles[c].tree_n > 1 ? 0 : plain + 1;
        }
    }
    CHECK("spec_auto_window_lossless", ok, "spec output differs from plain decoding (%s)",
          hass_errmsg());
    CHECK("spec_auto_window_exercised", restarts > 0, "no exploration after a long plain stretch");
    hass_kv_free(kv);
    hass_spec_free(s);
    hass_draft_free(d);
}

// --tree auto's cost cache: the first decoder measures and writes the file, the next one takes
// the same costs from it (the curve to the bit); a corrupt file, or one whose curve goes past
// the tree's size, is measured over and rewritten; and the output is plain decoding's either way.
static hass_spec *cached_spec(hass_model *m, hass_drafter *dr, const char *path, int total) {
    hass_err e;
    hass_spec_cfg sc = {{total, total > 6 ? 6 : total - 1, total > 6 ? 10 : 2}, 1, {0.f, 0, 1.f}, 1, 0, path};
    return hass_spec_new(m, dr, &sc, &e);
}

// Whether the file holds a valid cache (version 1, a curve).
static int cache_ok(const char *path) {
    FILE *f = fopen(path, "r");
    char buf[2048] = {0};
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    return n > 0 && strstr(buf, "\"version\":1") && strstr(buf, "\"curve\":[[1,");
}

static void cost_cache(hass_model *m, const hass_head *h) {
    hass_err e;
    char path[64];
    snprintf(path, sizeof path, "/tmp/hass-test-cost-%d.json", (int)getpid());
    remove(path);
    hass_tree_cfg tc = {60, 6, 10};
    hass_draft *d = hass_draft_new(h, m, 0, &tc, &e);
    hass_drafter dr = hass_drafter_local(d);
    hass_spec *s1 = d ? cached_spec(m, &dr, path, 60) : NULL;
    hass_spec *s2 = s1 ? cached_spec(m, &dr, path, 60) : NULL;
    const int *t1 = NULL, *t2 = NULL;
    const double *ms1 = NULL, *ms2 = NULL;
    int n1 = s1 ? hass_spec_cost_curve(s1, &t1, &ms1) : 0, n2 = s2 ? hass_spec_cost_curve(s2, &t2, &ms2) : -1;
    int same = n1 > 0 && n1 == n2;
    for (int i = 0; same && i < n1; i++) same = t1[i] == t2[i] && ms1[i] == ms2[i];
    CHECK("spec_cost_cache_written", s1 && cache_ok(path), "no valid cost cache at %s (%s)", path,
          hass_errmsg());
    CHECK("spec_cost_cache_read", same, "the second decoder's curve (%d points) is not the first's (%d)",
          n2, n1);
    // the output does not depend on where the costs came from
    enum { N_NEW = 40 };
    int32_t ref[N_NEW], got[N_NEW];
    hass_kv *kv = hass_kv_new(m, 0, &e);
    hass_sample_cfg g = {0.f, 1.f, 0, 0};
    int nr = kv ? hass_generate(m, kv, PROMPTS[0], PROMPT_N[0], N_NEW, &g, -1, ref, NULL) : -1;
    int ng = -2;
    if (s2) ng = hass_spec_generate(s2, PROMPTS[0], PROMPT_N[0], UPTO(N_NEW), got, NULL, NULL, NULL, NULL);
    CHECK("spec_cost_cache_lossless", nr > 0 && ng == nr && first_diff(ref, nr, got, ng) < 0,
          "output with cached costs differs from plain decoding");
    hass_spec_free(s2);
    // a torn file, and a curve past a smaller tree's size: measured over and rewritten
    const char *bad[2] = {"{\"version\":1,\"curve\":[[1,", NULL};
    int fixed[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (bad[k]) {
            FILE *f = fopen(path, "w");
            if (f) fputs(bad[k], f), fclose(f);
        }
        hass_spec *s3 = cached_spec(m, &dr, path, k ? 4 : 60);
        const int *t3 = NULL;
        const double *ms3 = NULL;
        int n3 = s3 ? hass_spec_cost_curve(s3, &t3, &ms3) : 0;
        fixed[k] = s3 && n3 > 0 && t3[n3 - 1] <= (k ? 4 : 60) && cache_ok(path);
        hass_spec_free(s3);
    }
    CHECK("spec_cost_cache_torn_file", fixed[0], "a torn cache file was not measured over");
    CHECK("spec_cost_cache_other_tree", fixed[1], "a cached curve past the tree's size was used");
    remove(path);
    hass_kv_free(kv);
    hass_spec_free(s1);
    hass_draft_free(d);
}

// ---- an oracle drafter: proposes the target's own top-K (tests deep acceptance at T > 0) ----
typedef struct oracle {
    hass_model *m;
    hass_kv *kv;
    int32_t seq[512];
    int n;
    float *lp; // (K, V)
} oracle;

static hass_err or_reset(void *c) { ((oracle *)c)->n = 1; return HASS_OK; } // seq[0] = BOS kept
static hass_err or_push(void *c, const float *f, const int32_t *t, int m) {
    oracle *o = c;
    for (int i = 0; i < m; i++) o->seq[o->n++] = t[i];
    return HASS_OK;
}
// Target log-probs after seq + extra (memoised: the same contexts recur across seeded runs).
#define MEMO 512
static struct { uint64_t h; int n; float *lp; } g_memo[MEMO];
static int g_n_memo;
static hass_err or_lp(oracle *o, const int32_t *extra, int n_extra, float *lp) {
    int32_t buf[600];
    memcpy(buf, o->seq, sizeof(int32_t) * o->n);
    if (n_extra) memcpy(buf + o->n, extra, sizeof(int32_t) * n_extra);
    int n = o->n + n_extra, last = n - 1, V = hass_model_config(o->m)->n_vocab;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)buf[i]) * 1099511628211ull;
    for (int i = 0; i < g_n_memo; i++)
        if (g_memo[i].h == h && g_memo[i].n == n) {
            memcpy(lp, g_memo[i].lp, sizeof(float) * V);
            return HASS_OK;
        }
    hass_kv_truncate(o->kv, 0);
    hass_err e = hass_forward_rows(o->m, o->kv, buf, NULL, n, NULL, &last, 1, lp, NULL);
    if (e) return e;
    hass_log_softmax(lp, V);
    if (g_n_memo < MEMO) {
        g_memo[g_n_memo].h = h;
        g_memo[g_n_memo].n = n;
        g_memo[g_n_memo].lp = malloc(sizeof(float) * V);
        memcpy(g_memo[g_n_memo++].lp, lp, sizeof(float) * V);
    }
    return HASS_OK;
}
static hass_err or_tree(void *c, int32_t root, hass_tree *t) {
    oracle *o = c;
    int V = hass_model_config(o->m)->n_vocab;
    hass_err e = or_lp(o, NULL, 0, o->lp);
    if (e) return e;
    hass_tree_begin(t, root, o->lp, V);
    while (hass_tree_want_expand(t)) {
        for (int r = 0; r < t->n_beam; r++) {
            int32_t path[40];
            int np = 0;
            for (int f = t->beam_flat[r]; f >= 0; f = t->cand_parent[f]) path[np++] = t->cand_tok[f];
            for (int i = 0; i < np / 2; i++) { int32_t x = path[i]; path[i] = path[np - 1 - i]; path[np - 1 - i] = x; }
            if ((e = or_lp(o, path, np, o->lp + (size_t)r * V))) return e;
        }
        hass_tree_expand(t, o->lp, V);
    }
    hass_tree_finish(t);
    return HASS_OK;
}

// A drafter that proposes the root alone: every token then comes from acceptance as a leaf bonus.
static hass_err ro_reset(void *c) { return HASS_OK; }
static hass_err ro_push(void *c, const float *f, const int32_t *t, int m) { return HASS_OK; }
static hass_err ro_tree(void *c, int32_t root, hass_tree *t) {
    int32_t par = -1;
    hass_tree_set(t, 1, &root, &par);
    return HASS_OK;
}

// T = 0 with the oracle drafter: most drafts are accepted, so KV compaction of deep paths and
// the commit bookkeeping decide the result.
static void oracle_greedy(hass_model *m, hass_drafter *dr, const hass_tree_cfg *tc) {
    hass_err e;
    hass_kv *kv = hass_kv_new(m, 0, &e);
    hass_spec_cfg sc = {*tc, 0, {0.f, 0, 1.f}, 1, 0, NULL};
    hass_spec *s = hass_spec_new(m, dr, &sc, &e);
    int32_t ref[80], got[80];
    int ok = 1, acc = 0, cyc = 0, at = -1, p;
    for (p = 0; p < 4 && ok; p++) {
        hass_sample_cfg g = {0.f, 1.f, 0, 0};
        int nr = hass_generate(m, kv, PROMPTS[p], PROMPT_N[p], 80, &g, -1, ref, NULL);
        hass_spec_stats st;
        int ng =
            hass_spec_generate(s, PROMPTS[p], PROMPT_N[p], UPTO(80), got, NULL, &st, NULL, NULL);
        at = first_diff(ref, nr, got, ng);
        if (at >= 0 || ng < 0) ok = 0;
        for (int c = 0; c < st.n_cycles; c++) acc += st.cycles[c].n_acc;
        cyc += st.n_cycles;
    }
    char name[96];
    snprintf(name, sizeof name, "oracle_greedy_lossless_tree%d_%d_%d", tc->n_total, tc->levels, tc->top_k);
    CHECK(name, ok && acc > cyc, "prompt %d: first difference at position %d (%s)", p - 1, at, hass_errmsg());
    printf("# %s: %d cycles, %d accepted drafts\n", name, cyc, acc);
    hass_spec_free(s);
    hass_kv_free(kv);
}

// Exact processed distribution after prompt + extra tokens.
static void exact_probs(hass_model *m, const int32_t *prompt, int np, const int32_t *extra, int ne,
                        const hass_sampler *smp, double *p) {
    hass_err e;
    hass_kv *kv = hass_kv_new(m, 0, &e);
    int32_t buf[128];
    memcpy(buf, prompt, sizeof(int32_t) * np);
    if (ne) memcpy(buf + np, extra, sizeof(int32_t) * ne);
    int V = hass_model_config(m)->n_vocab, n = np + ne, last = n - 1;
    float *lg = malloc(sizeof(float) * V), *pr = malloc(sizeof(float) * V);
    hass_forward_rows(m, kv, buf, NULL, n, NULL, &last, 1, lg, NULL);
    hass_sampler_probs(smp, lg, V, pr);
    for (int i = 0; i < V; i++) p[i] = pr[i] > 0 ? pr[i] : 1e-12;
    free(lg);
    free(pr);
    hass_kv_free(kv);
}

// Most frequent index.
static int mode_of(const int64_t *c, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (c[i] > c[b]) b = i;
    return b;
}

// Sample many short generations; chi-square of x2 | x1 = a and x3 | x1 = a, x2 = b.
// Returns the worse stat/crit ratio through *worst.
static void stochastic_run(hass_model *m, const hass_drafter *dr, const hass_tree_cfg *tree,
                           const hass_sampler *smp, int n_runs, const char *label, int expect_ok) {
    enum { NP = 20 }; // ends where stories260K's next tokens have real entropy
    const int32_t prompt[NP] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376,
                                298, 315, 421, 395, 317, 426, 338, 401, 396, 267};
    int V = hass_model_config(m)->n_vocab;
    hass_err e;
    hass_spec_cfg sc = {*tree, 0, *smp, 0, 64, NULL};
    hass_spec *s = hass_spec_new(m, dr, &sc, &e);
    int64_t *c1 = calloc(V, sizeof(int64_t)), *c2 = calloc((size_t)V * V, sizeof(int64_t));
    int32_t (*outs)[3] = malloc(sizeof(int32_t[3]) * n_runs);
    int64_t acc = 0, cyc = 0;
    for (int i = 0; i < n_runs; i++) {
        hass_spec_set_seed(s, 1000 + (uint64_t)i);
        hass_spec_stats st;
        int n = hass_spec_generate(s, prompt, NP, UPTO(3), outs[i], NULL, &st, NULL, NULL);
        if (n != 3) { outs[i][0] = -1; continue; }
        for (int c = 0; c < st.n_cycles; c++) acc += st.cycles[c].n_acc;
        cyc += st.n_cycles;
        c1[outs[i][0]]++;
    }
    int a = mode_of(c1, V);
    int64_t *cx2 = calloc(V, sizeof(int64_t)), n2 = 0;
    for (int i = 0; i < n_runs; i++)
        if (outs[i][0] == a) { cx2[outs[i][1]]++; n2++; }
    int b = mode_of(cx2, V);
    int64_t *cx3 = calloc(V, sizeof(int64_t)), n3 = 0;
    for (int i = 0; i < n_runs; i++)
        if (outs[i][0] == a && outs[i][1] == b) { cx3[outs[i][2]]++; n3++; }
    double *p = malloc(sizeof(double) * V);
    int df;
    exact_probs(m, prompt, NP, NULL, 0, smp, p);
    double r1 = chi2_stat(c1, p, V, n_runs, &df) / chi2_crit(df, 3.72);
    int32_t ex[2] = {a, b};
    exact_probs(m, prompt, NP, ex, 1, smp, p);
    double r2 = chi2_stat(cx2, p, V, n2, &df) / chi2_crit(df, 3.72);
    exact_probs(m, prompt, NP, ex, 2, smp, p);
    double r3 = chi2_stat(cx3, p, V, n3, &df) / chi2_crit(df, 3.72);
    printf("# %s: chi2/crit x1 %.3f, x2|x1 %.3f (n %lld), x3|x1,x2 %.3f (n %lld); %.2f accepted per cycle\n",
           label, r1, r2, (long long)n2, r3, (long long)n3, cyc ? (double)acc / cyc : 0.0);
    double worst = r2 > r3 ? r2 : r3;
    if (r1 > worst) worst = r1;
    if (expect_ok)
        CHECK(label, n2 > 800 && n3 > 300 && worst < 1.0, "chi2/crit %.3f %.3f %.3f (n %lld %lld)",
              r1, r2, r3, (long long)n2, (long long)n3);
    else
        CHECK(label, worst > 1.0, "broken acceptance passed: chi2/crit %.3f %.3f", r2, r3);
    free(c1); free(c2); free(outs); free(cx2); free(cx3); free(p);
    hass_spec_free(s);
}

// One generation of PROMPTS[0] by the loop without a drafter and with dr under the same stop
// rules and context: a check that both give the same tokens, finish and stop string, and that
// the finish is want. Returns how many tokens the drafted run's cycles produced past the last one
// kept (> 0: the rules cut a cycle short), or -1 when it failed.
static int stop_case(hass_model *m, const hass_drafter *dr, const char *name,
                     const hass_stop_cfg *stop, int n_ctx, hass_finish want) {
    hass_err e;
    hass_spec_cfg pc = {{1, 1, 1}, 0, {0.f, 0, 1.f}, 1, n_ctx, NULL};
    hass_spec_cfg dc = {{20, 4, 4}, 0, {0.f, 0, 1.f}, 1, n_ctx, NULL};
    hass_spec *ps = hass_spec_new(m, NULL, &pc, &e);
    hass_spec *ds = ps ? hass_spec_new(m, dr, &dc, &e) : NULL;
    int32_t a[128], b[128];
    hass_spec_stats sa = {0}, sb = {0};
    const int32_t *p = PROMPTS[0];
    int np = PROMPT_N[0];
    int na = ds ? hass_spec_generate(ps, p, np, stop, a, NULL, &sa, NULL, NULL) : -1;
    int nb = ds ? hass_spec_generate(ds, p, np, stop, b, NULL, &sb, NULL, NULL) : -1;
    int produced = 1;
    for (int c = 0; nb > 0 && c < sb.n_cycles; c++) produced += sb.cycles[c].n_acc + 1;
    int ok = na > 0 && na == nb && !memcmp(a, b, sizeof(int32_t) * (size_t)na) &&
             sa.finish == want && sb.finish == want && sa.stop_idx == sb.stop_idx && sa.n_gen == na;
    CHECK(name, ok,
          "plain %d tokens (%s, stop %d), drafted %d (%s, stop %d), first difference %d: %s", na,
          hass_finish_name(sa.finish), sa.stop_idx, nb, hass_finish_name(sb.finish),
          sb.stop_idx, na > 0 && nb > 0 ? first_diff(a, na, b, nb) : -1, hass_errmsg());
    hass_spec_free(ds);
    hass_spec_free(ps);
    return ok ? produced - nb : -1;
}

// Emit callback that stops after the third token.
static int emit_three(void *ud, const int32_t *tok, int n, const hass_spec_cycle *cyc) {
    int *seen = ud;
    *seen += n;
    return *seen >= 3;
}

// The stop rules inside the loop (stop.h). With the oracle drafter most cycles accept several
// tokens, so stop ids, stop strings, max_new and the context's end fall inside cycles: the
// drafted loop must stop at plain decoding's token with its finish, dropping the rest of the
// cycle (which must have happened for each rule but the context's, where the tree shrinks to the
// root before it would overflow). A prompt that fills the context gives the root
// alone ("length") in both; an emit callback that says stop ends with "none".
static void stop_rules(hass_model *m, const hass_drafter *dr, const hass_tokenizer *tok) {
    hass_err e;
    enum { N = 60 };
    int32_t ref[N];
    hass_spec_cfg pc = {{1, 1, 1}, 0, {0.f, 0, 1.f}, 1, 0, NULL};
    hass_spec *ps = hass_spec_new(m, NULL, &pc, &e);
    hass_stop_cfg all = {.max_new = N, .ignore_eos = 1, .tok = tok};
    const int32_t *p = PROMPTS[0];
    int np = PROMPT_N[0];
    int nr = ps ? hass_spec_generate(ps, p, np, &all, ref, NULL, NULL, NULL, NULL) : -1;
    CHECK("stop_rules_reference", nr == N, "%d: %s", nr, hass_errmsg());
    if (nr != N) {
        hass_spec_free(ps);
        return;
    }
    int cut[3] = {0, 0, 0}; // cycles cut short by: a stop id, a stop string, max_new
    char name[96];
    for (int k = 4; k < 24; k += 3) {
        int first = 1; // ref[k] does not occur before k: the stop id ends there
        for (int j = 0; j < k; j++) first &= ref[j] != ref[k];
        hass_stop_cfg sid = {.max_new = N, .ignore_eos = 1, .tok = tok, .ids = &ref[k], .n_ids = 1};
        snprintf(name, sizeof name, "stop_rules_stop_id_at_%d", k);
        if (first) cut[0] += stop_case(m, dr, name, &sid, 0, HASS_FINISH_STOP) > 0;
        size_t plen = 0;
        const char *piece = hass_tokenizer_piece(tok, ref[k], &plen);
        char str[64];
        snprintf(str, sizeof str, "%.*s", (int)(plen < 63 ? plen : 63), piece ? piece : "");
        const char *strs[2] = {"zzzq", str};
        hass_stop_cfg sst = {.max_new = N, .ignore_eos = 1, .tok = tok, .strs = strs, .n_strs = 2};
        snprintf(name, sizeof name, "stop_rules_stop_string_of_%d", k);
        if (str[0]) cut[1] += stop_case(m, dr, name, &sst, 0, HASS_FINISH_STOP) > 0;
        hass_stop_cfg smx = {.max_new = k, .ignore_eos = 1, .tok = tok};
        snprintf(name, sizeof name, "stop_rules_max_new_%d", k);
        cut[2] += stop_case(m, dr, name, &smx, 0, HASS_FINISH_LENGTH) > 0;
        snprintf(name, sizeof name, "stop_rules_context_%d", PROMPT_N[0] + k);
        stop_case(m, dr, name, &all, PROMPT_N[0] + k, HASS_FINISH_LENGTH); // trees shrink to fit
    }
    CHECK("stop_rules_cut_cycles_short", cut[0] && cut[1] && cut[2],
          "cycles cut by a stop id %d, a stop string %d, max_new %d", cut[0], cut[1], cut[2]);
    int has_eos = 0;
    for (int i = 0; i < N; i++) has_eos |= hass_tokenizer_is_eog(tok, ref[i]);
    hass_stop_cfg eos = {.max_new = N, .tok = tok};
    stop_case(m, dr, "stop_rules_eos_or_length", &eos, 0,
              has_eos ? HASS_FINISH_EOS : HASS_FINISH_LENGTH);
    stop_case(m, dr, "stop_rules_prompt_fills_context", &all, PROMPT_N[0], HASS_FINISH_LENGTH);
    int32_t one[128];
    hass_spec_cfg fc = {{1, 1, 1}, 0, {0.f, 0, 1.f}, 1, PROMPT_N[0], NULL};
    hass_spec *fs = hass_spec_new(m, NULL, &fc, &e);
    int n1 = fs ? hass_spec_generate(fs, p, np, &all, one, NULL, NULL, NULL, NULL) : -1;
    int32_t longer[7] = {1, 403, 407, 261, 378, 432, 383};
    int n2 = fs ? hass_spec_generate(fs, longer, 7, &all, one, NULL, NULL, NULL, NULL) : -1;
    CHECK("stop_rules_prompt_fills_context_root_only",
          n1 == 1 && one[0] == ref[0] && n2 == HASS_ERANGE, "%d tokens, a longer prompt gave %d",
          n1, n2);
    hass_spec_free(fs);
    int seen = 0;
    hass_spec_stats st = {0};
    int32_t out[N];
    int n3 = hass_spec_generate(ps, p, np, &all, out, NULL, &st, emit_three, &seen);
    CHECK("stop_rules_emit_stops", n3 == 3 && seen == 3 && st.finish == HASS_FINISH_NONE &&
          !memcmp(out, ref, sizeof(int32_t) * 3), "%d tokens, %d seen, finish %s", n3, seen,
          hass_finish_name(st.finish));
    hass_spec_free(ps);
}

// AR through the loop equals the engine's plain decoding, and T > 0 consumes the RNG like
// hass_sample_token does token by token.
static void ar_equivalence(hass_model *m) {
    hass_err e;
    hass_tree_cfg one = {60, 6, 10};
    hass_sampler smp = {0.9f, 40, 0.95f};
    hass_spec_cfg sc = {one, 0, smp, 77, 0, NULL};
    hass_spec *s = hass_spec_new(m, NULL, &sc, &e);
    int32_t got[40], ref[40];
    int n = hass_spec_generate(s, PROMPTS[0], PROMPT_N[0], UPTO(40), got, NULL, NULL, NULL, NULL);
    // reference: token-by-token sampling with the same RNG stream
    hass_kv *kv = hass_kv_new(m, 0, &e);
    int V = hass_model_config(m)->n_vocab;
    float *lg = malloc(sizeof(float) * V), *sc2 = malloc(sizeof(float) * V);
    hass_rng rng;
    hass_rng_seed(&rng, 77);
    int last = PROMPT_N[0] - 1;
    hass_forward_rows(m, kv, PROMPTS[0], NULL, PROMPT_N[0], NULL, &last, 1, lg, NULL);
    for (int i = 0; i < 40; i++) {
        ref[i] = hass_sample_token(&smp, lg, V, &rng, sc2);
        hass_forward(m, kv, &ref[i], NULL, 1, NULL, lg, NULL);
    }
    CHECK("ar_loop_equals_plain_sampling", n == 40 && first_diff(ref, 40, got, n) < 0,
          "first difference at %d", first_diff(ref, 40, got, n));
    free(lg);
    free(sc2);
    hass_kv_free(kv);
    hass_spec_free(s);
}

// A drafter that fails on its third tree: the decoder returns the error, does not hang.
static int g_fail_after;
static hass_err bad_tree(void *c, int32_t root, hass_tree *t) {
    if (--g_fail_after < 0) return hass_seterr(HASS_EIO, "drafter: connection lost");
    return hass_draft_tree(c, root, t);
}

static void drafter_failure(hass_model *m, const hass_head *h) {
    hass_err e;
    hass_tree_cfg tc = {8, 3, 2};
    hass_draft *d = hass_draft_new(h, m, 0, &tc, &e);
    hass_drafter dr = hass_drafter_local(d);
    dr.tree = bad_tree;
    hass_spec_cfg sc = {tc, 0, {0.f, 0, 1.f}, 1, 0, NULL};
    hass_spec *s = hass_spec_new(m, &dr, &sc, &e);
    int32_t out[30];
    g_fail_after = 2;
    int n = hass_spec_generate(s, PROMPTS[0], PROMPT_N[0], UPTO(30), out, NULL, NULL, NULL, NULL);
    CHECK("drafter_failure_is_error", n == HASS_EIO && strstr(hass_errmsg(), "connection lost"),
          "n %d: %s", n, hass_errmsg());
    hass_spec_free(s);
    hass_draft_free(d);
}

// The drafter's layer in Q8_0 (hass_draft_quantize) against the exact one on the shipped SmolLM2
// head: the same committed pairs give outputs within NMSE 1e-3 and the same first draft at nearly
// every position; a width that is not a multiple of 32 is refused and the drafter stays exact.
static void q8_drafter(hass_model *sm, const hass_head *h, hass_model *tiny, const hass_head *th) {
    hass_err e;
    hass_tree_cfg tc = {2, 1, 1};
    hass_draft *dx = hass_draft_new(h, sm, 256, &tc, &e), *dq = hass_draft_new(h, sm, 256, &tc, &e);
    CHECK("q8_drafter_setup", dx && dq && hass_draft_quantize(dq) == HASS_OK, "%s", hass_errmsg());
    if (!dx || !dq) { hass_draft_free(dx); hass_draft_free(dq); return; }
    // a real context: the target's features of a chat prompt and its greedy continuation
    enum { NP = 6, NG = 48, N = NP + NG };
    static const int32_t prompt[NP] = {1, 9690, 198, 504, 3458, 314};
    int32_t tok[N + 1];
    memcpy(tok, prompt, sizeof prompt);
    hass_kv *kv = hass_kv_new(sm, 0, &e);
    hass_sample_cfg g = {0.f, 1.f, 0, 0};
    int ng = hass_generate(sm, kv, tok, NP, NG + 1, &g, -1, tok + NP, NULL);
    const hass_model_cfg *mc = hass_model_config(sm);
    float *feat = malloc(sizeof(float) * N * mc->n_embd);
    hass_kv_truncate(kv, 0);
    e = ng == NG + 1 ? hass_forward(sm, kv, tok, NULL, N, NULL, NULL, feat) : HASS_EINVAL;
    CHECK("q8_drafter_context", e == HASS_OK, "%s", hass_errmsg());
    double worst = 0.0;
    int same = 0;
    hass_tree *tx = hass_tree_new(&tc, &e), *tq = hass_tree_new(&tc, &e);
    for (int i = 0; !e && i < N; i++) { // pair i: feature of position i, next token i + 1
        if ((e = hass_draft_push(dx, feat + (size_t)i * mc->n_embd, tok + i + 1, 1)) ||
            (e = hass_draft_push(dq, feat + (size_t)i * mc->n_embd, tok + i + 1, 1)) ||
            (e = hass_draft_tree(dx, tok[i + 1], tx)) || (e = hass_draft_tree(dq, tok[i + 1], tq)))
            break;
        double q = unit_nmse(hass_draft_last(dq), hass_draft_last(dx), mc->n_embd);
        if (q > worst) worst = q;
        same += tx->tok[1] == tq->tok[1];
    }
    CHECK("q8_drafter_runs", e == HASS_OK, "%s", hass_errmsg());
    printf("# q8 drafter vs exact: worst output NMSE %.2e, same first draft at %d of %d positions\n",
           worst, same, N);
    CHECK("q8_drafter_close", worst < 1e-3, "worst NMSE %g", worst);
    CHECK("q8_drafter_same_drafts", same >= N * 9 / 10, "%d of %d", same, N);
    hass_tree_free(tx), hass_tree_free(tq);
    free(feat);
    hass_kv_free(kv);
    hass_draft_free(dx), hass_draft_free(dq);
    hass_draft *dt = hass_draft_new(th, tiny, 0, &tc, &e);
    e = dt ? hass_draft_quantize(dt) : HASS_EINVAL;
    CHECK("q8_drafter_refuses_width_172", e == HASS_EUNSUP, "got %d: %s", e, hass_errmsg());
    hass_draft_free(dt);
}

int main(void) {
    char path[1024];
    unit_data(path, sizeof path, "models/stories260K/stories260K-v3-f32.gguf");
    if (!unit_exists(path)) {
        SKIP("spec_stories260K", "model missing");
        UNIT_DONE();
    }
    hass_err e;
    hass_model *m = hass_model_load(path, 1, &e);
    CHECK("load_stories260K", m != NULL, "%s", hass_errmsg());
    if (!m) UNIT_DONE();
    hass_head_target tg;
    hass_head_target_of(m, 0, &tg);
    hass_head *h = hass_head_random(&tg, 1, 42, &e);
    hass_tree_cfg trees[4] = {{60, 6, 10}, {8, 3, 2}, {20, 4, 4}, {2, 1, 1}};
    lossless_greedy("stories260K", m, h, trees, 4, PROMPTS, PROMPT_N, 4, 40, 0);
    lossless_greedy("stories260K", m, h, trees, 1, PROMPTS, PROMPT_N, 2, 40, 1);
    auto_window(m, h, PROMPTS, PROMPT_N);
    cost_cache(m, h);
    // a draft vocabulary of 96 of the 512 ids: the draft cannot propose most tokens, the output
    // must not change
    hass_head *hv = hass_head_random(&tg, 1, 42, &e);
    int64_t cnt[512];
    for (int i = 0; i < 512; i++) cnt[i] = (i * 7919) % 101;
    hass_head_set_dvocab(hv, cnt, 96);
    lossless_greedy("stories260K_draft_vocab96", m, hv, trees, 2, PROMPTS, PROMPT_N, 4, 40, 0);
    hass_head_free(hv);
    ar_equivalence(m);
    drafter_failure(m, h);

    // T > 0
    hass_sampler smp = {1.4f, 30, 0.95f};
    hass_tree_cfg ot = {3, 1, 2}; // root + the target's top-2: rejections, residuals, leaf bonuses
    oracle o = {m, hass_kv_new(m, 0, &e), {1}, 1, malloc(sizeof(float) * 2 * 512)};
    hass_drafter odr = {&o, or_reset, or_push, or_tree};
    hass_tree_cfg og[2] = {{20, 4, 4}, {60, 6, 10}};
    free(o.lp);
    o.lp = malloc(sizeof(float) * 10 * 512);
    oracle_greedy(m, &odr, &og[0]);
    oracle_greedy(m, &odr, &og[1]);
    hass_tokenizer *tok = hass_tokenizer_load(path, &e);
    CHECK("load_stories260K_tokenizer", tok != NULL, "%s", hass_errmsg());
    if (tok) stop_rules(m, &odr, tok);
    hass_tokenizer_free(tok);
    stochastic_run(m, &odr, &ot, &smp, 5000, "lossless_T1.4_oracle_drafter", 1);
    hass_accept_fault = 1;
    stochastic_run(m, &odr, &ot, &smp, 3000, "detects_broken_residual_T1.4", 0);
    hass_accept_fault = 2; // every token of a root-only tree is a leaf bonus
    hass_drafter rodr = {NULL, ro_reset, ro_push, ro_tree};
    stochastic_run(m, &rodr, &ot, &smp, 3000, "detects_bonus_without_processor_T1.4", 0);
    hass_accept_fault = 0;
    hass_draft *d = hass_draft_new(h, m, 0, &trees[1], &e);
    hass_drafter ldr = hass_drafter_local(d);
    hass_sampler t1 = {1.0f, 0, 1.f};
    stochastic_run(m, &ldr, &trees[1], &t1, 3000, "lossless_T1_random_head", 1);
    hass_draft_free(d);
    hass_kv_free(o.kv);
    free(o.lp);

    // SmolLM2 (when present)
    const char *md = getenv("HASS_MODELS");
    snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", md && *md ? md : "models");
    if (!unit_exists(path)) {
        SKIP("smollm2_greedy_lossless", "models/SmolLM2-135M-Instruct.Q4_1.gguf missing");
    } else {
        hass_model *sm = hass_model_load(path, 2, &e);
        CHECK("load_smollm2", sm != NULL, "%s", hass_errmsg());
        if (sm) {
            hass_head_target st;
            hass_head_target_of(sm, 0, &st);
            hass_head *sh = hass_head_random(&st, 1, 5, &e);
            // "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"-like ids (ChatML)
            static int32_t sp[2][6] = {{1, 4093, 198, 19556, 2, 198}, {1, 9690, 198, 504, 3458, 314}};
            int spn[2] = {6, 6};
            hass_tree_cfg stt[2] = {{60, 6, 10}, {12, 3, 3}};
            lossless_greedy("smollm2", sm, sh, stt, 2, sp, spn, 1, 8, 0);
            hass_head_free(sh);
            hass_head *ship = hass_head_load("heads/smollm2-135m-instruct", &st, &e);
            CHECK("load_shipped_head", ship != NULL, "%s", hass_errmsg());
            if (ship) {
                g_quant = 1;
                lossless_greedy("smollm2_shipped", sm, ship, stt + 1, 1, sp, spn, 2, 24, 0);
                g_quant = 0;
                q8_drafter(sm, ship, m, h);
                hass_head_free(ship);
            }
            hass_model_free(sm);
        }
    }
    hass_head_free(h);
    hass_model_free(m);
    for (int i = 0; i < g_n_memo; i++) free(g_memo[i].lp);
    UNIT_DONE();
}
