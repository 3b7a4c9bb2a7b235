// train_ops.c: forward/backward of the draft-head training ops (see train_ops.h). Plain C with
// OpenMP over independent rows; every reduction has one fixed order (no atomics, no reductions
// across threads), so the results do not depend on the thread count.
#include "train_ops.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CE_X86 1
#endif

// Work (multiply-adds or elements) below which an op runs on one thread: a parallel region
// costs microseconds on an idle machine but up to a time slice when the cores are shared.
#define PAR_MIN_MACS 4000000L
#define PAR_MIN_ELEMS 1000000L

// Dot product with 8 partial sums in a fixed order (vectorisable, deterministic).
static inline float dotf(const float *a, const float *b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// y += a * x over n floats.
static inline void axpyf(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

// ---- linear ----------------------------------------------------------------------------------

// y = x W^T + b: W is transposed into scratch, then one hass_train_ops_gemm (each y element is the
// bias plus one k-ordered sum, so the result does not depend on the thread count).
void hass_train_ops_linear_fwd(float *y, const float *x, const float *w, const float *b, int n,
                          int n_in, int n_out) {
    float *wt = malloc((size_t)n_in * n_out * sizeof(float)); // (n_in, n_out)
    hass_train_ops_transpose(wt, w, n_out, n_in);
    hass_train_ops_linear_fwd_t(y, x, wt, b, n, n_in, n_out);
    free(wt);
}

// y = x Wt + b with the weight already transposed.
void hass_train_ops_linear_fwd_t(float *y, const float *x, const float *wt, const float *b, int n,
                            int n_in, int n_out) {
    for (int r = 0; r < n; r++) {
        float *yr = y + (size_t)r * n_out;
        if (b) memcpy(yr, b, (size_t)n_out * sizeof(float));
        else memset(yr, 0, (size_t)n_out * sizeof(float));
    }
    hass_train_ops_gemm(y, n_out, x, n_in, wt, n_out, n, n_in, n_out);
}

// hass_train_ops_linear_bwd_ws with its scratch allocated here.
void hass_train_ops_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, int n, int n_in, int n_out) {
    float *ws = dw ? malloc((size_t)n * n_out * sizeof(float)) : NULL;
    hass_train_ops_linear_bwd_ws(dx, dw, db, dy, x, w, n, n_in, n_out, ws);
    free(ws);
}

// dx += dy W (one gemm); dw += dy^T x (dy transposed into ws, one gemm); db += sum dy (rows in
// order).
void hass_train_ops_linear_bwd_ws(float *dx, float *dw, float *db, const float *dy, const float *x,
                             const float *w, int n, int n_in, int n_out, float *ws) {
    if (dx) hass_train_ops_gemm(dx, n_in, dy, n_out, w, n_in, n, n_out, n_in);
    if (dw) {
        hass_train_ops_transpose(ws, dy, n, n_out);
        hass_train_ops_gemm(dw, n_in, ws, n, x, n_in, n_out, n, n_in);
    }
    if (db)
        for (int r = 0; r < n; r++) {
            const float *dr = dy + (size_t)r * n_out;
            for (int o = 0; o < n_out; o++) db[o] += dr[o];
        }
}

// ---- RMSNorm ---------------------------------------------------------------------------------

// y = x * rstd * w row by row; the sum of squares runs in double, left to right.
void hass_train_ops_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int n, int dim,
                           float eps) {
#pragma omp parallel for schedule(static) if ((long)n * dim > PAR_MIN_ELEMS)
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float rs = (float)(1.0 / sqrt(ss / dim + eps));
        rstd[r] = rs;
        for (int i = 0; i < dim; i++) yr[i] = xr[i] * rs * w[i];
    }
}

