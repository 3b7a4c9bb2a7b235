// forward.c: the LLaMA forward pass over a block of tokens with explicit positions and an
// attention mask, the per-sequence KV cache (append, compaction of an accepted path), and plain
// greedy/sampled decoding through it.
#include "forward.h"
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
    int *rseq;        // (n_max) the sequence of each row
    int *iota;        // (n_max) 0, 1, 2, ...: the visible rows of a causal row
    const int **bl;   // (n_max) visible block rows of each row (into iota or blist)
    int *bcnt;        // (n_max) how many
    int *lrows;       // (n_max) the rows that get logits, over all sequences
    int *blist;       // (bl_cap) visible rows of masked blocks, row after row
    void *qbuf;       // quantized activations
    float *scores;    // (n_thr, n_ctx) attention scores per thread
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
    free(sc->rseq); free(sc->iota); free(sc->bl); free(sc->bcnt); free(sc->lrows);
    free(sc->blist); free(sc->qbuf); free(sc->scores);
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
    sc->rseq = malloc(N * sizeof(int));
    sc->iota = malloc(N * sizeof(int));
    sc->bl = malloc(N * sizeof(int *));
    sc->bcnt = malloc(N * sizeof(int));
    sc->lrows = malloc(N * sizeof(int));
    sc->blist = malloc((bl ? bl : 1) * sizeof(int));
    sc->qbuf = malloc(hass_matmul_scratch_bytes((int)big, n));
    sc->scores = malloc((size_t)nt * (size_t)n_ctx * sizeof(float));
    if (!sc->x || !sc->xn || !sc->tmp || !sc->feat || !sc->q || !sc->att || !sc->g || !sc->u ||
        !sc->cs || !sc->kb || !sc->vb || !sc->tok || !sc->rseq || !sc->iota || !sc->bl ||
        !sc->bcnt || !sc->lrows || !sc->blist || !sc->qbuf || !sc->scores) {
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

// Dot product of two head vectors of length D, in a fixed order for the process's kernel path.
typedef float (*dot_fn)(const float *a, const float *b, int D);

// Portable dot: 4 partial sums.
static float dot_c(const float *a, const float *b, int D) {
    float s[4] = {0, 0, 0, 0};
    int i = 0;
    for (; i + 4 <= D; i += 4)
        for (int k = 0; k < 4; k++) s[k] += a[i + k] * b[i + k];
    for (; i < D; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

#ifdef HASS_X86
// AVX2 dot: 8 lanes, fixed horizontal sum, scalar tail.
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int D) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= D; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (; i < D; i++) r += a[i] * b[i];
    return r;
}
#endif

// o += p * v over D values (mul then add, no fma: the same values as the C loop).
typedef void (*axpy_fn)(float *o, float p, const float *v, int D);

// Portable axpy.
static void axpy_c(float *o, float p, const float *v, int D) {
    for (int d = 0; d < D; d++) o[d] += p * v[d];
}

#ifdef HASS_X86
// AVX2 axpy, scalar tail.
__attribute__((target("avx2"))) static void axpy_avx2(float *o, float p, const float *v, int D) {
    __m256 pv = _mm256_set1_ps(p);
    int d = 0;
    for (; d + 8 <= D; d += 8)
        _mm256_storeu_ps(o + d, _mm256_add_ps(_mm256_loadu_ps(o + d), _mm256_mul_ps(pv, _mm256_loadu_ps(v + d))));
    for (; d < D; d++) o[d] += p * v[d];
}
#endif

// The axpy for the current kernel path.
static axpy_fn pick_axpy(void) {
#ifdef HASS_X86
    if (strcmp(hass_kernel_path(), "c")) return axpy_avx2;
#endif
    return axpy_c;
}

// The dot product for the current kernel path.
static dot_fn pick_dot(void) {
#ifdef HASS_X86
    if (strcmp(hass_kernel_path(), "c")) return dot_avx2;
#endif
    return dot_c;
}

#ifdef HASS_X86
#define T_ATT __attribute__((target("avx2,fma,f16c")))
// Scores of one query against n keys (key i at kc + ent(i) * kvd), each exactly as dot_avx2
// computes it, times scale: four keys at a time so their sums overlap instead of one call per
// key. ent(i) = i below base, base + bl[i - base] from there (the block's visible rows).
T_ATT static void scores_avx2(const float *qv, const float *kc, size_t kvd, int base,
                              const int *bl, int n, int D, float scale, float *s) {
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        const float *k[4];
        __m256 acc[4];
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) {
            int e = t + j < base ? t + j : base + bl[t + j - base];
            k[j] = kc + (size_t)e * kvd;
            acc[j] = _mm256_setzero_ps();
        }
        int i = 0;
        for (; i + 8 <= D; i += 8) {
            __m256 q8 = _mm256_loadu_ps(qv + i);
            _Pragma("GCC unroll 4")
            for (int j = 0; j < 4; j++) acc[j] = _mm256_fmadd_ps(q8, _mm256_loadu_ps(k[j] + i), acc[j]);
        }
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) {
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            h = _mm_add_ss(h, _mm_movehdup_ps(h));
            float r = _mm_cvtss_f32(h);
            for (int d = i; d < D; d++) r += qv[d] * k[j][d];
            s[t + j] = r * scale;
        }
    }
    for (; t < n; t++) {
        int e = t < base ? t : base + bl[t - base];
        s[t] = dot_avx2(qv, kc + (size_t)e * kvd, D) * scale;
    }
}

