// forward.c: the LLaMA forward pass over a block of tokens with explicit positions and an
// attention mask, the per-sequence KV cache (append, compaction of an accepted path), and plain
// greedy/sampled decoding through it.
#include "forward.h"
#include "attention.h"
#include "model_int.h"
#include "ops.h"
#include "quant.h"
#include "sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HASS_X86 1
#endif

// Scratch of forwards over blocks of up to n_max rows in all (every sequence's rows together).
struct hass_fwd_scratch {
    const hass_model *m;
    int n_max, n_thr, n_ctx; // rows, threads, the longest cache attended
    size_t bl_cap;    // entries of blist
    int n_seq_max;    // sequences of seqk
    float *x;         // (n_max, C) residual stream
    float *xn;        // (n_max, C) normed input
    float *tmp;       // (n_max, C) projection output / gathered features
    float *feat;      // (n_max, C) features when the caller passes none (or several sequences)
    float *q;         // (n_max, H*D)
    float *att;       // (n_max, H*D)
    float *g, *u;     // (n_max, F)
    float *cs;        // (n_max, D) cos (D/2) then sin (D/2) per row
    float *kb, *vb;   // (n_max, kvd) several sequences' block K/V before they go to their caches
    int32_t *tok;     // (n_max) several sequences' tokens, concatenated
    int *iota;        // (n_max) 0, 1, 2, ...: the visible rows of a causal row
    const int **bl;   // (n_max) visible block rows of each row (into iota or blist)
    int *bcnt;        // (n_max) how many
    int *lrows;       // (n_max) the rows that get logits, over all sequences
    int *blist;       // (bl_cap) visible rows of masked blocks, row after row
    void *qbuf;       // quantized activations
    float *scores;    // (n_thr, hass_att_scratch_floats(n_ctx)) attention scores per thread
    hass_att_seq *aseq; // (n_max) each sequence's rows and cache for the attention
};

struct hass_kv {
    const hass_model *m;
    int n_ctx;        // capacity
    int len;          // entries
    int base;         // len at the start of the last forward
    int kvd;          // Hkv * D
    float *k, *v;     // (n_layer, n_ctx, kvd) each; K after RoPE
    hass_fwd_scratch sc; // scratch of this cache's own forwards (grown on demand)
};

// ----------------------------------------------------------------------------
// cache

hass_kv *hass_kv_new(const hass_model *m, int n_ctx, hass_err *err) {
    const hass_model_cfg *c = &m->cfg;
    if (n_ctx <= 0) n_ctx = c->n_ctx_train < 4096 ? c->n_ctx_train : 4096;
    if (n_ctx <= 0 || n_ctx > (1 << 22)) {
        *err = hass_seterr(HASS_ERANGE, "kv: context length %d out of range", n_ctx);
        return NULL;
    }
    hass_kv *kv = calloc(1, sizeof *kv);
    if (!kv) goto oom;
    kv->m = m;
    kv->sc.m = m;
    kv->n_ctx = n_ctx;
    kv->kvd = c->n_head_kv * c->head_dim;
    size_t n = (size_t)c->n_layer * (size_t)n_ctx * (size_t)kv->kvd;
    kv->k = malloc(n * sizeof(float));
    kv->v = malloc(n * sizeof(float));
    if (!kv->k || !kv->v) goto oom;
    *err = HASS_OK;
    return kv;
oom:
    hass_kv_free(kv);
    *err = hass_seterr(HASS_ENOMEM, "kv: out of memory for %d entries", n_ctx);
    return NULL;
}

// Free the scratch buffers (the record stays, empty).
static void free_scratch(hass_fwd_scratch *sc) {
    free(sc->x); free(sc->xn); free(sc->tmp); free(sc->feat); free(sc->q); free(sc->att);
    free(sc->g); free(sc->u); free(sc->cs); free(sc->kb); free(sc->vb); free(sc->tok);
    free(sc->iota); free(sc->bl); free(sc->bcnt); free(sc->lrows);
    free(sc->blist); free(sc->qbuf); free(sc->scores); free(sc->aseq);
    *sc = (hass_fwd_scratch){.m = sc->m};
}

void hass_kv_free(hass_kv *kv) {
    if (!kv) return;
    free_scratch(&kv->sc);
    free(kv->k);
    free(kv->v);
    free(kv);
}

int hass_kv_len(const hass_kv *kv) { return kv->len; }
int hass_kv_capacity(const hass_kv *kv) { return kv->n_ctx; }
int hass_kv_base(const hass_kv *kv) { return kv->base; }

