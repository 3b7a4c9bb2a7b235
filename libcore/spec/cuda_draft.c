// cuda_draft.c: the draft head's forward and tree drafting on the GPU (see cuda_draft.h).
// Built only with CUDA.
#ifdef HASS_WITH_CUDA
#include "cuda_draft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "ops.h"

#define CHUNK 64 // catch-up rows per forward block (as draft.c)

struct hass_cuda_draft {
    hass_cuda_llama *t;  // borrowed target stack: tok_embd, lm_head, cublas
    int n_ctx;           // stable capacity
    hass_tree_cfg max;   // largest tree
    int C, H, Hkv, D, F, V, QD, KD, QKV;
    int R;               // work rows: max(CHUNK, K)
    int n_scratch;       // scratch entries (K * (levels - 1), at least K)
    int M;               // rows of the padded query block: max(R, n_scratch)
    float theta, eps;
    int n_stable, n_pend, has_last;
    float *pend_f;       // host (n_ctx, C)
    int32_t *pend_t;     // host (n_ctx)
    float *lp;           // host (K, V) whole log-prob rows (top-K above 16 only)
    int32_t *ti;         // host (K, K) top-K ids per row
    float *tv;           // host (K, K) their log-probs
    uint8_t *mask;       // host (M, M) expansion mask
    int32_t *tok, *pos;  // host (R)
    void *arena;         // device: everything below
    uint16_t *fc, *wqkv, *wo, *w_gu, *w_down; // bf16 (C, 2C), (QKV, C), (C, QD), (2F, C), (C, F)
    float *post_norm;    // (C)
    float *bias_rep;     // (R, C) fc bias repeated per row, or NULL
    float *k_cache, *v_cache; // (n_ctx + n_scratch, KD)
    float *emb, *cat, *u, *qkv, *q, *att, *hid, *gu, *out; // work rows (see _new)
    uint16_t *xb;        // (M, max(2C, QD, F)) bf16 scratch
    float *o_last;       // (C)
    float *prev;         // (K, C) outputs of the previous expansion step
    float *logits, *lpd; // (R, V) logits and log-probs of output rows
    int32_t *d_tok, *d_pos, *d_ti; // (R), (R), (K, K)
    float *d_tv;         // (K, K)
    uint8_t *d_mask;     // (M, M)
    // draft vocabulary (h->dvocab): the draft proposes only these ids
    int n_dv;            // N ids, 0 = the whole vocabulary
    int32_t *dv;         // host (N) the ids, ascending
    float *dvbuf;        // host (K, N) log-probs over them (K > 16 only)
    uint16_t *w_dv;      // device (N, C) their rows of the target's LM head
};

// Round up to 256 bytes.
static size_t al(size_t n) { return (n + 255) & ~(size_t)255; }

// Carve n bytes from *p.
static void *carve(char **p, size_t n) {
    void *r = *p;
    *p += al(n);
    return r;
}

// Device bytes of a drafter (the carve order of hass_cuda_draft_new).
static size_t arena_bytes(const hass_cuda_draft *d, int bias) {
    size_t C = d->C, R = d->R, M = d->M, K = d->max.top_k, V = d->V, F = d->F;
    size_t xbw = 2 * C > (size_t)d->QD ? 2 * C : (size_t)d->QD;
    xbw = xbw > F ? xbw : F;
    size_t NT = (size_t)d->n_ctx + d->n_scratch;
    return al(C * 2 * C * 2) + al((size_t)d->QKV * C * 2) + al(C * d->QD * 2) +
           al(2 * F * C * 2) + al(C * F * 2) + al(C * 4) + (bias ? al(R * C * 4) : 0) +
           2 * al(NT * d->KD * 4) + al(R * C * 4) + al(R * 2 * C * 4) + al(R * C * 4) +
           al(R * d->QKV * 4) + 2 * al(M * d->QD * 4) + al(R * C * 4) + al(R * 2 * F * 4) +
           al(R * C * 4) + al(M * xbw * 2) + al(C * 4) + al(K * C * 4) + 2 * al(R * V * 4) +
           2 * al(R * 4) + al(K * K * 4) + al(K * K * 4) + al(M * M) +
           al((size_t)d->n_dv * C * 2);
}

