// train.c: the HASS draft-head training step (see train.h). Per sequence: build copy C^0 (noisy
// features), then for s = 0..S-1 run the step-s forward (queries from copy s, keys/values from
// copies 0..s through the selector), the losses on masked rows, and the step's backward. The
// copies' fc/K/V activations do not change within a batch (weights are fixed until the update),
// so they are computed once per copy, their gradients accumulate over the steps, and the
// K/V/fc backward runs once per copy at the end: the same sum as S separate backwards.
#include "train.h"

#include "safetensors.h"
#include "train_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_CHUNK 128 // rows per LM-head chunk (bounds the (rows, V) logit buffers)

struct hass_train {
    hass_train_dims dm;
    hass_train_opts o;
    int n_ctx;
    size_t n_par;
    float *buf[4]; // weights, grads, m, v: (n_par) each
    hass_tparams w, g, wt; // wt: views into wT (each matrix transposed)
    int64_t step;
    // workspace (sizes for n_ctx positions)
    int32_t *pos;  // (n_ctx)
    float *emb;    // (n_ctx, H) embeddings of x_{t+1}
    float *tgt;    // (n_ctx, H) targets f_{t+1}
    float *m;      // (n_ctx) loss mask (0/1)
    float *cin;    // (S, n_ctx, H) copies C^j
    float *xcat;   // (n_ctx, 2H) fc input of one copy
    float *U;      // (S, n_ctx, H) fc outputs per copy
    float *Kc;     // (S, n_ctx, nkv*d) keys per copy, RoPE applied
    float *Vc;     // (S, n_ctx, nkv*d)
    float *Q;      // (n_ctx, nh*d)
    float *att;    // (n_ctx, nh*d)
    float *prob;   // (nh, n_ctx, n_ctx)
    float *ds;     // (nh, n_ctx, n_ctx)
    float *h;      // (n_ctx, H) after attention residual
    float *rstd;   // (n_ctx)
    float *hn;     // (n_ctx, H) post-attention norm
    float *gg;     // (n_ctx, I) gate
    float *uu;     // (n_ctx, I) up
    float *mm;     // (n_ctx, I) silu(g) * u
    float *out;    // (n_ctx, H) o
    float *dO;     // (n_ctx, H)
    float *dh;     // (n_ctx, H)
    float *dmm;    // (n_ctx, I)
    float *dg;     // (n_ctx, I)
    float *du;     // (n_ctx, I)
    float *dhn;    // (n_ctx, H)
    float *datt;   // (n_ctx, nh*d)
    float *dQ;     // (n_ctx, nh*d)
    float *dK;     // (S, n_ctx, nkv*d) accumulated over steps
    float *dV;     // (S, n_ctx, nkv*d)
    float *dU;     // (S, n_ctx, H)
    double *rl;    // (n_ctx) per-row loss scratch
    double *rl2;   // (n_ctx)
    int *racc;     // (n_ctx)
    int *rows;     // (n_ctx) masked row indices
    float *c_o;    // (HEAD_CHUNK, H)
    float *c_t;    // (HEAD_CHUNK, H)
    float *c_do;   // (HEAD_CHUNK, H)
    float *c_lq;   // (HEAD_CHUNK, V)
    float *c_dl;   // (HEAD_CHUNK, V)
    float *c_cp;   // (HEAD_CHUNK)
    float *c_ck;   // (HEAD_CHUNK)
    // target side of the soft CE of the current sequence: one row per masked position, made
    // at step 0 and shared by the S steps (the targets do not depend on the head's weights)
    float *tp;     // (tp_rows, V) probabilities P
    int *ttop;     // (tp_rows, max(K, 1)) top-K of P
    float *tpk;    // (tp_rows) their mass
    int tp_rows;   // rows allocated
    int n_rows;    // masked rows of the current sequence (their indices in rows)
    float *wT;     // (n_par) the layer's matrices transposed (W^T of every tensor), per batch
    float *ws;     // (n_ctx, max(2H, I, nh*d)) scratch of the weight-gradient products
    // the frozen LM head, transposed once for the row-major products
    const float *head_src;
    float *headT;  // (H, V)
};

// ---- parameters ------------------------------------------------------------------------------

// Rows and columns of tensor i (0..HASS_TPARAMS_N-1) for dims dm; rows 0 = absent.
static void tensor_shape(const hass_train_dims *dm, int i, int *rows, int *cols) {
    int H = dm->n_embd, d = H / dm->n_head, q = dm->n_head * d, kv = dm->n_head_kv * d, I = dm->n_ff;
    switch (i) {
    case 0: *rows = H, *cols = 2 * H; break;
    case 1: *rows = dm->fc_bias ? 1 : 0, *cols = H; break;
    case 2: *rows = q, *cols = H; break;
    case 3: *rows = kv, *cols = H; break;
    case 4: *rows = kv, *cols = H; break;
    case 5: *rows = H, *cols = q; break;
    case 6: *rows = I, *cols = H; break;
    case 7: *rows = I, *cols = H; break;
    case 8: *rows = H, *cols = I; break;
    default: *rows = 1, *cols = H; break;
    }
}

