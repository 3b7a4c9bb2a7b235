// matmul.cu: y(n, out) = bf16(x)(n, in) W^T + beta*y with W bf16 (out, in), fp32 accumulate.
// CPU twin: hass_cpu_matmul. Two paths: cuBLAS GemmEx for any n, and a GEMV kernel for
// n <= 8 that streams each weight row once for all n tokens (decode and small trees).
//
// The cuBLAS layout trick: cuBLAS is column-major. A row-major (r, c) buffer is the column-major
// (c, r) matrix, its transpose. So W (out, in) row-major is W^T column-major (in x out), x is
// x^T (in x n), y is y^T (out x n), and y^T = W x^T is GEMM(op(A)=T on W, lda=in; op(B)=N on x,
// ldb=in; C=y, ldc=out; m=out, n=n, k=in).
#include "common.cuh"

#define GEMV_MAX_N 16
#define GEMV_WARPS 8 // output rows per block (one per warp)
#define GEMV_UNROLL 4

static int g_gemv_max_n = 4; // n up to which hass_cuda_matmul takes the GEMV path
static int g_invariant = 1;  // path 0 runs every n as GEMV chunks (batch-invariant rows)

// Batch-invariant mode on or off (on by default): path 0 of hass_cuda_matmul_bf16 then gives
// every row the GEMV kernel's arithmetic, whatever n, instead of cuBLAS for n above the GEMV
// limit; hass_cuda_llama_forward uses hass_cuda_attention_rows. Off: faster large blocks, but a
// row's bits depend on the block size.
extern "C" void hass_cuda_set_batch_invariant(int on) { g_invariant = on != 0; }

// Whether batch-invariant mode is on.
extern "C" int hass_cuda_batch_invariant(void) { return g_invariant; }

// Set the largest n for which hass_cuda_matmul uses the GEMV kernel (0 = cuBLAS always).
extern "C" void hass_cuda_matmul_set_gemv_max(int n) {
    g_gemv_max_n = n < 0 ? 0 : n > GEMV_MAX_N ? GEMV_MAX_N : n;
}

// Dot of 8 bf16 weights (packed in a uint4) with 8 bf16 activations, added to acc.
__device__ __forceinline__ float dot8(uint4 w, uint4 x, float acc) {
    const uint32_t ww[4] = {w.x, w.y, w.z, w.w}, xx[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        acc += __uint_as_float(ww[j] << 16) * __uint_as_float(xx[j] << 16);
        acc += __uint_as_float(ww[j] & 0xffff0000u) * __uint_as_float(xx[j] & 0xffff0000u);
    }
    return acc;
}

// One warp per output row: lanes read 8 consecutive weights (16 B) at a time, GEMV_UNROLL loads
// in flight, for all N tokens at once. Requires in % 8 == 0 and 16-byte aligned rows.
template <int N>
__global__ void k_gemv(float *y,            // (N, out)
                       const uint16_t *xb,  // (N, in) bf16
                       const uint16_t *w,   // (out, in) bf16
                       int in, int out, float beta) {
    int lane = threadIdx.x & 31;
    int o = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    if (o >= out) return;
    const uint4 *wr = (const uint4 *)(w + (size_t)o * in);
    int n8 = in / 8;
    float acc[N];
#pragma unroll
    for (int t = 0; t < N; t++) acc[t] = 0.f;
    for (int b = lane; b < n8; b += 32 * GEMV_UNROLL) {
        uint4 wv[GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            int c = b + u * 32;
            wv[u] = c < n8 ? __ldcs(wr + c) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < GEMV_UNROLL; u++) {
            int c = b + u * 32;
            if (c >= n8) break;
#pragma unroll
            for (int t = 0; t < N; t++)
                acc[t] = dot8(wv[u], __ldg((const uint4 *)(xb + (size_t)t * in) + c), acc[t]);
        }
    }
#pragma unroll
    for (int t = 0; t < N; t++) {
        float s = warp_sum(acc[t]);
        if (lane == 0) {
            float *yo = y + (size_t)t * out + o;
            *yo = beta == 0.f ? s : s + beta * *yo;
        }
    }
}

