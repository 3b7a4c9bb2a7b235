// ops.h: CPU reference kernels. Each CUDA kernel in kernels/ has its twin here with the same
// parameters; the twin is the specification. Reductions run in a fixed order (batch invariance).
//
// Conventions shared by every op:
//   activations are float32, row-major, one row per token;
//   weights are bf16 stored as uint16_t (the top 16 bits of a float32), row-major (out, in);
//   f32 -> bf16 rounds to nearest even (NaN stays a quiet NaN), exactly as __float2bfloat16_rn;
//   token ids and indices are int32_t; masks are uint8_t, 1 = may attend.
// Dimension names: n_tok (rows), dim/n_embd (row width), n_head, n_kv_head, head_dim,
// n_past (committed KV entries before the block), n_col (logits per row, the vocab).
#ifndef HASS_OPS_H
#define HASS_OPS_H

#include <string.h>

#include "half.h"
#include "hass.h"

#define HASS_TOPK_MAX 16 // largest k of hass_*_topk and of top-k sampling

// RoPE pair layouts.
typedef enum hass_rope_mode {
    HASS_ROPE_PAIRS = 0, // pairs (2i, 2i+1): llama.cpp / GGUF LLaMA (see model.h)
    HASS_ROPE_HALF = 1,  // pairs (i, i + head_dim/2): Hugging Face rotate_half
} hass_rope_mode;


// y = x / sqrt(mean(x^2) + eps) * w, row by row.
void hass_cpu_rmsnorm(float *y,       // (n_rows, dim)
                      const float *x, // (n_rows, dim)
                      const float *w, // (dim)
                      int n_rows, int dim, float eps);

// Embedding gather: y[r] = float(table[tok[r]]); an id outside [0, n_vocab) gives a zero row.
void hass_cpu_embed(float *y,               // (n_tok, dim)
                    const uint16_t *table,  // (n_vocab, dim) bf16
                    const int32_t *tok,     // (n_tok)
                    int n_tok, int n_vocab, int dim);

// RoPE in place on n_head heads of head_dim per row; row r sits at x + r*row_stride and is
// rotated by angle pos[r] * theta^(-2i/head_dim) for pair i (angles computed in double).
void hass_cpu_rope(float *x,            // (n_tok, row_stride), heads at [0, n_head*head_dim)
                   const int32_t *pos,  // (n_tok)
                   int n_tok, int row_stride, int n_head, int head_dim, float theta, int layout);

// Attention of a block of n queries over n_past committed KV entries plus the block's own n
// entries (already stored at [n_past, n_past+n) of the cache). Query i sees every committed entry
// and block entry j where mask[i*n+j] (NULL: j <= i, causal). GQA: head h reads KV head
// h / (n_head / n_kv_head). Scores scaled by 1/sqrt(head_dim), softmax in float with the max
// subtracted. A query that sees nothing gets a zero output.
void hass_cpu_attention(float *out,           // (n, n_head*head_dim)
                        const float *q,       // (n, q_stride), heads at [0, n_head*head_dim)
                        const float *k_cache, // (n_past+n, n_kv_head*head_dim)
                        const float *v_cache, // (n_past+n, n_kv_head*head_dim)
                        const uint8_t *mask,  // (n, n) or NULL
                        int n_past, int n, int q_stride, int n_head, int n_kv_head, int head_dim);

// SwiGLU: y[r][i] = silu(gu[r][i]) * gu[r][n_ff+i] (gate then up in one row).
void hass_cpu_swiglu(float *y,        // (n_tok, n_ff)
                     const float *gu, // (n_tok, 2*n_ff)
                     int n_tok, int n_ff);

// Residual add: y[i] += x[i].
void hass_cpu_add(float *y,       // (n)
                  const float *x, // (n)
                  size_t n);

// y = bf16(x) W^T + beta*y: each x value rounded to bf16, products summed in float over the
// input index in order (the GPU sums in another order: compare by NMSE).
void hass_cpu_matmul(float *y,            // (n_tok, n_out)
                     const float *x,      // (n_tok, n_in)
                     const uint16_t *w,   // (n_out, n_in) bf16
                     int n_tok, int n_in, int n_out, float beta);

// Index of the largest value per row; ties and NaN-free rows: lowest index wins.
void hass_cpu_argmax(int32_t *idx,      // (n_rows)
                     const float *x,    // (n_rows, n_col)
                     int n_rows, int n_col);

