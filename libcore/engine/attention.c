// attention.c: the CPU attention (attention.h). A task is (sequence, K/V head, tile of up to
// HASS_ATT_TILE (row, head) pairs of that head's query heads): it streams the committed K rows
// once for all the tile's scores and the committed V rows once for all its weighted sums; the
// block's own entries, which differ per row, are walked pair by pair. Each pair's arithmetic is
// the per-pair walk's on the kernel path: scores dot(q, k) * scale (dot_c, or dot_avx2 /
// score4: 8-lane FMA over D then a fixed horizontal sum), softmax (max, expf, a double sum in
// cache order), o = sum of p * v in cache order (multiply then add, per element).
#include "attention.h"
#include "model.h"
#include "quant.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HASS_X86 1
#endif

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

#define T_ATT __attribute__((target("avx2,fma,f16c")))
// Scores of one query against the four keys k[0..4), each exactly as dot_avx2 computes it,
// times scale, into s[0..4): their sums overlap instead of one call per key.
T_ATT static inline __attribute__((always_inline)) void
score4(const float *qv, const float *const *k, int D, float scale, float *s) {
    __m256 acc[4];
    _Pragma("GCC unroll 4")
    for (int j = 0; j < 4; j++) acc[j] = _mm256_setzero_ps();
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
        s[j] = r * scale;
    }
}

// Scores of one query against the eight keys k[0..8), D a multiple of 8, each exactly as
// dot_avx2 computes it: the same FMA chain, then the same horizontal sum (lanes i + (i + 4),
// then 0 + 2 and 1 + 3, then 0 + 1) done for the eight keys at once by lane shuffles; times
// scale, into s[0..8).
T_ATT static inline __attribute__((always_inline)) void
score8(const float *qv, const float *const *k, int D, __m256 scale, float *s) {
    __m256 a[8];
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
    for (int i = 0; i < D; i += 8) {
        __m256 q8 = _mm256_loadu_ps(qv + i);
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(q8, _mm256_loadu_ps(k[j] + i), a[j]);
    }
    __m256 h[4]; // [key j: lanes i + (i + 4), i < 4 | key j + 4: the same]
    _Pragma("GCC unroll 4")
    for (int j = 0; j < 4; j++)
        h[j] = _mm256_add_ps(_mm256_permute2f128_ps(a[j], a[j + 4], 0x20),
                             _mm256_permute2f128_ps(a[j], a[j + 4], 0x31));
    __m256 u[2]; // [keys 2j, 2j + 1: 0 + 2, 1 + 3 each | keys 2j + 4, 2j + 5: the same]
    _Pragma("GCC unroll 2")
    for (int j = 0; j < 2; j++) {
        __m256d x = _mm256_castps_pd(h[2 * j]), y = _mm256_castps_pd(h[2 * j + 1]);
        u[j] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
    }
    _mm256_storeu_ps(s, _mm256_mul_ps(_mm256_hadd_ps(u[0], u[1]), scale));
}

// Scores of one query against the keys bl[0..n) (key j at kc + bl[j] * kvd) into s[0..n),
// each as dot_avx2 computes it, times scale.
T_ATT static void scores_avx2(const float *qv, const float *kc, size_t kvd, const int *bl, int n,
                              int D, float scale, float *s) {
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        const float *k[4];
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) k[j] = kc + (size_t)bl[t + j] * kvd;
        score4(qv, k, D, scale, s + t);
    }
    for (; t < n; t++) s[t] = dot_avx2(qv, kc + (size_t)bl[t] * kvd, D) * scale;
}

