// spec_auto.h: internal to libcore: --tree auto's model of a cycle (spec.c measures its costs at
// start and counts acceptance as it goes; these functions only compute, so tests can drive them).
//
// Expected tokens per ms of a budget c (n_total N, levels L, top-k K) =
//   (1 + sum over depths d <= L of prod_{j <= d} accept(j, K))
//   / (draft(c) + verify(N) + lm(N)),
// draft(c) = dr_scale * (dr_c0 + (L - 1) * (dr_lvl + K * dr_row)), verify(N) interpolated on the
// measured curve (target forwards of 1, 2, 4, ... tokens), lm(N) the LM head's cost for N rows
// (all at once, or only the rows the acceptance walk reads, whichever is cheaper).
#ifndef HASS_SPEC_AUTO_H
#define HASS_SPEC_AUTO_H

#include "accept.h"
#include "tree.h"

#define HASS_AUTO_MAX_CAND 64 // candidate budgets
#define HASS_AUTO_CURVE 8     // verify-cost curve points

typedef struct hass_auto {
    int curve_n;                           // measured points (0: verify(N) = N)
    int curve_tok[HASS_AUTO_CURVE];        // block sizes, ascending
    double curve_ms[HASS_AUTO_CURVE];      // target forward of that many tokens (ms, no LM head)
    double dr_c0, dr_lvl, dr_row, dr_scale; // drafter cost model (ms) and its tracked scale
    double row1_ms;                        // the target's LM head for one row alone
    double rowk_ms;                        // the same per row inside a batch of rows
    double tok_cycle;                      // tokens per cycle, running mean
    // per depth d and sibling rank r: cycles that drafted rank r below the path node of depth
    // d-1 (rank 0: every cycle that reached a drafted depth d), and those that accepted it
    double opp[HASS_TREE_MAX_LEVELS + 1][HASS_TREE_MAX_TOPK];
    double hit[HASS_TREE_MAX_LEVELS + 1][HASS_TREE_MAX_TOPK];
    int n_cand;                            // candidates, plain decoding (1, 1, 1) first
    hass_tree_cfg cand[HASS_AUTO_MAX_CAND];
    int n_cap;                             // largest tree considered (tokens; 0: no cap)
    hass_tree_cfg explore;                 // the deepest (then widest) candidate
} hass_auto;

// Defaults before anything is measured: a row alone costs 2.3 rows of a batch, 2 tokens a cycle,
// the drafter a batch row per row.
void hass_auto_init(hass_auto *a);
// Candidates within mx (top-k 1, 2, 3, 4, 6, 8, 10, 16 per depth) and a->n_cap, and the
// exploration budget (the last: they come by depth, then top-k, never fewer tokens).
void hass_auto_candidates(hass_auto *a, const hass_tree_cfg *mx);
// Estimated acceptance rate at depth d with K siblings drafted (see spec_auto.c).
double hass_auto_accept(const hass_auto *a, int d, int K);
// Whether verifying n rows is cheaper with the LM head on the walk's rows alone.
int hass_auto_lazy_wins(const hass_auto *a, int n, double walk_rows);
// The drafter's modelled cost of budget c (ms, before the tracked scale).
double hass_auto_draft_ms(const hass_auto *a, const hass_tree_cfg *c);
// The budget with the best expected tokens per ms (*rate, when not NULL).
hass_tree_cfg hass_auto_choose(const hass_auto *a, double *rate);
// The exploration budget: the deepest affordable candidate no deeper than the first level the
// head is expected to reach less than 1 time in 10.
hass_tree_cfg hass_auto_explore(const hass_auto *a);
// Count one cycle's acceptance: tree t, its accepted path r.
void hass_auto_record(hass_auto *a, const hass_tree *t, const hass_accept_result *r);

#endif
