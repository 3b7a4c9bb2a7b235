// decode.cu: batch-invariant attention. Each query runs the decode step's arithmetic over its
// own visible keys (committed rows, then the block entries its mask row allows, in order), with
// a split count fixed by the cache capacity (not by the position or the block size), merged by
// k_attn_rows_combine in split order. So the target's rows in a verified tree have the bits of
// the same tokens decoded one by one (speculative output == plain output on the GPU too). The
// one-token decode step reads its position from device memory, so a captured CUDA graph replays
// at any position; K/V stored at row *d_n_past. CPU twins: hass_cpu_kv_store and
// hass_cpu_attention.
#include "common.cuh"

#define DEC_WARPS 4   // warps per block, each a strided share of the split's keys
#define DEC_HD_MAX 128

// Ordinal j of query i's visible keys -> cache row: the committed rows [0, n_past) in order, then
// the block entries the query sees in block order (vis: their block indices; NULL = causal).
__device__ __forceinline__ int vis_row(int j, int n_past, const int *vis) {
    return j < n_past || !vis ? j : n_past + vis[j - n_past];
}

// Partial attention of head blockIdx.x, query i = i0 + blockIdx.z of the block over ordinals [s*span, (s+1)*span) of
// the query's visible keys: part[s][i][h] = (sum_j e^(x_j - M) v_j, M, sum_j e^(x_j - M)); an
// empty range gives sum 0. The arithmetic of one query depends only on its visible keys in order
// and on span (fixed by the cache capacity), never on the block size or the query's place in it:
// a token verified in a tree gets exactly the bits of the same token decoded alone.
// n_past comes from n_past_p (device; graph replay) when it is not NULL, else from n_past_v.
__global__ void __launch_bounds__(DEC_WARPS * 32)
    k_attn_rows(float *part,             // (n_split, nq, n_head, hd + 2)
                const float *q,          // (n, q_stride): the block's rows
                const float *k_cache,    // (>= n_past+n, kv_dim)
                const float *v_cache,    // (>= n_past+n, kv_dim)
                const uint8_t *mask,     // (n, n) or NULL (causal)
                const int32_t *n_past_p, // (1) or NULL
                int n_past_v, int i0, int n, int q_stride, int span, int n_head, int n_kv_head,
                int hd, float scale) {
    extern __shared__ int vis[]; // (n) block entries query i sees, in order (mask only)
    int h = blockIdx.x, s = blockIdx.y, il = blockIdx.z, i = i0 + il, nq = gridDim.z, warp = threadIdx.x >> 5,
        lane = threadIdx.x & 31;
    int n_past = n_past_p ? *n_past_p : n_past_v, n_vis = i + 1;
    if (mask) {
        if (threadIdx.x == 0) {
            int c = 0;
            for (int j = 0; j < n; j++)
                if (mask[(size_t)i * n + j]) vis[c++] = j;
            vis[n] = c;
        }
        __syncthreads();
        n_vis = vis[n];
    }
    int n_all = n_past + n_vis, kbeg = s * span;
    int kend = n_all < kbeg + span ? n_all : kbeg + span;
    int kvd = n_kv_head * hd, kh = h / (n_head / n_kv_head);
    const float *qr = q + (size_t)i * q_stride;
    const int *vl = mask ? vis : NULL;
    float qv[4], acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int k = 0; k < 4; k++) qv[k] = lane + 32 * k < hd ? qr[h * hd + lane + 32 * k] : 0.f;
    float m = -INFINITY, l = 0.f;
    for (int j = kbeg + warp; j < kend; j += DEC_WARPS) {
        size_t row = (size_t)vis_row(j, n_past, vl);
        const float *kr = k_cache + row * kvd + kh * hd;
        const float *vr = v_cache + row * kvd + kh * hd;
        float sc = 0.f;
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (lane + 32 * k < hd) sc += qv[k] * kr[lane + 32 * k];
        sc = warp_sum(sc) * scale;
        float mn = fmaxf(m, sc), a = expf(m - mn), p = expf(sc - mn);
        l = l * a + p;
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (lane + 32 * k < hd) acc[k] = acc[k] * a + p * vr[lane + 32 * k];
        m = mn;
    }
    __shared__ float sm_m[DEC_WARPS], sm_l[DEC_WARPS], sm_o[DEC_WARPS][DEC_HD_MAX];
    if (lane == 0) sm_m[warp] = m, sm_l[warp] = l;
#pragma unroll
    for (int k = 0; k < 4; k++)
        if (lane + 32 * k < hd) sm_o[warp][lane + 32 * k] = acc[k];
    __syncthreads();
    float M = -INFINITY, L = 0.f;
    for (int w = 0; w < DEC_WARPS; w++)
        if (sm_l[w] > 0.f) M = fmaxf(M, sm_m[w]);
    for (int w = 0; w < DEC_WARPS; w++)
        if (sm_l[w] > 0.f) L += expf(sm_m[w] - M) * sm_l[w];
    float *pp = part + (((size_t)s * nq + il) * n_head + h) * (hd + 2);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float o = 0.f;
        for (int w = 0; w < DEC_WARPS; w++)
            if (sm_l[w] > 0.f) o += expf(sm_m[w] - M) * sm_o[w][d];
        pp[d] = o;
    }
    if (threadIdx.x == 0) pp[hd] = M, pp[hd + 1] = L;
}

