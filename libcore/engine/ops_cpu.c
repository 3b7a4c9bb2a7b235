// ops_cpu.c: CPU reference twins of the CUDA kernels (plain C, fixed reduction order).
#include "ops.h"

#include "sample.h"

#include <math.h>
#include <stdlib.h>

// RMSNorm row by row; the sum of squares runs left to right in float.
void hass_cpu_rmsnorm(float *y, const float *x, const float *w, int n_rows, int dim, float eps) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        float s = 0.f;
        for (int i = 0; i < dim; i++) s += xr[i] * xr[i];
        float scale = 1.0f / sqrtf(s / (float)dim + eps);
        for (int i = 0; i < dim; i++) yr[i] = xr[i] * scale * w[i];
    }
}

// Embedding gather row by row; out-of-range ids give zeros.
void hass_cpu_embed(float *y, const uint16_t *table, const int32_t *tok, int n_tok, int n_vocab,
                    int dim) {
    for (int r = 0; r < n_tok; r++) {
        float *yr = y + (size_t)r * dim;
        int t = tok[r];
        if (t < 0 || t >= n_vocab) {
            for (int i = 0; i < dim; i++) yr[i] = 0.f;
            continue;
        }
        const uint16_t *row = table + (size_t)t * dim;
        for (int i = 0; i < dim; i++) yr[i] = hass_bf16_to_f32(row[i]);
    }
}

// RoPE in place; the angle of pair i is pos * theta^(-2i/head_dim), in double.
void hass_cpu_rope(float *x, const int32_t *pos, int n_tok, int row_stride, int n_head,
                   int head_dim, float theta, int layout) {
    int half = head_dim / 2;
    for (int r = 0; r < n_tok; r++) {
        for (int h = 0; h < n_head; h++) {
            float *xh = x + (size_t)r * row_stride + (size_t)h * head_dim;
            for (int i = 0; i < half; i++) {
                double a = (double)pos[r] * pow((double)theta, -2.0 * i / head_dim);
                float c = (float)cos(a), s = (float)sin(a);
                int i0 = layout == HASS_ROPE_HALF ? i : 2 * i;
                int i1 = layout == HASS_ROPE_HALF ? i + half : 2 * i + 1;
                float x0 = xh[i0], x1 = xh[i1];
                xh[i0] = x0 * c - x1 * s;
                xh[i1] = x0 * s + x1 * c;
            }
        }
    }
}

// Attention over committed KV + block with the block mask; see ops.h for the contract.
void hass_cpu_attention(float *out, const float *q, const float *k_cache, const float *v_cache,
                        const uint8_t *mask, int n_past, int n, int q_stride, int n_head,
                        int n_kv_head, int head_dim) {
    int n_kv = n_past + n, kv_dim = n_kv_head * head_dim, group = n_head / n_kv_head;
    float scale = 1.0f / sqrtf((float)head_dim);
    float *sc = malloc((size_t)(n_kv > 0 ? n_kv : 1) * sizeof *sc);
    HASS_ASSERT(sc);
    for (int i = 0; i < n; i++) {
        for (int h = 0; h < n_head; h++) {
            const float *qh = q + (size_t)i * q_stride + (size_t)h * head_dim;
            int kh = h / group;
            float m = -INFINITY;
            for (int t = 0; t < n_kv; t++) {
                int j = t - n_past;
                int ok = j < 0 || (mask ? mask[(size_t)i * n + j] != 0 : j <= i);
                if (!ok) {
                    sc[t] = -INFINITY;
                    continue;
                }
                const float *kt = k_cache + (size_t)t * kv_dim + (size_t)kh * head_dim;
                float d = 0.f;
                for (int e = 0; e < head_dim; e++) d += qh[e] * kt[e];
                sc[t] = d * scale;
                if (sc[t] > m) m = sc[t];
            }
            float *o = out + (size_t)i * n_head * head_dim + (size_t)h * head_dim;
            for (int e = 0; e < head_dim; e++) o[e] = 0.f;
            if (m == -INFINITY) continue;
            float sum = 0.f;
            for (int t = 0; t < n_kv; t++) {
                sc[t] = sc[t] == -INFINITY ? 0.f : expf(sc[t] - m);
                sum += sc[t];
            }
            for (int t = 0; t < n_kv; t++) {
                if (sc[t] == 0.f) continue;
                const float *vt = v_cache + (size_t)t * kv_dim + (size_t)kh * head_dim;
                float p = sc[t] / sum;
                for (int e = 0; e < head_dim; e++) o[e] += p * vt[e];
            }
        }
    }
    free(sc);
}

