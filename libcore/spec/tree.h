// tree.h: EAGLE-2 dynamic draft tree bookkeeping (SPEC-HASS.md section 6), independent of the
// model: the drafter feeds it log-probabilities, it keeps candidates, beams, the draft attention
// ancestry, and finally reranks into the tree that the target verifies.
//
// Words: K = top_k; "levels" = tree depth below the root (paper: 6); the drafter does
// levels - 1 expansion steps after level 1. Candidates have flat indices: level 1 is 0..K-1,
// expansion step i puts the child j of beam row r at K + i*K*K + r*K + j. Scores are cumulative
// draft log-probabilities. Every ranking (level-1 top-K, beam, rerank) breaks ties by the lower
// flat index (pitfall 19), so a parent always ranks before its children and the tree is
// deterministic.
//
// Use per cycle:
//   hass_tree_begin(t, root, lp_last, V);          // level 1 = top-K of the catch-up output
//   for (i = 0; i < levels - 1; i++) {
//       // forward the n_beam rows: token beam_tok[r], input feature = output row beam_src[r]
//       // of the previous draft forward (-1: the catch-up output), all at position n_c + i,
//       // attending to the stable KV and to scratch entries e with beam_mask[r*mask_w + e]
//       // (the row's own entry is i*K + r)
//       hass_tree_expand(t, lp, V);                 // lp: (n_beam, V) log-probs of the outputs
//   }
//   hass_tree_finish(t);                            // -> n, tok, parent, depth, mask, retrieve
// Drafters that already have each row's top-k (ranked on a device, or over a draft vocabulary)
// call hass_tree_begin_k / hass_tree_expand_k with those lists instead: the same tree, no
// whole-vocabulary rows.
#ifndef HASS_TREE_H
#define HASS_TREE_H

#include "hass.h"

typedef struct hass_tree_cfg {
    int n_total; // tree tokens including the root (paper 60)
    int levels;  // depth below the root (paper 6)
    int top_k;   // children per expanded node and beam width (paper 10)
} hass_tree_cfg;

#define HASS_TREE_MAX_TOTAL 1024
#define HASS_TREE_MAX_LEVELS 32
#define HASS_TREE_MAX_TOPK 64

typedef struct hass_tree {
    hass_tree_cfg cfg;
    // candidates
    int n_cand;           // filled so far
    int cap_cand;         // K + (levels-1)*K*K
    int32_t *cand_tok;    // (cap_cand)
    float *cand_score;    // (cap_cand) cumulative log-prob
    int32_t *cand_parent; // (cap_cand) flat index of the parent, -1 = root
    // beam (the rows the drafter forwards next)
    int step;           // expansion steps done
    int n_beam;         // rows in the beam (<= K)
    int mask_w;         // K * (levels - 1) scratch entries at most (at least K)
    int32_t *beam_flat; // (K) flat candidate index of each row
    int32_t *beam_tok;  // (K) token of each row
    int32_t *beam_src;  // (K) row of the previous draft forward whose output feeds this row (-1 = catch-up output)
    uint8_t *beam_mask; // (K, mask_w) scratch entries each row attends to (ancestors and self)
    uint8_t *beam_mask_old; // (K, mask_w) work copy
    // the finished tree
    int n;                 // nodes including the root
    int max_depth;         // deepest level present
    int32_t *tok;          // (n_total) token per node, node 0 = root
    int32_t *parent;       // (n_total) parent node, -1 for the root
    int32_t *depth;        // (n_total) 0 for the root
    int32_t *node_flat;    // (n_total) candidate flat index per node (-1 for the root)
    uint8_t *mask;         // (n_total, n_total) mask[j*n + a] = 1 when a is j or an ancestor of j
    int32_t *first_child;  // (n_total) lowest-index child, -1 if none
    int32_t *next_sibling; // (n_total) next child of the same parent by index, -1 if none
    int n_leaves;          // rows of retrieve
    int32_t *retrieve;     // (n_total, levels + 1) root->leaf node paths, -1 padded, width max_depth+1
    int32_t *scratch_i;    // (cap_cand) work
    float *scratch_f;      // (cap_cand) work
} hass_tree;

// Check a configuration (ranges above); HASS_EINVAL with a message naming the bad field.
hass_err hass_tree_cfg_check(const hass_tree_cfg *cfg);
// New tree for cfg; NULL and *err on bad configuration or memory.
hass_tree *hass_tree_new(const hass_tree_cfg *cfg, hass_err *err);
// Free (NULL ok).
void hass_tree_free(hass_tree *t);

// Start a cycle: root token and the draft log-probs after the catch-up (V values).
void hass_tree_begin(hass_tree *t, int32_t root, const float *lp, // (V)
                     int V);
// The same from the root row's top-k list: ids best first (ties by lower id), lp their
// log-probs; the first min(k, top_k) are used. Drafters that rank on the device pass these.
void hass_tree_begin_k(hass_tree *t, int32_t root, const int32_t *ids, // (k)
                       const float *lp,                                // (k)
                       int k);
// Whether another expansion step is due (step < levels - 1).
int hass_tree_want_expand(const hass_tree *t);
// Add the children of the current beam from its rows' log-probs and pick the next beam.
void hass_tree_expand(hass_tree *t, const float *lp, // (n_beam, V)
                      int V);
// The same from the beam rows' top-k lists: row r's k entries at ids + r * stride and
// lp + r * stride, best first (ties by lower id); as hass_tree_expand on rows whose top-k they are.
void hass_tree_expand_k(hass_tree *t, const int32_t *ids, // (n_beam, stride)
                        const float *lp,                  // (n_beam, stride)
                        int stride, int k);
// Rerank, sort, and build parent, depth, mask, children lists and retrieve rows.
void hass_tree_finish(hass_tree *t);
// Depth, tree mask, children lists and retrieve rows from t->n, tok and parent (parents first).
void hass_tree_index(hass_tree *t);
// Load a tree from n tokens and parents (parent[0] = -1, parent[j] < j); checks the shape
// against the configuration: HASS_EFORMAT / HASS_ERANGE with a message.
hass_err hass_tree_set(hass_tree *t, int n, const int32_t *tok, // (n)
                       const int32_t *parent);                   // (n)
// Width of a retrieve row (max_depth + 1).
static inline int hass_tree_retrieve_w(const hass_tree *t) { return t->max_depth + 1; }

#endif
