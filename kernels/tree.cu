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