void hass_kv_truncate(hass_kv *kv, int n) {
    if (n < 0) n = 0;
    if (n < kv->len) kv->len = n;
    kv->base = kv->len;
}

hass_err hass_kv_commit(hass_kv *kv, const int *idx, int n_keep) {
    int nb = kv->len - kv->base;
    if (n_keep < 0 || n_keep > nb)
        return hass_seterr(HASS_EINVAL, "kv_commit: keeping %d of %d block entries", n_keep, nb);
    for (int j = 0; j < n_keep; j++)
        if (idx[j] < 0 || idx[j] >= nb || (j && idx[j] <= idx[j - 1]))
            return hass_seterr(HASS_EINVAL, "kv_commit: idx[%d] = %d is not ascending in [0, %d)",
                               j, idx[j], nb);
    const hass_model_cfg *c = &kv->m->cfg;
    size_t row = (size_t)kv->kvd;
    for (int l = 0; l < c->n_layer; l++) {
        float *kl = kv->k + (size_t)l * kv->n_ctx * row, *vl = kv->v + (size_t)l * kv->n_ctx * row;
        for (int j = 0; j < n_keep; j++) {
            if (idx[j] == j) continue;
            size_t dst = (size_t)(kv->base + j) * row, src = (size_t)(kv->base + idx[j]) * row;
            memmove(kl + dst, kl + src, row * sizeof(float));
            memmove(vl + dst, vl + src, row * sizeof(float));
        }
    }
    kv->len = kv->base + n_keep;
    return HASS_OK;
}

// Grow sc for blocks of n rows in all over caches of up to n_ctx entries, with bl entries of
// masked visible-row lists (each size only grows; nothing is allocated when all fit).
static hass_err scratch_reserve(hass_fwd_scratch *sc, int n, int n_ctx, size_t bl) {
    const hass_model_cfg *c = &sc->m->cfg;
    int nt = sc->m->n_threads;
    if (n <= sc->n_max && nt <= sc->n_thr && n_ctx <= sc->n_ctx && bl <= sc->bl_cap) return HASS_OK;
    hass_fwd_scratch o = *sc;
    if (n < o.n_max) n = o.n_max;
    if (n_ctx < o.n_ctx) n_ctx = o.n_ctx;
    if (bl < o.bl_cap) bl = o.bl_cap;
    free_scratch(sc);
    size_t C = (size_t)c->n_embd, QD = (size_t)c->n_head * c->head_dim, F = (size_t)c->n_ff;
    size_t KVD = (size_t)c->n_head_kv * c->head_dim;
    size_t N = (size_t)n, big = C > QD ? C : QD;
    if (F > big) big = F;
    sc->x = malloc(N * C * sizeof(float));
    sc->xn = malloc(N * C * sizeof(float));
    sc->tmp = malloc(N * C * sizeof(float));
    sc->feat = malloc(N * C * sizeof(float));
    sc->q = malloc(N * QD * sizeof(float));
    sc->att = malloc(N * QD * sizeof(float));
    sc->g = malloc(N * F * sizeof(float));
    sc->u = malloc(N * F * sizeof(float));
    sc->cs = malloc(N * (size_t)c->head_dim * sizeof(float));
    sc->kb = malloc(N * KVD * sizeof(float));
    sc->vb = malloc(N * KVD * sizeof(float));
    sc->tok = malloc(N * sizeof(int32_t));
    sc->iota = malloc(N * sizeof(int));
    sc->bl = malloc(N * sizeof(int *));
    sc->bcnt = malloc(N * sizeof(int));
    sc->lrows = malloc(N * sizeof(int));
    sc->blist = malloc((bl ? bl : 1) * sizeof(int));
    sc->qbuf = malloc(hass_matmul_scratch_bytes((int)big, n));
    sc->scores = malloc((size_t)nt * hass_att_scratch_floats(n_ctx) * sizeof(float));
    sc->aseq = malloc(N * sizeof(hass_att_seq));
    if (!sc->x || !sc->xn || !sc->tmp || !sc->feat || !sc->q || !sc->att || !sc->g || !sc->u ||
        !sc->cs || !sc->kb || !sc->vb || !sc->tok || !sc->iota || !sc->bl ||
        !sc->bcnt || !sc->lrows || !sc->blist || !sc->qbuf || !sc->scores ||
        !sc->aseq) {
        free_scratch(sc);
        return hass_seterr(HASS_ENOMEM, "kv: out of memory for a block of %d rows", n);
    }
    for (int i = 0; i < n; i++) sc->iota[i] = i;
    sc->n_max = n;
    sc->n_thr = nt;
    sc->n_ctx = n_ctx;
    sc->bl_cap = bl;
    return HASS_OK;
}

