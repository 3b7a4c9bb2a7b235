// tree.cu: greedy tree acceptance and KV compaction on the device, so a decode cycle needs no
// host round trip between verify and commit. CPU twins: hass_cpu_accept_greedy, hass_cpu_kv_compact.
#include "common.cuh"

// One warp walks the tree: at each node the lanes test 32 candidate children at once.
__global__ void k_accept_greedy(int32_t *path,         // (<= n)
                                int32_t *n_path,       // (1)
                                const int32_t *tokens, // (n)
                                const int32_t *parent, // (n)
                                const int32_t *target, // (n)
                                int n) {
    int lane = threadIdx.x, cur = 0, np = 1;
    if (lane == 0) path[0] = 0;
    for (;;) {
        int next = -1, want = target[cur];
        for (int base = cur + 1; base < n && next < 0; base += 32) {
            int c = base + lane;
            bool hit = c < n && parent[c] == cur && tokens[c] == want;
            unsigned b = __ballot_sync(0xffffffffu, hit);
            if (b) next = base + __ffs(b) - 1;
        }
        if (next < 0) break;
        if (lane == 0) path[np] = next;
        np++;
        cur = next;
    }
    if (lane == 0) *n_path = np;
}

// Host launcher: see hass_cpu_accept_greedy (all pointers on the device).
extern "C" hass_err hass_cuda_accept_greedy(int32_t *d_path, int32_t *d_n_path,
                                            const int32_t *d_tokens, const int32_t *d_parent,
                                            const int32_t *d_target, int n) {
    if (n <= 0) return hass_seterr(HASS_EINVAL, "cuda accept: empty tree");
    k_accept_greedy<<<1, 32, 0, hass_cuda_stream>>>(d_path, d_n_path, d_tokens, d_parent,
                                                    d_target, n);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// Block (layer, K or V); each thread owns columns of kv_dim and moves them in increasing j,
// so a source entry is always read before anything overwrites it (idx[j] >= j, increasing).
__global__ void k_kv_compact(float *k_cache,     // (n_layer, layer_stride)
                             float *v_cache,     // (n_layer, layer_stride)
                             const int32_t *idx, // (n_keep)
                             int n_keep, int L0, size_t layer_stride, int kv_dim) {
    float *base = (blockIdx.y ? v_cache : k_cache) + (size_t)blockIdx.x * layer_stride;
    for (int j = 0; j < n_keep; j++) {
        int src = idx[j];
        if (src == j) continue;
        const float *s = base + (size_t)(L0 + src) * kv_dim;
        float *d = base + (size_t)(L0 + j) * kv_dim;
        for (int c = threadIdx.x; c < kv_dim; c += blockDim.x) d[c] = s[c];
    }
}

// Host launcher: see hass_cpu_kv_compact (idx on the device).
extern "C" hass_err hass_cuda_kv_compact(float *d_k_cache, float *d_v_cache, const int32_t *d_idx,
                                         int n_keep, int L0, int n_layer, size_t layer_stride,
                                         int kv_dim) {
    if (n_keep <= 0 || n_layer <= 0) return HASS_OK;
    k_kv_compact<<<dim3(n_layer, 2), 256, 0, hass_cuda_stream>>>(d_k_cache, d_v_cache, d_idx,
                                                                 n_keep, L0, layer_stride, kv_dim);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// ---- stochastic tree acceptance (twin: hass_cpu_accept_sample) ---------------------------------
// One block of AS_THREADS threads walks the tree; every thread follows the same control flow
// (the walk's state is the same in all of them) and the block cooperates on the V-wide steps:
// the processed distribution (temperature, top-k and top-p thresholds found by bisection on the
// order-preserving integer key of a float, ties resolved in index order like the twin's sort),
// the renormalisation after a rejection, and the inverse-CDF draw (thread-contiguous chunks,
// so the running sum goes in index order). Sums are in double as in the twin but in another
// order, so a uniform within rounding of a boundary can pick another token.
#define AS_THREADS 1024

// Order-preserving integer key of a float (NaN as -inf, -0 as +0).
__device__ __forceinline__ uint32_t fkey(float f) {
    if (f != f) f = -INFINITY;
    uint32_t b = f == 0.f ? 0u : __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Block sum of doubles; every thread gets the result (sh: 32 doubles of shared memory).
__device__ double bsum_d(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    double r = 0.0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) r += sh[w];
    return r;
}

// Count over the block of a per-thread count.
__device__ int bcount(int v, double *sh) { return (int)bsum_d((double)v, sh); }

// Lowest index of the largest value of x (V) over the block (argmax, NaN never wins).
__device__ int bargmax(const float *x, int V, double *sh) {
    float best = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (x[i] > best) best = x[i];
    best = block_max(best);
    int lo = V;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (x[i] == best && i < lo) lo = i;
    // min over the block through the double sum helper's storage
    __shared__ int mins[32];
    for (int o = 16; o > 0; o >>= 1) lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, o));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) mins[threadIdx.x >> 5] = lo;
    __syncthreads();
    int r = V;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) r = min(r, mins[w]);
    return r < V ? r : 0;
}

