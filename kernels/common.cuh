// common.cuh: error checks and small helpers shared by the CUDA kernels. Nothing here exits:
// a failed call becomes HASS_ECUDA with the CUDA message, returned to the caller.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "hass.h"
}

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

// Return HASS_ECUDA with file:line and the CUDA error string when a runtime call fails.
#define HASS_CUDA_CHECK(call)                                                                  \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess)                                                                 \
            return hass_seterr(HASS_ECUDA, "%s:%d: %s: %s", __FILE__, __LINE__, #call,         \
                               cudaGetErrorString(e_));                                        \
    } while (0)

// Same for cuBLAS status codes.
#define HASS_CUBLAS_CHECK(call)                                                                \
    do {                                                                                       \
        cublasStatus_t s_ = (call);                                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                       \
            return hass_seterr(HASS_ECUDA, "%s:%d: %s: cublas status %d", __FILE__, __LINE__,  \
                               #call, (int)s_);                                                \
    } while (0)

// Sum over a warp (all 32 lanes active).
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The stream every launcher and cuBLAS call uses (0 = legacy default stream); set with
// hass_cuda_set_stream so the decode step can be captured as a CUDA graph.
extern cudaStream_t hass_cuda_stream;

// The raw cuBLAS handle of a handle from hass_cuda_cublas_create, bound to hass_cuda_stream.
cublasHandle_t hass_cublas_get(void *handle);

// Max over a warp (all 32 lanes active).
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float part[32];
    __syncthreads(); // part may still be read by a previous call
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    float r = 0.f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) r += part[w];
    return r;
}

// Max over the block (blockDim.x a multiple of 32); every thread gets the result.
__device__ __forceinline__ float block_max(float v) {
    __shared__ float part[32];
    __syncthreads();
    v = warp_max(v);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    float r = -INFINITY;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) r = fmaxf(r, part[w]);
    return r;
}

// bf16 bits -> float (same as hass_bf16_to_f32).
__device__ __forceinline__ float bf16_to_f32(uint16_t h) {
    return __uint_as_float((uint32_t)h << 16);
}

// float -> bf16 bits, round to nearest even (same as hass_f32_to_bf16).
__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// Check the launch just made (the kernel's own failures show up at the next sync).
#define HASS_CUDA_LAUNCHED() HASS_CUDA_CHECK(cudaGetLastError())
