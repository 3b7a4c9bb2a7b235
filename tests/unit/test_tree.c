// test_tree.c: EAGLE-2 tree bookkeeping: the toy check of SPEC-HASS.md section 6, beam
// ancestry masks, and invariants plus determinism on random and all-tied scores.
#include "sample.h"
#include "tree.h"
#include "unit.h"

enum { V = 16 };

// Log-probs over V tokens with the given (token, prob) pairs and the rest spread evenly.
static void make_lp(float *lp, const int *tok, const double *p, int n) {
    double rest = 1.0;
    for (int i = 0; i < n; i++) rest -= p[i];
    for (int v = 0; v < V; v++) lp[v] = (float)log(rest / (V - n));
    for (int i = 0; i < n; i++) lp[tok[i]] = (float)log(p[i]);
}

static void test_toy(void) {
    enum { a = 1, b, c, d, e, f, g, h, i_, j };
    hass_tree_cfg cfg = {5, 3, 2}; // M = 4, D = 2 expansions, K = 2
    hass_err err;
    hass_tree *t = hass_tree_new(&cfg, &err);
    CHECK("tree_new", t != NULL, "%s", hass_errmsg());
    if (!t) return;
    float lp[2 * V];
    make_lp(lp, (int[]){a, b}, (double[]){.6, .3}, 2);
    hass_tree_begin(t, 0, lp, V);
    CHECK("toy_level1", t->n_beam == 2 && t->beam_tok[0] == a && t->beam_tok[1] == b &&
                            t->beam_src[0] == -1,
          "beam %d %d", t->beam_tok[0], t->beam_tok[1]);
    make_lp(lp, (int[]){c, d}, (double[]){.7, .2}, 2);
    make_lp(lp + V, (int[]){e, f}, (double[]){.5, .4}, 2);
    hass_tree_expand(t, lp, V);
    CHECK("toy_beam_after_step0",
          t->beam_tok[0] == c && t->beam_tok[1] == e && t->beam_src[0] == 0 &&
              t->beam_src[1] == 1 && t->beam_flat[0] == 2 && t->beam_flat[1] == 4,
          "beam %d %d src %d %d", t->beam_tok[0], t->beam_tok[1], t->beam_src[0],
          t->beam_src[1]);
    // ancestry masks over scratch entries: row 0 (c) = a's entry 0 + own entry 2
    const uint8_t *m = t->beam_mask;
    int w = t->mask_w;
    CHECK("toy_beam_mask", w == 4 && m[0] && !m[1] && m[2] && !m[3] && !m[w] && m[w + 1] &&
                               !m[w + 2] && m[w + 3],
          "mask %d%d%d%d %d%d%d%d", m[0], m[1], m[2], m[3], m[w], m[w + 1], m[w + 2], m[w + 3]);
    make_lp(lp, (int[]){g, h}, (double[]){.9, .05}, 2);
    make_lp(lp + V, (int[]){i_, j}, (double[]){.5, .3}, 2);
    hass_tree_expand(t, lp, V);
    CHECK("toy_no_more_steps", !hass_tree_want_expand(t), "step %d", t->step);
    hass_tree_finish(t);
    CHECK("toy_nodes", t->n == 5 && t->tok[1] == a && t->tok[2] == b && t->tok[3] == c &&
                           t->tok[4] == g,
          "n %d tok %d %d %d %d", t->n, t->tok[1], t->tok[2], t->tok[3], t->tok[4]);
    CHECK("toy_parent", t->parent[0] == -1 && t->parent[1] == 0 && t->parent[2] == 0 &&
                            t->parent[3] == 1 && t->parent[4] == 3,
          "parent %d %d %d %d", t->parent[1], t->parent[2], t->parent[3], t->parent[4]);
    CHECK("toy_depth", t->depth[0] == 0 && t->depth[1] == 1 && t->depth[2] == 1 &&
                           t->depth[3] == 2 && t->depth[4] == 3 && t->max_depth == 3,
          "depth %d %d %d %d", t->depth[1], t->depth[2], t->depth[3], t->depth[4]);
    int want[2][4] = {{0, 2, -1, -1}, {0, 1, 3, 4}};
    int ok = t->n_leaves == 2 && hass_tree_retrieve_w(t) == 4;
    for (int r = 0; ok && r < 2; r++)
        for (int k = 0; k < 4; k++)
            if (t->retrieve[r * 4 + k] != want[r][k]) ok = 0;
    CHECK("toy_retrieve", ok, "leaves %d", t->n_leaves);
    // tree mask row of g = {root, a, c, g}
    const uint8_t *tm = t->mask + 4 * 5;
    CHECK("toy_tree_mask", tm[0] && tm[1] && !tm[2] && tm[3] && tm[4], "row g");
    CHECK("toy_children", t->first_child[0] == 1 && t->next_sibling[1] == 2 &&
                              t->first_child[1] == 3 && t->first_child[2] == -1,
          "children lists");
    hass_tree_free(t);
}