// Scores of the np queries qv[p] against the keys [0, n) (key t at kc + t * kvd) into
// s[p][0..n), as scores_avx2 computes each; every eight (or four) keys are read for all the
// queries.
T_ATT static void scores_tile_avx2(const float *const *qv, int np, const float *kc, size_t kvd,
                                   int n, int D, float scale, float *const *s) {
    int t = 0;
    __m256 sc8 = _mm256_set1_ps(scale);
    for (; D % 8 == 0 && t + 8 <= n; t += 8) {
        const float *k[8];
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) k[j] = kc + (size_t)(t + j) * kvd;
        for (int p = 0; p < np; p++) score8(qv[p], k, D, sc8, s[p] + t);
    }
    for (; t + 4 <= n; t += 4) {
        const float *k[4] = {kc + (size_t)t * kvd, kc + (size_t)(t + 1) * kvd,
                             kc + (size_t)(t + 2) * kvd, kc + (size_t)(t + 3) * kvd};
        for (int p = 0; p < np; p++) score4(qv[p], k, D, scale, s[p] + t);
    }
    for (; t < n; t++)
        for (int p = 0; p < np; p++) s[p][t] = dot_avx2(qv[p], kc + (size_t)t * kvd, D) * scale;
}

// acc[0..NV) += p times the value row vv (8 NV values): multiply then add, per element.
T_ATT static inline __attribute__((always_inline)) void
value_row(__m256 *acc, const float *vv, float p, const int NV) {
    __m256 pv = _mm256_set1_ps(p);
    _Pragma("GCC unroll 16")
    for (int j = 0; j < NV; j++) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(pv, _mm256_loadu_ps(vv + 8 * j)));
}

// o += the sum over the n entries (in order) of p[i] times value ent(i) (ent(i) = i, or bl[i]
// when bl is not NULL; value e at vc + e * kvd), with axpy_avx2's arithmetic (o += p * v,
// multiply then add, per element), the NV * 8 = D outputs in registers meanwhile.
T_ATT static inline __attribute__((always_inline)) void
values_avx2_n(float *o, const float *vc, size_t kvd, const int *bl, int n, const int NV,
              const float *p) {
    __m256 acc[16];
    _Pragma("GCC unroll 16")
    for (int j = 0; j < NV; j++) acc[j] = _mm256_loadu_ps(o + 8 * j);
    if (bl)
        for (int t = 0; t < n; t++) value_row(acc, vc + (size_t)bl[t] * kvd, p[t], NV);
    else
        for (int t = 0; t < n; t++, vc += kvd) value_row(acc, vc, p[t], NV);
    _Pragma("GCC unroll 16")
    for (int j = 0; j < NV; j++) _mm256_storeu_ps(o + 8 * j, acc[j]);
}

// values_avx2_n for D = 64 or 128 (the only sizes the path takes it for).
T_ATT static void values_avx2(float *o, const float *vc, size_t kvd, const int *bl, int n, int D,
                              const float *p) {
    if (D == 64) values_avx2_n(o, vc, kvd, bl, n, 8, p);
    else values_avx2_n(o, vc, kvd, bl, n, 16, p);
}

// s[0..n) = s * inv, rounded to fp16 when f16 (F16C, to nearest even), 8 at a time.
T_ATT static void probs_avx2(float *s, int n, float inv, int f16) {
    __m256 iv = _mm256_set1_ps(inv);
    int t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(s + t), iv);
        if (f16) x = _mm256_cvtph_ps(_mm256_cvtps_ph(x, 0));
        _mm256_storeu_ps(s + t, x);
    }
    for (; t < n; t++) {
        float pr = s[t] * inv;
        s[t] = f16 ? _cvtsh_ss(_cvtss_sh(pr, 0)) : pr;
    }
}
#endif

// The kernel path of a call.
typedef struct att_path {
    dot_fn dot;
    axpy_fn axpy;
    int fast;  // AVX2 scores (score4): the dot is dot_avx2 and the CPU has F16C
    int fastv; // and AVX2 values and probabilities (F16C rounding): D = 64 or 128
} att_path;

// The path for the current kernel path (hass_kernel_path) and head size D.
static att_path pick_path(int D) {
    att_path pa = {dot_c, axpy_c, 0, 0};
#ifdef HASS_X86
    if (strcmp(hass_kernel_path(), "c")) {
        pa.dot = dot_avx2;
        pa.axpy = axpy_avx2;
        // fp16 rounding in registers needs F16C, which the AVX2 machines we meet have
        pa.fast = __builtin_cpu_supports("f16c");
        pa.fastv = pa.fast && (D == 64 || D == 128);
    }
#endif
    return pa;
}

