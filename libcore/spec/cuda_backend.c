// cuda_backend.c: the CUDA backend of backend.h over the GPU LLaMA stack (kernels/llama.cu).
// The backend uploads the model once (bf16 weights, a stack with a one-entry cache); each
// sequence is a fork of it with its own KV cache and scratch. Forwards copy the wanted logits
// rows and the features back to the host; commit runs the KV-compaction kernel. Built only with
// CUDA.
#ifdef HASS_WITH_CUDA
#include <stdlib.h>
#include <string.h>

#include "accept.h"
#include "backend.h"
#include "gpu.h"

#define SEQ_MIN_TOK 64 // rows per forward at least (prefill runs in chunks of this many)

// Backend state: the weight-owning stack and scratch for hass_backend_lm_head.
typedef struct cu_backend {
    hass_cuda_llama *w; // weights (its own cache is one entry, never used)
    float *d_x;         // (cap, C) features in
    uint16_t *d_xb;     // (cap, C) their bf16 copy
    float *d_logits;    // (cap, V)
    int cap;            // rows of the scratch
    void *stream;       // HASS_CUDA_GRAPH=1: the stream every launch goes to (graphs need one)
} cu_backend;

// Sequence state: a fork with its own cache, the host-side lengths, index scratch.
typedef struct cu_seq {
    hass_cuda_llama *st; // owned fork
    int len, base;       // cache entries; len at the start of the last forward
    int32_t *pos;        // (max_tok) positions of a chunk
    int32_t *d_idx;      // (max_tok) device copy of a commit's indices
    int32_t *d_acc;      // device (5 * max_tok + 4): tree tokens, parents, target argmax, path, out
    double *d_u;         // device (max_tok + 1) uniforms of a stochastic acceptance
    float *d_probs;      // device (V) its scratch
    double *u;           // host (max_tok + 1)
    void *graph;         // the captured decode step (HASS_CUDA_GRAPH=1), replayed at any position
    int no_graph;        // capture failed once: plain launches of the same step
} cu_seq;

// Free a sequence.
static void cu_seq_free(hass_seq *s) {
    cu_seq *q = s->impl;
    if (q) {
        hass_cuda_graph_free(q->graph);
        hass_cuda_llama_free(q->st);
        hass_cuda_free(q->d_idx);
        hass_cuda_free(q->d_acc);
        hass_cuda_free(q->d_u);
        hass_cuda_free(q->d_probs);
        free(q->u);
        free(q->pos);
        free(q);
    }
    free(s);
}

// A sequence: fork the weights with n_ctx cache entries and max_tok scratch rows.
static hass_seq *cu_seq_new(hass_backend *b, int n_ctx, int max_tok, hass_err *err) {
    cu_backend *cb = b->impl;
    const hass_model_cfg *c = hass_model_config(b->m);
    if (n_ctx <= 0) n_ctx = c->n_ctx_train > 0 && c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
    if (max_tok < SEQ_MIN_TOK) max_tok = SEQ_MIN_TOK;
    if (max_tok > n_ctx) max_tok = n_ctx;
    hass_seq *s = calloc(1, sizeof *s);
    cu_seq *q = calloc(1, sizeof *q);
    if (!s || !q) {
        free(s);
        free(q);
        *err = hass_seterr(HASS_ENOMEM, "cuda backend: out of memory");
        return NULL;
    }
    s->b = b;
    s->n_ctx = n_ctx;
    s->impl = q;
    q->pos = malloc(sizeof(int32_t) * (size_t)max_tok);
    q->u = malloc(sizeof(double) * (size_t)(max_tok + 1));
    if (!q->pos || !q->u) *err = hass_seterr(HASS_ENOMEM, "cuda backend: out of memory");
    else if ((q->st = hass_cuda_llama_fork(cb->w, n_ctx, max_tok, err))) {
        size_t T = (size_t)max_tok;
        *err = hass_cuda_malloc((void **)&q->d_idx, sizeof(int32_t) * T);
        if (!*err) *err = hass_cuda_malloc((void **)&q->d_acc, sizeof(int32_t) * (5 * T + 4));
        if (!*err) *err = hass_cuda_malloc((void **)&q->d_u, sizeof(double) * (T + 1));
        if (!*err) *err = hass_cuda_malloc((void **)&q->d_probs, sizeof(float) * (size_t)b->n_vocab);
    }
    if (!q->pos || !q->u || !q->st || *err) {
        hass_errprefix("cuda backend: sequence of %d entries", n_ctx);
        cu_seq_free(s);
        return NULL;
    }
    return s;
}