// SwiGLU row by row: silu(gate) * up with silu(g) = g / (1 + exp(-g)).
void hass_cpu_swiglu(float *y, const float *gu, int n_tok, int n_ff) {
    for (int r = 0; r < n_tok; r++) {
        const float *g = gu + (size_t)r * 2 * n_ff, *u = g + n_ff;
        float *yr = y + (size_t)r * n_ff;
        for (int i = 0; i < n_ff; i++) yr[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

// y += x elementwise.
void hass_cpu_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

// y = bf16(x) W^T + beta*y, float sums over the input index in order.
void hass_cpu_matmul(float *y, const float *x, const uint16_t *w, int n_tok, int n_in, int n_out,
                     float beta) {
    float *xb = malloc((size_t)(n_in > 0 ? n_in : 1) * sizeof *xb);
    HASS_ASSERT(xb);
    for (int r = 0; r < n_tok; r++) {
        for (int i = 0; i < n_in; i++) xb[i] = hass_bf16_to_f32(hass_f32_to_bf16(x[(size_t)r * n_in + i]));
        for (int o = 0; o < n_out; o++) {
            const uint16_t *wr = w + (size_t)o * n_in;
            float acc = 0.f;
            for (int i = 0; i < n_in; i++) acc += xb[i] * hass_bf16_to_f32(wr[i]);
            float *yo = y + (size_t)r * n_out + o;
            *yo = beta == 0.f ? acc : acc + beta * *yo;
        }
    }
    free(xb);
}

// Argmax per row, lowest index on ties.
void hass_cpu_argmax(int32_t *idx, const float *x, int n_rows, int n_col) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * n_col;
        int best = 0;
        for (int i = 1; i < n_col; i++)
            if (xr[i] > xr[best]) best = i;
        idx[r] = best;
    }
}

// Whether (va, ia) ranks before (vb, ib): larger value first, then lower index.
static int topk_before(float va, int ia, float vb, int ib) {
    return va > vb || (va == vb && ia < ib);
}

// Top-k per row by insertion into a sorted list of k.
void hass_cpu_topk(int32_t *idx, float *val, const float *x, int n_rows, int n_col, int k) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * n_col;
        int32_t *ir = idx + (size_t)r * k;
        float *vr = val + (size_t)r * k;
        int n = 0;
        for (int i = 0; i < n_col; i++) {
            if (n == k && !topk_before(xr[i], i, vr[k - 1], ir[k - 1])) continue;
            int p = n < k ? n++ : k - 1;
            while (p > 0 && topk_before(xr[i], i, vr[p - 1], ir[p - 1])) {
                vr[p] = vr[p - 1], ir[p] = ir[p - 1];
                p--;
            }
            vr[p] = xr[i], ir[p] = i;
        }
        for (; n < k; n++) vr[n] = -INFINITY, ir[n] = -1;
    }
}

// Log-softmax per row; max and sum run left to right.
void hass_cpu_log_softmax(float *y, const float *x, int n_rows, int n_col) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * n_col;
        float *yr = y + (size_t)r * n_col;
        float m = -INFINITY, s = 0.f;
        for (int i = 0; i < n_col; i++) m = xr[i] > m ? xr[i] : m;
        for (int i = 0; i < n_col; i++) s += expf(xr[i] - m);
        float lse = m + logf(s);
        for (int i = 0; i < n_col; i++) yr[i] = xr[i] - lse;
    }
}

// Kept mass of a row at threshold tau: sum of p over x >= tau, p = exp((x - m) / temp).
static float sample_mass(const float *x, int n_col, float m, float temp, float tau) {
    float s = 0.f;
    for (int i = 0; i < n_col; i++)
        if (x[i] >= tau) s += expf((x[i] - m) / temp);
    return s;
}

// Sampling per row; see ops.h for the exact rule.
void hass_cpu_sample(int32_t *tok, const float *logits, const float *u, int n_rows, int n_col,
                     float temp, int top_k, float top_p) {
    for (int r = 0; r < n_rows; r++) {
        const float *x = logits + (size_t)r * n_col;
        if (temp <= 0.f) {
            hass_cpu_argmax(tok + r, x, 1, n_col);
            continue;
        }
        if (top_k > 0) {
            int32_t ki[HASS_TOPK_MAX];
            float kv[HASS_TOPK_MAX], p[HASS_TOPK_MAX];
            int k = top_k < n_col ? top_k : n_col;
            hass_cpu_topk(ki, kv, x, 1, n_col, k);
            float tot = 0.f;
            for (int j = 0; j < k; j++) tot += (p[j] = expf((kv[j] - kv[0]) / temp));
            int n = k;
            if (top_p < 1.f) {
                float c = 0.f;
                for (n = 0; n < k;) {
                    c += p[n++];
                    if (c >= top_p * tot) break;
                }
                tot = c;
            }
            float c = 0.f, target = u[r] * tot;
            int pick = n - 1;
            for (int j = 0; j < n; j++) {
                c += p[j];
                if (c > target) {
                    pick = j;
                    break;
                }
            }
            tok[r] = ki[pick];
            continue;
        }
        float m = -INFINITY, lo = INFINITY;
        for (int i = 0; i < n_col; i++) {
            m = x[i] > m ? x[i] : m;
            lo = x[i] < lo ? x[i] : lo;
        }
        float tau = -INFINITY;
        if (top_p < 1.f) {
            float target = top_p * sample_mass(x, n_col, m, temp, -INFINITY), hi = m;
            if (sample_mass(x, n_col, m, temp, hi) >= target) {
                lo = hi;
            } else {
                for (int it = 0; it < 40; it++) {
                    float mid = lo + (hi - lo) * 0.5f;
                    if (sample_mass(x, n_col, m, temp, mid) >= target) lo = mid;
                    else hi = mid;
                }
            }
            tau = lo;
        }
        float kept = sample_mass(x, n_col, m, temp, tau), target = u[r] * kept, c = 0.f;
        int pick = -1, last = 0;
        for (int i = 0; i < n_col && pick < 0; i++) {
            if (x[i] < tau) continue;
            last = i;
            c += expf((x[i] - m) / temp);
            if (c > target) pick = i;
        }
        tok[r] = pick >= 0 ? pick : last;
    }
}