// Number of floats of all trainable tensors.
size_t hass_tparams_count(const hass_train_dims *dm) {
    size_t n = 0;
    for (int i = 0; i < HASS_TPARAMS_N; i++) {
        int r, c;
        tensor_shape(dm, i, &r, &c);
        n += (size_t)r * c;
    }
    return n;
}

// Point the tensors of p into data, in the fixed order.
void hass_tparams_view(hass_tparams *p, const hass_train_dims *dm, float *data) {
    float **slot[HASS_TPARAMS_N] = {&p->fc_w, &p->fc_b, &p->wq, &p->wk, &p->wv,
                                    &p->wo, &p->w_gate, &p->w_up, &p->w_down, &p->norm};
    for (int i = 0; i < HASS_TPARAMS_N; i++) {
        int r, c;
        tensor_shape(dm, i, &r, &c);
        *slot[i] = r ? data : NULL;
        data += (size_t)r * c;
    }
}

// Name, pointer and shape of tensor i.
const char *hass_tparams_tensor(const hass_tparams *p, const hass_train_dims *dm, int i,
                                float **ptr, int *rows, int *cols) {
    static const char *names[HASS_TPARAMS_N] = {
        "fc.weight", "fc.bias", "layers.0.self_attn.q_proj.weight",
        "layers.0.self_attn.k_proj.weight", "layers.0.self_attn.v_proj.weight",
        "layers.0.self_attn.o_proj.weight", "layers.0.mlp.gate_proj.weight",
        "layers.0.mlp.up_proj.weight", "layers.0.mlp.down_proj.weight",
        "layers.0.post_attention_layernorm.weight"};
    if (i < 0 || i >= HASS_TPARAMS_N) return NULL;
    float *const ptrs[HASS_TPARAMS_N] = {p->fc_w, p->fc_b, p->wq, p->wk, p->wv,
                                         p->wo, p->w_gate, p->w_up, p->w_down, p->norm};
    int r, c;
    tensor_shape(dm, i, &r, &c);
    if (!r) return NULL;
    if (ptr) *ptr = ptrs[i];
    if (rows) *rows = r;
    if (cols) *cols = c;
    return names[i];
}

// ---- options, schedule, noise ----------------------------------------------------------------

// HASS defaults (SPEC-HASS section 4), stage 1.
void hass_train_opts_default(hass_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_align = 3;
    o->v_w = 1.0f;
    o->p_w = 0.1f;
    o->topk_w = 0.0f;
    o->topk = 10;
    o->noise_std = 0.2f;
    o->noise_per_len = 1;
    o->leaky = 0;
    o->lr = 3e-5f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->wd = 0.01f;
    o->clip = 0.5f;
    o->seed = 0;
}

// Linear warmup then linear decay (HF get_linear_schedule_with_warmup), in optimiser steps.
float hass_train_lr(const hass_train_opts *o, int64_t step) {
    double f;
    if (step < o->warmup)
        f = (double)step / (double)(o->warmup > 1 ? o->warmup : 1);
    else if (o->total <= 0)
        f = 1.0;
    else {
        int64_t span = o->total - o->warmup;
        f = (double)(o->total - step) / (double)(span > 1 ? span : 1);
        if (f < 0) f = 0;
    }
    return (float)(o->lr * f);
}

// splitmix64 finaliser.
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Key of (seed, epoch, sample).
uint64_t hass_train_noise_key(uint64_t seed, int64_t epoch, int64_t idx) {
    return mix64(seed ^ mix64(((uint64_t)epoch << 32) ^ (uint64_t)idx ^ 0x6861737300000000ull));
}

// Uniform noise, element e uses u = top 24 bits of mix64(key + (e+1) * golden) / 2^24.
void hass_train_noise(float *x, int L, int H, float std, int per_len, uint64_t key) {
    if (std == 0.f || L <= 0) return;
    double amp = per_len ? (double)std * 512.0 / L : (double)std;
    size_t n = (size_t)L * H;
    for (size_t e = 0; e < n; e++) {
        double u = (double)(mix64(key + (e + 1) * 0x9E3779B97F4A7C15ull) >> 40) * (1.0 / 16777216.0);
        x[e] = (float)((double)x[e] + (u - 0.5) * amp);
    }
}

// ---- construction ----------------------------------------------------------------------------