static int cu_seq_len(const hass_seq *s) { return ((const cu_seq *)s->impl)->len; }

// Drop entries beyond n (the device cache keeps them; they are overwritten later).
static void cu_seq_truncate(hass_seq *s, int n) {
    cu_seq *q = s->impl;
    if (n < 0) n = 0;
    if (n < q->len) q->len = n;
    q->base = q->len;
}

// Keep block entries idx[] after base: the compaction kernel over every layer.
static hass_err cu_seq_commit(hass_seq *s, const int *idx, int n_keep) {
    cu_seq *q = s->impl;
    hass_cuda_llama *d = q->st;
    int n_blk = q->len - q->base;
    if (n_keep < 0 || n_keep > n_blk || n_keep > d->cfg.max_tok)
        return hass_seterr(HASS_ERANGE, "cuda backend: commit of %d entries from a block of %d",
                           n_keep, n_blk);
    for (int j = 0; j < n_keep; j++)
        if (idx[j] < 0 || idx[j] >= n_blk || (j && idx[j] <= idx[j - 1]))
            return hass_seterr(HASS_EINVAL, "cuda backend: commit index %d = %d not strictly "
                                            "increasing inside the block of %d",
                               j, idx[j], n_blk);
    int32_t *buf = q->pos; // host scratch of max_tok entries
    for (int j = 0; j < n_keep; j++) buf[j] = idx[j];
    hass_err e = n_keep ? hass_cuda_h2d(q->d_idx, buf, sizeof(int32_t) * (size_t)n_keep) : HASS_OK;
    if (!e && n_keep)
        e = hass_cuda_kv_compact(d->k_cache, d->v_cache, q->d_idx, n_keep, q->base,
                                 d->cfg.n_layer, (size_t)d->cfg.n_ctx * d->kv_dim, d->kv_dim);
    if (!e) e = hass_cuda_stream_sync();
    if (e) return e;
    q->len = q->base + n_keep;
    return HASS_OK;
}

// Nothing to allocate: a masked block must fit max_tok (which is the whole cache when small).
static hass_err cu_seq_reserve(hass_seq *s, int n) {
    cu_seq *q = s->impl;
    if (n > q->st->cfg.max_tok && q->st->cfg.max_tok < s->n_ctx) // no block exceeds the cache
        return hass_seterr(HASS_ERANGE, "cuda backend: blocks of %d rows, at most %d", n,
                           q->st->cfg.max_tok);
    return HASS_OK;
}

// The one-token decode step (inputs and n_past set): the captured graph, captured at the first
// call; plain launches of the same step if the capture fails.
static hass_err decode_step(cu_seq *q) {
    if (!q->graph && !q->no_graph) {
        hass_err e = hass_cuda_graph_begin();
        if (!e) {
            hass_err fe = hass_cuda_llama_decode(q->st);
            e = hass_cuda_graph_end(&q->graph);
            if (fe) e = fe;
        }
        if (e || !q->graph) {
            HASS_WARN("cuda: decode graph capture failed (%s); plain launches", hass_errmsg());
            hass_cuda_graph_free(q->graph);
            q->graph = NULL;
            q->no_graph = 1;
        }
    }
    return q->graph ? hass_cuda_graph_launch(q->graph) : hass_cuda_llama_decode(q->st);
}