// Upload n f32 weights to dst as bf16.
static hass_err up_bf16(uint16_t *dst, const float *w, size_t n) {
    uint16_t *h = malloc(n * sizeof *h);
    if (!h) return hass_seterr(HASS_ENOMEM, "cuda draft: out of memory");
    for (size_t i = 0; i < n; i++) h[i] = hass_f32_to_bf16(w[i]);
    hass_err e = hass_cuda_h2d(dst, h, n * sizeof *h);
    free(h);
    return e;
}

// Free a drafter.
void hass_cuda_draft_free(hass_cuda_draft *d) {
    if (!d) return;
    hass_cuda_free(d->arena);
    free(d->pend_f), free(d->pend_t), free(d->lp), free(d->ti), free(d->tv), free(d->mask);
    free(d->tok), free(d->pos), free(d->dv), free(d->dvbuf);
    free(d);
}

// A GPU drafter (see cuda_draft.h).
hass_cuda_draft *hass_cuda_draft_new(const hass_head *h, hass_backend *b, int n_ctx,
                                     const hass_tree_cfg *cfg, hass_err *err) {
    hass_cuda_llama *t = hass_backend_cuda_stack(b);
    hass_err e = hass_tree_cfg_check(cfg);
    if (e) {
        *err = e;
        return NULL;
    }
    if (!t) {
        *err = hass_seterr(HASS_EINVAL, "cuda draft: the target is not on the GPU");
        return NULL;
    }
    if (h->n_embd != t->cfg.n_embd || h->n_vocab != t->cfg.n_vocab) {
        *err = hass_seterr(HASS_EVOCAB, "cuda draft: head (C %d, V %d) does not fit the target "
                                        "(C %d, V %d)",
                           h->n_embd, h->n_vocab, t->cfg.n_embd, t->cfg.n_vocab);
        return NULL;
    }
    const hass_model_cfg *mc = hass_model_config(b->m);
    if (n_ctx <= 0) n_ctx = mc->n_ctx_train > 0 ? mc->n_ctx_train : 2048; // as draft.c
    hass_cuda_draft *d = calloc(1, sizeof *d);
    if (!d) {
        *err = hass_seterr(HASS_ENOMEM, "cuda draft: out of memory");
        return NULL;
    }
    int K = cfg->top_k;
    d->t = t, d->n_ctx = n_ctx, d->max = *cfg;
    d->C = h->n_embd, d->H = h->n_head, d->Hkv = h->n_head_kv, d->D = h->head_dim;
    d->F = h->n_ff, d->V = h->n_vocab;
    d->QD = d->H * d->D, d->KD = d->Hkv * d->D, d->QKV = d->QD + 2 * d->KD;
    d->R = K > CHUNK ? K : CHUNK;
    d->n_scratch = K * (cfg->levels > 1 ? cfg->levels - 1 : 1);
    d->M = d->R > d->n_scratch ? d->R : d->n_scratch;
    d->theta = h->rope_theta, d->eps = h->norm_eps;
    size_t C = d->C, R = d->R, M = d->M, V = d->V, F = d->F;
    d->pend_f = malloc(sizeof(float) * (size_t)n_ctx * C);
    d->pend_t = malloc(sizeof(int32_t) * (size_t)n_ctx);
    int whole = K > HASS_TOPK_MAX || K > (h->dvocab && h->n_dvocab > 0 ? h->n_dvocab : h->n_vocab);
    d->lp = whole ? malloc(sizeof(float) * (size_t)K * V) : NULL; // only draft_rows' whole-row path
    d->ti = malloc(sizeof(int32_t) * (size_t)K * K);
    d->tv = malloc(sizeof(float) * (size_t)K * K);
    d->mask = malloc(M * M);
    d->tok = malloc(sizeof(int32_t) * R);
    d->pos = malloc(sizeof(int32_t) * R);
    if (!d->pend_f || !d->pend_t || (whole && !d->lp) || !d->ti || !d->tv || !d->mask || !d->tok || !d->pos) {
        hass_cuda_draft_free(d);
        *err = hass_seterr(HASS_ENOMEM, "cuda draft: out of memory for a context of %d", n_ctx);
        return NULL;
    }
    if (h->dvocab && h->n_dvocab > 0) {
        d->n_dv = h->n_dvocab;
        d->dv = malloc(sizeof(int32_t) * (size_t)d->n_dv);
        d->dvbuf = malloc(sizeof(float) * (size_t)K * d->n_dv);
        if (!d->dv || !d->dvbuf) {
            hass_cuda_draft_free(d);
            *err = hass_seterr(HASS_ENOMEM, "cuda draft: out of memory");
            return NULL;
        }
        memcpy(d->dv, h->dvocab, sizeof(int32_t) * (size_t)d->n_dv);
    }
    size_t bytes = arena_bytes(d, h->fc_b != NULL), fr = 0, tot = 0;
    if ((e = hass_cuda_mem_info(&fr, &tot)) ||
        (bytes + ((size_t)64 << 20) > fr &&
         (e = hass_seterr(HASS_ENOMEM, "cuda draft: the head and its cache need %.2f GiB of device "
                                       "memory, the device has %.2f GiB free of %.2f GiB",
                          (double)bytes / (1 << 30), (double)fr / (1 << 30),
                          (double)tot / (1 << 30)))) ||
        (e = hass_cuda_malloc(&d->arena, bytes))) {
        hass_cuda_draft_free(d);
        *err = e;
        return NULL;
    }
    char *p = d->arena;
    size_t xbw = 2 * C > (size_t)d->QD ? 2 * C : (size_t)d->QD;
    xbw = xbw > F ? xbw : F;
    size_t NT = (size_t)n_ctx + d->n_scratch;
    d->fc = carve(&p, C * 2 * C * 2);
    d->wqkv = carve(&p, (size_t)d->QKV * C * 2);
    d->wo = carve(&p, C * d->QD * 2);
    d->w_gu = carve(&p, 2 * F * C * 2);
    d->w_down = carve(&p, C * F * 2);
    d->post_norm = carve(&p, C * 4);
    d->bias_rep = h->fc_b ? carve(&p, R * C * 4) : NULL;
    d->k_cache = carve(&p, NT * d->KD * 4);
    d->v_cache = carve(&p, NT * d->KD * 4);
    d->emb = carve(&p, R * C * 4);
    d->cat = carve(&p, R * 2 * C * 4);
    d->u = carve(&p, R * C * 4);
    d->qkv = carve(&p, R * d->QKV * 4);
    d->q = carve(&p, M * d->QD * 4);
    d->att = carve(&p, M * d->QD * 4);
    d->hid = carve(&p, R * C * 4);
    d->gu = carve(&p, R * 2 * F * 4);
    d->out = carve(&p, R * C * 4);
    d->xb = carve(&p, M * xbw * 2);
    d->o_last = carve(&p, C * 4);
    d->prev = carve(&p, (size_t)K * C * 4);
    d->logits = carve(&p, R * V * 4);
    d->lpd = carve(&p, R * V * 4);
    d->d_tok = carve(&p, R * 4);
    d->d_pos = carve(&p, R * 4);
    d->d_ti = carve(&p, (size_t)K * K * 4);
    d->d_tv = carve(&p, (size_t)K * K * 4);
    d->d_mask = carve(&p, M * M);
    d->w_dv = d->n_dv ? carve(&p, (size_t)d->n_dv * C * 2) : NULL;
    HASS_ASSERT((size_t)(p - (char *)d->arena) <= bytes);
    size_t qd = d->QD, kd = d->KD;
    e = up_bf16(d->fc, h->fc_w, C * 2 * C);
    if (!e) e = up_bf16(d->wqkv, h->wq, qd * C);
    if (!e) e = up_bf16(d->wqkv + qd * C, h->wk, kd * C);
    if (!e) e = up_bf16(d->wqkv + (qd + kd) * C, h->wv, kd * C);
    if (!e) e = up_bf16(d->wo, h->wo, C * qd);
    if (!e) e = up_bf16(d->w_gu, h->w_gate, F * C);
    if (!e) e = up_bf16(d->w_gu + F * C, h->w_up, F * C);
    if (!e) e = up_bf16(d->w_down, h->w_down, C * F);
    if (!e) e = hass_cuda_h2d(d->post_norm, h->post_norm, C * 4);
    for (size_t r = 0; !e && h->fc_b && r < R; r++) e = hass_cuda_h2d(d->bias_rep + r * C, h->fc_b, C * 4);
    for (int i = 0; !e && i < d->n_dv; i++) // the draft vocabulary's LM-head rows, gathered once
        e = hass_cuda_d2d(d->w_dv + (size_t)i * C, t->lm_head + (size_t)d->dv[i] * C, C * 2);
    if (!e) e = hass_cuda_fill_f32(d->q, M * d->QD, 1, 0.f, 0.f); // padding queries stay finite
    if (!e) e = hass_cuda_stream_sync();
    if (e) {
        hass_errprefix("cuda draft: upload");
        hass_cuda_draft_free(d);
        *err = e;
        return NULL;
    }
    return d;
}