// Free the trainer and its workspace.
void hass_train_free(hass_train *t) {
    if (!t) return;
    for (int i = 0; i < 4; i++) free(t->buf[i]);
    void *ws[] = {t->pos, t->emb, t->tgt, t->m, t->cin, t->xcat, t->U, t->Kc, t->Vc, t->Q,
                  t->att, t->prob, t->ds, t->h, t->rstd, t->hn, t->gg, t->uu, t->mm, t->out,
                  t->dO, t->dh, t->dmm, t->dg, t->du, t->dhn, t->datt, t->dQ, t->dK, t->dV,
                  t->dU, t->rl, t->rl2, t->racc, t->rows, t->c_o, t->c_t, t->c_do, t->c_lq,
                  t->c_dl, t->c_cp, t->c_ck, t->tp, t->ttop, t->tpk, t->wT, t->ws};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) free(ws[i]);
    free(t->headT);
    free(t);
}

// Allocate the trainer and all workspace for n_ctx positions.
hass_train *hass_train_new(const hass_train_dims *dm, const hass_train_opts *o, int n_ctx,
                           hass_err *err) {
    hass_err e = HASS_EINVAL;
    if (dm->n_embd <= 0 || dm->n_head <= 0 || dm->n_head_kv <= 0 || dm->n_ff <= 0 ||
        dm->n_vocab <= 0 || dm->n_embd % dm->n_head || dm->n_head % dm->n_head_kv ||
        (dm->n_embd / dm->n_head) % 2) {
        hass_seterr(e, "hass_train_new: bad dims H %d heads %d/%d ff %d vocab %d", dm->n_embd,
                    dm->n_head, dm->n_head_kv, dm->n_ff, dm->n_vocab);
        goto fail0;
    }
    if (o->n_align < 1 || o->n_align > HASS_TRAIN_MAX_ALIGN || o->topk < 0 ||
        o->topk > HASS_TRAIN_MAX_TOPK || n_ctx < 1) {
        hass_seterr(e, "hass_train_new: alignment steps %d (1..%d), top-K %d (0..%d), n_ctx %d",
                    o->n_align, HASS_TRAIN_MAX_ALIGN, o->topk, HASS_TRAIN_MAX_TOPK, n_ctx);
        goto fail0;
    }
    hass_train *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->dm = *dm;
    t->o = *o;
    t->n_ctx = n_ctx;
    t->n_par = hass_tparams_count(dm);
    for (int i = 0; i < 4; i++)
        if (!(t->buf[i] = calloc(t->n_par, sizeof(float)))) goto oom_t;
    hass_tparams_view(&t->w, dm, t->buf[0]);
    hass_tparams_view(&t->g, dm, t->buf[1]);
    size_t N = (size_t)n_ctx, H = dm->n_embd, d = H / dm->n_head, S = o->n_align;
    size_t QD = dm->n_head * d, KD = dm->n_head_kv * d, I = dm->n_ff, V = dm->n_vocab;
    size_t att2 = (size_t)dm->n_head * N * N;
#define A(p, n) if (!(t->p = calloc((n), sizeof *t->p))) goto oom_t
    A(pos, N); A(emb, N * H); A(tgt, N * H); A(m, N); A(cin, S * N * H); A(xcat, N * 2 * H);
    A(U, S * N * H); A(Kc, S * N * KD); A(Vc, S * N * KD); A(Q, N * QD); A(att, N * QD);
    A(prob, att2); A(ds, att2); A(h, N * H); A(rstd, N); A(hn, N * H); A(gg, N * I);
    A(uu, N * I); A(mm, N * I); A(out, N * H); A(dO, N * H); A(dh, N * H); A(dmm, N * I);
    A(dg, N * I); A(du, N * I); A(dhn, N * H); A(datt, N * QD); A(dQ, N * QD);
    A(dK, S * N * KD); A(dV, S * N * KD); A(dU, S * N * H); A(rl, N); A(rl2, N); A(racc, N);
    A(rows, N); A(c_o, HEAD_CHUNK * H); A(c_t, HEAD_CHUNK * H); A(c_do, HEAD_CHUNK * H);
    A(c_lq, HEAD_CHUNK * V); A(c_dl, HEAD_CHUNK * V);
    A(c_cp, HEAD_CHUNK); A(c_ck, HEAD_CHUNK);
    A(wT, t->n_par); A(ws, N * (2 * H > I ? (2 * H > QD ? 2 * H : QD) : (I > QD ? I : QD)));
#undef A
    hass_tparams_view(&t->wt, dm, t->wT);
    for (int i = 0; i < n_ctx; i++) t->pos[i] = i;
    return t;
oom_t:
    hass_train_free(t);
oom:
    e = hass_seterr(HASS_ENOMEM, "hass_train_new: out of memory for n_ctx %d", n_ctx);
fail0:
    if (err) *err = e;
    return NULL;
}

