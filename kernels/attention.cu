// attention.cu: attention of a block of n queries over the committed KV plus the block itself,
// with an (n, n) block mask (tree attention) and GQA. CPU twin: hass_cpu_attention.
//
// One thread block per (head, chunk of up to ATTN_QB = 16 queries), so each K/V row is read once
// per chunk rather than once per query (a 60-token tree reads the cache 4 times, not 60). The
// scores of the chunk's queries over its keys live in shared memory. Scores: for 3+ queries the
// keys go through shared memory in tiles of 64 (coalesced loads, padded rows), each thread
// takes one key and 4 query rows (q broadcast from shared memory); for 1-2 queries
// a warp per key, lanes splitting head_dim, 4 keys in flight per warp. Softmax: one warp per
// query row. P.V: each warp sums over its keys (lanes over head_dim) and the warps' partial sums
// are added in warp order.
// Split-K (flash decoding): when (heads x chunks) blocks would leave SMs idle, or one split's
// scores would not fit in shared memory, the keys are cut into n_split ranges; each block writes
// an unnormalised partial (max, sum, P.V) to a scratch buffer and k_attn_combine merges the
// splits in order. head_dim: a multiple of 4, at most 128.
#include "common.cuh"

#define ATTN_QB 16   // queries per block
#define ATTN_WARPS 8 // warps per block
#define ATTN_KU 4    // keys per warp step
#define ATTN_HD4 1   // float4 per lane: head_dim <= 128
#define ATTN_KT 64   // keys per shared-memory K tile (3+ queries)
#define ATTN_GROUPS (ATTN_WARPS * 32 / ATTN_KT) // row groups over a tile: 4
#define ATTN_RPT (ATTN_QB / ATTN_GROUPS)         // query rows per thread: 4