// The k largest values per row, sorted descending; ties: lower index first. 1 <= k <= 16.
void hass_cpu_topk(int32_t *idx,     // (n_rows, k)
                   float *val,       // (n_rows, k)
                   const float *x,   // (n_rows, n_col)
                   int n_rows, int n_col, int k);

// y = x - max - log(sum exp(x - max)) per row (y may equal x).
void hass_cpu_log_softmax(float *y,       // (n_rows, n_col)
                          const float *x, // (n_rows, n_col)
                          int n_rows, int n_col);

// One token per row from logits, given a uniform u in [0, 1) per row:
//   temp <= 0: argmax.
//   1 <= top_k <= 16: the top_k best (hass_cpu_topk order), p = softmax(x/temp) over them, then
//     the shortest prefix whose mass >= top_p * total (top_p >= 1: all); the token is the first
//     in that order whose running mass exceeds u * prefix mass (last one if none).
//   top_k == 0: p = exp((x - max)/temp) over the whole row; with top_p < 1 only tokens with
//     x >= tau are kept, tau from 40 bisection steps on [min, max] for the largest tau whose kept
//     mass is >= top_p * total; the token is the first index whose running kept mass exceeds
//     u * kept mass (last kept if none). Sums run in index order (the GPU sums in chunks).
void hass_cpu_sample(int32_t *tok,         // (n_rows)
                     const float *logits,  // (n_rows, n_col)
                     const float *u,       // (n_rows)
                     int n_rows, int n_col, float temp, int top_k, float top_p);

// Greedy tree acceptance. Node 0 is the root; parent[i] < i for i > 0 (parents first).
// From the root, repeatedly step to the lowest-index child c of the current node with
// tokens[c] == target[cur] (target = the target model's argmax after each node); stop when
// there is none. path gets the visited node indices (root first), *n_path their count; the bonus
// token is target[path[*n_path-1]].
void hass_cpu_accept_greedy(int32_t *path,          // (<= n)
                            int32_t *n_path,        // (1)
                            const int32_t *tokens,  // (n)
                            const int32_t *parent,  // (n), parent[0] = -1
                            const int32_t *target,  // (n)
                            int n);

// Stochastic tree acceptance: the rule of accept.c (hass_accept_sample: recursive rejection with
// q = 1, the processor of sample.h on every distribution) given the uniforms it consumes, in
// order: one per child tried, then one for the bonus (n + 1 values cover any tree). Node 0 is the
// root, parent[i] < i; the children of a node are tried in ascending index, a token already
// tried at that node is skipped. temp > 0 (greedy trees: hass_cpu_accept_greedy); top_k 0 off;
// top_p >= 1 off. path gets the visited nodes (root first), *n_path their count, *bonus the
// token sampled after the last one. probs: V floats of scratch.
void hass_cpu_accept_sample(int32_t *path,          // (<= n)
                            int32_t *n_path,        // (1)
                            int32_t *bonus,         // (1)
                            const int32_t *tokens,  // (n)
                            const int32_t *parent,  // (n), parent[0] = -1
                            const float *logits,    // (n, V) target logits after each node
                            const double *u,        // (n + 1) uniforms in [0, 1)
                            int n, int V, float temp, int top_k, float top_p,
                            float *probs);          // (V) scratch

// Store the K and V parts of n qkv rows (K at q_dim, V at q_dim + kv_dim of each row) as cache
// rows n_past + r.
void hass_cpu_kv_store(float *k_cache,     // (n_past + n, kv_dim)
                       float *v_cache,     // (n_past + n, kv_dim)
                       const float *qkv,   // (n, qkv_stride)
                       int n_past, int n, int qkv_stride, int q_dim, int kv_dim);

// KV compaction after acceptance: in every layer, for K and V, entry L0+idx[j] moves to L0+j,
// j = 0..n_keep-1, in increasing j; idx must be strictly increasing with idx[j] >= j.
void hass_cpu_kv_compact(float *k_cache,      // (n_layer, layer_stride)
                         float *v_cache,      // (n_layer, layer_stride)
                         const int32_t *idx,  // (n_keep)
                         int n_keep, int L0, int n_layer, size_t layer_stride, int kv_dim);

#endif