// Start a new sequence.
void hass_cuda_draft_reset(hass_cuda_draft *d) {
    d->n_stable = d->n_pend = d->has_last = 0;
}

// Stable entries.
int hass_cuda_draft_n_stable(const hass_cuda_draft *d) { return d->n_stable; }

// Copy o_last to the host.
hass_err hass_cuda_draft_last(const hass_cuda_draft *d, float *out) {
    if (!d->has_last) return hass_seterr(HASS_EINVAL, "cuda draft: no draft output yet");
    return hass_cuda_d2h(out, d->o_last, sizeof(float) * d->C);
}

// Queue committed pairs (host copies until the catch-up).
hass_err hass_cuda_draft_push(hass_cuda_draft *d, const float *feats, const int32_t *next_tok,
                              int m) {
    if (m < 0 || d->n_stable + d->n_pend + m > d->n_ctx)
        return hass_seterr(HASS_ERANGE, "cuda draft: context of %d positions exceeded", d->n_ctx);
    for (int i = 0; i < m; i++)
        if (next_tok[i] < 0 || next_tok[i] >= d->V)
            return hass_seterr(HASS_ERANGE, "cuda draft: token %d outside the vocabulary",
                               next_tok[i]);
    memcpy(d->pend_f + (size_t)d->n_pend * d->C, feats, sizeof(float) * (size_t)m * d->C);
    memcpy(d->pend_t + d->n_pend, next_tok, sizeof(int32_t) * (size_t)m);
    d->n_pend += m;
    return HASS_OK;
}