// One task's (row, head) pairs: their queries, outputs, visible block entries and scores.
typedef struct att_tile {
    int np;                           // pairs
    const float *qv[HASS_ATT_TILE];   // (D) each
    float *o[HASS_ATT_TILE];          // (D) each
    const int *bl[HASS_ATT_TILE];     // (nb) each
    int nb[HASS_ATT_TILE];
    float *s[HASS_ATT_TILE];          // (base + nb) each: scores, then probabilities
} att_tile;

// The scores of every pair: the committed keys [0, base) read once for the tile (in blocks of
// 64 on the portable path), then each pair's own block keys kc + (base + bl[j]) * kvd.
static void tile_scores(const att_path *pa, att_tile *ti, const float *kc, size_t kvd, int base,
                        int D, float scale) {
#ifdef HASS_X86
    if (pa->fast) {
        scores_tile_avx2(ti->qv, ti->np, kc, kvd, base, D, scale, ti->s);
        for (int p = 0; p < ti->np; p++)
            scores_avx2(ti->qv[p], kc + (size_t)base * kvd, kvd, ti->bl[p], ti->nb[p], D, scale,
                        ti->s[p] + base);
        return;
    }
#endif
    for (int t0 = 0; t0 < base; t0 += 64) {
        int t1 = t0 + 64 < base ? t0 + 64 : base;
        for (int p = 0; p < ti->np; p++)
            for (int t = t0; t < t1; t++)
                ti->s[p][t] = pa->dot(ti->qv[p], kc + (size_t)t * kvd, D) * scale;
    }
    for (int p = 0; p < ti->np; p++)
        for (int j = 0; j < ti->nb[p]; j++)
            ti->s[p][base + j] = pa->dot(ti->qv[p], kc + (size_t)(base + ti->bl[p][j]) * kvd, D) * scale;
}

// Softmax of the cnt scores s in cache order, left as probabilities in s (times 1 / sum, then
// rounded to fp16 when f16: what weights V); a row that sees nothing has none.
static void softmax(const att_path *pa, float *s, int cnt, int f16) {
    float mx = -INFINITY;
    _Pragma("GCC unroll 4")
    for (int t = 0; t < cnt; t++) mx = s[t] > mx ? s[t] : mx;
    double sum = 0.0;
    _Pragma("GCC unroll 4")
    for (int t = 0; t < cnt; t++) {
        s[t] = expf(s[t] - mx);
        sum += s[t];
    }
    float inv = cnt ? (float)(1.0 / sum) : 0.f;
#ifdef HASS_X86
    if (pa->fastv) {
        probs_avx2(s, cnt, inv, f16);
        return;
    }
#endif
    for (int t = 0; t < cnt; t++) {
        float pr = s[t] * inv;
        s[t] = f16 ? hass_f16_round(pr) : pr; // llama.cpp: f16 V times f16 probs
    }
}

// o += the sum over n entries (in order) of p[i] times value ent(i) (i, or bl[i] when bl is
// not NULL; value e at vc + e * kvd) on the path.
static void values(const att_path *pa, float *o, const float *vc, size_t kvd, const int *bl, int n,
                   int D, const float *p) {
#ifdef HASS_X86
    if (pa->fastv) {
        values_avx2(o, vc, kvd, bl, n, D, p);
        return;
    }
#endif
    for (int t = 0; t < n; t++) pa->axpy(o, p[t], vc + (size_t)(bl ? bl[t] : t) * kvd, D);
}

// The outputs of every pair from its probabilities: the committed values [0, base) in blocks of
// about 16 KiB, each block read once for the tile (the pairs' sums wait in their outputs), then
// each pair's own block values.
static void tile_values(const att_path *pa, att_tile *ti, const float *vc, size_t kvd, int base,
                        int D) {
    int tb = D < 4096 ? 4096 / D : 1;
    for (int p = 0; p < ti->np; p++) memset(ti->o[p], 0, (size_t)D * sizeof(float));
    for (int t0 = 0; t0 < base; t0 += tb) {
        int n = base - t0 < tb ? base - t0 : tb;
        for (int p = 0; p < ti->np; p++)
            values(pa, ti->o[p], vc + (size_t)t0 * kvd, kvd, NULL, n, D, ti->s[p] + t0);
    }
    for (int p = 0; p < ti->np; p++)
        values(pa, ti->o[p], vc + (size_t)base * kvd, kvd, ti->bl[p], ti->nb[p], D, ti->s[p] + base);
}

