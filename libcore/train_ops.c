// train_ops.c: forward/backward of the draft-head training ops (see train_ops.h). Plain C with
// OpenMP over independent rows; every reduction has one fixed order (no atomics, no reductions
// across threads), so the results do not depend on the thread count.
#include "train_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
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

// Rows of x per block: a block of x stays in cache while every weight row streams past once.
#define ROW_BLOCK 64

// y = x W^T + b: per block of rows, threads over output features (each weight row is read once
// per block, not once per row); each y element is one dotf, so the result does not depend on
// the blocking or the thread count.
void hass_tops_linear_fwd(float *y, const float *x, const float *w, const float *b, int n,
                          int n_in, int n_out) {
    for (int r0 = 0; r0 < n; r0 += ROW_BLOCK) {
        int r1 = r0 + ROW_BLOCK < n ? r0 + ROW_BLOCK : n;
#pragma omp parallel for schedule(static) if ((long)(r1 - r0) * n_out * n_in > PAR_MIN_MACS)
        for (int o = 0; o < n_out; o++) {
            const float *wo = w + (size_t)o * n_in;
            float bo = b ? b[o] : 0.f;
            for (int r = r0; r < r1; r++) y[(size_t)r * n_out + o] = dotf(x + (size_t)r * n_in, wo, n_in) + bo;
        }
    }
}

// dx += dy W (threads over rows); dw += dy^T x and db += sum dy (threads over output features,
// each summing the rows in order).
void hass_tops_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, int n, int n_in, int n_out) {
    int big = (long)n * n_out * n_in > PAR_MIN_MACS;
    if (dx) { // threads over rows; each thread streams the weights once per block of its rows
        int nt = 1;
#ifdef _OPENMP
        nt = big ? omp_get_max_threads() : 1;
#endif
        int per = (n + nt - 1) / nt;
#pragma omp parallel for schedule(static) if (big)
        for (int t = 0; t < nt; t++) {
            int ra = t * per, rb = ra + per < n ? ra + per : n;
            for (int r0 = ra; r0 < rb; r0 += ROW_BLOCK) {
                int r1 = r0 + ROW_BLOCK < rb ? r0 + ROW_BLOCK : rb;
                for (int o = 0; o < n_out; o++) {
                    const float *wo = w + (size_t)o * n_in;
                    for (int r = r0; r < r1; r++) {
                        float g = dy[(size_t)r * n_out + o];
                        if (g != 0.f) axpyf(dx + (size_t)r * n_in, g, wo, n_in);
                    }
                }
            }
        }
    }
    if (dw || db) {
#pragma omp parallel for schedule(static) if (big)
        for (int o = 0; o < n_out; o++) {
            float sb = 0.f;
            for (int r = 0; r < n; r++) {
                float g = dy[(size_t)r * n_out + o];
                if (g == 0.f) continue;
                sb += g;
                if (dw) axpyf(dw + (size_t)o * n_in, g, x + (size_t)r * n_in, n_in);
            }
            if (db) db[o] += sb;
        }
    }
}

// ---- RMSNorm ---------------------------------------------------------------------------------

// y = x * rstd * w row by row; the sum of squares runs in double, left to right.
void hass_tops_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int n, int dim,
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
void hass_tops_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
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
void hass_tops_rope_fwd(float *x, const int32_t *pos, int n, int n_head, int d, float theta) {
    rope_apply(x, pos, n, n_head, d, theta, 1.f);
}

// RoPE backward in place (rotation by the opposite angle).
void hass_tops_rope_bwd(float *dx, const int32_t *pos, int n, int n_head, int d, float theta) {
    rope_apply(dx, pos, n, n_head, d, theta, -1.f);
}

// ---- attention -------------------------------------------------------------------------------

// Row (position kp, KV head g) of copy c in a (s+1, n, nkv, d) tensor.
static inline const float *kv_row(const float *t, int c, int kp, int g, int n, int nkv, int d) {
    return t + (((size_t)c * n + kp) * nkv + g) * d;
}

// Forward: one (head, query) pair per iteration; weights saved in prob.
void hass_tops_attn_fwd(float *out, float *prob, const float *q, const float *k, const float *v,
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
                int c = hass_tops_attn_copy(i, kp, s);
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
                axpyf(oi, pr[kp], kv_row(v, hass_tops_attn_copy(i, kp, s), kp, g, n, nkv, d), d);
            }
            for (int kp = i + 1; kp < n; kp++) pr[kp] = 0.f;
        }
    }
}