// o = sum over the n entries (in order) of fp16(p[i] * inv) (or p[i] * inv without f16) times
// value ent(i), with axpy_avx2's arithmetic (o += p * v, multiply then add, per element), the
// NV * 8 = D outputs kept in registers.
T_ATT static inline __attribute__((always_inline)) void
values_avx2_n(float *o, const float *vc, size_t kvd, int base, const int *bl, int n, const int NV,
              const float *p, float inv, int f16) {
    __m256 acc[16];
    _Pragma("GCC unroll 16")
    for (int j = 0; j < NV; j++) acc[j] = _mm256_setzero_ps();
    for (int t = 0; t < n; t++) {
        int e = t < base ? t : base + bl[t - base];
        const float *vv = vc + (size_t)e * kvd;
        float pr = p[t] * inv;
        if (f16) pr = _cvtsh_ss(_cvtss_sh(pr, 0));
        __m256 pv = _mm256_set1_ps(pr);
        _Pragma("GCC unroll 16")
        for (int j = 0; j < NV; j++) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(pv, _mm256_loadu_ps(vv + 8 * j)));
    }
    _Pragma("GCC unroll 16")
    for (int j = 0; j < NV; j++) _mm256_storeu_ps(o + 8 * j, acc[j]);
}

// values_avx2_n for D = 64 or 128; 0 when D is another size (the caller uses axpy).
T_ATT static int values_avx2(float *o, const float *vc, size_t kvd, int base, const int *bl,
                             int n, int D, const float *p, float inv, int f16) {
    if (D == 64) values_avx2_n(o, vc, kvd, base, bl, n, 8, p, inv, f16);
    else if (D == 128) values_avx2_n(o, vc, kvd, base, bl, n, 16, p, inv, f16);
    else return 0;
    return 1;
}
#endif

// Attention for every (row, head): softmax over the committed entries [0, base) and the visible
// block entries, in cache order, over a compacted score array (so that the arithmetic of a row
// does not depend on which other rows are in the block).
typedef struct att_ctx {
    const hass_model *m;
    hass_fwd_scratch *sc;
    const hass_fwd_seq *seqs; // the row's sequence: seqs[sc->rseq[row]]
    int layer;
} att_ctx;

