// train_ops.h: forward and backward of the ops that make up HASS draft-head training (f32,
// CPU, fixed reduction order, OpenMP over rows or output features where it helps).
//
// Dimension names: n (positions of one sequence), n_in / n_out (linear in/out features), H
// (n_embd), nh / nkv (query / KV heads), d (head dim), I (n_ff), V (n_vocab), K (top-K).
// Layouts are row-major; a (n, nh, d) tensor is a (n, nh*d) matrix with head-major columns,
// the same layout a (nh*d, H) projection writes.
//
// Conventions: forward functions overwrite their outputs. Backward functions ADD (+=) into
// every gradient they are given and skip a gradient passed as NULL (frozen weights, detached
// inputs), so several paths into one tensor just accumulate. Every sum runs in one fixed order
// whatever the thread count, so results are bit-reproducible.
#ifndef HASS_TRAIN_OPS_H
#define HASS_TRAIN_OPS_H

#include "hass.h"

// ---- linear ----------------------------------------------------------------------------------

// y = x W^T + b (b may be NULL).
void hass_train_ops_linear_fwd(float *y,       // (n, n_out)
                          const float *x, // (n, n_in)
                          const float *w, // (n_out, n_in)
                          const float *b, // (n_out) or NULL
                          int n, int n_in, int n_out);
// dx += dy W; dw += dy^T x; db += sum_rows dy (each gradient may be NULL).
void hass_train_ops_linear_bwd(float *dx,       // (n, n_in) or NULL
                          float *dw,       // (n_out, n_in) or NULL
                          float *db,       // (n_out) or NULL
                          const float *dy, // (n, n_out)
                          const float *x,  // (n, n_in)
                          const float *w,  // (n_out, n_in)
                          int n, int n_in, int n_out);

// The same with caller scratch ws of n * n_out floats (needed when dw is given).
void hass_train_ops_linear_bwd_ws(float *dx, float *dw, float *db, const float *dy, const float *x,
                             const float *w, int n, int n_in, int n_out, float *ws);

// ---- RMSNorm ---------------------------------------------------------------------------------

// y = x * rstd * w with rstd = 1/sqrt(mean(x^2) + eps); saves rstd for the backward.
void hass_train_ops_rmsnorm_fwd(float *y,       // (n, dim)
                           float *rstd,    // (n)
                           const float *x, // (n, dim)
                           const float *w, // (dim)
                           int n, int dim, float eps);
// dx += d/dx; dw += d/dw (either may be NULL).
void hass_train_ops_rmsnorm_bwd(float *dx,         // (n, dim) or NULL
                           float *dw,         // (dim) or NULL
                           const float *dy,   // (n, dim)
                           const float *x,    // (n, dim)
                           const float *w,    // (dim)
                           const float *rstd, // (n)
                           int n, int dim);

// ---- RoPE (rotate-half layout: dim i pairs with i + d/2, inv_freq_i = theta^(-2i/d)) ---------

// Rotate x in place by angle pos[r] * inv_freq for every head of every row.
void hass_train_ops_rope_fwd(float *x,           // (n, n_head, d)
                        const int32_t *pos, // (n)
                        int n, int n_head, int d, float theta);
// Backward in place: dx = R^T dy (the inverse rotation).
void hass_train_ops_rope_bwd(float *dx,          // (n, n_head, d)
                        const int32_t *pos, // (n)
                        int n, int n_head, int d, float theta);

// ---- attention with the HASS alignment selector ----------------------------------------------
//
// At alignment step s the query at position i reads key/value position k from copy
//   c(i,k) = 0 if k <= i - s,  k - (i - s) if i - s < k <= i,  nothing if k > i
// (SPEC-HASS section 5). Keys and values of all s+1 copies are given; query head h uses KV
// head h / (nh/nkv); scale 1/sqrt(d). The softmax is a correct masked softmax over k <= i
// when n_pad == 0. With n_pad > 0 it is the official code's "leaky" variant: each of the
// n_pad - 1 - i masked positions adds exp(0) to the denominator, without renormalising.

// Copy that query i reads at key k on step s (-1 when k > i).
static inline int hass_train_ops_attn_copy(int i, int k, int s) {
    if (k > i) return -1;
    return k <= i - s ? 0 : k - (i - s);
}

// out = softmax(q k^T / sqrt(d)) v with the selector; saves the weights in prob.
void hass_train_ops_attn_fwd(float *out,      // (n, nh, d)
                        float *prob,     // (nh, n, n): weights, 0 above the diagonal
                        const float *q,  // (n, nh, d), RoPE applied
                        const float *k,  // (s+1, n, nkv, d), RoPE applied
                        const float *v,  // (s+1, n, nkv, d)
                        int n, int nh, int nkv, int d, int s, int n_pad);
