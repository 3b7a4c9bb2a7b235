// tree.c: EAGLE-2 dynamic tree: level-1 top-K, beam expansion with cumulative scores and draft
// ancestry masks, rerank to the best n_total-1 candidates, parents-first order, tree mask,
// depths, children lists and retrieve rows. All rankings break ties by the lower flat index.
#include "tree.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

// Check ranges of a tree configuration.
hass_err hass_tree_cfg_check(const hass_tree_cfg *c) {
    if (c->n_total < 1 || c->n_total > HASS_TREE_MAX_TOTAL)
        return hass_seterr(HASS_EINVAL, "tree: total %d outside [1, %d]", c->n_total,
                           HASS_TREE_MAX_TOTAL);
    if (c->levels < 1 || c->levels > HASS_TREE_MAX_LEVELS)
        return hass_seterr(HASS_EINVAL, "tree: depth %d outside [1, %d]", c->levels,
                           HASS_TREE_MAX_LEVELS);
    if (c->top_k < 1 || c->top_k > HASS_TREE_MAX_TOPK)
        return hass_seterr(HASS_EINVAL, "tree: top-k %d outside [1, %d]", c->top_k,
                           HASS_TREE_MAX_TOPK);
    return HASS_OK;
}

// Allocate every buffer for the largest tree of cfg.
hass_tree *hass_tree_new(const hass_tree_cfg *cfg, hass_err *err) {
    hass_err e = hass_tree_cfg_check(cfg);
    if (e) {
        if (err) *err = e;
        return NULL;
    }
    hass_tree *t = calloc(1, sizeof(*t));
    if (!t) goto oom;
    t->cfg = *cfg;
    int K = cfg->top_k, D = cfg->levels - 1, N = cfg->n_total;
    t->cap_cand = K + D * K * K;
    t->mask_w = K * (D > 0 ? D : 1);
    t->cand_tok = malloc(sizeof(int32_t) * t->cap_cand);
    t->cand_score = malloc(sizeof(float) * t->cap_cand);
    t->cand_parent = malloc(sizeof(int32_t) * t->cap_cand);
    t->scratch_i = malloc(sizeof(int32_t) * t->cap_cand);
    t->scratch_f = malloc(sizeof(float) * t->cap_cand);
    t->beam_flat = malloc(sizeof(int32_t) * K);
    t->beam_tok = malloc(sizeof(int32_t) * K);
    t->beam_src = malloc(sizeof(int32_t) * K);
    t->beam_mask = calloc((size_t)K * t->mask_w, 1);
    t->beam_mask_old = calloc((size_t)K * t->mask_w, 1);
    t->tok = malloc(sizeof(int32_t) * N);
    t->parent = malloc(sizeof(int32_t) * N);
    t->depth = malloc(sizeof(int32_t) * N);
    t->node_flat = malloc(sizeof(int32_t) * N);
    t->first_child = malloc(sizeof(int32_t) * N);
    t->next_sibling = malloc(sizeof(int32_t) * N);
    t->mask = calloc((size_t)N * N, 1);
    t->retrieve = malloc(sizeof(int32_t) * (size_t)N * (cfg->levels + 1));
    if (!t->cand_tok || !t->cand_score || !t->cand_parent || !t->scratch_i || !t->scratch_f ||
        !t->beam_flat || !t->beam_tok || !t->beam_src || !t->beam_mask || !t->beam_mask_old || !t->tok ||
        !t->parent || !t->depth || !t->node_flat || !t->first_child || !t->next_sibling ||
        !t->mask || !t->retrieve)
        goto oom;
    return t;
oom:
    hass_tree_free(t);
    if (err) *err = hass_seterr(HASS_ENOMEM, "tree: out of memory");
    return NULL;
}

// Free every buffer.
void hass_tree_free(hass_tree *t) {
    if (!t) return;
    free(t->cand_tok); free(t->cand_score); free(t->cand_parent);
    free(t->scratch_i); free(t->scratch_f);
    free(t->beam_flat); free(t->beam_tok); free(t->beam_src); free(t->beam_mask); free(t->beam_mask_old);
    free(t->tok); free(t->parent); free(t->depth); free(t->node_flat);
    free(t->first_child); free(t->next_sibling); free(t->mask); free(t->retrieve);
    free(t);
}

// Level 1: the top-K tokens of lp become candidates 0..K-1 and the first beam.
void hass_tree_begin(hass_tree *t, int32_t root, const float *lp, int V) {
    int K = t->cfg.top_k < V ? t->cfg.top_k : V;
    int32_t ids[HASS_TREE_MAX_TOPK];
    float vals[HASS_TREE_MAX_TOPK];
    hass_topk(lp, V, K, ids, vals);
    hass_tree_begin_k(t, root, ids, vals, K);
}

