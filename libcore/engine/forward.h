// forward.h: the target forward pass over a block of tokens, and the per-sequence KV cache.
//
// One call serves prefill, single-token decode and a draft tree: the caller passes n tokens,
// their positions and an attention mask over the block; every block row also sees all the
// committed entries of the cache. The block's K/V are appended to the cache, and an accepted
// tree path can then be compacted in place (hass_kv_commit).
//
// Cache lengths: `len` is the number of entries; `base` is len at the start of the most recent
// hass_forward (the committed length L0 that block indices are relative to). hass_forward
// appends n entries (len = base + n). hass_kv_commit(kv, idx, n_keep) moves entries
// base + idx[j] to base + j and sets len = base + n_keep; for plain decoding no commit is
// needed (the whole block stays). The entries kept must have been computed at positions
// base + j for the cache to stay consistent (true for an accepted tree path: depth j at base + j).
//
// Batch invariance: the logits and features of a row are bit-identical whether the row is
// computed alone, inside a causal prefill block or inside a tree block, for any thread count
// (fixed reduction order everywhere; attention reduces over the visible keys in cache order),
// in either precision (model.h, hass_precision: by default the cache, queries and attention
// probabilities hold fp16 values like llama.cpp's default cache; HASS_PREC_F32 keeps them f32).
//
// Several sequences in one forward (hass_forward_batch): the rows of every sequence's block go
// through each matmul together (the weights are read once for all of them), and each row
// attends only to its own sequence's cache and block, so by the batch invariance above every
// sequence's logits, features and cache entries are bit-identical to forwarding it alone.
//
// Threads: one model may serve several caches, but calls on the same model must not overlap
// (the kernels use the model's thread team). A cache holds its own scratch, grown on demand to
// the largest block seen (no allocation once a block size has been seen); a multi-sequence
// forward may use a scratch of its own (hass_fwd_scratch) instead, sized by the rows of all
// the sequences together.
#ifndef HASS_FORWARD_H
#define HASS_FORWARD_H

#include "model.h"

typedef struct hass_kv hass_kv;

// A cache for one sequence of up to n_ctx entries (<= 0: the model's training context).
hass_kv *hass_kv_new(const hass_model *m, int n_ctx, hass_err *err);
// Free; NULL is a no-op.
void hass_kv_free(hass_kv *kv);
// Number of entries.
int hass_kv_len(const hass_kv *kv);
// Capacity in entries.
int hass_kv_capacity(const hass_kv *kv);
// The committed length the last block was appended after (see the top of this file).
int hass_kv_base(const hass_kv *kv);
// Drop entries beyond n (n <= len); also sets base = n. Truncate(0) restarts the sequence.
void hass_kv_truncate(hass_kv *kv, int n);
// Keep block entries idx[0..n_keep) (strictly ascending, each < len - base) as the entries after
// base: KV compaction of an accepted tree path, in place. len = base + n_keep afterwards.
hass_err hass_kv_commit(hass_kv *kv, const int *idx, int n_keep);
// Reserve scratch for blocks of up to n rows now (so that later calls never allocate).
hass_err hass_kv_reserve(hass_kv *kv, int n);

// Forward n tokens at positions pos[] (NULL: base, base+1, ...; base = len before the call),
// appended to the cache. mask (n, n) row-major: mask[i*n + j] != 0 when block row i may attend
// block row j (NULL: causal, j <= i); a row should see itself. Every row sees all the entries
// already in the cache. logits (n, V) and feats (n, C) (the post-final-norm hidden state, the
// HASS feature) are each optional (NULL). HASS_ERANGE when the cache would overflow or a token
// id is outside the vocabulary; nothing is appended then.
hass_err hass_forward(hass_model *m, hass_kv *kv, const int32_t *tok, const int32_t *pos,
                      int n, const uint8_t *mask,
                      float *logits,  // (n, V) or NULL
                      float *feats);  // (n, C) or NULL
// Same, computing logits only for block rows rows[0..n_rows) (e.g. the last row of a prefill):
// logits (n_rows, V), row r of it for block row rows[r]. feats (n, C) is for all rows.
hass_err hass_forward_rows(hass_model *m, hass_kv *kv, const int32_t *tok, const int32_t *pos,
                           int n, const uint8_t *mask, const int *rows, int n_rows,
                           float *logits,  // (n_rows, V) or NULL
                           float *feats);  // (n, C) or NULL

// One sequence's part of a multi-sequence forward: hass_forward_rows' arguments.
typedef struct hass_fwd_seq {
    hass_kv *kv;           // its cache (each sequence its own)
    const int32_t *tok;    // (n)
    const int32_t *pos;    // (n) or NULL: base, base + 1, ...
    int n;
    const uint8_t *mask;   // (n, n) or NULL: causal
    const int *rows;       // (n_rows) block rows that get logits
    int n_rows;
    float *logits;         // (n_rows, V) or NULL
    float *feats;          // (n, C) or NULL
} hass_fwd_seq;

// Scratch of multi-sequence forwards, sized by the total row count (grown on demand).
typedef struct hass_fwd_scratch hass_fwd_scratch;

// An empty scratch for forwards of model m (borrowed); NULL with *err when out of memory.
hass_fwd_scratch *hass_fwd_scratch_new(const hass_model *m, hass_err *err);
// Free; NULL is a no-op.
void hass_fwd_scratch_free(hass_fwd_scratch *sc);
// Reserve it now for causal blocks of up to n_rows rows in all over caches of up to n_ctx
// entries (so that later calls never allocate); masked blocks may still grow it.
hass_err hass_fwd_scratch_reserve(hass_fwd_scratch *sc, int n_rows, int n_ctx);

// Forward the blocks of n_seq sequences (each its own cache, appended to as hass_forward_rows
// does) in one pass: every matmul over the rows of all of them, each row attending to its own
// sequence only. Each sequence gets exactly what hass_forward_rows would give it alone. sc:
// the scratch (NULL: seqs[0].kv's own). Logits of sequences whose logits buffers follow one
// another in memory (seqs[k + 1].logits = seqs[k].logits + n_rows_k * V) come from one LM-head
// matmul. Errors as hass_forward_rows' (naming the sequence when there are several; also when
// two share a cache); nothing is appended to any cache then. hass_forward_rows is the case
// n_seq = 1.
hass_err hass_forward_batch(hass_model *m, hass_fwd_scratch *sc, const hass_fwd_seq *seqs,
                            int n_seq);

// ----------------------------------------------------------------------------
// plain decoding (the autoregressive baseline)

// Sampling settings of hass_generate; the processor and RNG are sample.h's (temperature ->
// top-k -> top-p, xoshiro256** seeded with `seed`).
typedef struct hass_sample_cfg {
    float temperature;  // 0: greedy (argmax, lowest id on ties)
    float top_p;        // 1: off
    int top_k;          // 0: off
    uint64_t seed;      // the sampler's stream
} hass_sample_cfg;

// Prefill prompt[0..n_prompt) then generate up to n_new tokens into out (stops after eos_id
// when eos_id >= 0); returns the count generated or a negative hass_err. kv is reset first.
// margins (n_new) gets top1 - top2 logit of every step when not NULL (near-tie diagnostics).
int hass_generate(hass_model *m, hass_kv *kv, const int32_t *prompt, int n_prompt, int n_new,
                  const hass_sample_cfg *sc, int eos_id, int32_t *out, float *margins);

#endif