// out[i, h] = softmax(q[i, h] . K / sqrt(d) over visible keys) V.
__global__ void __launch_bounds__(ATTN_WARPS * 32)
    k_attention(float *out,           // (n, n_head*head_dim)
                const float *q,       // (n, q_stride)
                const float *k_cache, // (n_past+n, kv_dim)
                const float *v_cache, // (n_past+n, kv_dim)
                const uint8_t *mask,  // (n, n) or NULL
                float *part,          // (n_split, n, n_head, hd + 2) or NULL when n_split == 1
                int n_past, int n, int q_stride, int n_head, int n_kv_head, int hd, float scale,
                int n_split) {
    extern __shared__ float4 smem4[];
    float *smem = (float *)smem4;
    int n_all = n_past + n, hd4 = hd / 4;
    int span = CEIL_DIV(n_all, n_split), kbeg = blockIdx.y * span;
    int n_kv = n_all - kbeg < span ? n_all - kbeg : span; // keys of this split: [kbeg, kbeg+n_kv)
    if (n_kv < 0) n_kv = 0;
    int h = blockIdx.x % n_head, i0 = (int)(blockIdx.x / n_head) * ATTN_QB;
    int nq = n - i0 < ATTN_QB ? n - i0 : ATTN_QB;
    int kh = h / (n_head / n_kv_head), kv_dim = n_kv_head * hd;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float *qs = smem;                         // (ATTN_QB, hd)
    float *red = qs + ATTN_QB * hd;           // (ATTN_QB, hd)
    float *inv = red + ATTN_QB * hd;          // (ATTN_QB)
    float *rmax = inv + ATTN_QB;              // (ATTN_QB)
    float *rsum = rmax + ATTN_QB;             // (ATTN_QB)
    float *ktile = rsum + ATTN_QB;            // (ATTN_KT, hd + 4): K tile, rows padded
    float *sc = ktile + ATTN_KT * (hd + 4);   // (nq_max, span)
    for (int x = threadIdx.x; x < ATTN_QB * hd; x += blockDim.x) {
        int r = x / hd, e = x % hd;
        qs[x] = r < nq ? q[(size_t)(i0 + r) * q_stride + (size_t)h * hd + e] : 0.f;
    }
    __syncthreads();
    const float *kb = k_cache + (size_t)kbeg * kv_dim + (size_t)kh * hd;
    const float *vb = v_cache + (size_t)kbeg * kv_dim + (size_t)kh * hd;
    const float4 z4 = make_float4(0.f, 0.f, 0.f, 0.f);
    if (nq > 2) { // several queries: K tiles staged in shared memory, one key per thread
        float4 *kt4 = (float4 *)ktile;
        const float4 *qs4 = (const float4 *)qs;
        int kk = threadIdx.x % ATTN_KT, g = threadIdx.x / ATTN_KT; // key in tile, row group
        for (int tb = 0; tb < n_kv; tb += ATTN_KT) {
            int nk = n_kv - tb < ATTN_KT ? n_kv - tb : ATTN_KT;
#pragma unroll 8
            for (int x = threadIdx.x; x < nk * hd4; x += blockDim.x) { // coalesced rows
                int key = x / hd4, c4 = x % hd4;
                kt4[key * (hd4 + 1) + c4] = *(const float4 *)(kb + (size_t)(tb + key) * kv_dim + 4 * c4);
            }
            __syncthreads();
            if (kk < nk) {
                float acc[ATTN_RPT];
#pragma unroll
                for (int q = 0; q < ATTN_RPT; q++) acc[q] = 0.f;
                for (int c4 = 0; c4 < hd4; c4++) {
                    float4 kv = kt4[kk * (hd4 + 1) + c4];
#pragma unroll
                    for (int q = 0; q < ATTN_RPT; q++) {
                        float4 qv = qs4[(g + q * ATTN_GROUPS) * hd4 + c4];
                        acc[q] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                    }
                }
                int t = tb + kk, j = kbeg + t - n_past;
#pragma unroll
                for (int q = 0; q < ATTN_RPT; q++) {
                    int r = g + q * ATTN_GROUPS;
                    if (r >= nq) break;
                    bool vis = j < 0 || (mask ? mask[(size_t)(i0 + r) * n + j] != 0 : j <= i0 + r);
                    sc[(size_t)r * n_kv + t] = vis ? acc[q] * scale : -INFINITY;
                }
            }
            __syncthreads();
        }
    } else { // one or two queries: a warp per key, lanes split head_dim (coalesced rows)
        for (int t0 = warp * ATTN_KU; t0 < n_kv; t0 += ATTN_WARPS * ATTN_KU) {
            float4 kr[ATTN_KU][ATTN_HD4];
#pragma unroll
            for (int u = 0; u < ATTN_KU; u++)
#pragma unroll
                for (int p = 0; p < ATTN_HD4; p++) {
                    int t = t0 + u, e4 = lane + 32 * p;
                    kr[u][p] = t < n_kv && e4 < hd4
                                   ? *(const float4 *)(kb + (size_t)t * kv_dim + 4 * e4)
                                   : z4;
                }
#pragma unroll
            for (int u = 0; u < ATTN_KU; u++) {
                int t = t0 + u, j = kbeg + t - n_past;
                if (t >= n_kv) break;
#pragma unroll
                for (int r = 0; r < ATTN_QB; r++) {
                    if (r >= nq) break;
                    float d = 0.f;
#pragma unroll
                    for (int p = 0; p < ATTN_HD4; p++) {
                        int e4 = lane + 32 * p;
                        if (e4 < hd4) {
                            float4 qv = *(const float4 *)(qs + r * hd + 4 * e4);
                            d += qv.x * kr[u][p].x + qv.y * kr[u][p].y + qv.z * kr[u][p].z +
                                 qv.w * kr[u][p].w;
                        }
                    }
                    d = warp_sum(d);
                    bool vis = j < 0 || (mask ? mask[(size_t)(i0 + r) * n + j] != 0 : j <= i0 + r);
                    if (lane == 0) sc[(size_t)r * n_kv + t] = vis ? d * scale : -INFINITY;
                }
            }
        }
    }
    __syncthreads();
    for (int r = warp; r < nq; r += ATTN_WARPS) { // softmax of row r: p stored in place
        float *row = sc + (size_t)r * n_kv;
        float m = -INFINITY;
        for (int t = lane; t < n_kv; t += 32) m = fmaxf(m, row[t]);
        m = warp_max(m);
        float s = 0.f;
        for (int t = lane; t < n_kv; t += 32) {
            float p = m == -INFINITY || row[t] == -INFINITY ? 0.f : expf(row[t] - m);
            row[t] = p;
            s += p;
        }
        s = warp_sum(s);
        if (lane == 0) inv[r] = s > 0.f ? 1.0f / s : 0.f, rmax[r] = m, rsum[r] = s;
    }
    __syncthreads();
    float4 acc[ATTN_QB][ATTN_HD4];
#pragma unroll
    for (int r = 0; r < ATTN_QB; r++)
#pragma unroll
        for (int p = 0; p < ATTN_HD4; p++) acc[r][p] = z4;
    for (int t0 = warp * ATTN_KU; t0 < n_kv; t0 += ATTN_WARPS * ATTN_KU) {
        float4 vr[ATTN_KU][ATTN_HD4];
#pragma unroll
        for (int u = 0; u < ATTN_KU; u++)
#pragma unroll
            for (int p = 0; p < ATTN_HD4; p++) {
                int t = t0 + u, e4 = lane + 32 * p;
                vr[u][p] = t < n_kv && e4 < hd4
                               ? *(const float4 *)(vb + (size_t)t * kv_dim + 4 * e4)
                               : z4;
            }
#pragma unroll
        for (int u = 0; u < ATTN_KU; u++) {
            int t = t0 + u;
            if (t >= n_kv) break;
#pragma unroll
            for (int r = 0; r < ATTN_QB; r++) {
                if (r >= nq) break;
                float p = sc[(size_t)r * n_kv + t];
#pragma unroll
                for (int pp = 0; pp < ATTN_HD4; pp++) {
                    acc[r][pp].x += p * vr[u][pp].x;
                    acc[r][pp].y += p * vr[u][pp].y;
                    acc[r][pp].z += p * vr[u][pp].z;
                    acc[r][pp].w += p * vr[u][pp].w;
                }
            }
        }
    }
    for (int w = 0; w < ATTN_WARPS; w++) { // add the warps' partial sums in warp order
        if (warp == w) {
#pragma unroll
            for (int r = 0; r < ATTN_QB; r++) {
                if (r >= nq) break;
#pragma unroll
                for (int p = 0; p < ATTN_HD4; p++) {
                    int e4 = lane + 32 * p;
                    if (e4 >= hd4) continue;
                    float4 *dst = (float4 *)(red + r * hd + 4 * e4);
                    if (w == 0) {
                        *dst = acc[r][p];
                    } else {
                        float4 o = *dst;
                        o.x += acc[r][p].x, o.y += acc[r][p].y, o.z += acc[r][p].z, o.w += acc[r][p].w;
                        *dst = o;
                    }
                }
            }
        }
        __syncthreads();
    }
    if (n_split == 1) {
        for (int x = threadIdx.x; x < nq * hd; x += blockDim.x) {
            int r = x / hd, e = x % hd;
            out[(size_t)(i0 + r) * n_head * hd + (size_t)h * hd + e] = red[x] * inv[r];
        }
        return;
    }
    for (int x = threadIdx.x; x < nq * (hd + 2); x += blockDim.x) {
        int r = x / (hd + 2), e = x % (hd + 2);
        float *pr = part + (((size_t)blockIdx.y * n + i0 + r) * n_head + h) * (hd + 2);
        pr[e] = e < hd ? red[r * hd + e] : e == hd ? rmax[r] : rsum[r];
    }
}

