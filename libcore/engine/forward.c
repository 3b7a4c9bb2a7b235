// forward.c: the LLaMA forward pass over a block of tokens with explicit positions and an
// attention mask, the per-sequence KV cache (append, compaction of an accepted path), and plain
// greedy/sampled decoding through it.
#include "forward.h"
#include "model_int.h"
#include "ops.h"
#include "quant.h"
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HASS_X86 1
#endif

struct hass_kv {
    const hass_model *m;
    int n_ctx;        // capacity
    int len;          // entries
    int base;         // len at the start of the last forward
    int kvd;          // Hkv * D
    float *k, *v;     // (n_layer, n_ctx, kvd) each; K after RoPE
    // scratch for blocks of up to n_max rows (grown on demand)
    int n_max, n_thr;
    float *x;         // (n_max, C) residual stream
    float *xn;        // (n_max, C) normed input
    float *tmp;       // (n_max, C) projection output / gathered features
    float *feat;      // (n_max, C) features when the caller passes none
    float *q;         // (n_max, H*D)
    float *att;       // (n_max, H*D)
    float *g, *u;     // (n_max, F)
    float *cs;        // (n_max, D) cos (D/2) then sin (D/2) per row
    int *blist;       // (n_max, n_max) visible block rows per row
    int *bcnt;        // (n_max)
    void *qbuf;       // quantized activations
    float *scores;    // (n_thr, n_ctx) attention scores per thread
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

// Free the scratch buffers.
static void free_scratch(hass_kv *kv) {
    free(kv->x); free(kv->xn); free(kv->tmp); free(kv->feat); free(kv->q); free(kv->att);
    free(kv->g); free(kv->u); free(kv->cs); free(kv->blist); free(kv->bcnt); free(kv->qbuf);
    free(kv->scores);
    kv->x = kv->xn = kv->tmp = kv->feat = kv->q = kv->att = kv->g = kv->u = kv->cs = NULL;
    kv->blist = kv->bcnt = NULL;
    kv->qbuf = NULL;
    kv->scores = NULL;
    kv->n_max = kv->n_thr = 0;
}

void hass_kv_free(hass_kv *kv) {
    if (!kv) return;
    free_scratch(kv);
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

hass_err hass_kv_reserve(hass_kv *kv, int n) {
    const hass_model_cfg *c = &kv->m->cfg;
    int nt = kv->m->n_threads;
    if (n <= kv->n_max && nt <= kv->n_thr) return HASS_OK;
    if (n < kv->n_max) n = kv->n_max;
    free_scratch(kv);
    size_t C = (size_t)c->n_embd, QD = (size_t)c->n_head * c->head_dim, F = (size_t)c->n_ff;
    size_t N = (size_t)n, big = C > QD ? C : QD;
    if (F > big) big = F;
    kv->x = malloc(N * C * sizeof(float));
    kv->xn = malloc(N * C * sizeof(float));
    kv->tmp = malloc(N * C * sizeof(float));
    kv->feat = malloc(N * C * sizeof(float));
    kv->q = malloc(N * QD * sizeof(float));
    kv->att = malloc(N * QD * sizeof(float));
    kv->g = malloc(N * F * sizeof(float));
    kv->u = malloc(N * F * sizeof(float));
    kv->cs = malloc(N * (size_t)c->head_dim * sizeof(float));
    kv->blist = malloc(N * N * sizeof(int));
    kv->bcnt = malloc(N * sizeof(int));
    kv->qbuf = malloc(hass_matmul_scratch_bytes((int)big, n));
    kv->scores = malloc((size_t)nt * (size_t)kv->n_ctx * sizeof(float));
    if (!kv->x || !kv->xn || !kv->tmp || !kv->feat || !kv->q || !kv->att || !kv->g || !kv->u ||
        !kv->cs || !kv->blist || !kv->bcnt || !kv->qbuf || !kv->scores) {
        free_scratch(kv);
        return hass_seterr(HASS_ENOMEM, "kv: out of memory for a block of %d rows", n);
    }
    kv->n_max = n;
    kv->n_thr = nt;
    return HASS_OK;
}

// ----------------------------------------------------------------------------
// pieces of the forward pass

// Run matmuls sharing input x, grouping them by whether activations are quantized.
static void mm(const hass_model *m, hass_kv *kv, const float *x, int n, hass_mm_job *jobs,
               int n_jobs) {
    hass_mm_job a[8], b[8];
    int na = 0, nb = 0;
    for (int j = 0; j < n_jobs; j++) {
        if (hass_quant_is_q(jobs[j].w->type)) a[na++] = jobs[j];
        else b[nb++] = jobs[j];
    }
    if (na) hass_mm_run_prec(a, na, x, n, kv->qbuf, m->pool, m->prec);
    if (nb) hass_mm_run_prec(b, nb, x, n, kv->qbuf, m->pool, m->prec);
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
    hass_kv *kv;
    const float *kc, *vc; // (n_ctx, kvd) this layer's cache
} att_ctx;

// Attention tasks [t0, t1) (task = row * H + head) on thread k.
static void attention_tasks(void *ctx, int k, int t0, int t1) {
    att_ctx *a = ctx;
    const hass_model_cfg *c = &a->m->cfg;
    hass_kv *kv = a->kv;
    const float *kc = a->kc, *vc = a->vc;
    int H = c->n_head, D = c->head_dim, kvd = kv->kvd, grp = c->n_head / c->n_head_kv;
    int base = kv->base, qd = H * D;
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
        float *s = kv->scores + (size_t)k * kv->n_ctx;
        const float *qv = kv->q + (size_t)i * qd + (size_t)h * D;
        const int *bl = kv->blist + (size_t)i * kv->n_max;
        int nbl = kv->bcnt[i], cnt = 0;
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
        float *o = kv->att + (size_t)i * qd + (size_t)h * D;
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

// Attention of the block's n rows over this layer's cache, on the model's thread team.
static void attention(const hass_model *m, hass_kv *kv, int n, const float *kc, const float *vc) {
    att_ctx a = {m, kv, kc, vc};
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

hass_err hass_forward_rows(hass_model *m, hass_kv *kv, const int32_t *tok, const int32_t *pos,
                           int n, const uint8_t *mask, const int *rows, int n_rows,
                           float *logits, float *feats) {
    const hass_model_cfg *c = &m->cfg;
    if (kv->m != m) return hass_seterr(HASS_EINVAL, "forward: the cache belongs to another model");
    if (n <= 0) return hass_seterr(HASS_EINVAL, "forward: empty block");
    if (kv->len + n > kv->n_ctx)
        return hass_seterr(HASS_ERANGE, "forward: %d + %d tokens overflow the cache of %d",
                           kv->len, n, kv->n_ctx);
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= c->n_vocab)
            return hass_seterr(HASS_ERANGE, "forward: token id %d (row %d) outside the vocabulary "
                               "[0, %d)", tok[i], i, c->n_vocab);
    for (int r = 0; r < n_rows; r++)
        if (rows[r] < 0 || rows[r] >= n)
            return hass_seterr(HASS_EINVAL, "forward: logit row %d outside the block of %d",
                               rows[r], n);
    hass_err e = hass_kv_reserve(kv, n);
    if (!e) e = hass_model_pack_layers(m);
    if (e) return e;
    int C = c->n_embd, D = c->head_dim, H = c->n_head, Hkv = c->n_head_kv, F = c->n_ff;
    int qd = H * D, kvd = kv->kvd, half = D / 2;
    kv->base = kv->len;
    int base = kv->base;
    // visible block rows and RoPE angles per row
    for (int i = 0; i < n; i++) {
        int cnt = 0;
        for (int j = 0; j < n; j++)
            if (mask ? mask[(size_t)i * n + j] != 0 : j <= i) kv->blist[(size_t)i * kv->n_max + cnt++] = j;
        kv->bcnt[i] = cnt;
        double p = pos ? (double)pos[i] : (double)(base + i);
        float *co = kv->cs + (size_t)i * D, *si = co + half;
        for (int j = 0; j < half; j++) {
            double a = p * (double)m->inv_freq[j];
            co[j] = (float)cos(a);
            si[j] = (float)sin(a);
        }
    }
    float *x = kv->x;
    hass_model_embed(m, tok, n, x);
    for (int l = 0; l < c->n_layer; l++) {
        const hass_layer *L = &m->layers[l];
        float *kc = kv->k + (size_t)l * kv->n_ctx * kvd, *vc = kv->v + (size_t)l * kv->n_ctx * kvd;
        float *kb = kc + (size_t)base * kvd, *vb = vc + (size_t)base * kvd;
        hass_cpu_rmsnorm(kv->xn, x, L->attn_norm, n, C, c->norm_eps);
        hass_mm_job qkv[3] = {{&L->wq, kv->q}, {&L->wk, kb}, {&L->wv, vb}};
        mm(m, kv, kv->xn, n, qkv, 3);
        if (L->bq)
            for (int i = 0; i < n; i++) {
                add_to(kv->q + (size_t)i * qd, L->bq, (size_t)qd);
                add_to(kb + (size_t)i * kvd, L->bk, (size_t)kvd);
                add_to(vb + (size_t)i * kvd, L->bv, (size_t)kvd);
            }
        rope(kv->q, n, qd, H, D, c->rope_mode, kv->cs);
        rope(kb, n, kvd, Hkv, D, c->rope_mode, kv->cs);
        if (m->prec != HASS_PREC_F32) { // llama.cpp's default f16 cache (and f16 queries)
            round_f16(kv->q, (size_t)n * qd);
            round_f16(kb, (size_t)n * kvd);
            round_f16(vb, (size_t)n * kvd);
        }
        attention(m, kv, n, kc, vc);
        hass_mm_job o = {&L->wo, kv->tmp};
        mm(m, kv, kv->att, n, &o, 1);
        add_to(x, kv->tmp, (size_t)n * C);
        hass_cpu_rmsnorm(kv->xn, x, L->ffn_norm, n, C, c->norm_eps);
        hass_mm_job gu[2] = {{&L->w_gate, kv->g}, {&L->w_up, kv->u}};
        mm(m, kv, kv->xn, n, gu, 2);
        size_t nf = (size_t)n * F;
        for (size_t i = 0; i < nf; i++) {
            float gv = kv->g[i];
            kv->g[i] = gv / (1.0f + expf(-gv)) * kv->u[i];
        }
        hass_mm_job dn = {&L->w_down, kv->tmp};
        mm(m, kv, kv->g, n, &dn, 1);
        add_to(x, kv->tmp, (size_t)n * C);
    }
    float *f = feats ? feats : kv->feat;
    hass_cpu_rmsnorm(f, x, m->output_norm, n, C, c->norm_eps);
    kv->len = base + n;
    if (logits && n_rows > 0) {
        const float *src = f;
        int contiguous = 1;
        for (int r = 0; r < n_rows; r++) contiguous &= rows[r] == rows[0] + r;
        if (contiguous) {
            src = f + (size_t)rows[0] * C;
        } else {
            for (int r = 0; r < n_rows; r++)
                memcpy(kv->tmp + (size_t)r * C, f + (size_t)rows[r] * C, (size_t)C * sizeof(float));
            src = kv->tmp;
        }
        hass_mm_job lm = {&m->output, logits};
        mm(m, kv, src, n_rows, &lm, 1);
    }
    return HASS_OK;
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