// Attention tasks [t0, t1) (task = row * H + head) on thread k, each over its row's own cache.
static void attention_tasks(void *ctx, int k, int t0, int t1) {
    att_ctx *a = ctx;
    const hass_model_cfg *c = &a->m->cfg;
    hass_fwd_scratch *sc = a->sc;
    int H = c->n_head, D = c->head_dim, kvd = c->n_head_kv * D, grp = c->n_head / c->n_head_kv;
    int qd = H * D;
    float scale = 1.0f / sqrtf((float)D);
    int f16 = a->m->prec != HASS_PREC_F32;
    dot_fn dot = pick_dot();
    axpy_fn axpy = pick_axpy();
#ifdef HASS_X86
    // the AVX2 path's scores and weighted values without a call per key (same arithmetic; its
    // fp16 rounding needs F16C, which the AVX2 machines we meet have)
    int fast = dot != dot_c && __builtin_cpu_supports("f16c");
#endif
    for (int task = t0; task < t1; task++) {
        int i = task / H, h = task % H, g = h / grp;
        const hass_kv *kv = a->seqs[sc->rseq[i]].kv;
        size_t lo = (size_t)a->layer * kv->n_ctx * kvd;
        const float *kc = kv->k + lo, *vc = kv->v + lo; // (n_ctx, kvd) this layer's cache
        int base = kv->base;
        float *s = sc->scores + (size_t)k * sc->n_ctx;
        const float *qv = sc->q + (size_t)i * qd + (size_t)h * D;
        const int *bl = sc->bl[i];
        int nbl = sc->bcnt[i], cnt = 0;
#ifdef HASS_X86
        if (fast) {
            cnt = base + nbl;
            scores_avx2(qv, kc + (size_t)g * D, (size_t)kvd, base, bl, cnt, D, scale, s);
        } else
#endif
        {
            for (int t = 0; t < base; t++) s[cnt++] = dot(qv, kc + (size_t)t * kvd + (size_t)g * D, D) * scale;
            for (int j = 0; j < nbl; j++)
                s[cnt++] = dot(qv, kc + (size_t)(base + bl[j]) * kvd + (size_t)g * D, D) * scale;
        }
        float mx = -INFINITY;
        for (int t = 0; t < cnt; t++) mx = s[t] > mx ? s[t] : mx;
        double sum = 0.0;
        for (int t = 0; t < cnt; t++) {
            s[t] = expf(s[t] - mx);
            sum += s[t];
        }
        float inv = cnt ? (float)(1.0 / sum) : 0.f; // a row that sees nothing gets zeros
        float *o = sc->att + (size_t)i * qd + (size_t)h * D;
#ifdef HASS_X86
        if (fast && values_avx2(o, vc + (size_t)g * D, (size_t)kvd, base, bl, cnt, D, s, inv, f16))
            continue;
#endif
        for (int d = 0; d < D; d++) o[d] = 0.f;
        for (int t = 0; t < cnt; t++) {
            int e = t < base ? t : base + bl[t - base];
            const float *vv = vc + (size_t)e * kvd + (size_t)g * D;
            float pr = s[t] * inv;
            axpy(o, f16 ? hass_f16_round(pr) : pr, vv, D); // llama.cpp: f16 V times f16 probs
        }
    }
}

// Attention of the n rows of every sequence over its own cache at layer l, on the model's thread
// team.
static void attention(const hass_model *m, hass_fwd_scratch *sc, const hass_fwd_seq *seqs, int n,
                      int l) {
    att_ctx a = {m, sc, seqs, l};
    hass_pool_run(m->pool, n * m->cfg.n_head, attention_tasks, &a);
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

// Lay out the rows of every sequence one after another: each cache's base, the row's sequence,
// its visible block rows and RoPE angles. Returns the tokens of all rows (several sequences:
// concatenated into sc->tok).
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
            sc->rseq[r] = k;
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
        attention(m, sc, seqs, n, l);
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