hass_tparams *hass_train_weights(hass_train *t) { return &t->w; }
hass_tparams *hass_train_grads(hass_train *t) { return &t->g; }
float *hass_train_buf(hass_train *t, int which) { return which >= 0 && which < 4 ? t->buf[which] : NULL; }
size_t hass_train_n_params(const hass_train *t) { return t->n_par; }
int64_t hass_train_step(const hass_train *t) { return t->step; }
void hass_train_set_step(hass_train *t, int64_t step) { t->step = step; }
hass_train_opts *hass_train_options(hass_train *t) { return &t->o; }

// Zero the gradient buffer.
void hass_train_zero_grad(hass_train *t) { memset(t->buf[1], 0, t->n_par * sizeof(float)); }

// Transpose the layer's matrices into wt (the weights are fixed for a whole batch).
static void transpose_weights(hass_train *t) {
    for (int i = 0; i < HASS_TPARAMS_N; i++) {
        float *src, *dst;
        int r, c;
        if (!hass_tparams_tensor(&t->w, &t->dm, i, &src, &r, &c) || r == 1) continue;
        hass_tparams_tensor(&t->wt, &t->dm, i, &dst, NULL, NULL);
        hass_train_ops_transpose(dst, src, r, c);
    }
}

// ---- the step --------------------------------------------------------------------------------

// fc, K and V of copy j (n rows): U^j = fc([emb, C^j]), K^j = rope(U^j Wk), V^j = U^j Wv.
static void copy_forward(hass_train *t, int j, int n) {
    int H = t->dm.n_embd, d = H / t->dm.n_head, KD = t->dm.n_head_kv * d;
    const float *c = t->cin + (size_t)j * n * H;
    for (int r = 0; r < n; r++) {
        memcpy(t->xcat + (size_t)r * 2 * H, t->emb + (size_t)r * H, H * sizeof(float));
        memcpy(t->xcat + (size_t)r * 2 * H + H, c + (size_t)r * H, H * sizeof(float));
    }
    float *U = t->U + (size_t)j * n * H, *K = t->Kc + (size_t)j * n * KD, *V = t->Vc + (size_t)j * n * KD;
    hass_train_ops_linear_fwd_t(U, t->xcat, t->wt.fc_w, t->w.fc_b, n, 2 * H, H);
    hass_train_ops_linear_fwd_t(K, U, t->wt.wk, NULL, n, H, KD);
    hass_train_ops_rope_fwd(K, t->pos, n, t->dm.n_head_kv, d, t->dm.rope_theta);
    hass_train_ops_linear_fwd_t(V, U, t->wt.wv, NULL, n, H, KD);
}

// Backward of copy j's fc/K/V from the accumulated dK, dV, dU.
static void copy_backward(hass_train *t, int j, int n) {
    int H = t->dm.n_embd, d = H / t->dm.n_head, KD = t->dm.n_head_kv * d;
    float *U = t->U + (size_t)j * n * H, *dU = t->dU + (size_t)j * n * H;
    float *dK = t->dK + (size_t)j * n * KD, *dV = t->dV + (size_t)j * n * KD;
    hass_train_ops_rope_bwd(dK, t->pos, n, t->dm.n_head_kv, d, t->dm.rope_theta);
    hass_train_ops_linear_bwd_ws(dU, t->g.wk, NULL, dK, U, t->w.wk, n, H, KD, t->ws);
    hass_train_ops_linear_bwd_ws(dU, t->g.wv, NULL, dV, U, t->w.wv, n, H, KD, t->ws);
    const float *c = t->cin + (size_t)j * n * H;
    for (int r = 0; r < n; r++) {
        memcpy(t->xcat + (size_t)r * 2 * H, t->emb + (size_t)r * H, H * sizeof(float));
        memcpy(t->xcat + (size_t)r * 2 * H + H, c + (size_t)r * H, H * sizeof(float));
    }
    hass_train_ops_linear_bwd_ws(NULL, t->g.fc_w, t->g.fc_b, dU, t->xcat, t->w.fc_w, n, 2 * H, H, t->ws);
}

// Step-s forward of the layer (queries and residual from copy s) into t->out.
static void step_forward(hass_train *t, int s, int n, int n_pad) {
    int H = t->dm.n_embd, nh = t->dm.n_head, nkv = t->dm.n_head_kv, d = H / nh, I = t->dm.n_ff;
    const float *U = t->U + (size_t)s * n * H;
    hass_train_ops_linear_fwd_t(t->Q, U, t->wt.wq, NULL, n, H, nh * d);
    hass_train_ops_rope_fwd(t->Q, t->pos, n, nh, d, t->dm.rope_theta);
    hass_train_ops_attn_fwd(t->att, t->prob, t->Q, t->Kc, t->Vc, n, nh, nkv, d, s, n_pad);
    hass_train_ops_linear_fwd_t(t->h, t->att, t->wt.wo, NULL, n, nh * d, H);
    for (size_t i = 0; i < (size_t)n * H; i++) t->h[i] += U[i];
    hass_train_ops_rmsnorm_fwd(t->hn, t->rstd, t->h, t->w.norm, n, H, t->dm.norm_eps);
    hass_train_ops_linear_fwd_t(t->gg, t->hn, t->wt.w_gate, NULL, n, H, I);
    hass_train_ops_linear_fwd_t(t->uu, t->hn, t->wt.w_up, NULL, n, H, I);
    hass_train_ops_swiglu_fwd(t->mm, t->gg, t->uu, (size_t)n * I);
    hass_train_ops_linear_fwd_t(t->out, t->mm, t->wt.w_down, NULL, n, I, H);
    for (size_t i = 0; i < (size_t)n * H; i++) t->out[i] += t->h[i];
}