// Merge the splits of one (query, head) in split order: out = sum_s w_s o_s / sum_s w_s l_s,
// w_s = exp(m_s - max_s m_s).
__global__ void k_attn_combine(float *out,        // (n, n_head*hd)
                               const float *part, // (n_split, n, n_head, hd + 2)
                               int n, int n_head, int hd, int n_split) {
    int i = blockIdx.x / n_head, h = blockIdx.x % n_head;
    size_t step = (size_t)n * n_head * (hd + 2);
    const float *p0 = part + ((size_t)i * n_head + h) * (hd + 2);
    float m = -INFINITY;
    for (int s = 0; s < n_split; s++) m = fmaxf(m, p0[s * step + hd]);
    for (int e = threadIdx.x; e < hd; e += blockDim.x) {
        float num = 0.f, den = 0.f;
        if (m != -INFINITY)
            for (int s = 0; s < n_split; s++) {
                const float *ps = p0 + s * step;
                if (ps[hd] == -INFINITY) continue;
                float w = expf(ps[hd] - m);
                num += w * ps[e];
                den += w * ps[hd + 1];
            }
        out[(size_t)i * n_head * hd + (size_t)h * hd + e] = den > 0.f ? num / den : 0.f;
    }
}

static float *g_part = NULL;  // split-K scratch (device), grown on demand outside graph capture
static size_t g_part_n = 0;   // floats in g_part