// dx_i += rstd w_i dy_i - x_i rstd^3 / dim * sum_j dy_j w_j x_j; dw_i += sum_r dy_i x_i rstd.
void hass_train_ops_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                           const float *rstd, int n, int dim) {
    int big = (long)n * dim > PAR_MIN_ELEMS;
    if (dx) {
#pragma omp parallel for schedule(static) if (big)
        for (int r = 0; r < n; r++) {
            const float *xr = x + (size_t)r * dim, *dyr = dy + (size_t)r * dim;
            float *dxr = dx + (size_t)r * dim;
            double s = 0;
            for (int i = 0; i < dim; i++) s += (double)dyr[i] * w[i] * xr[i];
            float rs = rstd[r];
            float c = (float)(s * rs * rs * rs / dim);
            for (int i = 0; i < dim; i++) dxr[i] += rs * w[i] * dyr[i] - xr[i] * c;
        }
    }
    if (dw) {
#pragma omp parallel for schedule(static) if (big)
        for (int i = 0; i < dim; i++) {
            float s = 0.f;
            for (int r = 0; r < n; r++) s += dy[(size_t)r * dim + i] * x[(size_t)r * dim + i] * rstd[r];
            dw[i] += s;
        }
    }
}

// ---- RoPE ------------------------------------------------------------------------------------

// Rotate every (i, i+d/2) pair of every head by +/- pos * inv_freq_i (sign = +1 forward).
static void rope_apply(float *x, const int32_t *pos, int n, int n_head, int d, float theta,
                       float sign) {
    int half = d / 2;
#pragma omp parallel for schedule(static) if ((long)n * n_head * d > PAR_MIN_ELEMS)
    for (int r = 0; r < n; r++) {
        for (int i = 0; i < half; i++) {
            double inv = pow((double)theta, -2.0 * i / d);
            double ang = (double)pos[r] * inv;
            float c = (float)cos(ang), sn = sign * (float)sin(ang);
            for (int h = 0; h < n_head; h++) {
                float *xh = x + ((size_t)r * n_head + h) * d;
                float x1 = xh[i], x2 = xh[i + half];
                xh[i] = x1 * c - x2 * sn;
                xh[i + half] = x2 * c + x1 * sn;
            }
        }
    }
}

// RoPE forward in place.
void hass_train_ops_rope_fwd(float *x, const int32_t *pos, int n, int n_head, int d, float theta) {
    rope_apply(x, pos, n, n_head, d, theta, 1.f);
}

// RoPE backward in place (rotation by the opposite angle).
void hass_train_ops_rope_bwd(float *dx, const int32_t *pos, int n, int n_head, int d, float theta) {
    rope_apply(dx, pos, n, n_head, d, theta, -1.f);
}

// ---- attention -------------------------------------------------------------------------------

// Row (position kp, KV head g) of copy c in a (s+1, n, nkv, d) tensor.
static inline const float *kv_row(const float *t, int c, int kp, int g, int n, int nkv, int d) {
    return t + (((size_t)c * n + kp) * nkv + g) * d;
}

// Forward: one (head, query) pair per iteration; weights saved in prob.
void hass_train_ops_attn_fwd(float *out, float *prob, const float *q, const float *k, const float *v,
                        int n, int nh, int nkv, int d, int s, int n_pad) {
    int grp = nh / nkv;
    float scale = 1.0f / sqrtf((float)d);
#pragma omp parallel for collapse(2) schedule(static) if ((long)nh * n * n * d > PAR_MIN_MACS)
    for (int h = 0; h < nh; h++) {
        for (int i = 0; i < n; i++) {
            int g = h / grp;
            const float *qi = q + ((size_t)i * nh + h) * d;
            float *pr = prob + ((size_t)h * n + i) * n;
            float mx = -INFINITY;
            for (int kp = 0; kp <= i; kp++) {
                int c = hass_train_ops_attn_copy(i, kp, s);
                pr[kp] = dotf(qi, kv_row(k, c, kp, g, n, nkv, d), d) * scale;
                if (pr[kp] > mx) mx = pr[kp];
            }
            int n_masked = n_pad > 0 ? n_pad - 1 - i : 0;
            if (n_masked > 0 && mx < 0.f) mx = 0.f;
            double z = 0;
            for (int kp = 0; kp <= i; kp++) {
                pr[kp] = expf(pr[kp] - mx);
                z += pr[kp];
            }
            if (n_masked > 0) z += n_masked * exp(-(double)mx);
            float iz = (float)(1.0 / z);
            float *oi = out + ((size_t)i * nh + h) * d;
            memset(oi, 0, sizeof(float) * d);
            for (int kp = 0; kp <= i; kp++) {
                pr[kp] *= iz;
                axpyf(oi, pr[kp], kv_row(v, hass_train_ops_attn_copy(i, kp, s), kp, g, n, nkv, d), d);
            }
            for (int kp = i + 1; kp < n; kp++) pr[kp] = 0.f;
        }
    }
}