// Forward n tokens: causal blocks in chunks of max_tok, a masked block in one piece; with
// HASS_CUDA_GRAPH=1 a single unmasked token goes through the decode graph.
static hass_err cu_forward(hass_seq *s, const int32_t *tok, const int32_t *pos, int n,
                           const uint8_t *mask, const int *rows, int n_rows, float *logits,
                           float *feats) {
    cu_seq *q = s->impl;
    hass_cuda_llama *d = q->st;
    int V = d->cfg.n_vocab, C = d->cfg.n_embd, T = d->cfg.max_tok, L0 = q->len;
    if (n <= 0) return hass_seterr(HASS_EINVAL, "cuda forward: empty block");
    if (L0 + n > s->n_ctx)
        return hass_seterr(HASS_ERANGE, "cuda forward: %d + %d tokens overflow the cache of %d",
                           L0, n, s->n_ctx);
    if (mask && n > T)
        return hass_seterr(HASS_ERANGE, "cuda forward: a masked block of %d rows, at most %d", n,
                           T);
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= V)
            return hass_seterr(HASS_ERANGE, "cuda forward: token id %d (row %d) outside the "
                                            "vocabulary of %d", tok[i], i, V);
    if (rows)
        for (int r = 0; r < n_rows; r++)
            if (rows[r] < 0 || rows[r] >= n)
                return hass_seterr(HASS_ERANGE, "cuda forward: row %d outside the block of %d",
                                   rows[r], n);
    hass_err e = HASS_OK;
    if (n == 1 && !mask && ((cu_backend *)s->b->impl)->stream) { // the decode step as a graph
        q->pos[0] = pos ? pos[0] : L0;
        e = hass_cuda_llama_set_input(d, tok, q->pos, NULL, 1);
        if (!e) e = hass_cuda_llama_set_past(d, L0);
        if (!e) e = decode_step(q);
        if (!e && feats) e = hass_cuda_d2h(feats, d->h, sizeof(float) * (size_t)C);
        if (!e && logits) e = hass_cuda_d2h(logits, d->logits, sizeof(float) * (size_t)V);
        if (!e && !feats && !logits) e = hass_cuda_stream_sync();
        if (e) {
            q->base = q->len = L0;
            return e;
        }
        q->base = L0;
        q->len = L0 + 1;
        return HASS_OK;
    }
    for (int c0 = 0; c0 < n && !e; c0 += T) {
        int cn = n - c0 < T ? n - c0 : T;
        for (int i = 0; i < cn; i++) q->pos[i] = pos ? pos[c0 + i] : L0 + c0 + i;
        e = hass_cuda_llama_set_input(d, tok + c0, q->pos, mask, cn);
        if (!e) e = hass_cuda_llama_forward(d, L0 + c0, cn, mask != NULL);
        if (!e && feats) e = hass_cuda_d2h(feats + (size_t)c0 * C, d->h, sizeof(float) * (size_t)cn * C);
        if (!e && logits && !rows)
            e = hass_cuda_d2h(logits + (size_t)c0 * V, d->logits, sizeof(float) * (size_t)cn * V);
        for (int r = 0; !e && logits && rows && r < n_rows; r++)
            if (rows[r] >= c0 && rows[r] < c0 + cn)
                e = hass_cuda_d2h(logits + (size_t)r * V, d->logits + (size_t)(rows[r] - c0) * V,
                                  sizeof(float) * (size_t)V);
        if (!e && !feats && !logits) e = hass_cuda_stream_sync();
    }
    if (e) {
        q->base = q->len = L0; // nothing appended
        return e;
    }
    q->base = L0;
    q->len = L0 + n;
    return HASS_OK;
}