hass_err hass_kv_reserve(hass_kv *kv, int n) {
    return scratch_reserve(&kv->sc, n, kv->n_ctx, (size_t)n * (size_t)n);
}

hass_fwd_scratch *hass_fwd_scratch_new(const hass_model *m, hass_err *err) {
    hass_fwd_scratch *sc = calloc(1, sizeof *sc);
    if (!sc) *err = hass_seterr(HASS_ENOMEM, "forward: out of memory");
    else sc->m = m, *err = HASS_OK;
    return sc;
}

void hass_fwd_scratch_free(hass_fwd_scratch *sc) {
    if (!sc) return;
    free_scratch(sc);
    free(sc);
}

hass_err hass_fwd_scratch_reserve(hass_fwd_scratch *sc, int n_rows, int n_ctx) {
    return scratch_reserve(sc, n_rows, n_ctx, 0);
}

// ----------------------------------------------------------------------------
// pieces of the forward pass

// Run matmuls sharing input x, grouping them by whether activations are quantized.
static void mm(const hass_model *m, hass_fwd_scratch *sc, const float *x, int n, hass_mm_job *jobs,
               int n_jobs) {
    hass_mm_job a[8], b[8];
    int na = 0, nb = 0;
    for (int j = 0; j < n_jobs; j++) {
        if (hass_quant_is_q(jobs[j].w->type)) a[na++] = jobs[j];
        else b[nb++] = jobs[j];
    }
    if (na) hass_mm_run_prec(a, na, x, n, sc->qbuf, m->pool, m->prec);
    if (nb) hass_mm_run_prec(b, nb, x, n, sc->qbuf, m->pool, m->prec);
}

// Rotate the heads of n rows (row stride `stride` floats, n_heads heads of D) by the angles in cs.
static void rope(float *x, int n, int stride, int n_heads, int D, int mode, const float *cs) {
    int half = D / 2;
    for (int i = 0; i < n; i++) {
        const float *co = cs + (size_t)i * D, *si = co + half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)i * stride + (size_t)h * D;
            for (int j = 0; j < half; j++) {
                int a = mode == HASS_ROPE_PAIRS ? 2 * j : j;
                int b = mode == HASS_ROPE_PAIRS ? 2 * j + 1 : j + half;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * co[j] - x1 * si[j];
                v[b] = x0 * si[j] + x1 * co[j];
            }
        }
    }
}

// Attention of the rows of every sequence over its own cache at layer l (attention.h), on the
// model's thread team.
static void attention(const hass_model *m, hass_fwd_scratch *sc, const hass_fwd_seq *seqs,
                      int n_seq, int l) {
    const hass_model_cfg *c = &m->cfg;
    for (int k = 0, r = 0; k < n_seq; r += seqs[k++].n) {
        const hass_kv *kv = seqs[k].kv;
        size_t lo = (size_t)l * kv->n_ctx * kv->kvd;
        sc->aseq[k] = (hass_att_seq){kv->k + lo, kv->v + lo, kv->base, r, seqs[k].n};
    }
    hass_att a = {c->n_head, c->n_head_kv, c->head_dim, m->prec != HASS_PREC_F32, sc->q, sc->att,
                  sc->bl, sc->bcnt, sc->aseq, n_seq, sc->n_ctx, sc->scores};
    hass_attention(m->pool, &a);
}

#ifdef HASS_X86
// round_f16 with F16C, 8 values at a time (the same rounding as hass_f16_round).
__attribute__((target("avx,f16c"))) static void round_f16_hw(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), 0)));
    for (; i < n; i++) x[i] = _cvtsh_ss(_cvtss_sh(x[i], 0));
}
#endif