// Backward: ds and dq per (head, query); dk and dv per key position (each thread owns one key
// row of every copy and sums heads and queries in order).
void hass_train_ops_attn_bwd(float *dq, float *dk, float *dv, float *ds, const float *dout,
                        const float *prob, const float *q, const float *k, const float *v, int n,
                        int nh, int nkv, int d, int s) {
    int grp = nh / nkv;
    float scale = 1.0f / sqrtf((float)d);
    int big = (long)nh * n * n * d > PAR_MIN_MACS;
#pragma omp parallel for collapse(2) schedule(static) if (big)
    for (int h = 0; h < nh; h++) {
        for (int i = 0; i < n; i++) {
            int g = h / grp;
            const float *doi = dout + ((size_t)i * nh + h) * d;
            const float *pr = prob + ((size_t)h * n + i) * n;
            float *dsr = ds + ((size_t)h * n + i) * n;
            double dot = 0;
            for (int kp = 0; kp <= i; kp++) {
                int c = hass_train_ops_attn_copy(i, kp, s);
                dsr[kp] = dotf(doi, kv_row(v, c, kp, g, n, nkv, d), d); // dL/dw
                dot += (double)pr[kp] * dsr[kp];
            }
            for (int kp = 0; kp <= i; kp++) dsr[kp] = pr[kp] * (dsr[kp] - (float)dot) * scale;
            if (dq) {
                float *dqi = dq + ((size_t)i * nh + h) * d;
                for (int kp = 0; kp <= i; kp++)
                    axpyf(dqi, dsr[kp], kv_row(k, hass_train_ops_attn_copy(i, kp, s), kp, g, n, nkv, d), d);
            }
        }
    }
    if (!dk && !dv) return;
#pragma omp parallel for schedule(static) if (big)
    for (int kp = 0; kp < n; kp++) {
        for (int h = 0; h < nh; h++) {
            int g = h / grp;
            for (int i = kp; i < n; i++) {
                size_t off = (((size_t)hass_train_ops_attn_copy(i, kp, s) * n + kp) * nkv + g) * d;
                size_t hi = ((size_t)h * n + i) * n + kp;
                if (dk) axpyf(dk + off, ds[hi], q + ((size_t)i * nh + h) * d, d);
                if (dv) axpyf(dv + off, prob[hi], dout + ((size_t)i * nh + h) * d, d);
            }
        }
    }
}

// ---- SwiGLU ----------------------------------------------------------------------------------

// m = silu(g) * u.
void hass_train_ops_swiglu_fwd(float *m, const float *g, const float *u, size_t n_el) {
#pragma omp parallel for schedule(static) if ((long)n_el > PAR_MIN_ELEMS)
    for (size_t i = 0; i < n_el; i++) {
        float sg = 1.0f / (1.0f + expf(-g[i]));
        m[i] = g[i] * sg * u[i];
    }
}

// silu'(g) = sig(g) (1 + g (1 - sig(g))).
void hass_train_ops_swiglu_bwd(float *dg, float *du, const float *dm, const float *g, const float *u,
                          size_t n_el) {
#pragma omp parallel for schedule(static) if ((long)n_el > PAR_MIN_ELEMS)
    for (size_t i = 0; i < n_el; i++) {
        float sg = 1.0f / (1.0f + expf(-g[i]));
        if (dg) dg[i] += dm[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        if (du) du[i] += dm[i] * g[i] * sg;
    }
}

// ---- losses ----------------------------------------------------------------------------------

// SmoothL1 per row, mean over H; gradient clamp(z, -1, 1) / H scaled by coef.
void hass_train_ops_smoothl1(float *dx, double *loss, const float *x, const float *t, const float *coef,
                        int n, int H) {
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * H, *tr = t + (size_t)r * H;
        double s = 0;
        float c = coef ? coef[r] / (float)H : 0.f;
        for (int i = 0; i < H; i++) {
            float z = xr[i] - tr[i], az = fabsf(z);
            s += az < 1.f ? 0.5 * (double)z * z : (double)az - 0.5;
            if (dx && coef) dx[(size_t)r * H + i] += c * (az < 1.f ? z : (z > 0 ? 1.f : -1.f));
        }
        loss[r] = s / H;
    }
}

