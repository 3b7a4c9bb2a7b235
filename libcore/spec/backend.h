// backend.h: the target model behind a table of functions, so that decoding (spec.c)
// runs the same code on the CPU engine (forward.h) and on the GPU stack (gpu.h).
//
// A backend is one target model on one device (the weights, uploaded once); a sequence
// (hass_seq) is one KV cache on it with the cache rules of forward.h: `len` entries, `base` =
// len at the start of the last forward, hass_seq_commit keeps an accepted tree path. Several
// sequences may share a backend (plain decoding and the speculative decoder each own one);
// calls on one backend must not overlap.
//
// The CPU backend calls hass_forward/hass_kv_* and hass_model_lm_head unchanged (bit-identical
// to calling them directly). The CUDA backend (libcore/spec/cuda_backend.c, built with CUDA only)
// uploads the model as bf16 (hass_cuda_llama_from_model), gives each sequence its own KV cache
// and scratch (hass_cuda_llama_fork), and copies logits/feature rows back to the host. It is
// batch-invariant (hass_cuda_set_batch_invariant): a row's logits do not depend on the block
// size or the row's place in a tree, so speculative output equals plain output at T = 0 on the
// GPU as on the CPU. HASS_CUDA_INVARIANT=0 trades that for cuBLAS on large blocks.
#ifndef HASS_BACKEND_H
#define HASS_BACKEND_H

#include "accept.h"
#include "model.h"

// Where the target runs (--device).
typedef enum hass_device {
    HASS_DEVICE_AUTO = 0, // cuda when built with CUDA and a device is present, else cpu
    HASS_DEVICE_CPU = 1,
    HASS_DEVICE_CUDA = 2,
} hass_device;

// Parse "auto", "cpu" or "cuda"; HASS_EINVAL otherwise.
hass_err hass_device_parse(const char *s, hass_device *dev);
// Name of a device ("auto", "cpu", "cuda").
const char *hass_device_name(hass_device dev);
// Resolve auto; for cuda, HASS_ENODEV when this is a CPU-only build or no device is present
// (the message says which).
hass_err hass_device_resolve(hass_device want, hass_device *got);

typedef struct hass_backend hass_backend;
typedef struct hass_seq hass_seq;

// The table every backend fills.
typedef struct hass_backend_ops {
    const char *name; // "cpu" or "cuda"
    // A sequence of up to n_ctx entries (<= 0: the model's context), forwards of up to max_tok
    // rows without reallocation (longer causal blocks run in chunks; a masked block must fit).
    hass_seq *(*seq_new)(hass_backend *b, int n_ctx, int max_tok, hass_err *err);
    void (*seq_free)(hass_seq *s);
    int (*seq_len)(const hass_seq *s);
    void (*seq_truncate)(hass_seq *s, int n);
    hass_err (*seq_commit)(hass_seq *s, const int *idx, int n_keep);
    hass_err (*seq_reserve)(hass_seq *s, int n);
    // hass_forward_rows' contract; rows NULL: logits of every row (n_rows ignored).
    hass_err (*forward)(hass_seq *s, const int32_t *tok, const int32_t *pos, int n,
                        const uint8_t *mask, const int *rows, int n_rows, float *logits,
                        float *feats);
    // Acceptance of tree t over the logits of the last forward (a block of t->n rows, logits
    // kept on the device), accept.c's rule: greedy when smp is greedy, else recursive
    // rejection drawing from rng exactly the uniforms accept.c would. NULL: the caller copies
    // the logits and runs accept.c (the CPU backend).
    hass_err (*accept)(hass_seq *s, const hass_tree *t, const hass_sampler *smp, hass_rng *rng,
                       hass_accept_result *res);
    // logits (n, V) of feature rows x (n, C) through the final LM head.
    hass_err (*lm_head)(hass_backend *b, const float *x, int n, float *logits);
    void (*free)(hass_backend *b);
} hass_backend_ops;

struct hass_backend {
    const hass_backend_ops *ops;
    hass_model *m;      // the host model (borrowed): config, tokenizer-facing data, drafting
    hass_device dev;    // HASS_DEVICE_CPU or HASS_DEVICE_CUDA
    int n_vocab, n_embd;
    void *impl;         // backend's own state
};