// Greedy walk down the tree along children that match the target's argmax.
void hass_cpu_accept_greedy(int32_t *path, int32_t *n_path, const int32_t *tokens,
                            const int32_t *parent, const int32_t *target, int n) {
    int cur = 0, np = 0;
    path[np++] = 0;
    for (;;) {
        int next = -1;
        for (int c = cur + 1; c < n; c++)
            if (parent[c] == cur && tokens[c] == target[cur]) {
                next = c;
                break;
            }
        if (next < 0) break;
        path[np++] = next;
        cur = next;
    }
    *n_path = np;
}

// KV compaction, layer by layer, entries moved in increasing j.
void hass_cpu_kv_compact(float *k_cache, float *v_cache, const int32_t *idx, int n_keep, int L0,
                         int n_layer, size_t layer_stride, int kv_dim) {
    for (int l = 0; l < n_layer; l++) {
        for (int c = 0; c < 2; c++) {
            float *base = (c ? v_cache : k_cache) + (size_t)l * layer_stride;
            for (int j = 0; j < n_keep; j++)
                if (idx[j] != j)
                    memmove(base + (size_t)(L0 + j) * kv_dim, base + (size_t)(L0 + idx[j]) * kv_dim,
                            (size_t)kv_dim * sizeof(float));
        }
    }
}

// Stochastic tree acceptance with given uniforms (accept.c's walk, children found by parent[]).
void hass_cpu_accept_sample(int32_t *path, int32_t *n_path, int32_t *bonus, const int32_t *tokens,
                            const int32_t *parent, const float *logits, const double *u, int n,
                            int V, float temp, int top_k, float top_p, float *probs) {
    hass_sampler s = {temp, top_k, top_p};
    int cur = 0, np = 0, ui = 0;
    path[np++] = 0;
    for (;;) {
        const float *lu = logits + (size_t)cur * V;
        int has_child = 0;
        for (int c = cur + 1; c < n && !has_child; c++) has_child = parent[c] == cur;
        hass_sampler_probs(&s, lu, V, probs);
        if (!has_child) { // leaf: bonus from the fresh processed distribution
            *bonus = hass_sample_probs(probs, V, u[ui++]);
            break;
        }
        int next = -1;
        for (int c = cur + 1; c < n && next < 0; c++) {
            int32_t y = tokens[c];
            if (parent[c] != cur || y < 0 || y >= V) continue;
            int dup = 0; // tried before at this node: an earlier child with the same token
            for (int k = cur + 1; k < c && !dup; k++) dup = parent[k] == cur && tokens[k] == y;
            if (dup) continue;
            if (u[ui++] < probs[y]) {
                next = c;
                break;
            }
            probs[y] = 0.f;
            double sum = 0.0;
            for (int i = 0; i < V; i++) sum += probs[i];
            if (sum > 0.0)
                for (int i = 0; i < V; i++) probs[i] = (float)(probs[i] / sum);
        }
        if (next < 0) { // every child rejected: bonus from the residual
            int32_t b = hass_sample_probs(probs, V, u[ui++]);
            if (b < 0) {
                hass_sampler_probs(&s, lu, V, probs);
                b = hass_sample_argmax(probs, V);
            }
            *bonus = b;
            break;
        }
        cur = next;
        path[np++] = cur;
    }
    *n_path = np;
}

// K/V parts of qkv rows into the cache after n_past entries.
void hass_cpu_kv_store(float *k_cache, float *v_cache, const float *qkv, int n_past, int n,
                       int qkv_stride, int q_dim, int kv_dim) {
    for (int r = 0; r < n; r++) {
        const float *src = qkv + (size_t)r * qkv_stride + q_dim;
        memcpy(k_cache + (size_t)(n_past + r) * kv_dim, src, sizeof(float) * (size_t)kv_dim);
        memcpy(v_cache + (size_t)(n_past + r) * kv_dim, src + kv_dim, sizeof(float) * (size_t)kv_dim);
    }
}