// Host launcher: see hass_cpu_attention (device pointers; mask may be NULL). Needs head_dim a
// multiple of 4 up to 256, 16-byte aligned q/K/V and strides that are multiples of 4 floats.
extern "C" hass_err hass_cuda_attention(float *d_out, const float *d_q, const float *d_k_cache,
                                        const float *d_v_cache, const uint8_t *d_mask, int n_past,
                                        int n, int q_stride, int n_head, int n_kv_head,
                                        int head_dim) {
    if (n <= 0) return HASS_OK;
    if (n_kv_head <= 0 || n_head % n_kv_head)
        return hass_seterr(HASS_EINVAL, "cuda attention: %d heads not a multiple of %d KV heads",
                           n_head, n_kv_head);
    if (head_dim % 4 || head_dim > 4 * 32 * ATTN_HD4 || q_stride % 4 ||
        ((uintptr_t)d_q | (uintptr_t)d_k_cache | (uintptr_t)d_v_cache) & 15)
        return hass_seterr(HASS_EINVAL, "cuda attention: head_dim %d (needs a multiple of 4 up to "
                                        "%d) or q stride %d / pointers not 16-byte aligned",
                           head_dim, 4 * 32 * ATTN_HD4, q_stride);
    static int max_smem = 0;
    if (!max_smem) { // allow the opt-in shared memory (once, before any graph capture)
        int dev = 0;
        HASS_CUDA_CHECK(cudaGetDevice(&dev));
        HASS_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
        HASS_CUDA_CHECK(cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             max_smem));
    }
    static int n_sm = 0;
    if (!n_sm) {
        int dev = 0;
        HASS_CUDA_CHECK(cudaGetDevice(&dev));
        HASS_CUDA_CHECK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
    }
    int rows = n < ATTN_QB ? n : ATTN_QB, n_all = n_past + n;
    int blocks = n_head * CEIL_DIV(n, ATTN_QB);
    // about one wave of resident blocks (2 per SM), each split at least 64 keys
    int n_split = 2 * n_sm / blocks;
    if (n_split > CEIL_DIV(n_all, 64)) n_split = CEIL_DIV(n_all, 64);
    if (n_split < 1) n_split = 1;
    for (;;) { // more splits when one split's scores do not fit in shared memory
        size_t smem = ((size_t)2 * ATTN_QB * head_dim + 3 * ATTN_QB +
                       (size_t)ATTN_KT * (head_dim + 4) +
                       (size_t)rows * CEIL_DIV(n_all, n_split)) * sizeof(float);
        if (smem <= (size_t)max_smem) break;
        n_split *= 2;
    }
    size_t smem = ((size_t)2 * ATTN_QB * head_dim + 3 * ATTN_QB + (size_t)ATTN_KT * (head_dim + 4) +
                   (size_t)rows * CEIL_DIV(n_all, n_split)) *
                  sizeof(float);
    if (n_split > 1) {
        size_t need = (size_t)n_split * n * n_head * (head_dim + 2);
        if (need > g_part_n) {
            cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
            HASS_CUDA_CHECK(cudaStreamIsCapturing(hass_cuda_stream, &cs));
            if (cs != cudaStreamCaptureStatusNone)
                return hass_seterr(HASS_EINVAL, "cuda attention: split-K scratch must grow during "
                                                "graph capture; run this shape once before");
            HASS_CUDA_CHECK(cudaStreamSynchronize(hass_cuda_stream));
            if (g_part) cudaFree(g_part);
            g_part = NULL, g_part_n = 0;
            HASS_CUDA_CHECK(cudaMalloc(&g_part, need * sizeof(float)));
            g_part_n = need;
        }
    }
    dim3 grid(blocks, n_split);
    k_attention<<<grid, ATTN_WARPS * 32, smem, hass_cuda_stream>>>(
        d_out, d_q, d_k_cache, d_v_cache, d_mask, g_part, n_past, n, q_stride, n_head, n_kv_head,
        head_dim, 1.0f / sqrtf((float)head_dim), n_split);
    HASS_CUDA_LAUNCHED();
    if (n_split > 1) {
        k_attn_combine<<<n * n_head, head_dim < 128 ? 128 : 256, 0, hass_cuda_stream>>>(
            d_out, g_part, n, n_head, head_dim, n_split);
        HASS_CUDA_LAUNCHED();
    }
    return HASS_OK;
}
