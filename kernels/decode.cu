// decode.cu: the one-token decode step with the position read from device memory, so a captured
// CUDA graph replays at any position: K/V stored at the row *d_n_past, and attention of one
// query over *d_n_past + 1 keys with a split count fixed by the cache capacity (not by the
// position), merged by k_attn_decode_combine in split order. CPU twins: hass_cpu_kv_store and
// hass_cpu_attention with n = 1 (mask NULL).
#include "common.cuh"

#define DEC_WARPS 4   // warps per block, each a strided share of the split's keys
#define DEC_HD_MAX 128

// Partial attention of head blockIdx.x over keys [s*span, (s+1)*span) of the visible ones:
// part[s][h] = (sum_j e^(x_j - M) v_j, M, sum_j e^(x_j - M)); an empty range gives sum 0.
__global__ void __launch_bounds__(DEC_WARPS * 32)
    k_attn_decode(float *part,             // (n_split, n_head, hd + 2)
                  const float *q,          // (1, n_head*hd)
                  const float *k_cache,    // (>= n_past+1, kv_dim)
                  const float *v_cache,    // (>= n_past+1, kv_dim)
                  const int32_t *n_past_p, // (1) committed entries before the query's own
                  int span, int n_head, int n_kv_head, int hd, float scale) {
    int h = blockIdx.x, s = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int n_all = *n_past_p + 1, kbeg = s * span;
    int kend = n_all < kbeg + span ? n_all : kbeg + span;
    int kvd = n_kv_head * hd, kh = h / (n_head / n_kv_head);
    float qv[4], acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 4; i++) qv[i] = lane + 32 * i < hd ? q[h * hd + lane + 32 * i] : 0.f;
    float m = -INFINITY, l = 0.f;
    for (int j = kbeg + warp; j < kend; j += DEC_WARPS) {
        const float *kr = k_cache + (size_t)j * kvd + kh * hd;
        const float *vr = v_cache + (size_t)j * kvd + kh * hd;
        float sc = 0.f;
#pragma unroll
        for (int i = 0; i < 4; i++)
            if (lane + 32 * i < hd) sc += qv[i] * kr[lane + 32 * i];
        sc = warp_sum(sc) * scale;
        float mn = fmaxf(m, sc), a = expf(m - mn), p = expf(sc - mn);
        l = l * a + p;
#pragma unroll
        for (int i = 0; i < 4; i++)
            if (lane + 32 * i < hd) acc[i] = acc[i] * a + p * vr[lane + 32 * i];
        m = mn;
    }
    __shared__ float sm_m[DEC_WARPS], sm_l[DEC_WARPS], sm_o[DEC_WARPS][DEC_HD_MAX];
    if (lane == 0) sm_m[warp] = m, sm_l[warp] = l;
#pragma unroll
    for (int i = 0; i < 4; i++)
        if (lane + 32 * i < hd) sm_o[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    float M = -INFINITY, L = 0.f;
    for (int w = 0; w < DEC_WARPS; w++)
        if (sm_l[w] > 0.f) M = fmaxf(M, sm_m[w]);
    for (int w = 0; w < DEC_WARPS; w++)
        if (sm_l[w] > 0.f) L += expf(sm_m[w] - M) * sm_l[w];
    float *pp = part + ((size_t)s * n_head + h) * (hd + 2);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float o = 0.f;
        for (int w = 0; w < DEC_WARPS; w++)
            if (sm_l[w] > 0.f) o += expf(sm_m[w] - M) * sm_o[w][d];
        pp[d] = o;
    }
    if (threadIdx.x == 0) pp[hd] = M, pp[hd + 1] = L;
}

// Merge the splits of head blockIdx.x in split order: out = sum_s w_s o_s / sum_s w_s l_s.
__global__ void k_attn_decode_combine(float *out,        // (1, n_head*hd)
                                      const float *part, // (n_split, n_head, hd + 2)
                                      int n_head, int hd, int n_split) {
    int h = blockIdx.x;
    size_t step = (size_t)n_head * (hd + 2);
    const float *p0 = part + (size_t)h * (hd + 2);
    float M = -INFINITY, den = 0.f;
    for (int s = 0; s < n_split; s++)
        if (p0[s * step + hd + 1] > 0.f) M = fmaxf(M, p0[s * step + hd]);
    for (int s = 0; s < n_split; s++)
        if (p0[s * step + hd + 1] > 0.f) den += expf(p0[s * step + hd] - M) * p0[s * step + hd + 1];
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float num = 0.f;
        for (int s = 0; s < n_split; s++)
            if (p0[s * step + hd + 1] > 0.f) num += expf(p0[s * step + hd] - M) * p0[s * step + d];
        out[(size_t)h * hd + d] = den > 0.f ? num / den : 0.f;
    }
}

// Host launcher: one query over *d_n_past + 1 keys (< max_keys); see hass_cpu_attention with
// n = 1. d_part: n_split * n_head * (head_dim + 2) floats.
extern "C" hass_err hass_cuda_attention_decode(float *d_out, const float *d_q,
                                               const float *d_k_cache, const float *d_v_cache,
                                               const int32_t *d_n_past, int max_keys,
                                               int n_head, int n_kv_head, int head_dim,
                                               float *d_part, int n_split) {
    if (n_kv_head <= 0 || n_head % n_kv_head || head_dim <= 0 || head_dim > DEC_HD_MAX ||
        n_split <= 0 || max_keys <= 0)
        return hass_seterr(HASS_EINVAL, "cuda decode attention: heads %d/%d, head_dim %d (at most "
                                        "%d), %d splits, %d keys",
                           n_head, n_kv_head, head_dim, DEC_HD_MAX, n_split, max_keys);
    int span = CEIL_DIV(max_keys, n_split);
    k_attn_decode<<<dim3(n_head, n_split), DEC_WARPS * 32, 0, hass_cuda_stream>>>(
        d_part, d_q, d_k_cache, d_v_cache, d_n_past, span, n_head, n_kv_head, head_dim,
        1.0f / sqrtf((float)head_dim));
    HASS_CUDA_LAUNCHED();
    k_attn_decode_combine<<<n_head, 128, 0, hass_cuda_stream>>>(d_out, d_part, n_head, head_dim,
                                                               n_split);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// Row r of the block: K and V parts of its qkv row to cache row *n_past_p + r.
__global__ void k_kv_store(float *k_cache, float *v_cache, const float *qkv,
                           const int32_t *n_past_p, int qkv_stride, int q_dim, int kv_dim) {
    int r = blockIdx.x;
    size_t dst = (size_t)(*n_past_p + r) * kv_dim;
    const float *src = qkv + (size_t)r * qkv_stride + q_dim;
    for (int c = threadIdx.x; c < kv_dim; c += blockDim.x) {
        k_cache[dst + c] = src[c];
        v_cache[dst + c] = src[kv_dim + c];
    }
}

// Host launcher: see hass_cpu_kv_store (n_past on the device).
extern "C" hass_err hass_cuda_kv_store(float *d_k_cache, float *d_v_cache, const float *d_qkv,
                                       const int32_t *d_n_past, int n, int qkv_stride, int q_dim,
                                       int kv_dim) {
    if (n <= 0) return HASS_OK;
    k_kv_store<<<n, 256, 0, hass_cuda_stream>>>(d_k_cache, d_v_cache, d_qkv, d_n_past, qkv_stride,
                                                q_dim, kv_dim);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}
