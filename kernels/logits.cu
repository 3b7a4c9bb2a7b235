// logits.cu: per-row argmax, top-k, log-softmax and sampling over logits, one thread block per
// row. CPU twins: hass_cpu_argmax, hass_cpu_topk, hass_cpu_log_softmax, hass_cpu_sample.
#include <climits>

#include "common.cuh"
#include "ops.h"

#define ROW_THREADS 256

// Whether (va, ia) ranks before (vb, ib): larger value, then lower index.
__device__ __forceinline__ bool before(float va, int ia, float vb, int ib) {
    return va > vb || (va == vb && ia < ib);
}

// Best (value, index) pair over the block; every thread gets it. Empty slots: (-inf, INT_MAX).
__device__ void block_best(float &v, int &i) {
    __shared__ float pv[32];
    __shared__ int pi[32];
    for (int o = 16; o > 0; o >>= 1) {
        float v2 = __shfl_xor_sync(0xffffffffu, v, o);
        int i2 = __shfl_xor_sync(0xffffffffu, i, o);
        if (before(v2, i2, v, i)) v = v2, i = i2;
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) pv[threadIdx.x >> 5] = v, pi[threadIdx.x >> 5] = i;
    __syncthreads();
    v = pv[0], i = pi[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        if (before(pv[w], pi[w], v, i)) v = pv[w], i = pi[w];
}

// Index of the row's largest value (lowest index on ties), valid in every thread.
__device__ int row_argmax(const float *x, int n_col) {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int c = threadIdx.x; c < n_col; c += blockDim.x)
        if (before(x[c], c, bv, bi)) bv = x[c], bi = c;
    block_best(bv, bi);
    return bi == INT_MAX ? 0 : bi;
}

// Argmax per row.
__global__ void k_argmax(int32_t *idx, const float *x, int n_col) { // idx (n_rows), x (n_rows, n_col)
    int r = row_argmax(x + (size_t)blockIdx.x * n_col, n_col);
    if (threadIdx.x == 0) idx[blockIdx.x] = r;
}