// Step-s backward from t->dO: weight gradients of the layer, dU of copy s, dK/dV of copies 0..s.
static void step_backward(hass_train *t, int s, int n) {
    int H = t->dm.n_embd, nh = t->dm.n_head, nkv = t->dm.n_head_kv, d = H / nh, I = t->dm.n_ff;
    size_t nH = (size_t)n * H, nI = (size_t)n * I, nQ = (size_t)n * nh * d;
    memcpy(t->dh, t->dO, nH * sizeof(float));
    memset(t->dmm, 0, nI * sizeof(float));
    hass_train_ops_linear_bwd_ws(t->dmm, t->g.w_down, NULL, t->dO, t->mm, t->w.w_down, n, I, H, t->ws);
    memset(t->dg, 0, nI * sizeof(float));
    memset(t->du, 0, nI * sizeof(float));
    hass_train_ops_swiglu_bwd(t->dg, t->du, t->dmm, t->gg, t->uu, nI);
    memset(t->dhn, 0, nH * sizeof(float));
    hass_train_ops_linear_bwd_ws(t->dhn, t->g.w_gate, NULL, t->dg, t->hn, t->w.w_gate, n, H, I, t->ws);
    hass_train_ops_linear_bwd_ws(t->dhn, t->g.w_up, NULL, t->du, t->hn, t->w.w_up, n, H, I, t->ws);
    hass_train_ops_rmsnorm_bwd(t->dh, t->g.norm, t->dhn, t->h, t->w.norm, t->rstd, n, H);
    float *U = t->U + (size_t)s * n * H, *dU = t->dU + (size_t)s * n * H;
    for (size_t i = 0; i < nH; i++) dU[i] += t->dh[i];
    memset(t->datt, 0, nQ * sizeof(float));
    hass_train_ops_linear_bwd_ws(t->datt, t->g.wo, NULL, t->dh, t->att, t->w.wo, n, nh * d, H, t->ws);
    memset(t->dQ, 0, nQ * sizeof(float));
    hass_train_ops_attn_bwd(t->dQ, t->dK, t->dV, t->ds, t->datt, t->prob, t->Q, t->Kc, t->Vc, n, nh,
                       nkv, d, s);
    hass_train_ops_rope_bwd(t->dQ, t->pos, n, nh, d, t->dm.rope_theta);
    hass_train_ops_linear_bwd_ws(dU, t->g.wq, NULL, t->dQ, U, t->w.wq, n, H, nh * d, t->ws);
}

// Transposed LM head (H, V) for the logits products; remade when another head is passed.
static hass_err head_t(hass_train *t, const float *head) {
    if (t->head_src == head && t->headT) return HASS_OK;
    size_t n = (size_t)t->dm.n_vocab * t->dm.n_embd;
    if (!t->headT && !(t->headT = hass_train_ops_big_alloc(n * sizeof(float))))
        return hass_seterr(HASS_ENOMEM, "hass_train_batch: no memory for the transposed LM head (%zu MiB)",
                           n * sizeof(float) >> 20);
    hass_train_ops_transpose(t->headT, head, t->dm.n_vocab, t->dm.n_embd);
    t->head_src = head;
    return HASS_OK;
}

// Target side of the soft CE for the masked rows of the current sequence: P, top-K, mass.
static hass_err target_rows(hass_train *t, int n) {
    int H = t->dm.n_embd, V = t->dm.n_vocab, kt = t->o.topk > 0 ? t->o.topk : 1;
    int n_rows = 0;
    for (int r = 0; r < n; r++)
        if (t->m[r] != 0.f) t->rows[n_rows++] = r;
    t->n_rows = n_rows;
    if (n_rows > t->tp_rows) {
        free(t->tp), free(t->ttop), free(t->tpk);
        t->tp = malloc((size_t)n_rows * V * sizeof(float));
        t->ttop = malloc((size_t)n_rows * kt * sizeof(int));
        t->tpk = malloc((size_t)n_rows * sizeof(float));
        t->tp_rows = t->tp && t->ttop && t->tpk ? n_rows : 0;
        if (!t->tp_rows)
            return hass_seterr(HASS_ENOMEM, "hass_train_batch: no memory for %d target rows", n_rows);
    }
    for (int c0 = 0; c0 < n_rows; c0 += HEAD_CHUNK) {
        int nc = n_rows - c0 < HEAD_CHUNK ? n_rows - c0 : HEAD_CHUNK;
        for (int j = 0; j < nc; j++)
            memcpy(t->c_t + (size_t)j * H, t->tgt + (size_t)t->rows[c0 + j] * H, H * sizeof(float));
        hass_train_ops_linear_fwd_t(t->tp + (size_t)c0 * V, t->c_t, t->headT, NULL, nc, H, V);
    }
    hass_train_ops_ce_target(t->tp, t->ttop, t->tpk, n_rows, V, t->o.topk);
    return HASS_OK;
}