// dq += ..., dk += ..., dv += ... (each may be NULL); ds is scratch.
void hass_train_ops_attn_bwd(float *dq,         // (n, nh, d) or NULL
                        float *dk,         // (s+1, n, nkv, d) or NULL
                        float *dv,         // (s+1, n, nkv, d) or NULL
                        float *ds,         // (nh, n, n) scratch
                        const float *dout, // (n, nh, d)
                        const float *prob, // (nh, n, n) from the forward
                        const float *q,    // (n, nh, d)
                        const float *k,    // (s+1, n, nkv, d)
                        const float *v,    // (s+1, n, nkv, d)
                        int n, int nh, int nkv, int d, int s);

// ---- SwiGLU ----------------------------------------------------------------------------------

// m = silu(g) * u elementwise.
void hass_train_ops_swiglu_fwd(float *m,       // (n_el)
                          const float *g, // (n_el)
                          const float *u, // (n_el)
                          size_t n_el);
// dg += dm * u * silu'(g); du += dm * silu(g) (either may be NULL).
void hass_train_ops_swiglu_bwd(float *dg,       // (n_el) or NULL
                          float *du,       // (n_el) or NULL
                          const float *dm, // (n_el)
                          const float *g,  // (n_el)
                          const float *u,  // (n_el)
                          size_t n_el);

// ---- losses ----------------------------------------------------------------------------------

// SmoothL1 (beta 1) averaged over H per row: loss[r] = mean_h sl1(x - t). Writes coef[r] *
// dloss/dx into dx (+=) when dx is not NULL.
void hass_train_ops_smoothl1(float *dx,          // (n, H) or NULL
                        double *loss,       // (n)
                        const float *x,     // (n, H)
                        const float *t,     // (n, H)
                        const float *coef,  // (n) or NULL (then no gradient)
                        int n, int H);

// Soft cross-entropy of the draft logits lq against P = softmax(lp) over the full vocabulary,
// and its top-K part: ploss[r] = -sum_v P(v) log Q(v); kloss[r] = the same sum over the K
// largest entries of P (ties: lower index first), neither renormalised nor divided by K.
// dl += cp[r] * dploss/dlq + ck[r] * dkloss/dlq when dl is not NULL. acc[r] gets 1 if the
// target argmax is the draft argmax, 2 if it is in the draft's top 3 otherwise, else 0.
void hass_train_ops_soft_ce(float *dl,         // (n, V) or NULL
                       double *ploss,     // (n)
                       double *kloss,     // (n)
                       int *acc,          // (n) or NULL
                       const float *lq,   // (n, V) draft logits
                       const float *lp,   // (n, V) target logits
                       const float *cp,   // (n) or NULL
                       const float *ck,   // (n) or NULL
                       int n, int V, int K);

// The two halves of hass_train_ops_soft_ce, so a target row prepared once serves several draft rows
// (the S alignment steps). Target side, in place: logits p -> P = softmax (f32), top[r*K..] the
// K largest (one index when K = 0: the argmax), pk[r] their mass.
void hass_train_ops_ce_target(float *p,   // (n, V) target logits in, probabilities out
                         int *top,   // (n, max(K, 1))
                         float *pk,  // (n)
                         int n, int V, int K);
// Draft side: as hass_train_ops_soft_ce with the target prepared by hass_train_ops_ce_target.
void hass_train_ops_ce_draft(float *dl, double *ploss, double *kloss, int *acc,
                        const float *lq,  // (n, V) draft logits
                        const float *p,   // (n, V) target probabilities
                        const int *top,   // (n, max(K, 1))
                        const float *pk,  // (n)
                        const float *cp, const float *ck, int n, int V, int K);

// ---- dense products (train_gemm.c) -------------------------------------------------------------

// y += a b: every y element is one f32 fused-multiply-add chain over k in order, whatever the
// SIMD path (AVX-512, AVX2, C) or thread count, so results are bit-reproducible.
void hass_train_ops_gemm(float *y, int ldy,       // (n, M)
                    const float *a, int lda, // (n, K)
                    const float *b, int ldb, // (K, M)
                    int n, int K, int M);
// dst = src^T.
void hass_train_ops_transpose(float *dst,       // (cols, rows)
                         const float *src, // (rows, cols)
                         int rows, int cols);
// y = x Wt + b with the weight given transposed.
void hass_train_ops_linear_fwd_t(float *y,        // (n, n_out)
                            const float *x,  // (n, n_in)
                            const float *wt, // (n_in, n_out)
                            const float *b,  // (n_out) or NULL
                            int n, int n_in, int n_out);

// Big matrices (the frozen embedding and LM head) in huge pages where possible; free() them.
// NULL on failure.
void *hass_train_ops_big_alloc(size_t n_bytes);

// Indices of the K largest values of x (descending; ties: lower index first) into idx.
void hass_train_ops_topk(int *idx, const float *x, int V, int K);

#endif
