// attention.cu: attention of a block of n queries over the committed KV plus the block itself,
// with an (n, n) block mask (tree attention) and GQA. CPU twin: hass_cpu_attention.
//
// One thread block per (query, head): the scores of all n_past+n keys live in shared memory
// (so n_past+n is limited by the shared memory: HASS_ATTN_MAX_KV), each warp takes keys in turn
// and its lanes split head_dim; then a block max/sum softmax and one thread per output element
// summing p_t * v_t over the keys in order.
#include "common.cuh"

#define ATTN_THREADS 128
#define HASS_ATTN_MAX_KV 40000 // 160 KB of scores + q in shared memory

// out[i, h] = softmax(q[i, h] . K / sqrt(d) over visible keys) V.
__global__ void k_attention(float *out,           // (n, n_head*head_dim)
                            const float *q,       // (n, q_stride)
                            const float *k_cache, // (n_past+n, kv_dim)
                            const float *v_cache, // (n_past+n, kv_dim)
                            const uint8_t *mask,  // (n, n) or NULL
                            int n_past, int n, int q_stride, int n_head, int n_kv_head,
                            int head_dim, float scale) {
    extern __shared__ float smem[];
    float *qs = smem;            // (head_dim)
    float *sc = smem + head_dim; // (n_past+n)
    int i = blockIdx.x / n_head, h = blockIdx.x % n_head;
    int kh = h / (n_head / n_kv_head), kv_dim = n_kv_head * head_dim, n_kv = n_past + n;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warp = blockDim.x >> 5;
    const float *qh = q + (size_t)i * q_stride + (size_t)h * head_dim;
    for (int e = threadIdx.x; e < head_dim; e += blockDim.x) qs[e] = qh[e];
    __syncthreads();
    for (int t = warp; t < n_kv; t += n_warp) {
        int j = t - n_past;
        bool ok = j < 0 || (mask ? mask[(size_t)i * n + j] != 0 : j <= i);
        float d = 0.f;
        if (ok) {
            const float *kt = k_cache + (size_t)t * kv_dim + (size_t)kh * head_dim;
            for (int e = lane; e < head_dim; e += 32) d += qs[e] * kt[e];
            d = warp_sum(d);
        }
        if (lane == 0) sc[t] = ok ? d * scale : -INFINITY;
    }
    __syncthreads();
    float m = -INFINITY;
    for (int t = threadIdx.x; t < n_kv; t += blockDim.x) m = fmaxf(m, sc[t]);
    m = block_max(m);
    float *o = out + (size_t)i * n_head * head_dim + (size_t)h * head_dim;
    if (m == -INFINITY) { // nothing visible
        for (int e = threadIdx.x; e < head_dim; e += blockDim.x) o[e] = 0.f;
        return;
    }
    float s = 0.f;
    for (int t = threadIdx.x; t < n_kv; t += blockDim.x) {
        float p = sc[t] == -INFINITY ? 0.f : expf(sc[t] - m);
        sc[t] = p;
        s += p;
    }
    s = block_sum(s); // ends with a barrier: all of sc is written
    float inv = 1.0f / s;
    for (int e = threadIdx.x; e < head_dim; e += blockDim.x) {
        const float *vt = v_cache + (size_t)kh * head_dim + e;
        float acc = 0.f;
#pragma unroll 8
        for (int t = 0; t < n_kv; t++) acc += sc[t] * vt[(size_t)t * kv_dim];
        o[e] = acc * inv;
    }
}

// Host launcher: see hass_cpu_attention (device pointers; mask may be NULL).
extern "C" hass_err hass_cuda_attention(float *d_out, const float *d_q, const float *d_k_cache,
                                        const float *d_v_cache, const uint8_t *d_mask, int n_past,
                                        int n, int q_stride, int n_head, int n_kv_head,
                                        int head_dim) {
    if (n <= 0) return HASS_OK;
    if (n_kv_head <= 0 || n_head % n_kv_head)
        return hass_seterr(HASS_EINVAL, "cuda attention: %d heads not a multiple of %d KV heads",
                           n_head, n_kv_head);
    if (n_past + n > HASS_ATTN_MAX_KV)
        return hass_seterr(HASS_ERANGE, "cuda attention: %d keys, at most %d", n_past + n,
                           HASS_ATTN_MAX_KV);
    static bool attr_set = false;
    if (!attr_set) { // allow more than 48 KB of dynamic shared memory (once, before any capture)
        HASS_CUDA_CHECK(cudaFuncSetAttribute(k_attention,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (HASS_ATTN_MAX_KV + 256) * (int)sizeof(float)));
        attr_set = true;
    }
    size_t smem = (size_t)(head_dim + n_past + n) * sizeof(float);
    k_attention<<<n * n_head, ATTN_THREADS, smem, hass_cuda_stream>>>(
        d_out, d_q, d_k_cache, d_v_cache, d_mask, n_past, n, q_stride, n_head, n_kv_head, head_dim,
        1.0f / sqrtf((float)head_dim));
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}