// Level 1 from the root row's top-k list (best first, ties by lower id).
void hass_tree_begin_k(hass_tree *t, int32_t root, const int32_t *ids, const float *lp, int k) {
    int K = t->cfg.top_k < k ? t->cfg.top_k : k;
    t->n = 0;
    t->step = 0;
    t->tok[0] = root;
    for (int j = 0; j < K; j++) {
        t->cand_tok[j] = ids[j];
        t->cand_score[j] = lp[j];
        t->cand_parent[j] = -1;
    }
    t->n_cand = K;
    t->n_beam = K;
    memset(t->beam_mask, 0, (size_t)t->cfg.top_k * t->mask_w);
    for (int r = 0; r < K; r++) {
        t->beam_flat[r] = r;
        t->beam_tok[r] = t->cand_tok[r];
        t->beam_src[r] = -1;
        t->beam_mask[(size_t)r * t->mask_w + r] = 1;
    }
}

// Whether another expansion step is due.
int hass_tree_want_expand(const hass_tree *t) { return t->step < t->cfg.levels - 1; }

// Clear the K x K child slots of this expansion (rows with fewer than K children keep -inf).
static void expand_clear(hass_tree *t, int base) {
    int K = t->cfg.top_k;
    for (int f = base; f < base + K * K; f++) {
        t->cand_tok[f] = 0;
        t->cand_score[f] = -INFINITY;
        t->cand_parent[f] = -2; // not a real candidate
    }
}

// Beam row r's children from its top-kc list: slots base + r*K + j, cumulative scores.
static void expand_row(hass_tree *t, int base, int r, const int32_t *ids, const float *vals, int kc) {
    int K = t->cfg.top_k;
    float ps = t->cand_score[t->beam_flat[r]];
    for (int j = 0; j < kc && j < K; j++) {
        int f = base + r * K + j;
        float s = ps + vals[j];
        t->cand_tok[f] = ids[j];
        t->cand_score[f] = s < ps ? s : ps; // a child never outranks its parent
        t->cand_parent[f] = t->beam_flat[r];
    }
}

// After the children are in: the next beam = the K best children (ties: lower flat index).
static void expand_finish(hass_tree *t, int base) {
    int K = t->cfg.top_k, i = t->step;
    t->n_cand = base + K * K;
    t->step++;
    int32_t pick[HASS_TREE_MAX_TOPK];
    int nb = 0;
    hass_topk(t->cand_score + base, K * K, K, pick, NULL);
    for (int b = 0; b < K; b++)
        if (t->cand_parent[base + pick[b]] != -2) pick[nb++] = pick[b];
    uint8_t *old = t->beam_mask_old;
    size_t mw = (size_t)t->mask_w;
    memcpy(old, t->beam_mask, (size_t)K * mw);
    memset(t->beam_mask, 0, (size_t)K * mw);
    for (int b = 0; b < nb; b++) {
        int f = base + pick[b], r = pick[b] / K;
        t->beam_flat[b] = f;
        t->beam_tok[b] = t->cand_tok[f];
        t->beam_src[b] = r;
        if ((size_t)(i + 1) * K + b < mw) {
            memcpy(t->beam_mask + b * mw, old + r * mw, mw);
            t->beam_mask[b * mw + (size_t)(i + 1) * K + b] = 1;
        }
    }
    t->n_beam = nb;
}

// Children of the beam: top-K per row with cumulative scores; next beam = best K of them.
void hass_tree_expand(hass_tree *t, const float *lp, int V) {
    HASS_ASSERT(hass_tree_want_expand(t));
    int K = t->cfg.top_k, kc = K < V ? K : V, base = t->n_cand;
    int32_t ids[HASS_TREE_MAX_TOPK];
    float vals[HASS_TREE_MAX_TOPK];
    expand_clear(t, base);
    for (int r = 0; r < t->n_beam; r++) {
        hass_topk(lp + (size_t)r * V, V, kc, ids, vals);
        expand_row(t, base, r, ids, vals, kc);
    }
    expand_finish(t, base);
}

// The same from the beam rows' top-k lists (row r at ids/lp + r * stride, k entries each).
void hass_tree_expand_k(hass_tree *t, const int32_t *ids, const float *lp, int stride, int k) {
    HASS_ASSERT(hass_tree_want_expand(t));
    int base = t->n_cand;
    expand_clear(t, base);
    for (int r = 0; r < t->n_beam; r++)
        expand_row(t, base, r, ids + (size_t)r * stride, lp + (size_t)r * stride, k);
    expand_finish(t, base);
}