// Backward: ds and dq per (head, query); dk and dv per key position (each thread owns one key
// row of every copy and sums heads and queries in order).
void hass_tops_attn_bwd(float *dq, float *dk, float *dv, float *ds, const float *dout,
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
                int c = hass_tops_attn_copy(i, kp, s);
                dsr[kp] = dotf(doi, kv_row(v, c, kp, g, n, nkv, d), d); // dL/dw
                dot += (double)pr[kp] * dsr[kp];
            }
            for (int kp = 0; kp <= i; kp++) dsr[kp] = pr[kp] * (dsr[kp] - (float)dot) * scale;
            if (dq) {
                float *dqi = dq + ((size_t)i * nh + h) * d;
                for (int kp = 0; kp <= i; kp++)
                    axpyf(dqi, dsr[kp], kv_row(k, hass_tops_attn_copy(i, kp, s), kp, g, n, nkv, d), d);
            }
        }
    }
    if (!dk && !dv) return;
#pragma omp parallel for schedule(static) if (big)
    for (int kp = 0; kp < n; kp++) {
        for (int h = 0; h < nh; h++) {
            int g = h / grp;
            for (int i = kp; i < n; i++) {
                size_t off = (((size_t)hass_tops_attn_copy(i, kp, s) * n + kp) * nkv + g) * d;
                size_t hi = ((size_t)h * n + i) * n + kp;
                if (dk) axpyf(dk + off, ds[hi], q + ((size_t)i * nh + h) * d, d);
                if (dv) axpyf(dv + off, prob[hi], dout + ((size_t)i * nh + h) * d, d);
            }
        }
    }
}

// ---- SwiGLU ----------------------------------------------------------------------------------

// m = silu(g) * u.
void hass_tops_swiglu_fwd(float *m, const float *g, const float *u, size_t n_el) {
#pragma omp parallel for schedule(static) if ((long)n_el > PAR_MIN_ELEMS)
    for (size_t i = 0; i < n_el; i++) {
        float sg = 1.0f / (1.0f + expf(-g[i]));
        m[i] = g[i] * sg * u[i];
    }
}

// silu'(g) = sig(g) (1 + g (1 - sig(g))).
void hass_tops_swiglu_bwd(float *dg, float *du, const float *dm, const float *g, const float *u,
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
void hass_tops_smoothl1(float *dx, double *loss, const float *x, const float *t, const float *coef,
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
void hass_tops_topk(int *idx, const float *x, int V, int K) {
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

// Soft CE row by row (threads over rows; each row's sums in double, in vocabulary order).
void hass_tops_soft_ce(float *dl, double *ploss, double *kloss, int *acc, const float *lq,
                       const float *lp, const float *cp, const float *ck, int n, int V, int K) {
    if (K > V) K = V;
#pragma omp parallel for schedule(static) if ((long)n * V > PAR_MIN_ELEMS / 8)
    for (int r = 0; r < n; r++) {
        const float *q = lq + (size_t)r * V, *p = lp + (size_t)r * V;
        int top[64], qtop[3];
        int kk = K < 64 ? K : 64;
        float mq = -INFINITY, mp = -INFINITY;
        for (int j = 0; j < V; j++) {
            if (q[j] > mq) mq = q[j];
            if (p[j] > mp) mp = p[j];
        }
        double zq = 0, zp = 0;
        for (int j = 0; j < V; j++) {
            zq += exp((double)q[j] - mq);
            zp += exp((double)p[j] - mp);
        }
        double lzq = log(zq) + mq, lzp = log(zp) + mp; // log-sum-exp
        double pl = 0;
        for (int j = 0; j < V; j++) pl -= exp(p[j] - lzp) * (q[j] - lzq);
        if (kk > 0) hass_tops_topk(top, p, V, kk);
        double kl = 0, pk = 0; // pk = target mass on the top-K
        for (int t = 0; t < kk; t++) {
            double pj = exp(p[top[t]] - lzp);
            kl -= pj * (q[top[t]] - lzq);
            pk += pj;
        }
        ploss[r] = pl;
        kloss[r] = kl;
        if (acc) {
            hass_tops_topk(qtop, q, V, V < 3 ? V : 3);
            int tgt = kk > 0 ? top[0] : 0;
            if (kk == 0) hass_tops_topk(&tgt, p, V, 1);
            acc[r] = qtop[0] == tgt ? 1 : ((V > 1 && qtop[1] == tgt) || (V > 2 && qtop[2] == tgt)) ? 2 : 0;
        }
        if (dl) {
            float a = cp ? cp[r] : 0.f, b = ck ? ck[r] : 0.f;
            float *dr = dl + (size_t)r * V;
            // d/dlq of -sum_v c_v log Q_v = (sum_v c_v) Q - c
            for (int j = 0; j < V; j++) {
                double qj = exp(q[j] - lzq), pj = exp(p[j] - lzp);
                dr[j] += (float)(a * (qj - pj) + b * qj * pk);
            }
            if (b != 0.f)
                for (int t = 0; t < kk; t++) dr[top[t]] -= (float)(b * exp(p[top[t]] - lzp));
        }
    }
}