// One draft-layer forward of n rows whose tokens/positions are in d->tok/d->pos and features
// already in the second half of d->cat. Their K/V go to cache entries slot0.. slot0+n-1.
// Causal (q_off < 0): the rows are the block after n_past stable entries (slot0 = n_past).
// Tree (q_off >= 0): the block is the m = q_off + n scratch entries after n_past; the rows are
// its last n, and d->mask (m, m) says what each block row sees. Output rows in d->out.
static hass_err layer_forward(hass_cuda_draft *d, int n, int n_past, int slot0, int q_off) {
    int C = d->C, QD = d->QD, KD = d->KD, QKV = d->QKV, F = d->F;
    hass_cuda_llama *t = d->t;
    // no waits inside a level: host inputs are staged, device copies queued
    hass_err e = hass_cuda_h2d_staged(d->d_tok, d->tok, sizeof(int32_t) * n);
    if (!e) e = hass_cuda_h2d_staged(d->d_pos, d->pos, sizeof(int32_t) * n);
    if (!e) e = hass_cuda_embed(d->emb, t->tok_embd, d->d_tok, n, d->V, C);
    if (!e) e = hass_cuda_copy2d_d2d(d->cat, 2 * C * 4, d->emb, C * 4, C * 4, n);
    if (!e && d->bias_rep) e = hass_cuda_d2d(d->u, d->bias_rep, (size_t)n * C * 4);
    if (!e) e = hass_cuda_matmul(t->cublas, d->u, d->cat, d->fc, d->xb, n, 2 * C, C, d->bias_rep ? 1.f : 0.f);
    if (!e) e = hass_cuda_matmul(t->cublas, d->qkv, d->u, d->wqkv, d->xb, n, C, QKV, 0.f);
    if (!e) e = hass_cuda_rope(d->qkv, d->d_pos, n, QKV, d->H + d->Hkv, d->D, d->theta, HASS_ROPE_HALF);
    if (!e) e = hass_cuda_copy2d_d2d(d->k_cache + (size_t)slot0 * KD, KD * 4, d->qkv + QD, QKV * 4, KD * 4, n);
    if (!e) e = hass_cuda_copy2d_d2d(d->v_cache + (size_t)slot0 * KD, KD * 4, d->qkv + QD + KD, QKV * 4, KD * 4, n);
    const float *att = d->att;
    if (e) return e;
    if (q_off < 0) {
        e = hass_cuda_attention(d->att, d->qkv, d->k_cache, d->v_cache, NULL, n_past, n, QKV,
                                d->H, d->Hkv, d->D);
    } else {
        int m = q_off + n;
        e = hass_cuda_copy2d_d2d(d->q + (size_t)q_off * QD, QD * 4, d->qkv, QKV * 4, QD * 4, n);
        if (!e) e = hass_cuda_h2d_staged(d->d_mask, d->mask, (size_t)m * m);
        if (!e) e = hass_cuda_attention(d->att, d->q, d->k_cache, d->v_cache, d->d_mask, n_past,
                                        m, QD, d->H, d->Hkv, d->D);
        att = d->att + (size_t)q_off * QD;
    }
    if (!e) e = hass_cuda_d2d(d->hid, d->u, (size_t)n * C * 4);
    if (!e) e = hass_cuda_matmul(t->cublas, d->hid, att, d->wo, d->xb, n, QD, C, 1.f);
    if (!e) e = hass_cuda_rmsnorm_bf16(NULL, d->xb, d->hid, d->post_norm, n, C, d->eps);
    if (!e) e = hass_cuda_matmul_bf16(t->cublas, d->gu, d->xb, d->w_gu, n, C, 2 * F, 0.f, 0);
    if (!e) e = hass_cuda_swiglu_bf16(d->xb, d->gu, n, F);
    if (!e) e = hass_cuda_d2d(d->out, d->hid, (size_t)n * C * 4);
    if (!e) e = hass_cuda_matmul_bf16(t->cublas, d->out, d->xb, d->w_down, n, F, C, 1.f, 0);
    return e;
}

