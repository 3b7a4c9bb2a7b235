// elementwise.cu: embedding gather, RoPE, SwiGLU, residual add, f32 -> bf16 and a random bf16
// fill. CPU twins (the specification) in libcore/engine/ops_cpu.c.
#include "common.cuh"

// y[r] = float(table[tok[r]]), zero row for an out-of-range id; grid-stride over n_tok*dim.
__global__ void k_embed(float *y,              // (n_tok, dim)
                        const uint16_t *table, // (n_vocab, dim) bf16
                        const int32_t *tok,    // (n_tok)
                        int n_tok, int n_vocab, int dim) {
    size_t n = (size_t)n_tok * dim;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int r = (int)(i / dim), c = (int)(i % dim), t = tok[r];
        y[i] = t < 0 || t >= n_vocab ? 0.f : bf16_to_f32(table[(size_t)t * dim + c]);
    }
}

// Host launcher: see hass_cpu_embed.
extern "C" hass_err hass_cuda_embed(float *d_y, const uint16_t *d_table, const int32_t *d_tok,
                                    int n_tok, int n_vocab, int dim) {
    size_t n = (size_t)n_tok * dim;
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 4096 ? CEIL_DIV(n, 256) : 4096);
    k_embed<<<blocks, 256, 0, hass_cuda_stream>>>(d_y, d_table, d_tok, n_tok, n_vocab, dim);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// One thread per (row, head, pair): rotate the pair by pos * theta^(-2i/head_dim) (double).
__global__ void k_rope(float *x,           // (n_tok, row_stride)
                       const int32_t *pos, // (n_tok)
                       int n_tok, int row_stride, int n_head, int head_dim, float theta,
                       int layout) {
    int half = head_dim / 2;
    size_t n = (size_t)n_tok * n_head * half;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(t % half);
        int h = (int)(t / half % n_head);
        int r = (int)(t / ((size_t)half * n_head));
        double a = (double)pos[r] * pow((double)theta, -2.0 * i / head_dim);
        double sd, cd;
        sincos(a, &sd, &cd);
        float c = (float)cd, s = (float)sd;
        float *xh = x + (size_t)r * row_stride + (size_t)h * head_dim;
        int i0 = layout == 1 ? i : 2 * i;
        int i1 = layout == 1 ? i + half : 2 * i + 1;
        float x0 = xh[i0], x1 = xh[i1];
        xh[i0] = x0 * c - x1 * s;
        xh[i1] = x0 * s + x1 * c;
    }
}

// Host launcher: see hass_cpu_rope.
extern "C" hass_err hass_cuda_rope(float *d_x, const int32_t *d_pos, int n_tok, int row_stride,
                                   int n_head, int head_dim, float theta, int layout) {
    size_t n = (size_t)n_tok * n_head * (head_dim / 2);
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 4096 ? CEIL_DIV(n, 256) : 4096);
    k_rope<<<blocks, 256, 0, hass_cuda_stream>>>(d_x, d_pos, n_tok, row_stride, n_head, head_dim,
                                                 theta, layout);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// y = silu(gate) * up over rows of gate|up, in float (y) and/or bf16 (yb).
__global__ void k_swiglu(float *y,        // (n_tok, n_ff) or NULL
                         uint16_t *yb,    // (n_tok, n_ff) bf16 or NULL
                         const float *gu, // (n_tok, 2*n_ff)
                         int n_tok, int n_ff) {
    size_t n = (size_t)n_tok * n_ff;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / n_ff, c = i % n_ff;
        float g = gu[r * 2 * n_ff + c], u = gu[r * 2 * n_ff + n_ff + c];
        float v = g / (1.0f + expf(-g)) * u;
        if (y) y[i] = v;
        if (yb) yb[i] = f32_to_bf16(v);
    }
}

// Host launcher: see hass_cpu_swiglu.
extern "C" hass_err hass_cuda_swiglu(float *d_y, const float *d_gu, int n_tok, int n_ff) {
    size_t n = (size_t)n_tok * n_ff;
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 4096 ? CEIL_DIV(n, 256) : 4096);
    k_swiglu<<<blocks, 256, 0, hass_cuda_stream>>>(d_y, NULL, d_gu, n_tok, n_ff);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// SwiGLU with the output in bf16 only (the down projection's input).
extern "C" hass_err hass_cuda_swiglu_bf16(uint16_t *d_yb, const float *d_gu, int n_tok, int n_ff) {
    size_t n = (size_t)n_tok * n_ff;
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 4096 ? CEIL_DIV(n, 256) : 4096);
    k_swiglu<<<blocks, 256, 0, hass_cuda_stream>>>(NULL, d_yb, d_gu, n_tok, n_ff);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// y += x.
__global__ void k_add(float *y, const float *x, size_t n) { // y, x: (n)
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

// Host launcher: see hass_cpu_add.
extern "C" hass_err hass_cuda_add(float *d_y, const float *d_x, size_t n) {
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 4096 ? CEIL_DIV(n, 256) : 4096);
    k_add<<<blocks, 256, 0, hass_cuda_stream>>>(d_y, d_x, n);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// y = bf16(x), round to nearest even.
__global__ void k_to_bf16(uint16_t *y, const float *x, size_t n) { // y, x: (n)
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = f32_to_bf16(x[i]);
}

// Host launcher: float -> bf16 on the device.
extern "C" hass_err hass_cuda_to_bf16(uint16_t *d_y, const float *d_x, size_t n) {
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 4096 ? CEIL_DIV(n, 256) : 4096);
    k_to_bf16<<<blocks, 256, 0, hass_cuda_stream>>>(d_y, d_x, n);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// Hash of (seed, i) to a uniform float in [-1, 1) (PCG-style mix; same values on every run).
__device__ __forceinline__ float hash_uniform(uint32_t seed, size_t i) {
    uint64_t z = ((uint64_t)seed << 32) ^ (uint64_t)i;
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) / (float)(1u << 23) - 1.0f;
}

// w[i] = bf16(offset + scale * uniform(-1, 1)).
__global__ void k_fill_bf16(uint16_t *w, size_t n, uint32_t seed, float scale, float offset) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        w[i] = f32_to_bf16(offset + scale * hash_uniform(seed, i));
}

// Host launcher: fill n bf16 values with deterministic noise (synthetic weights, no host copy).
extern "C" hass_err hass_cuda_fill_bf16(uint16_t *d_w, size_t n, uint32_t seed, float scale,
                                        float offset) {
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 8192 ? CEIL_DIV(n, 256) : 8192);
    k_fill_bf16<<<blocks, 256, 0, hass_cuda_stream>>>(d_w, n, seed, scale, offset);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}

// w[i] = offset + scale * uniform(-1, 1) in float.
__global__ void k_fill_f32(float *w, size_t n, uint32_t seed, float scale, float offset) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        w[i] = offset + scale * hash_uniform(seed, i);
}

// Host launcher: fill n floats with deterministic noise.
extern "C" hass_err hass_cuda_fill_f32(float *d_w, size_t n, uint32_t seed, float scale,
                                       float offset) {
    if (n == 0) return HASS_OK;
    int blocks = (int)(CEIL_DIV(n, 256) < 8192 ? CEIL_DIV(n, 256) : 8192);
    k_fill_f32<<<blocks, 256, 0, hass_cuda_stream>>>(d_w, n, seed, scale, offset);
    HASS_CUDA_LAUNCHED();
    return HASS_OK;
}
