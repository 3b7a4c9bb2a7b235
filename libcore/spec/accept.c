// accept.c: greedy and recursive-rejection acceptance of a draft tree (see accept.h).
#include "accept.h"

#include <math.h>
#include <string.h>

int hass_accept_fault = 0;

// Row u of a dense (n, V) logits matrix (the row provider of the matrix entry points).
static hass_err dense_row(void *ctx, int u, int V, const float **row) {
    *row = (const float *)ctx + (size_t)u * V;
    return HASS_OK;
}

// Greedy acceptance over a dense logits matrix.
void hass_accept_greedy(const hass_tree *t, const float *logits, int V, hass_accept_result *res) {
    hass_accept_greedy_rows(t, dense_row, (void *)logits, V, res);
}

// Greedy walk: follow the child equal to the argmax; bonus = the argmax where none matches.
hass_err hass_accept_greedy_rows(const hass_tree *t, hass_accept_row_fn row, void *ctx, int V,
                                 hass_accept_result *res) {
    int u = 0;
    res->n_acc = 0;
    res->path[0] = 0;
    for (;;) {
        const float *lu;
        hass_err e = row(ctx, u, V, &lu);
        if (e) return e;
        int32_t a = hass_sample_argmax(lu, V);
        int next = -1;
        for (int c = t->first_child[u]; c >= 0; c = t->next_sibling[c])
            if (t->tok[c] == a) { next = c; break; }
        if (next < 0) {
            res->bonus = a;
            break;
        }
        u = next;
        res->tokens[res->n_acc] = a;
        res->path[++res->n_acc] = u;
    }
    res->tokens[res->n_acc] = res->bonus;
    res->n_tokens = res->n_acc + 1;
    return HASS_OK;
}

// Softmax at temperature 1 without any filtering (only used by the fault hook).
static void plain_softmax(const float *l, int V, float *p) {
    hass_sampler one = {1.f, 0, 1.f};
    hass_sampler_probs(&one, l, V, p);
}

// Stochastic acceptance over a dense logits matrix.
void hass_accept_sample(const hass_tree *t, const float *logits, int V, const hass_sampler *s,
                        hass_rng *rng, float *probs, hass_accept_result *res) {
    hass_accept_sample_rows(t, dense_row, (void *)logits, V, s, rng, probs, res);
}

// Recursive rejection over siblings with q = 1 (see accept.h).
hass_err hass_accept_sample_rows(const hass_tree *t, hass_accept_row_fn row, void *ctx, int V,
                                 const hass_sampler *s, hass_rng *rng, float *probs,
                                 hass_accept_result *res) {
    if (hass_sampler_greedy(s)) return hass_accept_greedy_rows(t, row, ctx, V, res);
    int u = 0;
    res->n_acc = 0;
    res->path[0] = 0;
    for (;;) {
        const float *lu;
        hass_err e = row(ctx, u, V, &lu);
        if (e) return e;
        if (t->first_child[u] < 0) {
            // leaf: bonus from the fresh processed distribution
            if (hass_accept_fault & 2) plain_softmax(lu, V, probs);
            else hass_sampler_probs(s, lu, V, probs);
            res->bonus = hass_sample_probs(probs, V, hass_rng_uniform(rng));
            break;
        }
        hass_sampler_probs(s, lu, V, probs);
        int next = -1;
        int32_t tried[HASS_TREE_MAX_TOTAL];
        int n_tried = 0;
        for (int c = t->first_child[u]; c >= 0; c = t->next_sibling[c]) {
            int32_t y = t->tok[c];
            if (y < 0 || y >= V) continue;
            int dup = 0;
            for (int k = 0; k < n_tried; k++)
                if (tried[k] == y) { dup = 1; break; }
            if (dup) continue;
            tried[n_tried++] = y;
            double r = hass_rng_uniform(rng);
            if (r < probs[y]) { next = c; break; }
            probs[y] = 0.f;
            if (!(hass_accept_fault & 1)) {
                double sum = 0.0;
                for (int i = 0; i < V; i++) sum += probs[i];
                if (sum > 0.0)
                    for (int i = 0; i < V; i++) probs[i] = (float)(probs[i] / sum);
            }
        }
        if (next < 0) {
            // every child rejected: bonus from the residual
            int32_t b = hass_sample_probs(probs, V, hass_rng_uniform(rng));
            if (b < 0) { // the residual lost all mass to rounding: fall back to fresh p
                hass_sampler_probs(s, lu, V, probs);
                b = hass_sample_argmax(probs, V);
            }
            res->bonus = b;
            break;
        }
        u = next;
        res->tokens[res->n_acc] = t->tok[u];
        res->path[++res->n_acc] = u;
    }
    res->tokens[res->n_acc] = res->bonus;
    res->n_tokens = res->n_acc + 1;
    return HASS_OK;
}
