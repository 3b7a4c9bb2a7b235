// spec_auto.c: --tree auto's cost and acceptance model and its choice (spec_auto.h).
#include "spec_auto.h"

#include <string.h>

// Defaults before anything is measured.
void hass_auto_init(hass_auto *a) {
    memset(a, 0, sizeof(*a));
    // SmolLM2 on the 2-core CPU: one LM-head row alone 1.85 ms, 0.8 ms per row of a batch
    a->row1_ms = 2.3, a->rowk_ms = 1.0, a->tok_cycle = 2.0;
    a->dr_c0 = a->dr_row = 1.3, a->dr_lvl = 0.0, a->dr_scale = 1.0;
}

// Candidate budgets (plain decoding first) and the exploration budget.
void hass_auto_candidates(hass_auto *a, const hass_tree_cfg *mx) {
    static const int ks[] = {1, 2, 3, 4, 6, 8, 10, 16};
    a->n_cand = 0;
    a->cand[a->n_cand++] = (hass_tree_cfg){1, 1, 1};
    for (int L = 1; L <= mx->levels; L++) {
        for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
            int K = ks[i];
            if (K > mx->top_k || a->n_cand >= HASS_AUTO_MAX_CAND) continue;
            int N = 1 + K + (L - 1) * K;
            if (N > mx->n_total) N = mx->n_total;
            if (N < L + 1 || N > (a->n_cap > 0 ? a->n_cap : mx->n_total)) continue;
            a->cand[a->n_cand++] = (hass_tree_cfg){N, L, K};
        }
    }
    // the last candidate: they come by depth, then top-k, and a wider top-k never has fewer tokens
    a->explore = a->cand[a->n_cand - 1];
}

// Whether verifying n rows is cheaper with the LM head on the walk_rows rows alone.
int hass_auto_lazy_wins(const hass_auto *a, int n, double walk_rows) {
    return n > 1 && walk_rows * a->row1_ms < n * a->rowk_ms;
}

// Verification's LM-head cost for n tree rows, the cheaper way.
static double lm_cost(const hass_auto *a, int n, double walk_rows) {
    return hass_auto_lazy_wins(a, n, walk_rows) ? walk_rows * a->row1_ms : n * a->rowk_ms;
}

// Body cost (target forward without the LM head) of n tree tokens: linear between the curve's
// points, proportional past the last one, n when nothing was measured.
static double verify_cost(const hass_auto *a, int n) {
    if (a->curve_n == 0) return n;
    for (int i = 0; i < a->curve_n; i++) {
        if (n <= a->curve_tok[i]) {
            if (i == 0) return a->curve_ms[0];
            double f = (double)(n - a->curve_tok[i - 1]) / (a->curve_tok[i] - a->curve_tok[i - 1]);
            return a->curve_ms[i - 1] + f * (a->curve_ms[i] - a->curve_ms[i - 1]);
        }
    }
    int l = a->curve_n - 1;
    return a->curve_ms[l] * n / a->curve_tok[l];
}

// The drafter's modelled cost of budget c.
double hass_auto_draft_ms(const hass_auto *a, const hass_tree_cfg *c) {
    return a->dr_c0 + (c->levels - 1) * (a->dr_lvl + c->top_k * a->dr_row);
}

// Estimated acceptance rate at depth d with K siblings drafted: at T = 0 at most one sibling is
// accepted, so the rate is the sum over ranks r < K of P(rank r is the accepted one), each
// estimated from the cycles that drafted rank r there (a narrow tree says nothing about rank 2).
// Priors (Beta, weight 1): rank 0 borrows the level above's rank-0 rate (0.5 at level 1), rank r
// half of rank r - 1's estimate.
double hass_auto_accept(const hass_auto *a, int d, int K) {
    double p0_prev = 0.5, r = 0.5;
    for (int j = 1; j <= d && j <= HASS_TREE_MAX_LEVELS; j++) {
        double prior = p0_prev, sum = 0.0;
        for (int k = 0; k < K && k < HASS_TREE_MAX_TOPK; k++) {
            double p = (a->hit[j][k] + prior) / (a->opp[j][k] + 1.0);
            if (k == 0) p0_prev = p;
            sum += p;
            prior = 0.5 * p;
        }
        r = sum < 1.0 ? sum : 1.0;
    }
    return r;
}

// The exploration budget (see spec_auto.h).
hass_tree_cfg hass_auto_explore(const hass_auto *a) {
    const hass_tree_cfg *x = &a->explore;
    int depth = 1;
    double prod = 1.0;
    while (depth < x->levels) {
        prod *= hass_auto_accept(a, depth, x->top_k);
        if (prod < 0.1) break;
        depth++;
    }
    hass_tree_cfg best = a->cand[0];
    for (int i = 1; i < a->n_cand; i++) {
        const hass_tree_cfg *c = &a->cand[i];
        if (c->levels > depth) continue;
        if (c->levels > best.levels || (c->levels == best.levels && c->n_total > best.n_total)) best = *c;
    }
    return best.n_total > 1 ? best : *x;
}

// The budget with the best expected tokens per ms.
hass_tree_cfg hass_auto_choose(const hass_auto *a, double *rate) {
    double best = -1.0;
    hass_tree_cfg pick = a->cand[0];
    for (int i = 0; i < a->n_cand; i++) {
        const hass_tree_cfg *c = &a->cand[i];
        double e_acc = 0.0, prod = 1.0;
        if (c->n_total > 1)
            for (int d = 1; d <= c->levels; d++) {
                prod *= hass_auto_accept(a, d, c->top_k);
                e_acc += prod;
            }
        double draft = c->n_total > 1 ? a->dr_scale * hass_auto_draft_ms(a, c) : 0.0;
        double r = (e_acc + 1.0) / (draft + verify_cost(a, c->n_total) + lm_cost(a, c->n_total, e_acc + 1.0));
        if (r > best * (1.0 + 1e-9)) {
            best = r;
            pick = *c;
        }
    }
    if (rate) *rate = best;
    return pick;
}

// Count one cycle: for each depth d drafted below the path, which sibling ranks were drafted
// and which one (if any) was accepted.
void hass_auto_record(hass_auto *a, const hass_tree *t, const hass_accept_result *r) {
    for (int d = 1; d <= t->max_depth && d <= HASS_TREE_MAX_LEVELS; d++) {
        if (r->n_acc < d - 1) break;
        int u = r->path[d - 1];
        if (t->first_child[u] < 0) break; // nothing drafted below the path node at depth d-1
        int k = 0;
        for (int c = t->first_child[u]; c >= 0 && k < HASS_TREE_MAX_TOPK; c = t->next_sibling[c]) a->opp[d][k++] += 1.0;
        if (r->n_acc >= d) {
            int rank = 0;
            for (int c = t->first_child[u]; c >= 0 && c != r->path[d]; c = t->next_sibling[c]) rank++;
            if (rank < HASS_TREE_MAX_TOPK) a->hit[d][rank] += 1.0;
        }
    }
}
