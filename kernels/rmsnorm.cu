// rmsnorm.cu: RMSNorm over rows; CPU twin hass_cpu_rmsnorm in libcore/engine/ops_cpu.c.
#include "common.cuh"

// One block per row: y = x / sqrt(mean(x^2) + eps) * w, in float (y) and/or bf16 (yb).
__global__ void k_rmsnorm(float *y,       // (n_rows, dim) or NULL
                          uint16_t *yb,   // (n_rows, dim) bf16 or NULL
                          const float *x, // (n_rows, dim)
                          const float *w, // (dim)
                          int dim, float eps) {
    const float *xr = x + (size_t)blockIdx.x * dim;
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i] * xr[i];
    __shared__ float part[32];
    s = warp_sum(s);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.f;
        v = warp_sum(v);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    float scale = rsqrtf(part[0] / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = xr[i] * scale * w[i];
        if (y) y[(size_t)blockIdx.x * dim + i] = v;
        if (yb) yb[(size_t)blockIdx.x * dim + i] = f32_to_bf16(v);
    }
}

// Host launcher: same parameters as hass_cpu_rmsnorm, device pointers.
extern "C" hass_err hass_cuda_rmsnorm(float *d_y,       // (n_rows, dim)
                                      const float *d_x, // (n_rows, dim)
                                      const float *d_w, // (dim)
                                      int n_rows, int dim, float eps) {
    if (n_rows <= 0) return HASS_OK;
    int threads = dim >= 1024 ? 1024 : (dim + 31) / 32 * 32;
    k_rmsnorm<<<n_rows, threads, 0, hass_cuda_stream>>>(d_y, NULL, d_x, d_w, dim, eps);
    HASS_CUDA_CHECK(cudaGetLastError());
    return HASS_OK;
}

// RMSNorm with a bf16 copy of the output (the next matmul's input): d_y may be NULL.
extern "C" hass_err hass_cuda_rmsnorm_bf16(float *d_y, uint16_t *d_yb, const float *d_x,
                                           const float *d_w, int n_rows, int dim, float eps) {
    if (n_rows <= 0) return HASS_OK;
    int threads = dim >= 1024 ? 1024 : (dim + 31) / 32 * 32;
    k_rmsnorm<<<n_rows, threads, 0, hass_cuda_stream>>>(d_y, d_yb, d_x, d_w, dim, eps);
    HASS_CUDA_CHECK(cudaGetLastError());
    return HASS_OK;
}