// Simple PRNG for test data.
static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f;
}

// Build one tree of cfg from random (or all-equal) log-probs; return node tokens in out.
static void build(hass_tree *t, int tied, uint64_t seed) {
    enum { VB = 200 };
    static float lp[64 * VB];
    uint64_t s = seed;
    int K = t->cfg.top_k;
    for (int v = 0; v < VB; v++) lp[v] = tied ? -5.3f : -5.f - 8.f * frand(&s);
    hass_log_softmax(lp, VB);
    hass_tree_begin(t, 7, lp, VB);
    while (hass_tree_want_expand(t)) {
        for (int r = 0; r < K; r++) {
            for (int v = 0; v < VB; v++) lp[r * VB + v] = tied ? 0.f : 4.f * frand(&s) * frand(&s);
            hass_log_softmax(lp + r * VB, VB);
        }
        hass_tree_expand(t, lp, VB);
    }
    hass_tree_finish(t);
}

// The same tree from each row's top-k lists (hass_tree_begin_k / expand_k), lists of KL >= K
// entries at stride KL, as a drafter ranking on the device passes them.
static void build_k(hass_tree *t, int tied, uint64_t seed, int KL) {
    enum { VB = 200 };
    static float lp[64 * VB];
    int32_t ids[64 * 16];
    float vals[64 * 16];
    uint64_t s = seed;
    int K = t->cfg.top_k;
    for (int v = 0; v < VB; v++) lp[v] = tied ? -5.3f : -5.f - 8.f * frand(&s);
    hass_log_softmax(lp, VB);
    hass_topk(lp, VB, KL, ids, vals);
    hass_tree_begin_k(t, 7, ids, vals, KL);
    while (hass_tree_want_expand(t)) {
        for (int r = 0; r < K; r++) {
            for (int v = 0; v < VB; v++) lp[r * VB + v] = tied ? 0.f : 4.f * frand(&s) * frand(&s);
            hass_log_softmax(lp + r * VB, VB);
            hass_topk(lp + r * VB, VB, KL, ids + r * KL, vals + r * KL);
        }
        hass_tree_expand_k(t, ids, vals, KL, K);
    }
    hass_tree_finish(t);
}

// Trees from top-k lists equal trees from whole rows, node for node.
static void test_topk_lists(void) {
    hass_tree_cfg cfg = {60, 6, 10};
    hass_err err;
    hass_tree *t = hass_tree_new(&cfg, &err), *u = hass_tree_new(&cfg, &err);
    for (int tied = 0; tied < 2; tied++)
        for (int KL = 10; KL <= 16; KL += 6) {
            int same = 1;
            for (int rep = 0; rep < 10; rep++) {
                build(t, tied, 300 + rep);
                build_k(u, tied, 300 + rep, KL);
                if (t->n != u->n) same = 0;
                for (int j = 0; same && j < t->n; j++)
                    if (t->tok[j] != u->tok[j] || t->parent[j] != u->parent[j]) same = 0;
            }
            char name[64];
            snprintf(name, sizeof name, "tree_topk_lists_%d%s", KL, tied ? "_tied" : "");
            CHECK(name, same, "tree from top-%d lists differs from the whole-row tree", KL);
        }
    hass_tree_free(t);
    hass_tree_free(u);
}

