// common.cuh: error checks and small helpers shared by the CUDA kernels. Nothing here exits:
// a failed call becomes HASS_ECUDA with the CUDA message, returned to the caller.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

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
