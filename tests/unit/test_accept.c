// test_accept.c: greedy acceptance walks, and the lossless stochastic acceptance: with many
// seeded cycles, the first generated tokens follow the target's exact processed distribution
// (chi-square), at the root, below an accepted node and at a leaf bonus. The same tests must
// fail when acceptance is broken on purpose (no residual renormalisation; no processor on the
// leaf bonus), which shows they can catch those bugs.
#include "accept.h"
#include "chi2.h"
#include "unit.h"

#include <string.h>

enum { V = 8, NN = 8 };
// root: children n1 (3), n2 (1), n3 (3, duplicate), n4 (5); n1: n5 (2), n6 (4); n6: n7 (0)
static const int32_t TOK[NN] = {6, 3, 1, 3, 5, 2, 4, 0};
static const int32_t PAR[NN] = {-1, 0, 0, 0, 0, 1, 1, 6};
static float LOGITS[NN * V];

static hass_tree *make_tree(void) {
    hass_tree_cfg cfg = {NN, 4, 4};
    hass_err err;
    hass_tree *t = hass_tree_new(&cfg, &err);
    if (!t || hass_tree_set(t, NN, TOK, PAR)) return NULL;
    return t;
}

static void test_greedy(hass_tree *t) {
    float lg[NN * V];
    for (int i = 0; i < NN * V; i++) lg[i] = 0.f;
    hass_accept_result r;
    // root argmax 3 -> n1; n1 argmax 4 -> n6; n6 argmax 0 -> n7; n7 argmax 7 -> bonus
    lg[0 * V + 3] = 1; lg[1 * V + 4] = 1; lg[6 * V + 0] = 1; lg[7 * V + 7] = 1;
    hass_accept_greedy(t, lg, V, &r);
    CHECK("greedy_full_path", r.n_acc == 3 && r.path[3] == 7 && r.bonus == 7 && r.n_tokens == 4 &&
                                  r.tokens[0] == 3 && r.tokens[1] == 4 && r.tokens[2] == 0 &&
                                  r.tokens[3] == 7,
          "n_acc %d bonus %d", r.n_acc, r.bonus);
    lg[0 * V + 3] = 0; lg[0 * V + 7] = 1;
    hass_accept_greedy(t, lg, V, &r);
    CHECK("greedy_reject_root", r.n_acc == 0 && r.bonus == 7 && r.n_tokens == 1, "n_acc %d",
          r.n_acc);
    hass_sampler g = {0.f, 0, 1.f};
    hass_rng rng;
    hass_rng_seed(&rng, 1);
    float probs[V];
    lg[0 * V + 7] = 0; lg[0 * V + 5] = 1;
    hass_accept_sample(t, lg, V, &g, &rng, probs, &r);
    CHECK("sample_T0_is_greedy", r.n_acc == 1 && r.path[1] == 4 && r.bonus == 0,
          "n_acc %d bonus %d", r.n_acc, r.bonus);
}

typedef struct counts {
    int64_t x1[V];        // first token
    int64_t x2_after3[V]; // second token when the first is 3 (node n1, has children)
    int64_t x2_after1[V]; // second token when the first is 1 (leaf n2: bonus)
    int64_t x3_after34[V];// third token after 3, 4 (node n6, one child)
    int64_t n3, n1, n34;
} counts;

static void run(hass_tree *t, const hass_sampler *s, int n, uint64_t seed, counts *c) {
    memset(c, 0, sizeof(*c));
    hass_rng rng;
    hass_rng_seed(&rng, seed);
    float probs[V];
    hass_accept_result r;
    for (int i = 0; i < n; i++) {
        hass_accept_sample(t, LOGITS, V, s, &rng, probs, &r);
        int32_t x1 = r.tokens[0];
        c->x1[x1]++;
        if (r.n_tokens >= 2 && x1 == 3) { c->x2_after3[r.tokens[1]]++; c->n3++; }
        if (r.n_tokens >= 2 && x1 == 1) { c->x2_after1[r.tokens[1]]++; c->n1++; }
        if (r.n_tokens >= 3 && x1 == 3 && r.tokens[1] == 4) {
            c->x3_after34[r.tokens[2]]++;
            c->n34++;
        }
    }
}

// Chi-square of counts against the processed distribution at node u; returns stat / crit.
static double ratio(const int64_t *cnt, int64_t n, const hass_sampler *s, int u) {
    float p[V];
    hass_sampler_probs(s, LOGITS + u * V, V, p);
    double pe[V];
    for (int i = 0; i < V; i++) pe[i] = p[i] > 0.f ? p[i] : 1e-12;
    int df;
    double st = chi2_stat(cnt, pe, V, n, &df);
    printf("# chi2 %.1f df %d crit %.1f\n", st, df, chi2_crit(df, 3.72));
    return st / chi2_crit(df, 3.72);
}