// Losses of step s on the masked rows of t->out (rows and targets from target_rows); fills
// t->dO when train. Adds unnormalised sums (sum over rows of m * loss) into sums[0..2] and
// accuracy counts into st.
static void step_losses(hass_train *t, int s, int n, double inv_norm, int train, double sums[3],
                        hass_train_stats *st) {
    int H = t->dm.n_embd, V = t->dm.n_vocab, kt = t->o.topk > 0 ? t->o.topk : 1;
    int n_rows = t->n_rows;
    if (train) memset(t->dO, 0, (size_t)n * H * sizeof(float));
    float cv = (float)(t->o.v_w * inv_norm), cp = (float)(t->o.p_w * inv_norm),
          ck = (float)(t->o.topk_w * inv_norm);
    for (int c0 = 0; c0 < n_rows; c0 += HEAD_CHUNK) {
        int nc = n_rows - c0 < HEAD_CHUNK ? n_rows - c0 : HEAD_CHUNK;
        for (int j = 0; j < nc; j++) {
            int r = t->rows[c0 + j];
            memcpy(t->c_o + (size_t)j * H, t->out + (size_t)r * H, H * sizeof(float));
            memcpy(t->c_t + (size_t)j * H, t->tgt + (size_t)r * H, H * sizeof(float));
            t->c_cp[j] = cp, t->c_ck[j] = ck;
        }
        hass_train_ops_linear_fwd_t(t->c_lq, t->c_o, t->headT, NULL, nc, H, V);
        if (train) memset(t->c_dl, 0, (size_t)nc * V * sizeof(float));
        hass_train_ops_ce_draft(train ? t->c_dl : NULL, t->rl, t->rl2, t->racc, t->c_lq,
                           t->tp + (size_t)c0 * V, t->ttop + (size_t)c0 * kt, t->tpk + c0, t->c_cp,
                           t->c_ck, nc, V, t->o.topk);
        for (int j = 0; j < nc; j++) {
            sums[1] += t->rl[j];
            sums[2] += t->rl2[j];
            st->top1[s] += t->racc[j] == 1;
            st->top3[s] += t->racc[j] >= 1;
        }
        if (train) {
            memset(t->c_do, 0, (size_t)nc * H * sizeof(float));
            hass_train_ops_gemm(t->c_do, H, t->c_dl, V, t->head_src, H, nc, V, H);
            for (int j = 0; j < nc; j++) t->c_cp[j] = cv;
        }
        hass_train_ops_smoothl1(train ? t->c_do : NULL, t->rl, t->c_o, t->c_t, train ? t->c_cp : NULL,
                           nc, H);
        for (int j = 0; j < nc; j++) sums[0] += t->rl[j];
        if (train)
            for (int j = 0; j < nc; j++) {
                float *dst = t->dO + (size_t)t->rows[c0 + j] * H;
                for (int i = 0; i < H; i++) dst[i] += t->c_do[(size_t)j * H + i];
            }
    }
}