// Tree acceptance on the device over the logits of the last forward (see backend.h).
static hass_err cu_accept(hass_seq *s, const hass_tree *t, const hass_sampler *smp, hass_rng *rng,
                          hass_accept_result *res) {
    cu_seq *q = s->impl;
    hass_cuda_llama *d = q->st;
    int n = t->n, V = d->cfg.n_vocab, T = d->cfg.max_tok;
    if (n <= 0 || n > T || q->len - q->base != n)
        return hass_seterr(HASS_EINVAL, "cuda accept: a tree of %d nodes after a block of %d", n,
                           q->len - q->base);
    int32_t *d_tok = q->d_acc, *d_par = d_tok + T, *d_tgt = d_par + T, *d_path = d_tgt + T;
    int32_t *d_out = d_path + T, out[3], path[HASS_TREE_MAX_LEVELS + 2];
    hass_err e = hass_cuda_h2d(d_tok, t->tok, sizeof(int32_t) * (size_t)n);
    if (!e) e = hass_cuda_h2d(d_par, t->parent, sizeof(int32_t) * (size_t)n);
    if (e) return e;
    if (hass_sampler_greedy(smp)) {
        e = hass_cuda_argmax(d_tgt, d->logits, n, V);
        if (!e) e = hass_cuda_accept_greedy(d_path, d_out, d_tok, d_par, d_tgt, n);
        if (!e) e = hass_cuda_d2h(out, d_out, sizeof(int32_t));
        if (!e && (out[0] < 1 || out[0] > t->max_depth + 1))
            e = hass_seterr(HASS_ECUDA, "cuda accept: path of %d nodes in a tree of depth %d",
                            out[0], t->max_depth);
        if (!e) e = hass_cuda_d2h(path, d_path, sizeof(int32_t) * (size_t)out[0]);
        if (!e) e = hass_cuda_d2h(&out[1], d_tgt + path[out[0] - 1], sizeof(int32_t));
    } else {
        hass_rng r0 = *rng; // draw n + 1, then redraw only what the walk used
        for (int i = 0; i <= n; i++) q->u[i] = hass_rng_uniform(rng);
        e = hass_cuda_h2d(q->d_u, q->u, sizeof(double) * (size_t)(n + 1));
        if (!e) e = hass_cuda_accept_sample(d_path, d_out, d_tok, d_par, d->logits, q->d_u, n, V,
                                            smp->temp, smp->top_k, smp->top_p, q->d_probs);
        if (!e) e = hass_cuda_d2h(out, d_out, sizeof out);
        if (!e && (out[0] < 1 || out[0] > t->max_depth + 1 || out[2] < 1 || out[2] > n + 1 ||
                   out[1] < 0 || out[1] >= V))
            e = hass_seterr(HASS_ECUDA, "cuda accept: path %d, bonus %d, %d uniforms for %d nodes",
                            out[0], out[1], out[2], n);
        if (!e) e = hass_cuda_d2h(path, d_path, sizeof(int32_t) * (size_t)out[0]);
        *rng = r0;
        for (int i = 0; !e && i < out[2]; i++) hass_rng_uniform(rng);
    }
    if (e) return e;
    res->n_acc = out[0] - 1;
    for (int j = 0; j < out[0]; j++) res->path[j] = path[j];
    for (int j = 1; j < out[0]; j++) res->tokens[j - 1] = t->tok[path[j]];
    res->bonus = out[1];
    res->tokens[res->n_acc] = res->bonus;
    res->n_tokens = res->n_acc + 1;
    return HASS_OK;
}

// LM head of host feature rows on the device (scratch grown on demand).
static hass_err cu_lm_head(hass_backend *b, const float *x, int n, float *logits) {
    cu_backend *cb = b->impl;
    int C = b->n_embd, V = b->n_vocab;
    if (n <= 0) return HASS_OK;
    if (n > cb->cap) {
        hass_cuda_free(cb->d_x);
        hass_cuda_free(cb->d_xb);
        hass_cuda_free(cb->d_logits);
        cb->d_x = NULL, cb->d_xb = NULL, cb->d_logits = NULL, cb->cap = 0;
        hass_err e = hass_cuda_malloc((void **)&cb->d_x, sizeof(float) * (size_t)n * C);
        if (!e) e = hass_cuda_malloc((void **)&cb->d_xb, sizeof(uint16_t) * (size_t)n * C);
        if (!e) e = hass_cuda_malloc((void **)&cb->d_logits, sizeof(float) * (size_t)n * V);
        if (e) return e;
        cb->cap = n;
    }
    hass_err e = hass_cuda_h2d(cb->d_x, x, sizeof(float) * (size_t)n * C);
    if (!e) e = hass_cuda_matmul(cb->w->cublas, cb->d_logits, cb->d_x, cb->w->lm_head, cb->d_xb, n,
                                 C, V, 0.f);
    if (!e) e = hass_cuda_d2h(logits, cb->d_logits, sizeof(float) * (size_t)n * V);
    return e;
}

