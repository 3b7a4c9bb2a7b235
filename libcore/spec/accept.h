// accept.h: verification of a draft tree against the target's logits at every node
// (SPEC-HASS.md section 7).
//
// Greedy (T = 0): from the root, move to the child whose token equals the target argmax at the
// current node, until none does; the bonus token is that argmax. Output equals plain greedy
// decoding exactly.
//
// Stochastic (T > 0), recursive rejection with q = 1: at the current node u, p = the processed
// target distribution (temperature, top-k, top-p; sample.h). Children are tried in ascending
// node index (descending draft score), skipping tokens already tried at u: draw r ~ U[0,1);
// accept the child y if r < p[y]; otherwise set p[y] = 0, renormalise, try the next sibling.
// If every child is rejected, the bonus is sampled from the residual p; if u is a leaf (or all
// of the walk was accepted) the bonus is sampled from the processed p at u (pitfall 23: the
// processor applies to the bonus distribution on every branch). The output is distributed
// exactly as sampling the target token by token.
#ifndef HASS_ACCEPT_H
#define HASS_ACCEPT_H

#include "sample.h"
#include "tree.h"

typedef struct hass_accept_result {
    int n_acc;                                // accepted draft tokens (root excluded)
    int32_t path[HASS_TREE_MAX_LEVELS + 1];   // node indices: path[0] = 0 (root) .. path[n_acc]
    int32_t tokens[HASS_TREE_MAX_LEVELS + 1]; // tokens to commit: the accepted drafts, then bonus
    int n_tokens;                             // n_acc + 1
    int32_t bonus;                            // next root token
} hass_accept_result;

// Greedy acceptance over logits of the t->n tree nodes.
void hass_accept_greedy(const hass_tree *t,
                        const float *logits, // (t->n, V)
                        int V, hass_accept_result *res);

// Stochastic acceptance (recursive rejection, q = 1) with the processor s applied to every
// distribution. probs is scratch of V floats. Uses hass_accept_greedy when s is greedy.
void hass_accept_sample(const hass_tree *t,
                        const float *logits, // (t->n, V)
                        int V, const hass_sampler *s, hass_rng *rng,
                        float *probs, // (V) scratch
                        hass_accept_result *res);

// The same walks with the logits of a node produced on demand: row(ctx, u, V, &p) points p at
// node u's V logits (valid until the next call) or returns an error, which the walk returns. Both
// walks read only the nodes they visit (the accepted path and the node where it stops), so a
// caller can run the LM head on those rows alone; the result is identical to the dense form.
typedef hass_err (*hass_accept_row_fn)(void *ctx, int u, int V, const float **row);
hass_err hass_accept_greedy_rows(const hass_tree *t, hass_accept_row_fn row, void *ctx, int V,
                                 hass_accept_result *res);
hass_err hass_accept_sample_rows(const hass_tree *t, hass_accept_row_fn row, void *ctx, int V,
                                 const hass_sampler *s, hass_rng *rng,
                                 float *probs, // (V) scratch
                                 hass_accept_result *res);

// Test hook: deliberately broken variants, to show the distribution tests catch them.
// Bit 1: do not renormalise the residual after a rejection. Bit 2: sample the bonus at a leaf
// from softmax(logits) without the processor (the HASS-code bug). 0 in normal use.
extern int hass_accept_fault;

#endif
