// test_spec_auto.c: --tree auto's model (spec_auto.h) on set costs and acceptance counts, no
// timings: the rank-wise acceptance estimate (ranks never drafted borrow priors instead of
// counting as rejections), what a cycle records, and the budget chosen for a CPU-like cost curve
// (a verify of n tokens costs ~n steps) and a GPU-like one (flat), with a weak and a strong head.
#include "spec_auto.h"
#include "unit.h"

// A CPU-like or a GPU-like machine: verify curve, LM head and drafter costs (ms), and the
// candidates of the paper's budget (60 tokens, depth 6, top-k 10) within n_cap tokens.
static void machine(hass_auto *a, int gpu) {
    static const int tok[] = {1, 2, 4, 8, 16, 32, 64};
    static const double cpu[] = {4.2, 5.5, 8.5, 14.3, 28.0, 56.0, 112.0};
    static const double flat[] = {6.0, 6.1, 6.2, 6.4, 6.8, 7.5, 9.0};
    hass_auto_init(a);
    a->curve_n = 7;
    for (int i = 0; i < 7; i++) a->curve_tok[i] = tok[i], a->curve_ms[i] = gpu ? flat[i] : cpu[i];
    a->rowk_ms = gpu ? 0.01 : 0.3, a->row1_ms = gpu ? 0.05 : 0.6;
    a->dr_c0 = gpu ? 0.3 : 0.8, a->dr_lvl = gpu ? 0.2 : 0.5, a->dr_row = gpu ? 0.01 : 0.2;
    a->n_cap = gpu ? 60 : 16;
    hass_tree_cfg mx = {60, 6, 10};
    hass_auto_candidates(a, &mx);
}

// n cycles that drafted the K best siblings at depth d and accepted rank r in rate[r] of them.
static void observe(hass_auto *a, int d, int K, const double *rate, int n) {
    for (int k = 0; k < K; k++) {
        a->opp[d][k] += n;
        a->hit[d][k] += rate[k] * n;
    }
}

// The same head at every depth of the paper's budget, the widest tree drafted.
static void head(hass_auto *a, double r0, double r1, double rest) {
    double rate[10] = {r0, r1};
    for (int k = 2; k < 10; k++) rate[k] = rest;
    for (int d = 1; d <= 6; d++) observe(a, d, 10, rate, 1000);
}

// Priors, and ranks a narrow tree never drafted.
static void test_accept(void) {
    hass_auto a;
    hass_auto_init(&a);
    CHECK("auto_prior_rank0", hass_auto_accept(&a, 1, 1) == 0.5, "%g", hass_auto_accept(&a, 1, 1));
    CHECK("auto_prior_ranks", hass_auto_accept(&a, 1, 3) == 0.875, "%g", hass_auto_accept(&a, 1, 3));
    double r[3] = {0.4, 0.0, 0.0};
    observe(&a, 1, 1, r, 1000); // chains only: ranks 1 and 2 never drafted
    double p1 = hass_auto_accept(&a, 1, 1), p3 = hass_auto_accept(&a, 1, 3);
    CHECK("auto_chain_rate", fabs(p1 - 0.4) < 1e-3, "%g", p1);
    CHECK("auto_undrafted_ranks_use_priors", fabs(p3 - 0.7) < 2e-3, "%g (0.4 + 0.2 + 0.1)", p3);
    double w[3] = {0.4, 0.05, 0.0};
    observe(&a, 1, 3, w, 1000); // now drafted: rank 1 lands 5 %, rank 2 never
    p3 = hass_auto_accept(&a, 1, 3);
    CHECK("auto_drafted_ranks_counted", fabs(p3 - 0.45) < 2e-3, "%g (0.4 + 0.05 + 0)", p3);
    // depth 2 with nothing seen: rank 0's prior is depth 1's rank-0 rate
    double p21 = hass_auto_accept(&a, 2, 1);
    CHECK("auto_depth_prior", fabs(p21 - 0.4) < 2e-3, "%g", p21);
}