// Free the backend (the host model is borrowed).
static void cu_free(hass_backend *b) {
    cu_backend *cb = b->impl;
    if (cb) {
        hass_cuda_free(cb->d_x);
        hass_cuda_free(cb->d_xb);
        hass_cuda_free(cb->d_logits);
        hass_cuda_llama_free(cb->w);
        if (cb->stream) {
            hass_cuda_set_stream(NULL);
            hass_cuda_stream_destroy(cb->stream);
        }
        free(cb);
    }
    free(b);
}

static const hass_backend_ops cuda_ops = {
    "cuda", cu_seq_new, cu_seq_free, cu_seq_len, cu_seq_truncate, cu_seq_commit,
    cu_seq_reserve, cu_forward, cu_accept, cu_lm_head, cu_free,
};
// The same with acceptance left to accept.c on the host (HASS_CUDA_ACCEPT=host).
static const hass_backend_ops cuda_ops_host_accept = {
    "cuda", cu_seq_new, cu_seq_free, cu_seq_len, cu_seq_truncate, cu_seq_commit,
    cu_seq_reserve, cu_forward, NULL, cu_lm_head, cu_free,
};

// The weight stack of a CUDA backend.
hass_cuda_llama *hass_backend_cuda_stack(hass_backend *b) {
    return b && b->dev == HASS_DEVICE_CUDA ? ((cu_backend *)b->impl)->w : NULL;
}

// The CUDA backend: upload m once.
hass_backend *hass_backend_cuda(hass_model *m, hass_err *err) {
    const char *ha = getenv("HASS_CUDA_ACCEPT");
    int host = ha && !strcmp(ha, "host");
    hass_backend *b = hass_backend_alloc(m, host ? &cuda_ops_host_accept : &cuda_ops,
                                         HASS_DEVICE_CUDA, err);
    cu_backend *cb = b ? calloc(1, sizeof *cb) : NULL;
    if (!cb) {
        if (b) *err = hass_seterr(HASS_ENOMEM, "cuda backend: out of memory");
        free(b);
        return NULL;
    }
    b->impl = cb;
    const char *inv = getenv("HASS_CUDA_INVARIANT"); // 0: faster large blocks, not lossless
    hass_cuda_set_batch_invariant(!(inv && !strcmp(inv, "0")));
    const char *gr = getenv("HASS_CUDA_GRAPH");
    if (gr && !strcmp(gr, "1")) { // every launch on one stream so the decode step can be captured
        hass_err e = hass_cuda_stream_create(&cb->stream);
        if (e) {
            *err = e;
            cu_free(b);
            return NULL;
        }
        hass_cuda_set_stream(cb->stream);
    }
    double t0 = hass_now();
    cb->w = hass_cuda_llama_from_model(m, 1, 1, err);
    if (!cb->w) {
        cu_free(b);
        return NULL;
    }
    char name[128] = "?";
    hass_cuda_device_name(name, sizeof name);
    HASS_INFO("cuda: %s uploaded to %s (%.2f GiB of bf16 weights) in %.0f ms",
              hass_model_path(m), name, (double)hass_cuda_llama_bytes(&cb->w->cfg) / (1 << 30),
              1e3 * (hass_now() - t0));
    return b;
}
#else
typedef int hass_cuda_backend_unused; // ISO C: a translation unit needs a declaration
#endif