// K largest by insertion into a sorted list; strict '>' keeps the lower index first on ties.
void hass_train_ops_topk(int *idx, const float *x, int V, int K) {
    int m = 0;
    for (int j = 0; j < V; j++) {
        if (m == K && !(x[j] > x[idx[K - 1]])) continue;
        int p = m < K ? m++ : K - 1;
        while (p > 0 && x[j] > x[idx[p - 1]]) {
            idx[p] = idx[p - 1];
            p--;
        }
        idx[p] = j;
    }
}

// ---- row kernels of the soft CE ----------------------------------------------------------------
// Sums over the vocabulary run in 16 lanes (element j in lane j % 16), f32 within blocks of 1024
// elements and double across blocks, lanes added in order at the end: the AVX-512 code and the
// C twin below do exactly these operations, so both give the same bits.

#define CE_LANES 16
#define CE_BLOCK 1024
#define CE_LOG2E 1.44269504088896341f
#define CE_LN2_HI 0.693359375f
#define CE_LN2_LO -2.12194440e-4f
#define CE_XMIN -87.0f
// e^r = 1 + r + r^2 P(r) on [-ln2/2, ln2/2] (P of degree 5; about 1 ulp).
static const float ce_c[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                              4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// e^x for x <= 0 (x below -87 is taken as -87): the scalar twin of ce_exp512, op for op.
static inline float ce_expf(float x) {
    x = fmaxf(x, CE_XMIN);
    float fn = nearbyintf(x * CE_LOG2E);
    float r = fmaf(fn, -CE_LN2_HI, x);
    r = fmaf(fn, -CE_LN2_LO, r);
    float y = ce_c[0];
    for (int i = 1; i < 6; i++) y = fmaf(y, r, ce_c[i]);
    y = fmaf(y, r * r, r) + 1.f;
    return ldexpf(y, (int)fn);
}

// max_j x[j].
static float ce_max_c(const float *x, int V) {
    float m = -INFINITY;
    for (int j = 0; j < V; j++) m = x[j] > m ? x[j] : m;
    return m;
}

// Lane-ordered sum of f(j) (the C twin of the vector reductions); kind 0: e^(x_j - m),
// kind 1: x_j * y_j, kind 2: x_j.
static double ce_sum_c(const float *x, const float *y, float m, int V, int kind) {
    double dl[CE_LANES] = {0};
    for (int b = 0; b < V; b += CE_BLOCK) {
        float fl[CE_LANES] = {0};
        int e = b + CE_BLOCK < V ? b + CE_BLOCK : V;
        for (int j = b; j < e; j++)
            fl[(j - b) % CE_LANES] += kind == 0 ? ce_expf(x[j] - m) : kind == 1 ? x[j] * y[j] : x[j];
        for (int l = 0; l < CE_LANES; l++) dl[l] += fl[l];
    }
    double s = 0;
    for (int l = 0; l < CE_LANES; l++) s += dl[l];
    return s;
}

// p[j] = e^(x_j - m) * inv (in place allowed).
static void ce_probs_c(float *p, const float *x, float m, float inv, int V) {
    for (int j = 0; j < V; j++) p[j] = ce_expf(x[j] - m) * inv;
}

// dl[j] += alpha * Q_j - a * P_j with Q_j = e^(q_j - m) * inv.
static void ce_grad_c(float *dl, const float *q, const float *p, float m, float inv, float alpha,
                      float a, int V) {
    for (int j = 0; j < V; j++) {
        float qj = ce_expf(q[j] - m) * inv;
        dl[j] += fmaf(alpha, qj, -(a * p[j]));
    }
}

#ifdef CE_X86
#define T_CE __attribute__((target("avx512f,fma")))

// e^x of 16 lanes: ce_expf op for op.
T_CE static inline __m512 ce_exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(CE_XMIN));
    __m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(CE_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(fn, _mm512_set1_ps(-CE_LN2_HI), x);
    r = _mm512_fmadd_ps(fn, _mm512_set1_ps(-CE_LN2_LO), r);
    __m512 y = _mm512_set1_ps(ce_c[0]);
    for (int i = 1; i < 6; i++) y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(ce_c[i]));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(y, fn);
}