// What one cycle records: the siblings drafted below each path node and the accepted rank.
static void test_record(void) {
    hass_auto a;
    hass_auto_init(&a);
    hass_tree_cfg cfg = {8, 3, 3};
    hass_err e;
    hass_tree *t = hass_tree_new(&cfg, &e);
    // root 0; depth 1: 1, 2, 3 (ranks 0, 1, 2); depth 2 below 1: 4, 5
    int32_t tok[6] = {10, 11, 12, 13, 14, 15}, par[6] = {-1, 0, 0, 0, 1, 1};
    CHECK("auto_record_tree", t && hass_tree_set(t, 6, tok, par) == HASS_OK, "%s", hass_errmsg());
    if (!t) return;
    hass_accept_result r1 = {.n_acc = 1, .path = {0, 2}};    // rank 1, nothing below it
    hass_accept_result r2 = {.n_acc = 2, .path = {0, 1, 5}}; // rank 0, then rank 1
    hass_accept_result r0 = {.n_acc = 0, .path = {0}};       // nothing accepted
    hass_auto_record(&a, t, &r1);
    hass_auto_record(&a, t, &r2);
    hass_auto_record(&a, t, &r0);
    CHECK("auto_record_depth1", a.opp[1][0] == 3 && a.opp[1][2] == 3 &&
          a.opp[1][3] == 0 && a.hit[1][0] == 1 && a.hit[1][1] == 1 && a.hit[1][2] == 0,
          "opp %g %g %g hit %g %g %g", a.opp[1][0], a.opp[1][2], a.opp[1][3],
          a.hit[1][0], a.hit[1][1], a.hit[1][2]);
    CHECK("auto_record_depth2", a.opp[2][0] == 1 && a.opp[2][1] == 1 &&
          a.opp[2][2] == 0 && a.hit[2][0] == 0 && a.hit[2][1] == 1,
          "opp %g %g %g hit %g %g", a.opp[2][0], a.opp[2][1], a.opp[2][2],
          a.hit[2][0], a.hit[2][1]);
    hass_tree_free(t);
}

// The chosen budget and the exploration budget per machine and head.
static void test_choose(void) {
    hass_auto a;
    machine(&a, 0);
    head(&a, 0.39, 0.1, 0.05);
    hass_tree_cfg c = hass_auto_choose(&a, NULL);
    CHECK("auto_cpu_weak_head_plain", c.n_total == 1, "picked %d/%d/%d", c.n_total, c.levels, c.top_k);
    hass_tree_cfg x = hass_auto_explore(&a);
    CHECK("auto_cpu_weak_head_explores_deep", x.levels >= 2, "explores %d/%d/%d", x.n_total, x.levels, x.top_k);
    machine(&a, 0);
    head(&a, 0.85, 0.05, 0.0);
    c = hass_auto_choose(&a, NULL);
    CHECK("auto_cpu_strong_head_chain", c.n_total >= 2 && c.n_total <= 4 && c.top_k == 1,
          "picked %d/%d/%d", c.n_total, c.levels, c.top_k);
    machine(&a, 1);
    head(&a, 0.6, 0.15, 0.02);
    c = hass_auto_choose(&a, NULL);
    CHECK("auto_gpu_deep_wide_tree", c.levels >= 3 && c.top_k >= 2, "picked %d/%d/%d", c.n_total,
          c.levels, c.top_k);
    machine(&a, 1);
    head(&a, 0.02, 0.0, 0.0);
    x = hass_auto_explore(&a);
    CHECK("auto_hopeless_head_explores_one_level", x.levels == 1 && x.n_total > 1, "explores %d/%d/%d",
          x.n_total, x.levels, x.top_k);
    c = hass_auto_choose(&a, NULL);
    CHECK("auto_gpu_hopeless_head_plain", c.n_total == 1, "picked %d/%d/%d", c.n_total, c.levels, c.top_k);
}

int main(void) {
    test_accept();
    test_record();
    test_choose();
    UNIT_DONE();
}