// Catch up on the pending pairs in chunks (stable KV appended, o_last updated).
static hass_err catchup(hass_cuda_draft *d) {
    int done = 0, C = d->C;
    while (done < d->n_pend) {
        int n = d->n_pend - done < CHUNK ? d->n_pend - done : CHUNK;
        for (int r = 0; r < n; r++) {
            d->tok[r] = d->pend_t[done + r];
            d->pos[r] = d->n_stable + r;
        }
        hass_err e = hass_cuda_copy2d(d->cat + C, 2 * C * 4, d->pend_f + (size_t)done * C, C * 4,
                                      C * 4, n);
        if (!e) e = layer_forward(d, n, d->n_stable, d->n_stable, -1);
        if (!e) e = hass_cuda_d2d(d->o_last, d->out + (size_t)(n - 1) * C, C * 4);
        if (e) return e;
        d->n_stable += n;
        done += n;
        d->has_last = 1;
    }
    d->n_pend = 0;
    return HASS_OK;
}

// Draft log-probs of n device rows x (n, C). K <= 16 (and <= the ids drafted from): each
// row's top K, ranked on the device, into the host lists d->ti / d->tv (row r at r * K, token
// ids, best first); otherwise the whole rows into the host rows d->lp (*whole = 1). With a
// draft vocabulary, over its ids only (normalised over them, as draft.c; ascending ids, so
// ties rank as the token ids').
static hass_err draft_rows(hass_cuda_draft *d, const float *x, int n, int *whole) {
    int C = d->C, V = d->V, K = d->max.top_k, W = d->n_dv ? d->n_dv : V;
    hass_cuda_llama *t = d->t;
    hass_err e = hass_cuda_matmul(t->cublas, d->logits, x, d->n_dv ? d->w_dv : t->lm_head, d->xb,
                                  n, C, W, 0.f);
    if (!e) e = hass_cuda_log_softmax(d->lpd, d->logits, n, W);
    if (e) return e;
    *whole = K > HASS_TOPK_MAX || K > W;
    if (*whole) {
        if (!d->n_dv) return hass_cuda_d2h(d->lp, d->lpd, sizeof(float) * (size_t)n * V);
        if ((e = hass_cuda_d2h(d->dvbuf, d->lpd, sizeof(float) * (size_t)n * W))) return e;
        for (int r = 0; r < n; r++) {
            float *dst = d->lp + (size_t)r * V;
            for (int j = 0; j < V; j++) dst[j] = -INFINITY;
            for (int i = 0; i < W; i++) dst[d->dv[i]] = d->dvbuf[(size_t)r * W + i];
        }
        return HASS_OK;
    }
    e = hass_cuda_topk(d->d_ti, d->d_tv, d->lpd, n, W, K);
    if (!e) e = hass_cuda_d2h(d->ti, d->d_ti, sizeof(int32_t) * (size_t)n * K); // waits: the level's one
    if (!e) e = hass_cuda_d2h(d->tv, d->d_tv, sizeof(float) * (size_t)n * K);
    if (e) return e;
    if (d->n_dv)
        for (int i = 0; i < n * K; i++)
            if (d->ti[i] >= 0) d->ti[i] = d->dv[d->ti[i]]; // index in the draft vocabulary -> token id
    return HASS_OK;
}