// Mask of the first n (<= 16) lanes.
static inline __mmask16 ce_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// max_j x[j].
T_CE static float ce_max_512(const float *x, int V) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < V; j += 16)
        m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), ce_mask(V - j), x + j));
    return _mm512_reduce_max_ps(m);
}

// ce_sum_c in 16 lanes.
T_CE static double ce_sum_512(const float *x, const float *y, float m, int V, int kind) {
    __m512d d0 = _mm512_setzero_pd(), d1 = _mm512_setzero_pd();
    __m512 mv = _mm512_set1_ps(m);
    for (int b = 0; b < V; b += CE_BLOCK) {
        __m512 f = _mm512_setzero_ps();
        int e = b + CE_BLOCK < V ? b + CE_BLOCK : V;
        for (int j = b; j < e; j += 16) {
            __mmask16 k = ce_mask(e - j);
            __m512 xv = _mm512_maskz_loadu_ps(k, x + j);
            __m512 t = kind == 0   ? ce_exp512(_mm512_sub_ps(xv, mv))
                       : kind == 1 ? _mm512_mul_ps(xv, _mm512_maskz_loadu_ps(k, y + j))
                                   : xv;
            f = _mm512_mask_add_ps(f, k, f, t);
        }
        d0 = _mm512_add_pd(d0, _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
        d1 = _mm512_add_pd(d1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1))));
    }
    double l[CE_LANES], s = 0;
    _mm512_storeu_pd(l, d0);
    _mm512_storeu_pd(l + 8, d1);
    for (int i = 0; i < CE_LANES; i++) s += l[i];
    return s;
}

// ce_probs_c in 16 lanes.
T_CE static void ce_probs_512(float *p, const float *x, float m, float inv, int V) {
    __m512 mv = _mm512_set1_ps(m), iv = _mm512_set1_ps(inv);
    for (int j = 0; j < V; j += 16) {
        __mmask16 k = ce_mask(V - j);
        __m512 e = ce_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), mv));
        _mm512_mask_storeu_ps(p + j, k, _mm512_mul_ps(e, iv));
    }
}

// ce_grad_c in 16 lanes.
T_CE static void ce_grad_512(float *dl, const float *q, const float *p, float m, float inv,
                             float alpha, float a, int V) {
    __m512 mv = _mm512_set1_ps(m), iv = _mm512_set1_ps(inv), al = _mm512_set1_ps(alpha),
           av = _mm512_set1_ps(a);
    for (int j = 0; j < V; j += 16) {
        __mmask16 k = ce_mask(V - j);
        __m512 qj = _mm512_mul_ps(ce_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, q + j), mv)), iv);
        __m512 t = _mm512_mul_ps(av, _mm512_maskz_loadu_ps(k, p + j));
        __m512 u = _mm512_fmsub_ps(al, qj, t);
        _mm512_mask_storeu_ps(dl + j, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, dl + j), u));
    }
}
#endif

// 1 when the AVX-512 row kernels run: on the engine's AVX-512 path (hass_kernel_level).
static int ce_use_512(void) { return hass_kernel_level() == 2; }

#ifdef CE_X86
#define CE_CALL(name, ...) (ce_use_512() ? name##_512(__VA_ARGS__) : name##_c(__VA_ARGS__))
#else
#define CE_CALL(name, ...) name##_c(__VA_ARGS__)
#endif