struct hass_seq {
    hass_backend *b;    // borrowed
    int n_ctx;          // capacity in entries
    void *impl;         // backend's own state (the CPU backend: a hass_kv)
};

// The target m (borrowed, must outlive the backend) on dev (auto resolved as above). Logs the
// device chosen at info level (-v). NULL with *err: HASS_ENODEV (no device / CPU-only build),
// HASS_ENOMEM (the model does not fit the free device memory: both sizes in the message),
// HASS_EUNSUP (a model the GPU stack does not run).
hass_backend *hass_backend_new(hass_model *m, hass_device dev, hass_err *err);
// The CPU backend over m (borrowed).
hass_backend *hass_backend_cpu(hass_model *m, hass_err *err);
// Free; NULL is a no-op. Free every sequence first.
void hass_backend_free(hass_backend *b);
// The name of the device b runs on (cache keys, messages): "" for the CPU, the GPU's name for
// CUDA ("" when it cannot be read).
void hass_backend_device_label(const hass_backend *b, char *buf, size_t n);
// For backend implementations: a zeroed record with ops, m, dev and the model's widths.
hass_backend *hass_backend_alloc(hass_model *m, const hass_backend_ops *ops, hass_device dev,
                                 hass_err *err);
// logits (n, V) of n feature rows (n, C).
hass_err hass_backend_lm_head(hass_backend *b, const float *x, int n, float *logits);

// A sequence on b (see hass_backend_ops.seq_new); NULL with *err.
hass_seq *hass_seq_new(hass_backend *b, int n_ctx, int max_tok, hass_err *err);
// Free; NULL is a no-op.
void hass_seq_free(hass_seq *s);
// Entries in the cache.
int hass_seq_len(const hass_seq *s);
// Capacity in entries.
int hass_seq_capacity(const hass_seq *s);
// Drop entries beyond n; base = n (0 restarts the sequence).
void hass_seq_truncate(hass_seq *s, int n);
// Keep block entries idx[0..n_keep) after base (hass_kv_commit's rules).
hass_err hass_seq_commit(hass_seq *s, const int *idx, int n_keep);
// Make forwards of up to n rows allocation-free (HASS_ERANGE on the GPU beyond max_tok).
hass_err hass_seq_reserve(hass_seq *s, int n);
// Forward n tokens (hass_forward's contract): logits (n, V) and feats (n, C) each optional.
hass_err hass_seq_forward(hass_seq *s, const int32_t *tok, const int32_t *pos, int n,
                          const uint8_t *mask,
                          float *logits,  // (n, V) or NULL
                          float *feats);  // (n, C) or NULL
// Same with logits only for block rows rows[0..n_rows) (hass_forward_rows' contract).
hass_err hass_seq_forward_rows(hass_seq *s, const int32_t *tok, const int32_t *pos, int n,
                               const uint8_t *mask, const int *rows, int n_rows,
                               float *logits,  // (n_rows, V) or NULL
                               float *feats);  // (n, C) or NULL

typedef struct hass_kv hass_kv;
// The engine cache (forward.h) of a sequence of the CPU backend, for multi-sequence forwards
// (hass_forward_batch); NULL for another backend's.
hass_kv *hass_seq_cpu_kv(hass_seq *s);

#ifdef HASS_WITH_CUDA
// The CUDA backend (libcore/spec/cuda_backend.c): m uploaded to device 0. Tree acceptance runs on
// the device (greedy and stochastic kernels); HASS_CUDA_ACCEPT=host in the environment leaves it
// to accept.c on the host (the logits are copied back then). HASS_CUDA_GRAPH=1: all launches go
// to one stream and a single-token decode replays one captured graph per sequence (the position
// read from device memory: hass_cuda_llama_decode); off by default until measured on hardware.
hass_backend *hass_backend_cuda(hass_model *m, hass_err *err);
// The uploaded weights of a CUDA backend (the stack of gpu.h; its cache is unused), NULL for
// another backend: the GPU drafter shares the embedding and the LM head.
struct hass_cuda_llama *hass_backend_cuda_stack(hass_backend *b);
#endif

#endif
