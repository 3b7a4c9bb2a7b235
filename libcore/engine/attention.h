// attention.h: internal to libcore: the CPU attention of a forward's rows over their sequences'
// KV caches (forward.c, at every layer). The query heads that share a K/V head (grouped-query
// attention) are taken together for all the rows of a sequence's block, so that each cached K
// and V row is read once for a tile of (row, head) pairs instead of once per pair; every pair's
// own arithmetic (its scores, softmax and weighted sum, in cache order) is the per-pair walk's,
// so the output bits do not depend on the tiling, the block size or the thread count
// (tests/unit/test_attention.c holds the per-pair walk and compares bit for bit).
#ifndef HASS_ATTENTION_H
#define HASS_ATTENTION_H

#include <stddef.h>

#include "pool.h"

// (row, head) pairs of one task at most (its scores scratch is HASS_ATT_TILE rows of n_ctx).
#define HASS_ATT_TILE 16

// One sequence's rows of an attention call.
typedef struct hass_att_seq {
    const float *k, *v; // (base + n, kvd) each: this layer's cache, the committed entries then
                        // the block's own (kvd = n_head_kv * head_dim)
    int base;           // committed entries, visible to every row of the block
    int r0, n;          // its rows [r0, r0 + n) of q, out, bl and bcnt
} hass_att_seq;

// The arguments of hass_attention.
typedef struct hass_att {
    int n_head, n_head_kv, head_dim; // query head h uses K/V head h / (n_head / n_head_kv)
    int f16;               // round the probabilities to fp16 before they weight V (llama.cpp's
                           // f16 cache)
    const float *q;        // (rows, n_head * head_dim)
    float *out;            // (rows, n_head * head_dim)
    const int *const *bl;  // (rows) each row's visible block entries, ascending, each < its n
    const int *bcnt;       // (rows) how many
    const hass_att_seq *seq; // (n_seq)
    int n_seq;
    int n_ctx;             // base + n <= n_ctx for every sequence
    float *scores;         // (threads, hass_att_scratch_floats(n_ctx)) scratch
} hass_att;

// Floats of scratch one thread needs for caches of up to n_ctx entries.
size_t hass_att_scratch_floats(int n_ctx);

// out = softmax(q K^T / sqrt(head_dim)) V for every row and head, over the committed entries
// [0, base) and the row's visible block entries base + bl[..], in cache order, on the pool's
// threads (NULL: the caller's). The same bits for any tiling and thread count; the arithmetic
// is the kernel path's (hass_kernel_path: the C reference or AVX2/F16C).
void hass_attention(hass_pool *pool, const hass_att *a);

#endif