// Target side of the soft CE, in place: logits -> P = softmax, K top indices, their mass.
void hass_train_ops_ce_target(float *p, int *top, float *pk, int n, int V, int K) {
#pragma omp parallel for schedule(static) if ((long)n * V > PAR_MIN_ELEMS / 8)
    for (int r = 0; r < n; r++) {
        float *pr = p + (size_t)r * V;
        int *tr = top + (size_t)r * (K > 0 ? K : 1);
        hass_train_ops_topk(tr, pr, V, K > 0 ? K : 1); // on the logits: the same order as on P
        float m = CE_CALL(ce_max, pr, V);
        double z = CE_CALL(ce_sum, pr, NULL, m, V, 0);
        CE_CALL(ce_probs, pr, pr, m, (float)(1.0 / z), V);
        double s = 0;
        for (int t = 0; t < K; t++) s += pr[tr[t]];
        pk[r] = (float)s;
    }
}

// Draft side of the soft CE against a prepared target (hass_train_ops_ce_target).
void hass_train_ops_ce_draft(float *dl, double *ploss, double *kloss, int *acc, const float *lq,
                        const float *p, const int *top, const float *pk, const float *cp,
                        const float *ck, int n, int V, int K) {
    int kt = K > 0 ? K : 1;
#pragma omp parallel for schedule(static) if ((long)n * V > PAR_MIN_ELEMS / 8)
    for (int r = 0; r < n; r++) {
        const float *q = lq + (size_t)r * V, *pr = p + (size_t)r * V;
        const int *tr = top + (size_t)r * kt;
        float m = CE_CALL(ce_max, q, V);
        double z = CE_CALL(ce_sum, q, NULL, m, V, 0);
        double lzq = log(z) + m; // log-sum-exp
        double psum = CE_CALL(ce_sum, pr, NULL, 0.f, V, 2), pq = CE_CALL(ce_sum, pr, q, 0.f, V, 1);
        ploss[r] = lzq * psum - pq; // -sum P (q - lzq)
        double kl = 0;
        for (int t = 0; t < K; t++) kl -= (double)pr[tr[t]] * (q[tr[t]] - lzq);
        kloss[r] = kl;
        if (acc) {
            int qtop[3], k3 = V < 3 ? V : 3;
            hass_train_ops_topk(qtop, q, V, k3);
            int tgt = tr[0];
            acc[r] = qtop[0] == tgt ? 1 : ((k3 > 1 && qtop[1] == tgt) || (k3 > 2 && qtop[2] == tgt)) ? 2 : 0;
        }
        if (dl) {
            // d/dlq of -sum_v c_v log Q_v = (sum_v c_v) Q - c with c = a P + b P 1[top]
            float a = cp ? cp[r] : 0.f, b = ck ? ck[r] : 0.f;
            float *dr = dl + (size_t)r * V;
            CE_CALL(ce_grad, dr, q, pr, m, (float)(1.0 / z), a + b * pk[r], a, V);
            if (b != 0.f)
                for (int t = 0; t < K; t++) dr[tr[t]] -= b * pr[tr[t]];
        }
    }
}

// Soft CE row by row from raw target logits (tests and one-off use: prepares P in scratch).
void hass_train_ops_soft_ce(float *dl, double *ploss, double *kloss, int *acc, const float *lq,
                       const float *lp, const float *cp, const float *ck, int n, int V, int K) {
    if (K > V) K = V;
    int kt = K > 0 ? K : 1;
    float *p = malloc((size_t)n * V * sizeof(float)), *pk = malloc((size_t)n * sizeof(float));
    int *top = malloc((size_t)n * kt * sizeof(int));
    if (!p || !pk || !top) { // no way to report here: poison the losses
        for (int r = 0; r < n; r++) ploss[r] = kloss[r] = NAN;
        free(p), free(pk), free(top);
        return;
    }
    memcpy(p, lp, (size_t)n * V * sizeof(float));
    hass_train_ops_ce_target(p, top, pk, n, V, K);
    hass_train_ops_ce_draft(dl, ploss, kloss, acc, lq, p, top, pk, cp, ck, n, V, K);
    free(p), free(pk), free(top);
}