// The largest key K with count(key(x_i) >= K) >= k over the block (the k-th largest key).
__device__ uint32_t kth_key(const float *x, int V, int k, double *sh) {
    uint32_t lo = 0, hi = 0xffffffffu;
    while (lo < hi) {
        uint32_t mid = lo + (uint32_t)(((uint64_t)hi - lo + 1) / 2);
        int c = 0;
        for (int i = threadIdx.x; i < V; i += blockDim.x) c += fkey(x[i]) >= mid;
        if (bcount(c, sh) >= k) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// p = processed distribution of logits l (hass_sampler_probs' rule), computed by the block.
__device__ void proc_probs(float *p, const float *l, int V, float temp, int top_k, float top_p,
                           double *sh) {
    float inv_t = 1.0f / temp;
    bool use_k = top_k > 0 && top_k < V;
    uint32_t tk = 0;
    int n_eq_keep = V, n_eq = 0;
    if (use_k) {
        tk = kth_key(l, V, top_k, sh);
        int gt = 0, eq = 0;
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            uint32_t k = fkey(l[i]);
            gt += k > tk;
            eq += k == tk && l[i] == l[i];
        }
        n_eq_keep = top_k - bcount(gt, sh);
        n_eq = bcount(eq, sh);
    }
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float x = l[i];
        bool keep = x == x && (!use_k || fkey(x) >= tk);
        p[i] = keep ? x * inv_t : NAN;
    }
    __syncthreads();
    if (use_k && n_eq > n_eq_keep && threadIdx.x == 0) // ties at the threshold: lowest ids stay
        for (int i = 0, seen = 0; i < V; i++)
            if (fkey(l[i]) == tk && l[i] == l[i] && seen++ >= n_eq_keep) p[i] = NAN;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (p[i] == p[i] && p[i] > mx) mx = p[i];
    mx = block_max(mx);
    double s = 0.0;
    int nk = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float x = p[i];
        if (x != x) {
            p[i] = 0.f;
            continue;
        }
        p[i] = (float)exp((double)x - mx);
        s += p[i];
        nk++;
    }
    s = bsum_d(s, sh);
    nk = bcount(nk, sh);
    if (!(s > 0.0)) { // all NaN or -inf: one-hot at the argmax of the logits
        int a = bargmax(l, V, sh);
        for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = i == a ? 1.f : 0.f;
        __syncthreads();
        return;
    }
    for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = (float)(p[i] / s);
    __syncthreads();
    if (!(top_p > 0.f && top_p < 1.f && nk > 1)) return;
    // the cut value: the largest key T whose mass of p with key >= T reaches top_p
    uint32_t lo = fkey(0.f) + 1, hi = 0xffffffffu;
    while (lo < hi) {
        uint32_t mid = lo + (uint32_t)(((uint64_t)hi - lo + 1) / 2);
        double m = 0.0;
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            if (p[i] > 0.f && fkey(p[i]) >= mid) m += p[i];
        if (bsum_d(m, sh) >= (double)top_p) lo = mid;
        else hi = mid - 1;
    }
    double above = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (p[i] > 0.f && fkey(p[i]) > lo) above += p[i];
    above = bsum_d(above, sh);
    __syncthreads();
    if (threadIdx.x == 0) { // ties at the cut value: lowest ids first until the mass is reached
        double cum = above;
        bool full = cum >= (double)top_p;
        for (int i = 0; i < V; i++) {
            if (!(p[i] > 0.f) || fkey(p[i]) != lo) continue;
            if (full) p[i] = -p[i]; // marked: dropped below
            else if ((cum += p[i]) >= (double)top_p) full = true;
        }
    }
    __syncthreads();
    double kept = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        if (p[i] < 0.f || (p[i] > 0.f && fkey(p[i]) < lo)) p[i] = 0.f;
        kept += p[i];
    }
    kept = bsum_d(kept, sh);
    for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = (float)(p[i] / kept);
    __syncthreads();
}