// Forward (+ backward) of all alignment steps over the batch.
hass_err hass_train_batch(hass_train *t, const float *embed, const float *head,
                          const hass_train_seq *seqs, int n_seq, int train, hass_train_stats *st) {
    const hass_train_dims *dm = &t->dm;
    int H = dm->n_embd, S = t->o.n_align, KD = dm->n_head_kv * (H / dm->n_head);
    memset(st, 0, sizeof *st);
    st->n_align = S;
    int n_pad = 0;
    for (int b = 0; b < n_seq; b++) {
        const hass_train_seq *q = &seqs[b];
        if (q->n < 1 || q->n > t->n_ctx)
            return hass_seterr(HASS_EINVAL, "hass_train_batch: sequence %d has %d positions (1..%d)",
                               b, q->n, t->n_ctx);
        for (int i = 0; i < q->n; i++)
            if (q->ids[i] < 0 || q->ids[i] >= dm->n_vocab)
                return hass_seterr(HASS_EINVAL, "hass_train_batch: sequence %d position %d: token %d "
                                   "outside the vocabulary (%d)", b, i, q->ids[i], dm->n_vocab);
        for (int i = 0; i + 1 < q->n; i++) st->n_mask += q->mask[i] != 0;
        st->n_tok += q->n;
        if (q->n > n_pad) n_pad = q->n;
    }
    double inv_norm = 1.0 / ((double)st->n_mask + 1e-5);
    hass_err he = head_t(t, head);
    if (he) return he;
    transpose_weights(t);
    double sums[HASS_TRAIN_MAX_ALIGN][3] = {{0}};
    for (int b = 0; b < n_seq; b++) {
        const hass_train_seq *q = &seqs[b];
        int n = q->n;
        size_t nH = (size_t)n * H;
        // loader of SPEC-HASS section 3: ids shifted left, targets f_{t+1}, last mask 0
        for (int i = 0; i < n; i++) {
            int tok = i + 1 < n ? q->ids[i + 1] : 0;
            memcpy(t->emb + (size_t)i * H, embed + (size_t)tok * H, H * sizeof(float));
            if (i + 1 < n) memcpy(t->tgt + (size_t)i * H, q->feat + (size_t)(i + 1) * H, H * sizeof(float));
            else memset(t->tgt + (size_t)i * H, 0, H * sizeof(float));
            t->m[i] = i + 1 < n && q->mask[i] ? 1.f : 0.f;
        }
        memcpy(t->cin, q->feat, nH * sizeof(float));
        if (train) hass_train_noise(t->cin, n, H, t->o.noise_std, t->o.noise_per_len, q->noise_key);
        if (train) {
            memset(t->dK, 0, (size_t)S * n * KD * sizeof(float));
            memset(t->dV, 0, (size_t)S * n * KD * sizeof(float));
            memset(t->dU, 0, (size_t)S * nH * sizeof(float));
        }
        hass_err e = target_rows(t, n);
        if (e) return e;
        copy_forward(t, 0, n);
        for (int s = 0; s < S; s++) {
            step_forward(t, s, n, t->o.leaky ? n_pad : 0);
            step_losses(t, s, n, inv_norm, train, sums[s], st);
            if (train) step_backward(t, s, n);
            if (s + 1 < S) { // C^{s+1} = [C^s_0, O^s_0 .. O^s_{n-2}], detached
                float *nx = t->cin + (size_t)(s + 1) * nH;
                memcpy(nx, t->cin + (size_t)s * nH, H * sizeof(float));
                memcpy(nx + H, t->out, (nH - H) * sizeof(float));
                copy_forward(t, s + 1, n);
            }
        }
        if (train)
            for (int j = 0; j < S; j++) copy_backward(t, j, n);
    }
    for (int s = 0; s < S; s++) {
        st->vloss[s] = sums[s][0] * inv_norm;
        st->ploss[s] = sums[s][1] * inv_norm;
        st->kloss[s] = sums[s][2] * inv_norm;
        st->loss += t->o.v_w * st->vloss[s] + t->o.p_w * st->ploss[s] + t->o.topk_w * st->kloss[s];
    }
    if (!isfinite(st->loss))
        return hass_seterr(HASS_ERANGE, "hass_train_batch: loss is %g (step %lld)", st->loss,
                           (long long)t->step);
    return HASS_OK;
}

// Clip by value, AdamW (PyTorch formulation: decoupled decay, bias-corrected moments).
hass_err hass_train_update(hass_train *t, hass_train_stats *st) {
    float *p = t->buf[0], *g = t->buf[1], *m = t->buf[2], *v = t->buf[3];
    const hass_train_opts *o = &t->o;
    double gmax = 0;
    int64_t n_clip = 0;
    for (size_t i = 0; i < t->n_par; i++) {
        if (!isfinite(g[i]))
            return hass_seterr(HASS_ERANGE, "hass_train_update: gradient %zu is %g (step %lld)", i,
                               g[i], (long long)t->step);
        double a = fabs(g[i]);
        if (a > gmax) gmax = a;
        if (o->clip > 0 && a > o->clip) n_clip++;
    }
    float lr = hass_train_lr(o, t->step);
    double tt = (double)(t->step + 1);
    float bc1 = (float)(1.0 - pow(o->beta1, tt));
    float sbc2 = (float)sqrt(1.0 - pow(o->beta2, tt));
    float step_size = lr / bc1, decay = 1.f - lr * o->wd;
#pragma omp parallel for schedule(static) if (t->n_par > 1000000)
    for (size_t i = 0; i < t->n_par; i++) {
        float gi = g[i];
        if (o->clip > 0) gi = gi > o->clip ? o->clip : gi < -o->clip ? -o->clip : gi;
        p[i] *= decay;
        m[i] = o->beta1 * m[i] + (1.f - o->beta1) * gi;
        v[i] = o->beta2 * v[i] + (1.f - o->beta2) * gi * gi;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / sbc2 + o->eps);
    }
    t->step++;
    if (st) {
        st->lr = lr;
        st->grad_absmax = gmax;
        st->n_clipped = n_clip;
    }
    return HASS_OK;
}