// Host launcher: see hass_cpu_argmax.
extern "C" hass_err hass_cuda_argmax(int32_t *d_idx, const float *d_x, int n_rows, int n_col) {
    if (n_rows <= 0) return HASS_OK;
    k_argmax<<<n_rows, ROW_THREADS, 0, hass_cuda_stream>>>(d_idx, d_x, n_col);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// Top k of a row into (vo, io) (shared or global, written by thread 0 and visible to all after
// the call): per-thread sorted lists, then k rounds of block-best over the list heads.
__device__ void row_topk(float *vo, int *io, const float *x, int n_col, int k) {
    float lv[HASS_TOPK_MAX];
    int li[HASS_TOPK_MAX];
    for (int j = 0; j < k; j++) lv[j] = -INFINITY, li[j] = INT_MAX;
    for (int c = threadIdx.x; c < n_col; c += blockDim.x) {
        float v = x[c];
        if (!before(v, c, lv[k - 1], li[k - 1])) continue;
        int p = k - 1;
        while (p > 0 && before(v, c, lv[p - 1], li[p - 1])) {
            lv[p] = lv[p - 1], li[p] = li[p - 1];
            p--;
        }
        lv[p] = v, li[p] = c;
    }
    int head = 0;
    for (int j = 0; j < k; j++) {
        float v = head < k ? lv[head] : -INFINITY;
        int i = head < k ? li[head] : INT_MAX;
        block_best(v, i);
        if (i != INT_MAX && i % (int)blockDim.x == (int)threadIdx.x) head++;
        if (threadIdx.x == 0) vo[j] = i == INT_MAX ? -INFINITY : v, io[j] = i == INT_MAX ? -1 : i;
    }
    __syncthreads();
}

// Top-k per row.
__global__ void k_topk(int32_t *idx,   // (n_rows, k)
                       float *val,     // (n_rows, k)
                       const float *x, // (n_rows, n_col)
                       int n_col, int k) {
    __shared__ float sv[HASS_TOPK_MAX];
    __shared__ int si[HASS_TOPK_MAX];
    row_topk(sv, si, x + (size_t)blockIdx.x * n_col, n_col, k);
    if (threadIdx.x < k) {
        idx[(size_t)blockIdx.x * k + threadIdx.x] = si[threadIdx.x];
        val[(size_t)blockIdx.x * k + threadIdx.x] = sv[threadIdx.x];
    }
}

// Host launcher: see hass_cpu_topk.
extern "C" hass_err hass_cuda_topk(int32_t *d_idx, float *d_val, const float *d_x, int n_rows,
                                   int n_col, int k) {
    if (k < 1 || k > HASS_TOPK_MAX)
        return hass_seterr(HASS_EINVAL, "cuda topk: k %d outside 1..%d", k, HASS_TOPK_MAX);
    if (n_rows <= 0) return HASS_OK;
    k_topk<<<n_rows, ROW_THREADS, 0, hass_cuda_stream>>>(d_idx, d_val, d_x, n_col, k);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// Log-softmax per row.
__global__ void k_log_softmax(float *y, const float *x, int n_col) { // y, x: (n_rows, n_col)
    const float *xr = x + (size_t)blockIdx.x * n_col;
    float *yr = y + (size_t)blockIdx.x * n_col;
    float m = -INFINITY;
    for (int c = threadIdx.x; c < n_col; c += blockDim.x) m = fmaxf(m, xr[c]);
    m = block_max(m);
    float s = 0.f;
    for (int c = threadIdx.x; c < n_col; c += blockDim.x) s += expf(xr[c] - m);
    s = block_sum(s);
    float lse = m + logf(s);
    for (int c = threadIdx.x; c < n_col; c += blockDim.x) yr[c] = xr[c] - lse;
}

// Host launcher: see hass_cpu_log_softmax.
extern "C" hass_err hass_cuda_log_softmax(float *d_y, const float *d_x, int n_rows, int n_col) {
    if (n_rows <= 0) return HASS_OK;
    k_log_softmax<<<n_rows, ROW_THREADS, 0, hass_cuda_stream>>>(d_y, d_x, n_col);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// Kept mass of a row at threshold tau (sum of exp((x - m)/temp) over x >= tau), in every thread.
__device__ float row_mass(const float *x, int n_col, float m, float temp, float tau) {
    float s = 0.f;
    for (int c = threadIdx.x; c < n_col; c += blockDim.x)
        if (x[c] >= tau) s += expf((x[c] - m) / temp);
    return block_sum(s);
}

// One token per row; the rule is hass_cpu_sample's.
__global__ void k_sample(int32_t *tok, const float *logits, const float *u, int n_col, float temp,
                         int top_k, float top_p) {
    __shared__ float sv[HASS_TOPK_MAX];
    __shared__ int si[HASS_TOPK_MAX];
    __shared__ float chunk_mass[ROW_THREADS];
    __shared__ int chunk_last[ROW_THREADS];
    int r = blockIdx.x;
    const float *x = logits + (size_t)r * n_col;
    if (temp <= 0.f) {
        int a = row_argmax(x, n_col);
        if (threadIdx.x == 0) tok[r] = a;
        return;
    }
    if (top_k > 0) {
        int k = top_k < n_col ? top_k : n_col;
        row_topk(sv, si, x, n_col, k);
        if (threadIdx.x != 0) return;
        float p[HASS_TOPK_MAX], tot = 0.f;
        for (int j = 0; j < k; j++) tot += (p[j] = expf((sv[j] - sv[0]) / temp));
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
        tok[r] = si[pick];
        return;
    }
    float m = -INFINITY, lo = INFINITY;
    for (int c = threadIdx.x; c < n_col; c += blockDim.x) m = fmaxf(m, x[c]), lo = fminf(lo, x[c]);
    m = block_max(m);
    lo = -block_max(-lo);
    float tau = -INFINITY;
    if (top_p < 1.f) {
        float target = top_p * row_mass(x, n_col, m, temp, -INFINITY), hi = m;
        if (row_mass(x, n_col, m, temp, hi) >= target) {
            lo = hi;
        } else {
            for (int it = 0; it < 40; it++) {
                float mid = lo + (hi - lo) * 0.5f;
                if (row_mass(x, n_col, m, temp, mid) >= target) lo = mid;
                else hi = mid;
            }
        }
        tau = lo;
    }
    // contiguous chunks per thread, scanned in index order
    int per = CEIL_DIV(n_col, (int)blockDim.x), c0 = threadIdx.x * per;
    int c1 = c0 + per < n_col ? c0 + per : n_col;
    float s = 0.f;
    int last = -1;
    for (int c = c0; c < c1; c++)
        if (x[c] >= tau) s += expf((x[c] - m) / temp), last = c;
    chunk_mass[threadIdx.x] = s;
    chunk_last[threadIdx.x] = last;
    __syncthreads();
    if (threadIdx.x != 0) return;
    float kept = 0.f;
    int last_kept = 0;
    for (int t = 0; t < (int)blockDim.x; t++) {
        kept += chunk_mass[t];
        if (chunk_last[t] >= 0) last_kept = chunk_last[t];
    }
    float target = u[r] * kept, acc = 0.f;
    int pick = -1;
    for (int t = 0; t < (int)blockDim.x && pick < 0; t++) {
        if (acc + chunk_mass[t] <= target) {
            acc += chunk_mass[t];
            continue;
        }
        int a0 = t * per, a1 = a0 + per < n_col ? a0 + per : n_col;
        for (int c = a0; c < a1; c++) {
            if (x[c] < tau) continue;
            acc += expf((x[c] - m) / temp);
            if (acc > target) {
                pick = c;
                break;
            }
        }
        if (pick < 0) pick = chunk_last[t]; // rounding: the chunk's sum said the target is here
    }
    tok[r] = pick >= 0 ? pick : last_kept;
}

// Host launcher: see hass_cpu_sample.
extern "C" hass_err hass_cuda_sample(int32_t *d_tok, const float *d_logits, const float *d_u,
                                     int n_rows, int n_col, float temp, int top_k, float top_p) {
    if (top_k < 0 || top_k > HASS_TOPK_MAX)
        return hass_seterr(HASS_EINVAL, "cuda sample: top_k %d outside 0..%d", top_k,
                           HASS_TOPK_MAX);
    if (n_rows <= 0) return HASS_OK;
    k_sample<<<n_rows, ROW_THREADS, 0, hass_cuda_stream>>>(d_tok, d_logits, d_u, n_col, temp,
                                                           top_k, top_p);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}