static void test_stochastic(hass_tree *t) {
    // fixed logits per node; root favours the drafted children so every branch is exercised
    for (int u = 0; u < NN; u++)
        for (int v = 0; v < V; v++) LOGITS[u * V + v] = (float)(1.3 * sin(1.0 + u * 2.3 + v * 0.9));
    LOGITS[0 * V + 3] += 1.2f; // p(3) large at the root
    LOGITS[0 * V + 1] += 1.0f; // p(1) large: second sibling matters (renormalisation)
    LOGITS[1 * V + 2] += 0.8f;
    LOGITS[1 * V + 4] += 0.8f;
    hass_sampler s = {0.7f, 6, 0.97f};
    enum { N = 300000 };
    counts c;
    run(t, &s, N, 12345, &c);
    double r1 = ratio(c.x1, N, &s, 0);
    CHECK("lossless_first_token", r1 < 1.0, "chi2/crit %.3f", r1);
    double r2 = ratio(c.x2_after3, c.n3, &s, 1);
    CHECK("lossless_after_accepted_node", c.n3 > 1000 && r2 < 1.0, "chi2/crit %.3f (n %lld)", r2,
          (long long)c.n3);
    double r3 = ratio(c.x2_after1, c.n1, &s, 2);
    CHECK("lossless_leaf_bonus", c.n1 > 1000 && r3 < 1.0, "chi2/crit %.3f (n %lld)", r3,
          (long long)c.n1);
    double r4 = ratio(c.x3_after34, c.n34, &s, 6);
    CHECK("lossless_depth3", c.n34 > 1000 && r4 < 1.0, "chi2/crit %.3f (n %lld)", r4,
          (long long)c.n34);
    // any other seed gives the same verdict; the same seed gives the same counts
    counts c2;
    run(t, &s, 1000, 12345, &c2);
    counts c3;
    run(t, &s, 1000, 12345, &c3);
    CHECK("stochastic_deterministic_seed", memcmp(&c2, &c3, sizeof c2) == 0, "counts differ");

    // break it: no renormalisation of the residual -> the first token is off
    hass_accept_fault = 1;
    run(t, &s, N, 12345, &c);
    double b1 = ratio(c.x1, N, &s, 0);
    CHECK("detects_missing_renormalisation", b1 > 1.0, "chi2/crit %.3f", b1);
    // break it: leaf bonus without temperature/top-k/top-p -> the bonus after a leaf is off
    hass_accept_fault = 2;
    run(t, &s, N, 12345, &c);
    double b3 = ratio(c.x2_after1, c.n1, &s, 2);
    CHECK("detects_bonus_without_processor", b3 > 1.0, "chi2/crit %.3f", b3);
    hass_accept_fault = 0;
}

// A row provider that serves rows of LOGITS and records which nodes were asked for.
typedef struct lazy {
    int asked[NN], n_asked, fail_at;
} lazy;

static hass_err lazy_row(void *ctx, int u, int V_, const float **row) {
    lazy *l = ctx;
    if (u == l->fail_at) return hass_seterr(HASS_EIO, "row %d unavailable", u);
    l->asked[l->n_asked++] = u;
    *row = LOGITS + (size_t)u * V_;
    return HASS_OK;
}

// The on-demand walks give the dense result bit for bit (same uniforms), ask only for the
// nodes of the path plus the stopping node, and pass an error through.
static void test_rows(hass_tree *t) {
    hass_sampler samplers[3] = {{0.f, 0, 1.f}, {1.f, 0, 1.f}, {0.7f, 3, 0.9f}};
    int same = 1, minimal = 1;
    for (int si = 0; si < 3; si++)
        for (uint64_t seed = 1; seed <= 300; seed++) {
            hass_rng r1, r2;
            hass_rng_seed(&r1, seed), hass_rng_seed(&r2, seed);
            float p1[V], p2[V];
            hass_accept_result a, b;
            lazy l = {.fail_at = -1};
            hass_accept_sample(t, LOGITS, V, &samplers[si], &r1, p1, &a);
            hass_err e = hass_accept_sample_rows(t, lazy_row, &l, V, &samplers[si], &r2, p2, &b);
            same &= !e && a.n_tokens == b.n_tokens && !memcmp(a.tokens, b.tokens, sizeof(int32_t) * a.n_tokens) &&
                    !memcmp(a.path, b.path, sizeof(int32_t) * (a.n_acc + 1));
            minimal &= l.n_asked == b.n_acc + 1;
            for (int k = 0; k <= b.n_acc && k < l.n_asked; k++) minimal &= l.asked[k] == b.path[k];
        }
    CHECK("rows_equal_dense", same, "a lazy walk differs from the dense one");
    CHECK("rows_only_path_nodes", minimal, "asked for nodes off the path");
    lazy l = {.fail_at = 0};
    hass_accept_result r;
    CHECK("rows_error_passed", hass_accept_greedy_rows(t, lazy_row, &l, V, &r) == HASS_EIO, "no error");
}

int main(void) {
    hass_tree *t = make_tree();
    CHECK("tree_set", t != NULL, "%s", hass_errmsg());
    if (!t) UNIT_DONE();
    test_greedy(t);
    test_stochastic(t);
    test_rows(t);
    hass_tree_cfg cfg = {4, 4, 4};
    hass_err err;
    hass_tree *bad = hass_tree_new(&cfg, &err);
    int32_t tk[3] = {1, 2, 3}, pr[3] = {-1, 2, 0};
    CHECK("tree_set_rejects_forward_parent", hass_tree_set(bad, 3, tk, pr) == HASS_EFORMAT,
          "accepted parent after child");
    hass_tree_free(bad);
    hass_tree_free(t);
    UNIT_DONE();
}