// Ascending int comparator.
static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

// Rerank into the final tree (see tree.h).
void hass_tree_finish(hass_tree *t) {
    int M = t->cfg.n_total - 1;
    // only real candidates compete
    int n_real = 0;
    for (int f = 0; f < t->n_cand; f++)
        if (t->cand_parent[f] != -2 && t->cand_score[f] > -INFINITY) n_real++;
    if (M > n_real) M = n_real;
    int32_t *chosen = t->scratch_i;
    if (M > 0) {
        // cand_parent == -2 entries have score -inf and rank after every real one
        hass_topk(t->cand_score, t->n_cand, M, chosen, t->scratch_f);
        qsort(chosen, (size_t)M, sizeof(int32_t), cmp_i32);
    }
    int N = M + 1;
    t->n = N;
    t->parent[0] = -1;
    t->depth[0] = 0;
    t->node_flat[0] = -1;
    for (int j = 0; j < M; j++) {
        int f = chosen[j];
        t->node_flat[j + 1] = f;
        t->tok[j + 1] = t->cand_tok[f];
        int pf = t->cand_parent[f], p = 0;
        if (pf >= 0) {
            // binary search of the parent's flat index among the chosen (it is always there)
            int lo = 0, hi = j - 1;
            p = -1;
            while (lo <= hi) {
                int mid = (lo + hi) / 2;
                if (chosen[mid] == pf) { p = mid + 1; break; }
                if (chosen[mid] < pf) lo = mid + 1; else hi = mid - 1;
            }
            HASS_ASSERT(p > 0);
        }
        t->parent[j + 1] = p;
    }
    hass_tree_index(t);
}

// Depth, tree mask, children lists and retrieve rows from n, tok and parent.
void hass_tree_index(hass_tree *t) {
    int N = t->n;
    // mask rows, depth, children lists
    memset(t->mask, 0, (size_t)N * N);
    t->max_depth = 0;
    for (int j = 0; j < N; j++) {
        t->first_child[j] = -1;
        t->next_sibling[j] = -1;
    }
    int32_t last_child[HASS_TREE_MAX_TOTAL];
    for (int j = 0; j < N; j++) last_child[j] = -1;
    t->mask[0] = 1;
    for (int j = 1; j < N; j++) {
        int p = t->parent[j];
        memcpy(t->mask + (size_t)j * N, t->mask + (size_t)p * N, (size_t)N);
        t->mask[(size_t)j * N + j] = 1;
        t->depth[j] = t->depth[p] + 1;
        if (t->depth[j] > t->max_depth) t->max_depth = t->depth[j];
        if (last_child[p] < 0) t->first_child[p] = j;
        else t->next_sibling[last_child[p]] = j;
        last_child[p] = j;
    }
    // retrieve rows: one per leaf in ascending node order
    int w = t->max_depth + 1;
    t->n_leaves = 0;
    for (int j = 0; j < N; j++) {
        if (t->first_child[j] >= 0) continue;
        int32_t *row = t->retrieve + (size_t)t->n_leaves * w;
        for (int c = 0; c < w; c++) row[c] = -1;
        for (int a = j; a >= 0; a = t->parent[a]) row[t->depth[a]] = a;
        t->n_leaves++;
    }
}

// Load a tree given as tokens and parents (e.g. received from another process).
hass_err hass_tree_set(hass_tree *t, int n, const int32_t *tok, const int32_t *parent) {
    if (n < 1 || n > t->cfg.n_total)
        return hass_seterr(HASS_ERANGE, "tree: %d nodes, at most %d", n, t->cfg.n_total);
    if (parent[0] != -1) return hass_seterr(HASS_EFORMAT, "tree: node 0 must be the root (parent -1)");
    for (int j = 1; j < n; j++) {
        if (parent[j] < 0 || parent[j] >= j)
            return hass_seterr(HASS_EFORMAT, "tree: node %d has parent %d (must be in [0, %d))",
                               j, parent[j], j);
    }
    int d = 0;
    for (int j = 1; j < n; j++) {
        int dj = 0;
        for (int a = j; a > 0; a = parent[a]) dj++;
        if (dj > d) d = dj;
    }
    if (d > t->cfg.levels)
        return hass_seterr(HASS_ERANGE, "tree: depth %d, at most %d", d, t->cfg.levels);
    t->n = n;
    for (int j = 0; j < n; j++) {
        t->tok[j] = tok[j];
        t->parent[j] = parent[j];
        t->node_flat[j] = -1;
    }
    t->depth[0] = 0;
    hass_tree_index(t);
    return HASS_OK;
}