// Round n values to fp16 in place (the KV cache and the attention queries hold fp16 values,
// as llama.cpp's default f16 cache does).
static void round_f16(float *x, size_t n) {
#ifdef HASS_X86
    if (__builtin_cpu_supports("f16c")) {
        round_f16_hw(x, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) x[i] = hass_f16_round(x[i]);
}

// x += y elementwise over n values.
static void add_to(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

// ----------------------------------------------------------------------------
// forward

// Check sequence k of n_seq (messages name it when there are several); nothing is changed.
static hass_err check_seq(const hass_model *m, const hass_fwd_seq *seqs, int k, int n_seq) {
    const hass_fwd_seq *q = &seqs[k];
    const hass_kv *kv = q->kv;
    int n = q->n, V = m->cfg.n_vocab;
    char at[32] = "";
    if (n_seq > 1) snprintf(at, sizeof at, "sequence %d: ", k);
    if (!kv || kv->m != m)
        return hass_seterr(HASS_EINVAL, "forward: %sthe cache belongs to another model", at);
    for (int j = 0; j < k; j++)
        if (seqs[j].kv == kv) return hass_seterr(HASS_EINVAL, "forward: %sthe cache of sequence %d", at, j);
    if (n <= 0) return hass_seterr(HASS_EINVAL, "forward: %sempty block", at);
    if (kv->len + n > kv->n_ctx)
        return hass_seterr(HASS_ERANGE, "forward: %s%d + %d tokens overflow the cache of %d", at,
                           kv->len, n, kv->n_ctx);
    for (int i = 0; i < n; i++)
        if (q->tok[i] < 0 || q->tok[i] >= V)
            return hass_seterr(HASS_ERANGE, "forward: %stoken id %d (row %d) outside the vocabulary "
                               "[0, %d)", at, q->tok[i], i, V);
    if (q->logits && q->n_rows > n)
        return hass_seterr(HASS_EINVAL, "forward: %s%d logit rows for a block of %d", at, q->n_rows, n);
    for (int r = 0; r < q->n_rows; r++)
        if (q->rows[r] < 0 || q->rows[r] >= n)
            return hass_seterr(HASS_EINVAL, "forward: %slogit row %d outside the block of %d", at,
                               q->rows[r], n);
    return HASS_OK;
}

// Lay out the rows of every sequence one after another: each cache's base, each row's visible
// block rows and RoPE angles. Returns the tokens of all rows (several sequences: concatenated
// into sc->tok).
static const int32_t *layout(const hass_model *m, hass_fwd_scratch *sc, const hass_fwd_seq *seqs,
                             int n_seq) {
    int D = m->cfg.head_dim, half = D / 2, r = 0;
    size_t bo = 0;
    for (int k = 0; k < n_seq; k++) {
        const hass_fwd_seq *q = &seqs[k];
        hass_kv *kv = q->kv;
        int n = q->n;
        kv->base = kv->len;
        if (n_seq > 1) memcpy(sc->tok + r, q->tok, (size_t)n * sizeof(int32_t));
        for (int i = 0; i < n; i++, r++) {
            if (q->mask) {
                int *bl = sc->blist + bo, cnt = 0;
                for (int j = 0; j < n; j++)
                    if (q->mask[(size_t)i * n + j]) bl[cnt++] = j;
                sc->bl[r] = bl;
                sc->bcnt[r] = cnt;
                bo += (size_t)cnt;
            } else { // causal: rows 0..i
                sc->bl[r] = sc->iota;
                sc->bcnt[r] = i + 1;
            }
            double p = q->pos ? (double)q->pos[i] : (double)(kv->base + i);
            float *co = sc->cs + (size_t)r * D, *si = co + half;
            for (int j = 0; j < half; j++) {
                double a = p * (double)m->inv_freq[j];
                co[j] = (float)cos(a);
                si[j] = (float)sin(a);
            }
        }
    }
    return n_seq > 1 ? sc->tok : seqs[0].tok;
}

// Several sequences: copy each one's block K/V rows (kb, vb (rows, kvd)) to its cache at layer l.
static void store_kv(const hass_fwd_seq *seqs, int n_seq, int l, int kvd, const float *kb,
                     const float *vb) {
    size_t r = 0, row = (size_t)kvd * sizeof(float);
    for (int k = 0; k < n_seq; k++) {
        hass_kv *kv = seqs[k].kv;
        size_t off = ((size_t)l * kv->n_ctx + (size_t)kv->base) * kvd;
        memcpy(kv->k + off, kb + r * kvd, (size_t)seqs[k].n * row);
        memcpy(kv->v + off, vb + r * kvd, (size_t)seqs[k].n * row);
        r += (size_t)seqs[k].n;
    }
}

// The LM head on feature rows sc->lrows[0..nr) of f (n, C) into out (nr, V): straight from f
// when the rows follow one another, else gathered into sc->tmp first.
static void lm_rows(hass_model *m, hass_fwd_scratch *sc, const float *f, int nr, float *out) {
    int C = m->cfg.n_embd, contiguous = 1;
    const float *src = f + (size_t)sc->lrows[0] * C;
    for (int r = 0; r < nr; r++) contiguous &= sc->lrows[r] == sc->lrows[0] + r;
    if (!contiguous) {
        for (int r = 0; r < nr; r++)
            memcpy(sc->tmp + (size_t)r * C, f + (size_t)sc->lrows[r] * C, (size_t)C * sizeof(float));
        src = sc->tmp;
    }
    hass_mm_job lm = {&m->output, out};
    mm(m, sc, src, nr, &lm, 1);
}

// Logits of every sequence's logit rows from the features f (all rows, C): one LM-head matmul
// per run of sequences whose logits follow one another in memory (one sequence's always do).
static void lm_head(hass_model *m, hass_fwd_scratch *sc, const hass_fwd_seq *seqs, int n_seq,
                    const float *f) {
    size_t V = (size_t)m->cfg.n_vocab;
    int nr = 0, r0 = 0;
    float *out = NULL;
    for (int k = 0; k <= n_seq; k++) {
        const hass_fwd_seq *q = k < n_seq ? &seqs[k] : NULL;
        int has = q && q->logits && q->n_rows > 0;
        if (nr && (!q || (has && q->logits != out + (size_t)nr * V))) {
            lm_rows(m, sc, f, nr, out);
            nr = 0;
        }
        if (has) {
            if (!nr) out = q->logits;
            for (int r = 0; r < q->n_rows; r++) sc->lrows[nr++] = r0 + q->rows[r];
        }
        if (q) r0 += q->n;
    }
}

hass_err hass_forward_batch(hass_model *m, hass_fwd_scratch *sc, const hass_fwd_seq *seqs,
                            int n_seq) {
    const hass_model_cfg *c = &m->cfg;
    if (n_seq <= 0) return hass_seterr(HASS_EINVAL, "forward: no sequence");
    int n = 0, ctx = 0;
    size_t bln = 0;
    for (int k = 0; k < n_seq; k++) {
        hass_err e = check_seq(m, seqs, k, n_seq);
        if (e) return e;
        n += seqs[k].n;
        if (seqs[k].kv->n_ctx > ctx) ctx = seqs[k].kv->n_ctx;
        if (seqs[k].mask) bln += (size_t)seqs[k].n * (size_t)seqs[k].n;
    }
    if (!sc) sc = &seqs[0].kv->sc;
    if (sc->m != m) return hass_seterr(HASS_EINVAL, "forward: the scratch belongs to another model");
    hass_err e = scratch_reserve(sc, n, ctx, bln);
    if (!e) e = hass_model_pack_layers(m);
    if (e) return e;
    int C = c->n_embd, D = c->head_dim, H = c->n_head, Hkv = c->n_head_kv, F = c->n_ff;
    int qd = H * D, kvd = Hkv * D, one = n_seq == 1;
    const int32_t *tok = layout(m, sc, seqs, n_seq);
    float *x = sc->x;
    hass_model_embed(m, tok, n, x);
    for (int l = 0; l < c->n_layer; l++) {
        const hass_layer *L = &m->layers[l];
        // one sequence: its block K/V straight into its cache
        hass_kv *kv0 = seqs[0].kv;
        size_t off0 = ((size_t)l * kv0->n_ctx + (size_t)kv0->base) * kvd;
        float *kb = one ? kv0->k + off0 : sc->kb, *vb = one ? kv0->v + off0 : sc->vb;
        hass_cpu_rmsnorm(sc->xn, x, L->attn_norm, n, C, c->norm_eps);
        hass_mm_job qkv[3] = {{&L->wq, sc->q}, {&L->wk, kb}, {&L->wv, vb}};
        mm(m, sc, sc->xn, n, qkv, 3);
        if (L->bq)
            for (int i = 0; i < n; i++) {
                add_to(sc->q + (size_t)i * qd, L->bq, (size_t)qd);
                add_to(kb + (size_t)i * kvd, L->bk, (size_t)kvd);
                add_to(vb + (size_t)i * kvd, L->bv, (size_t)kvd);
            }
        rope(sc->q, n, qd, H, D, c->rope_mode, sc->cs);
        rope(kb, n, kvd, Hkv, D, c->rope_mode, sc->cs);
        if (m->prec != HASS_PREC_F32) { // llama.cpp's default f16 cache (and f16 queries)
            round_f16(sc->q, (size_t)n * qd);
            round_f16(kb, (size_t)n * kvd);
            round_f16(vb, (size_t)n * kvd);
        }
        if (!one) store_kv(seqs, n_seq, l, kvd, kb, vb);
        attention(m, sc, seqs, n_seq, l);
        hass_mm_job o = {&L->wo, sc->tmp};
        mm(m, sc, sc->att, n, &o, 1);
        add_to(x, sc->tmp, (size_t)n * C);
        hass_cpu_rmsnorm(sc->xn, x, L->ffn_norm, n, C, c->norm_eps);
        hass_mm_job gu[2] = {{&L->w_gate, sc->g}, {&L->w_up, sc->u}};
        mm(m, sc, sc->xn, n, gu, 2);
        size_t nf = (size_t)n * F;
        for (size_t i = 0; i < nf; i++) {
            float gv = sc->g[i];
            sc->g[i] = gv / (1.0f + expf(-gv)) * sc->u[i];
        }
        hass_mm_job dn = {&L->w_down, sc->tmp};
        mm(m, sc, sc->g, n, &dn, 1);
        add_to(x, sc->tmp, (size_t)n * C);
    }
    float *f = one && seqs[0].feats ? seqs[0].feats : sc->feat;
    hass_cpu_rmsnorm(f, x, m->output_norm, n, C, c->norm_eps);
    for (int k = 0, r = 0; k < n_seq; r += seqs[k++].n) {
        hass_kv *kv = seqs[k].kv;
        kv->len = kv->base + seqs[k].n;
        if (!one && seqs[k].feats)
            memcpy(seqs[k].feats, f + (size_t)r * C, (size_t)seqs[k].n * C * sizeof(float));
    }
    lm_head(m, sc, seqs, n_seq, f);
    return HASS_OK;
}

hass_err hass_forward_rows(hass_model *m, hass_kv *kv, const int32_t *tok, const int32_t *pos,
                           int n, const uint8_t *mask, const int *rows, int n_rows,
                           float *logits, float *feats) {
    hass_fwd_seq q = {kv, tok, pos, n, mask, rows, n_rows, logits, feats};
    return hass_forward_batch(m, NULL, &q, 1);
}

hass_err hass_forward(hass_model *m, hass_kv *kv, const int32_t *tok, const int32_t *pos, int n,
                      const uint8_t *mask, float *logits, float *feats) {
    int stack[64], *rows = n <= 64 ? stack : malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    if (!rows) return hass_seterr(HASS_ENOMEM, "forward: out of memory");
    for (int i = 0; i < n; i++) rows[i] = i;
    hass_err e = hass_forward_rows(m, kv, tok, pos, n, mask, rows, logits ? n : 0, logits, feats);
    if (rows != stack) free(rows);
    return e;
}

// ----------------------------------------------------------------------------
// sampling and plain decoding

int hass_generate(hass_model *m, hass_kv *kv, const int32_t *prompt, int n_prompt, int n_new,
                  const hass_sample_cfg *sc, int eos_id, int32_t *out, float *margins) {
    int V = m->cfg.n_vocab;
    if (n_prompt <= 0) return hass_seterr(HASS_EINVAL, "generate: empty prompt");
    if (n_new <= 0) return 0;
    float *logits = malloc((size_t)V * 2 * sizeof(float));
    if (!logits) return hass_seterr(HASS_ENOMEM, "generate: out of memory");
    hass_sampler smp = {sc ? sc->temperature : 0.f, sc ? sc->top_k : 0, sc ? sc->top_p : 1.f};
    hass_rng rng;
    hass_rng_seed(&rng, sc ? sc->seed : 0);
    hass_kv_truncate(kv, 0);
    int last = n_prompt - 1, k = 0;
    hass_err e = hass_forward_rows(m, kv, prompt, NULL, n_prompt, NULL, &last, 1, logits, NULL);
    while (!e) {
        int32_t t = hass_sample_token(&smp, logits, V, &rng, logits + V);
        if (margins) {
            int a = hass_sample_argmax(logits, V);
            float second = -INFINITY;
            for (int i = 0; i < V; i++)
                if (i != a && logits[i] > second) second = logits[i];
            margins[k] = logits[a] - second;
        }
        out[k++] = t;
        if (k == n_new || t == eos_id) break;
        int zero = 0;
        e = hass_forward_rows(m, kv, &t, NULL, 1, NULL, &zero, 1, logits, NULL);
    }
    free(logits);
    return e ? (int)e : k;
}