static void test_invariants(void) {
    hass_tree_cfg cfg = {60, 6, 10};
    hass_err err;
    hass_tree *t = hass_tree_new(&cfg, &err), *u = hass_tree_new(&cfg, &err);
    for (int tied = 0; tied < 2; tied++) {
        int ok = 1, same = 1, sib = 1, mono = 1, top = 1;
        for (int rep = 0; rep < 20; rep++) {
            build(t, tied, 100 + rep);
            build(u, tied, 100 + rep);
            if (t->n != 60) ok = 0;
            for (int j = 0; j < t->n; j++) {
                if (t->tok[j] != u->tok[j] || t->parent[j] != u->parent[j]) same = 0;
                if (j == 0) continue;
                int p = t->parent[j];
                if (p < 0 || p >= j || t->depth[j] != t->depth[p] + 1) ok = 0;
                if (p > 0 && t->cand_score[t->node_flat[j]] > t->cand_score[t->node_flat[p]])
                    mono = 0;
                for (int c = t->first_child[p]; c >= 0 && c != j; c = t->next_sibling[c])
                    if (t->tok[c] == t->tok[j]) sib = 0;
            }
            // chosen = the 59 best (score desc, flat asc) among all candidates
            int n_better_outside = 0;
            for (int f = 0; f < t->n_cand; f++) {
                int in = 0;
                for (int j = 1; j < t->n; j++)
                    if (t->node_flat[j] == f) in = 1;
                if (in || t->cand_parent[f] == -2) continue;
                for (int j = 1; j < t->n; j++) {
                    int g = t->node_flat[j];
                    float sf = t->cand_score[f], sg = t->cand_score[g];
                    if (sf > sg || (sf == sg && f < g)) n_better_outside++;
                }
            }
            if (n_better_outside) top = 0;
        }
        char name[64];
        snprintf(name, sizeof name, "tree_structure%s", tied ? "_tied" : "");
        CHECK(name, ok, "parent/depth/size invariant broken");
        snprintf(name, sizeof name, "tree_deterministic%s", tied ? "_tied" : "");
        CHECK(name, same, "two builds differ");
        snprintf(name, sizeof name, "tree_siblings_distinct%s", tied ? "_tied" : "");
        CHECK(name, sib, "duplicate sibling tokens");
        snprintf(name, sizeof name, "tree_scores_monotone%s", tied ? "_tied" : "");
        CHECK(name, mono, "child outranks parent");
        snprintf(name, sizeof name, "tree_rerank_is_topM%s", tied ? "_tied" : "");
        CHECK(name, top, "a better candidate was left out");
    }
    hass_tree_free(t);
    hass_tree_free(u);
    hass_tree_cfg bad = {60, 0, 10};
    CHECK("tree_cfg_rejects_depth0", hass_tree_new(&bad, &err) == NULL && err == HASS_EINVAL,
          "accepted depth 0");
    // depth 1: only level-1 candidates; total larger than available
    hass_tree_cfg one = {60, 1, 4};
    hass_tree *o = hass_tree_new(&one, &err);
    float lp[V];
    for (int v = 0; v < V; v++) lp[v] = -(float)v;
    hass_tree_begin(o, 3, lp, V);
    CHECK("tree_depth1_no_expand", !hass_tree_want_expand(o), "wants expand");
    hass_tree_finish(o);
    CHECK("tree_depth1_shape", o->n == 5 && o->max_depth == 1 && o->tok[1] == 0 &&
                                   o->tok[4] == 3 && o->n_leaves == 4,
          "n %d", o->n);
    hass_tree_free(o);
    hass_tree_free(NULL);
}

int main(void) {
    test_toy();
    test_invariants();
    test_topk_lists();
    UNIT_DONE();
}