// Catch-up, level 1, expansions, rerank (see draft.h).
hass_err hass_cuda_draft_tree(hass_cuda_draft *d, int32_t root, hass_tree *t) {
    const hass_tree_cfg *c = &t->cfg;
    int C = d->C, K = c->top_k;
    if (c->top_k > d->max.top_k || c->levels > d->max.levels)
        return hass_seterr(HASS_EINVAL, "cuda draft: tree (depth %d, top-k %d) beyond the "
                                        "drafter's (%d, %d)",
                           c->levels, c->top_k, d->max.levels, d->max.top_k);
    if (d->n_pend > 0 && d->pend_t[d->n_pend - 1] != root)
        return hass_seterr(HASS_EINVAL, "cuda draft: last pushed token %d is not the root %d",
                           d->pend_t[d->n_pend - 1], root);
    hass_err e = catchup(d);
    if (e) return e;
    if (!d->has_last) return hass_seterr(HASS_EINVAL, "cuda draft: no committed pair to draft from");
    int whole;
    if ((e = draft_rows(d, d->o_last, 1, &whole))) return e;
    if (whole) hass_tree_begin(t, root, d->lp, d->V);
    else hass_tree_begin_k(t, root, d->ti, d->tv, d->max.top_k);
    while (hass_tree_want_expand(t)) {
        int i = t->step, n = t->n_beam, q_off = i * K, m = q_off + n;
        for (int r = 0; r < n && !e; r++) {
            const float *src = t->beam_src[r] < 0 ? d->o_last : d->prev + (size_t)t->beam_src[r] * C;
            e = hass_cuda_d2d(d->cat + (size_t)r * 2 * C + C, src, C * 4);
            d->tok[r] = t->beam_tok[r];
            d->pos[r] = d->n_stable + i;
        }
        // padding rows see themselves; tree rows their ancestors and themselves
        memset(d->mask, 0, (size_t)m * m);
        for (int j = 0; j < q_off; j++) d->mask[(size_t)j * m + j] = 1;
        for (int r = 0; r < n; r++)
            for (int x = 0; x < m; x++)
                d->mask[(size_t)(q_off + r) * m + x] = t->beam_mask[(size_t)r * t->mask_w + x] != 0;
        if (!e) e = layer_forward(d, n, d->n_stable, d->n_stable + q_off, q_off);
        if (!e) e = hass_cuda_d2d(d->prev, d->out, (size_t)n * C * 4);
        if (!e) e = draft_rows(d, d->prev, n, &whole);
        if (e) return e;
        if (whole) hass_tree_expand(t, d->lp, d->V);
        else hass_tree_expand_k(t, d->ti, d->tv, d->max.top_k, K);
    }
    hass_tree_finish(t);
    return HASS_OK;
}

// Vtable glue for spec.h.
static hass_err cd_reset(void *ctx) { hass_cuda_draft_reset(ctx); return HASS_OK; }
static hass_err cd_push(void *ctx, const float *f, const int32_t *tk, int m) {
    return hass_cuda_draft_push(ctx, f, tk, m);
}
static hass_err cd_tree(void *ctx, int32_t root, hass_tree *t) { return hass_cuda_draft_tree(ctx, root, t); }

// The drafter interface over a GPU drafter.
hass_drafter hass_drafter_cuda(hass_cuda_draft *d) {
    hass_drafter x = {d, cd_reset, cd_push, cd_tree};
    return x;
}
#else
typedef int hass_cuda_draft_unused; // ISO C: a translation unit needs a declaration
#endif