// A call on the pool: its arguments, path and how many tiles a K/V head's pairs get at least.
typedef struct att_run {
    const hass_att *a;
    att_path pa;
    int want;
} att_run;

// Tiles the pairs of a sequence of n rows (grp query heads a K/V head) are cut into: at most
// HASS_ATT_TILE pairs each, and `want` tiles when there are that many pairs.
static int tiles_of(int n, int grp, int want) {
    int np = n * grp, t = (np + HASS_ATT_TILE - 1) / HASS_ATT_TILE;
    if (t < want) t = want < np ? want : np;
    return t;
}

// Tile `tile` of nt of sequence sq's K/V head g on scratch S (HASS_ATT_TILE, n_ctx): pair p of
// the head is row r0 + p / grp, query head g * grp + p % grp.
static void att_task(const att_run *r, const hass_att_seq *sq, int g, int tile, int nt, float *S) {
    const hass_att *a = r->a;
    int D = a->head_dim, grp = a->n_head / a->n_head_kv, qd = a->n_head * D, base = sq->base;
    int np = sq->n * grp, p0 = (int)((long)tile * np / nt);
    size_t kvd = (size_t)a->n_head_kv * D;
    att_tile ti;
    ti.np = (int)((long)(tile + 1) * np / nt) - p0;
    for (int p = 0; p < ti.np; p++) {
        int row = sq->r0 + (p0 + p) / grp, h = g * grp + (p0 + p) % grp;
        ti.qv[p] = a->q + (size_t)row * qd + (size_t)h * D;
        ti.o[p] = a->out + (size_t)row * qd + (size_t)h * D;
        ti.bl[p] = a->bl[row];
        ti.nb[p] = a->bcnt[row];
        ti.s[p] = S + (size_t)p * a->n_ctx;
    }
    tile_scores(&r->pa, &ti, sq->k + (size_t)g * D, kvd, base, D, 1.0f / sqrtf((float)D));
    for (int p = 0; p < ti.np; p++) softmax(&r->pa, ti.s[p], base + ti.nb[p], a->f16);
    tile_values(&r->pa, &ti, sq->v + (size_t)g * D, kvd, base, D);
}

// Tasks [t0, t1) on thread k: task j is sequence by sequence, K/V head by head, tile by tile.
static void att_tasks(void *ctx, int k, int t0, int t1) {
    const att_run *r = ctx;
    const hass_att *a = r->a;
    int Hkv = a->n_head_kv, grp = a->n_head / Hkv;
    float *S = a->scores + (size_t)k * hass_att_scratch_floats(a->n_ctx);
    for (int task = t0; task < t1; task++) {
        int j = task, s = 0, nt = tiles_of(a->seq[0].n, grp, r->want);
        while (j >= Hkv * nt) {
            j -= Hkv * nt;
            nt = tiles_of(a->seq[++s].n, grp, r->want);
        }
        att_task(r, &a->seq[s], j / nt, j % nt, nt, S);
    }
}

size_t hass_att_scratch_floats(int n_ctx) { return (size_t)HASS_ATT_TILE * (size_t)n_ctx; }

void hass_attention(hass_pool *pool, const hass_att *a) {
    att_run r = {a, pick_path(a->head_dim), 1};
    int nthr = hass_pool_threads(pool), grp = a->n_head / a->n_head_kv;
    int heads = a->n_seq * a->n_head_kv, tasks = 0;
    // enough tasks to share among the threads: a decode row's pairs one by one, as many as
    // HASS_ATT_TILE together when there are plenty
    if (nthr > 1) r.want = (6 * nthr + heads - 1) / heads;
    for (int k = 0; k < a->n_seq; k++) tasks += a->n_head_kv * tiles_of(a->seq[k].n, grp, r.want);
    hass_pool_run(pool, tasks, att_tasks, &r);
}
