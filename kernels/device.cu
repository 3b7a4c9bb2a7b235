// device.cu: device discovery and the cuBLAS handle shared by the CUDA backend.
#include "common.cuh"

// Number of usable CUDA devices (0 when the driver or a device is missing).
extern "C" int hass_cuda_device_count_impl(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky error
        return 0;
    }
    return n;
}

// Create a cuBLAS handle on the current device (for the backend and the kernel tests).
extern "C" hass_err hass_cuda_cublas_create(void **handle) {
    cublasHandle_t h;
    HASS_CUBLAS_CHECK(cublasCreate(&h));
    *handle = h;
    return HASS_OK;
}

// Destroy a handle made by hass_cuda_cublas_create; NULL is a no-op.
extern "C" void hass_cuda_cublas_destroy(void *handle) {
    if (handle) cublasDestroy((cublasHandle_t)handle);
}

// Allocate n_bytes of device memory.
extern "C" hass_err hass_cuda_malloc(void **d, size_t n_bytes) {
    *d = NULL;
    cudaError_t e = cudaMalloc(d, n_bytes ? n_bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return hass_seterr(e == cudaErrorMemoryAllocation ? HASS_ENOMEM : HASS_ECUDA,
                           "cudaMalloc(%zu bytes): %s", n_bytes, cudaGetErrorString(e));
    }
    return HASS_OK;
}

// Free device memory; NULL is a no-op.
extern "C" void hass_cuda_free(void *d) {
    if (d) cudaFree(d);
}

// Copy host -> device.
extern "C" hass_err hass_cuda_h2d(void *d, const void *h, size_t n_bytes) {
    HASS_CUDA_CHECK(cudaMemcpy(d, h, n_bytes, cudaMemcpyHostToDevice));
    return HASS_OK;
}

// Copy device -> host (synchronous).
extern "C" hass_err hass_cuda_d2h(void *h, const void *d, size_t n_bytes) {
    HASS_CUDA_CHECK(cudaMemcpy(h, d, n_bytes, cudaMemcpyDeviceToHost));
    return HASS_OK;
}

// Wait for all work on the device.
extern "C" hass_err hass_cuda_sync(void) {
    HASS_CUDA_CHECK(cudaDeviceSynchronize());
    return HASS_OK;
}