// Launch k_gemv<N> for a runtime n (1..16).
static hass_err gemv_launch(float *d_y, const uint16_t *d_xb, const uint16_t *d_w, int n, int in,
                            int out, float beta) {
    dim3 grid(CEIL_DIV(out, GEMV_WARPS)), block(32 * GEMV_WARPS);
    cudaStream_t s = hass_cuda_stream;
    switch (n) {
    case 1: k_gemv<1><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 2: k_gemv<2><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 3: k_gemv<3><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 4: k_gemv<4><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 5: k_gemv<5><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 6: k_gemv<6><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 7: k_gemv<7><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 8: k_gemv<8><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 9: k_gemv<9><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 10: k_gemv<10><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 11: k_gemv<11><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 12: k_gemv<12><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 13: k_gemv<13><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 14: k_gemv<14><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 15: k_gemv<15><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    case 16: k_gemv<16><<<grid, block, 0, s>>>(d_y, d_xb, d_w, in, out, beta); break;
    default: return hass_seterr(HASS_EINVAL, "cuda gemv: n %d outside 1..%d", n, GEMV_MAX_N);
    }
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}


// y = xb W^T + beta*y with xb already bf16; path: 0 auto (batch-invariant mode: GEMV chunks of
// up to 16 rows for any n), 1 cuBLAS, 2 GEMV (n <= 16, in % 8 == 0).
extern "C" hass_err hass_cuda_matmul_bf16(void *cublas, float *d_y, const uint16_t *d_xb,
                                          const uint16_t *d_w, int n, int in, int out, float beta,
                                          int path) {
    if (n <= 0 || out <= 0) return HASS_OK;
    bool shape_ok = in % 8 == 0 && ((uintptr_t)d_w & 15) == 0 && ((uintptr_t)d_xb & 15) == 0;
    bool gemv_ok = n <= GEMV_MAX_N && shape_ok;
    if (path == 2 && !gemv_ok)
        return hass_seterr(HASS_EINVAL, "cuda gemv: n %d, in %d: needs n <= %d, in %% 8 == 0", n,
                           in, GEMV_MAX_N);
    // GEMV: path 2, small blocks, and in batch-invariant mode any n (chunks of up to
    // GEMV_MAX_N rows; each row gets the same arithmetic whatever the chunk)
    if (path == 2 || (path == 0 && shape_ok && (g_invariant || n <= g_gemv_max_n))) {
        for (int r = 0; r < n; r += GEMV_MAX_N) {
            int c = n - r < GEMV_MAX_N ? n - r : GEMV_MAX_N;
            hass_err e = gemv_launch(d_y + (size_t)r * out, d_xb + (size_t)r * in, d_w, c, in,
                                     out, beta);
            if (e) return e;
        }
        return HASS_OK;
    }
    const float alpha = 1.0f;
    HASS_CUBLAS_CHECK(cublasGemmEx(hass_cublas_get(cublas), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in,
                                   &alpha, d_w, CUDA_R_16BF, in, d_xb, CUDA_R_16BF, in, &beta, d_y,
                                   CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return HASS_OK;
}

extern "C" hass_err hass_cuda_to_bf16(uint16_t *d_y, const float *d_x, size_t n);

// Host launcher: see hass_cpu_matmul. d_xb is scratch for the bf16 copy of x (n*in values).
extern "C" hass_err hass_cuda_matmul(void *cublas, float *d_y, const float *d_x,
                                     const uint16_t *d_w, uint16_t *d_xb, int n, int in, int out,
                                     float beta) {
    hass_err e = hass_cuda_to_bf16(d_xb, d_x, (size_t)n * in);
    if (e) return e;
    return hass_cuda_matmul_bf16(cublas, d_y, d_xb, d_w, n, in, out, beta, 0);
}