// Inverse CDF over p (hass_sample_probs): first index whose running sum in index order exceeds
// u * total, the last positive one if none, -1 when p has no mass.
__device__ int bsample(const float *p, int V, double u, double *sh, double *scan) {
    int chunk = (V + blockDim.x - 1) / blockDim.x, b0 = threadIdx.x * chunk;
    int b1 = b0 + chunk < V ? b0 + chunk : V;
    double loc = 0.0;
    int last = -1;
    for (int i = b0; i < b1; i++)
        if (p[i] > 0.f) loc += p[i], last = i;
    __syncthreads();
    scan[threadIdx.x] = loc;
    __syncthreads();
    if (threadIdx.x == 0) { // exclusive prefix over the threads, in order
        double run = 0.0;
        for (int t = 0; t < (int)blockDim.x; t++) {
            double v = scan[t];
            scan[t] = run;
            run += v;
        }
        sh[32] = run;
    }
    __syncthreads();
    double total = sh[32], target = u * total, cum = scan[threadIdx.x];
    __shared__ int found, last_pos;
    if (threadIdx.x == 0) found = V, last_pos = -1;
    __syncthreads();
    if (total > 0.0 && b0 < b1 && cum + loc > target) // the crossing may be in this chunk
        for (int i = b0; i < b1; i++) {
            if (!(p[i] > 0.f)) continue;
            cum += p[i];
            if (cum > target) {
                atomicMin(&found, i);
                break;
            }
        }
    if (last >= 0) atomicMax(&last_pos, last);
    __syncthreads();
    int r = !(total > 0.0) ? -1 : found < V ? found : last_pos;
    __syncthreads();
    return r;
}

// The walk (see hass_cpu_accept_sample); out[0] = n_path, out[1] = bonus, out[2] = uniforms used.
__global__ void __launch_bounds__(AS_THREADS)
k_accept_sample(int32_t *path, int32_t *out, const int32_t *tokens, const int32_t *parent,
                const float *logits, const double *u, int n, int V, float temp, int top_k,
                float top_p, float *p) {
    __shared__ double sh[33];
    __shared__ double scan[AS_THREADS];
    int cur = 0, np = 1, ui = 0, bonus = -1;
    if (threadIdx.x == 0) path[0] = 0;
    for (;;) {
        const float *lu = logits + (size_t)cur * V;
        bool has_child = false;
        for (int c = cur + 1; c < n && !has_child; c++) has_child = parent[c] == cur;
        proc_probs(p, lu, V, temp, top_k, top_p, sh);
        if (!has_child) {
            bonus = bsample(p, V, u[ui++], sh, scan);
            break;
        }
        int next = -1;
        for (int c = cur + 1; c < n && next < 0; c++) {
            int y = tokens[c];
            if (parent[c] != cur || y < 0 || y >= V) continue;
            bool dup = false;
            for (int k = cur + 1; k < c && !dup; k++) dup = parent[k] == cur && tokens[k] == y;
            if (dup) continue;
            __syncthreads();
            if (u[ui++] < (double)p[y]) {
                next = c;
                break;
            }
            __syncthreads();
            if (threadIdx.x == 0) p[y] = 0.f;
            __syncthreads();
            double s = 0.0;
            for (int i = threadIdx.x; i < V; i += blockDim.x) s += p[i];
            s = bsum_d(s, sh);
            if (s > 0.0)
                for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = (float)(p[i] / s);
            __syncthreads();
        }
        if (next < 0) {
            int b = bsample(p, V, u[ui++], sh, scan);
            if (b < 0) {
                proc_probs(p, lu, V, temp, top_k, top_p, sh);
                b = bargmax(p, V, sh);
            }
            bonus = b;
            break;
        }
        cur = next;
        if (threadIdx.x == 0) path[np] = cur;
        np++;
    }
    if (threadIdx.x == 0) out[0] = np, out[1] = bonus, out[2] = ui;
}

// Host launcher: see hass_cpu_accept_sample (all pointers on the device; d_probs: V floats of
// scratch; d_out: n_path, bonus, uniforms used).
extern "C" hass_err hass_cuda_accept_sample(int32_t *d_path, int32_t *d_out,
                                            const int32_t *d_tokens, const int32_t *d_parent,
                                            const float *d_logits, const double *d_u, int n, int V,
                                            float temp, int top_k, float top_p, float *d_probs) {
    if (n <= 0 || V <= 0) return hass_seterr(HASS_EINVAL, "cuda accept: empty tree or vocabulary");
    if (!(temp > 0.f)) return hass_seterr(HASS_EINVAL, "cuda accept sample: temperature %g <= 0 "
                                                       "(greedy trees: hass_cuda_accept_greedy)",
                                          (double)temp);
    k_accept_sample<<<1, AS_THREADS, 0, hass_cuda_stream>>>(d_path, d_out, d_tokens, d_parent,
                                                            d_logits, d_u, n, V, temp, top_k,
                                                            top_p, d_probs);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}