// Merge the splits of head blockIdx.x, query blockIdx.y of the launch in split order:
// out = sum_s w_s o_s / sum_s w_s l_s.
__global__ void k_attn_rows_combine(float *out,        // (nq, n_head*hd)
                                    const float *part, // (n_split, nq, n_head, hd + 2)
                                    int n, int n_head, int hd, int n_split) {
    int h = blockIdx.x, i = blockIdx.y;
    size_t step = (size_t)n * n_head * (hd + 2);
    const float *p0 = part + ((size_t)i * n_head + h) * (hd + 2);
    float M = -INFINITY, den = 0.f;
    for (int s = 0; s < n_split; s++)
        if (p0[s * step + hd + 1] > 0.f) M = fmaxf(M, p0[s * step + hd]);
    for (int s = 0; s < n_split; s++)
        if (p0[s * step + hd + 1] > 0.f) den += expf(p0[s * step + hd] - M) * p0[s * step + hd + 1];
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float num = 0.f;
        for (int s = 0; s < n_split; s++)
            if (p0[s * step + hd + 1] > 0.f) num += expf(p0[s * step + hd] - M) * p0[s * step + d];
        out[((size_t)i * n_head + h) * hd + d] = den > 0.f ? num / den : 0.f;
    }
}

// Check the shape of a rows/decode attention call.
static hass_err rows_check(int n, int n_head, int n_kv_head, int head_dim, int n_split,
                           int max_keys) {
    if (n <= 0 || n_kv_head <= 0 || n_head % n_kv_head || head_dim <= 0 ||
        head_dim > DEC_HD_MAX || n_split <= 0 || max_keys <= 0)
        return hass_seterr(HASS_EINVAL, "cuda rows attention: %d queries, heads %d/%d, head_dim "
                                        "%d (at most %d), %d splits, %d keys",
                           n, n_head, n_kv_head, head_dim, DEC_HD_MAX, n_split, max_keys);
    return HASS_OK;
}

enum { ROWS_QCHUNK = 64 }; // queries per launch: the split scratch holds this many

// Launch k_attn_rows + combine for the n queries of a block in chunks of ROWS_QCHUNK (n_past from
// the device when d_n_past != NULL).
static hass_err rows_launch(float *d_out, const float *d_q, const float *d_k_cache,
                            const float *d_v_cache, const uint8_t *d_mask,
                            const int32_t *d_n_past, int n_past, int n, int q_stride,
                            int max_keys, int n_head, int n_kv_head, int head_dim, float *d_part,
                            int n_split) {
    hass_err e = rows_check(n, n_head, n_kv_head, head_dim, n_split, max_keys);
    if (e) return e;
    int span = CEIL_DIV(max_keys, n_split);
    size_t smem = d_mask ? (size_t)(n + 1) * sizeof(int) : 0;
    if (smem > 48 * 1024)
        return hass_seterr(HASS_EINVAL, "cuda rows attention: a masked block of %d rows (at most "
                                        "%d)", n, 48 * 1024 / (int)sizeof(int) - 1);
    for (int i0 = 0; i0 < n; i0 += ROWS_QCHUNK) {
        int nq = n - i0 < ROWS_QCHUNK ? n - i0 : ROWS_QCHUNK;
        k_attn_rows<<<dim3(n_head, n_split, nq), DEC_WARPS * 32, smem, hass_cuda_stream>>>(
            d_part, d_q, d_k_cache, d_v_cache, d_mask, d_n_past, n_past, i0, n, q_stride, span,
            n_head, n_kv_head, head_dim, 1.0f / sqrtf((float)head_dim));
        HASS_CUDA_LAUNCHED();
        k_attn_rows_combine<<<dim3(n_head, nq), 128, 0, hass_cuda_stream>>>(
            d_out + (size_t)i0 * n_head * head_dim, d_part, nq, n_head, head_dim, n_split);
        HASS_CUDA_LAUNCHED();
    }
    return HASS_OK;
}

// Floats of split scratch hass_cuda_attention_rows needs for a block of n queries.
extern "C" size_t hass_cuda_attention_rows_part(int n_split, int n, int n_head, int head_dim) {
    return (size_t)n_split * (n < ROWS_QCHUNK ? n : ROWS_QCHUNK) * n_head * (head_dim + 2);
}

// Host launcher: one query over *d_n_past + 1 keys (< max_keys); see hass_cpu_attention with
// n = 1. d_part: n_split * n_head * (head_dim + 2) floats.
extern "C" hass_err hass_cuda_attention_decode(float *d_out, const float *d_q,
                                               const float *d_k_cache, const float *d_v_cache,
                                               const int32_t *d_n_past, int max_keys,
                                               int n_head, int n_kv_head, int head_dim,
                                               float *d_part, int n_split) {
    return rows_launch(d_out, d_q, d_k_cache, d_v_cache, NULL, d_n_past, 0, 1,
                       n_head * head_dim, max_keys, n_head, n_kv_head, head_dim, d_part, n_split);
}

// Host launcher: n queries (rows of d_q, stride q_stride) after n_past committed entries, block
// mask d_mask (n, n) or NULL (causal), each query with the decode step's arithmetic (splits of
// ceil(max_keys / n_split) ordinals of its visible keys): batch-invariant. See
// hass_cpu_attention. d_part: hass_cuda_attention_rows_part(n_split, n, n_head, head_dim) floats.
extern "C" hass_err hass_cuda_attention_rows(float *d_out, const float *d_q, const float *d_k_cache,
                                             const float *d_v_cache, const uint8_t *d_mask,
                                             int n_past, int n, int q_stride, int max_keys,
                                             int n_head, int n_kv_head, int head_dim,
                                             float *d_part, int n_split) {
    if (n_past < 0 || n_past + n > max_keys)
        return hass_seterr(HASS_ERANGE, "cuda rows attention: %d queries after %d, at most %d keys",
                           n, n_past, max_keys);
    return rows_launch(d_out, d_q, d_k_cache, d_v_cache, d_mask, NULL, n_past, n, q_stride,
                       max_keys, n_head, n_kv_head, head_dim, d_part, n_split);
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