// ---- weights on disk ---------------------------------------------------------------------------

// Fill a safetensors entry for an F32 tensor.
static void st_entry(hass_st_tensor *e, const char *name, const float *p, int rows, int cols) {
    memset(e, 0, sizeof *e);
    e->name = name;
    e->dtype = HASS_ST_F32;
    e->data = p;
    e->n_dims = rows == 1 ? 1 : 2;
    e->shape[0] = rows == 1 ? cols : rows;
    e->shape[1] = cols;
    e->n_bytes = (uint64_t)rows * cols * sizeof(float);
}

// Save weights + AdamW state + step.
hass_err hass_train_save_state(hass_train *t, const char *path, const char *const *meta) {
    static const char *pre[3] = {"weight.", "adam_m.", "adam_v."};
    hass_st_tensor ents[3 * HASS_TPARAMS_N];
    char names[3 * HASS_TPARAMS_N][96];
    hass_tparams views[3];
    hass_tparams_view(&views[0], &t->dm, t->buf[0]);
    hass_tparams_view(&views[1], &t->dm, t->buf[2]);
    hass_tparams_view(&views[2], &t->dm, t->buf[3]);
    int n = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < HASS_TPARAMS_N; i++) {
            float *p;
            int r, c;
            const char *nm = hass_tparams_tensor(&views[k], &t->dm, i, &p, &r, &c);
            if (!nm) continue;
            snprintf(names[n], sizeof names[n], "%s%s", pre[k], nm);
            st_entry(&ents[n], names[n], p, r, c);
            n++;
        }
    const char *all[64];
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)t->step);
    int m = 0;
    all[m++] = "hass.state_version", all[m++] = "1";
    all[m++] = "hass.step", all[m++] = step;
    for (int i = 0; meta && meta[i] && meta[i + 1] && m < 62; i += 2) all[m++] = meta[i], all[m++] = meta[i + 1];
    all[m] = NULL;
    return hass_st_write(path, ents, n, all);
}

// Load weights (and optionally the optimiser state) from a state file.
hass_err hass_train_load(hass_train *t, const hass_st *st, int with_optimizer) {
    static const char *pre[3] = {"weight.", "adam_m.", "adam_v."};
    float *bufs[3] = {t->buf[0], t->buf[2], t->buf[3]};
    if (!hass_st_find(st, "weight.fc.weight"))
        return hass_seterr(HASS_EFORMAT, "%s: not a training state (no weight.fc.weight)", hass_st_path(st));
    for (int k = 0; k < (with_optimizer ? 3 : 1); k++) {
        hass_tparams v;
        hass_tparams_view(&v, &t->dm, bufs[k]);
        for (int i = 0; i < HASS_TPARAMS_N; i++) {
            float *p;
            int r, c;
            const char *nm = hass_tparams_tensor(&v, &t->dm, i, &p, &r, &c);
            if (!nm) continue;
            char full[96];
            snprintf(full, sizeof full, "%s%s", pre[k], nm);
            const hass_st_tensor *e = hass_st_find(st, full);
            if (!e)
                return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' missing", hass_st_path(st), full);
            if ((e->dtype != HASS_ST_F32 && e->dtype != HASS_ST_BF16 && e->dtype != HASS_ST_F16) ||
                e->n_bytes != (uint64_t)r * c * (uint64_t)hass_st_dtype_size(e->dtype))
                goto shape;
            int64_t want0 = r == 1 ? c : r;
            if (e->shape[0] != want0 || (r != 1 && (e->n_dims != 2 || e->shape[1] != c))) goto shape;
            if (e->dtype == HASS_ST_F32) {
                memcpy(p, e->data, e->n_bytes);
            } else {
                const uint8_t *b = e->data;
                for (size_t q = 0; q < (size_t)r * c; q++) {
                    uint16_t h = (uint16_t)(b[2 * q] | b[2 * q + 1] << 8);
                    p[q] = e->dtype == HASS_ST_F16 ? hass_f16_to_f32(h) : hass_bf16_to_f32(h);
                }
            }
            continue;
        shape:
            return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' is %s [%lld%s%lld], expected [%d, %d] for this "
                               "target", hass_st_path(st), full, hass_st_dtype_name(e->dtype),
                               (long long)e->shape[0], e->n_dims > 1 ? ", " : "",
                               e->n_dims > 1 ? (long long)e->shape[1] : 0LL, r, c);
        }
    }
    if (with_optimizer) {
        const char *s = hass_st_meta(st, "hass.step");
        int64_t step = 0;
        if (!s || hass_parse_i64(s, 0, INT64_MAX, &step))
            return hass_seterr(HASS_EFORMAT, "%s: metadata hass.step missing or bad", hass_st_path(st));
        t->step = step;
    }
    return HASS_OK;
}
