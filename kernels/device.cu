// device.cu: device discovery and the cuBLAS handle shared by the CUDA backend.
#include "common.cuh"

cudaStream_t hass_cuda_stream = 0;

// Make launchers and cuBLAS use this stream (NULL = legacy default stream).
extern "C" void hass_cuda_set_stream(void *stream) {
    hass_cuda_stream = (cudaStream_t)stream;
}

// The stream set by hass_cuda_set_stream.
extern "C" void *hass_cuda_get_stream(void) {
    return (void *)hass_cuda_stream;
}

// Number of usable CUDA devices (0 when the driver or a device is missing).
extern "C" int hass_cuda_device_count_impl(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky error
        return 0;
    }
    return n;
}

// A cuBLAS handle with its own fixed workspace, so calls can be captured in a CUDA graph.
struct hass_cublas {
    cublasHandle_t h;
    void *workspace; // device, HASS_CUBLAS_WORKSPACE bytes
};
#define HASS_CUBLAS_WORKSPACE ((size_t)32 << 20)

// Create a cuBLAS handle on the current device (for the backend and the kernel tests).
extern "C" hass_err hass_cuda_cublas_create(void **handle) {
    *handle = NULL;
    hass_cublas *c = (hass_cublas *)calloc(1, sizeof *c);
    if (!c) return hass_seterr(HASS_ENOMEM, "cublas handle: out of memory");
    cublasStatus_t s = cublasCreate(&c->h);
    if (s != CUBLAS_STATUS_SUCCESS) {
        free(c);
        return hass_seterr(HASS_ECUDA, "cublasCreate: status %d", (int)s);
    }
    cudaError_t e = cudaMalloc(&c->workspace, HASS_CUBLAS_WORKSPACE);
    if (e != cudaSuccess) {
        cudaGetLastError();
        cublasDestroy(c->h);
        free(c);
        return hass_seterr(HASS_ENOMEM, "cublas workspace: %s", cudaGetErrorString(e));
    }
    cublasSetWorkspace(c->h, c->workspace, HASS_CUBLAS_WORKSPACE);
    *handle = c;
    return HASS_OK;
}

// The raw cuBLAS handle inside a handle from hass_cuda_cublas_create, bound to hass_cuda_stream.
cublasHandle_t hass_cublas_get(void *handle) {
    hass_cublas *c = (hass_cublas *)handle;
    cublasSetStream(c->h, hass_cuda_stream);
    return c->h;
}

// Destroy a handle made by hass_cuda_cublas_create; NULL is a no-op.
extern "C" void hass_cuda_cublas_destroy(void *handle) {
    hass_cublas *c = (hass_cublas *)handle;
    if (!c) return;
    cublasDestroy(c->h);
    cudaFree(c->workspace);
    free(c);
}

// Free and total device memory in bytes.
extern "C" hass_err hass_cuda_mem_info(size_t *free_bytes, size_t *total_bytes) {
    HASS_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
    return HASS_OK;
}

// Name and memory of device 0 into buf ("NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90").
extern "C" hass_err hass_cuda_device_name(char *buf, size_t n) {
    cudaDeviceProp p;
    HASS_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    snprintf(buf, n, "%s, %.1f GiB, sm_%d%d", p.name, (double)p.totalGlobalMem / (1 << 30), p.major,
             p.minor);
    return HASS_OK;
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

// Copy host -> device on hass_cuda_stream; returns when the copy is done.
extern "C" hass_err hass_cuda_h2d(void *d, const void *h, size_t n_bytes) {
    HASS_CUDA_CHECK(cudaMemcpyAsync(d, h, n_bytes, cudaMemcpyHostToDevice, hass_cuda_stream));
    HASS_CUDA_CHECK(cudaStreamSynchronize(hass_cuda_stream));
    return HASS_OK;
}

// Copy host (pageable) -> device on hass_cuda_stream; returns once h is staged, not waiting for
// the queued work (see gpu.h).
extern "C" hass_err hass_cuda_h2d_staged(void *d, const void *h, size_t n_bytes) {
    HASS_CUDA_CHECK(cudaMemcpyAsync(d, h, n_bytes, cudaMemcpyHostToDevice, hass_cuda_stream));
    return HASS_OK;
}

// Copy device -> host on hass_cuda_stream (after the work queued there); synchronous.
extern "C" hass_err hass_cuda_d2h(void *h, const void *d, size_t n_bytes) {
    HASS_CUDA_CHECK(cudaMemcpyAsync(h, d, n_bytes, cudaMemcpyDeviceToHost, hass_cuda_stream));
    HASS_CUDA_CHECK(cudaStreamSynchronize(hass_cuda_stream));
    return HASS_OK;
}

// Wait for all work on the device.
extern "C" hass_err hass_cuda_sync(void) {
    HASS_CUDA_CHECK(cudaDeviceSynchronize());
    return HASS_OK;
}

// Create a non-blocking stream into *stream.
extern "C" hass_err hass_cuda_stream_create(void **stream) {
    cudaStream_t s;
    HASS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    *stream = (void *)s;
    return HASS_OK;
}

// Destroy a stream from hass_cuda_stream_create; NULL is a no-op.
extern "C" void hass_cuda_stream_destroy(void *stream) {
    if (stream) cudaStreamDestroy((cudaStream_t)stream);
}

// Wait for the work queued on hass_cuda_stream.
extern "C" hass_err hass_cuda_stream_sync(void) {
    HASS_CUDA_CHECK(cudaStreamSynchronize(hass_cuda_stream));
    return HASS_OK;
}

// Copy device -> device on hass_cuda_stream (asynchronous).
extern "C" hass_err hass_cuda_d2d(void *d_dst, const void *d_src, size_t n_bytes) {
    HASS_CUDA_CHECK(cudaMemcpyAsync(d_dst, d_src, n_bytes, cudaMemcpyDeviceToDevice,
                                    hass_cuda_stream));
    return HASS_OK;
}

// Start capturing hass_cuda_stream (must not be the legacy stream) into a CUDA graph.
extern "C" hass_err hass_cuda_graph_begin(void) {
    if (!hass_cuda_stream)
        return hass_seterr(HASS_EINVAL, "cuda graph: capture needs a stream (hass_cuda_set_stream)");
    HASS_CUDA_CHECK(cudaStreamBeginCapture(hass_cuda_stream, cudaStreamCaptureModeThreadLocal));
    return HASS_OK;
}

// End the capture and instantiate it into *exec (also ends a capture after a failed step).
extern "C" hass_err hass_cuda_graph_end(void **exec) {
    *exec = NULL;
    cudaGraph_t g = NULL;
    HASS_CUDA_CHECK(cudaStreamEndCapture(hass_cuda_stream, &g));
    cudaGraphExec_t x;
    cudaError_t e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return hass_seterr(HASS_ECUDA, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
    }
    *exec = (void *)x;
    return HASS_OK;
}

// Launch an instantiated graph on hass_cuda_stream.
extern "C" hass_err hass_cuda_graph_launch(void *exec) {
    HASS_CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)exec, hass_cuda_stream));
    return HASS_OK;
}

// Free an instantiated graph; NULL is a no-op.
extern "C" void hass_cuda_graph_free(void *exec) {
    if (exec) cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

// Copy rows of width_bytes between pitched buffers (host or device, either way) on
// hass_cuda_stream; returns when done.
extern "C" hass_err hass_cuda_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                                     size_t width_bytes, size_t n_rows) {
    if (n_rows == 0 || width_bytes == 0) return HASS_OK;
    HASS_CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width_bytes, n_rows,
                                      cudaMemcpyDefault, hass_cuda_stream));
    HASS_CUDA_CHECK(cudaStreamSynchronize(hass_cuda_stream));
    return HASS_OK;
}

// Copy rows between pitched device buffers on hass_cuda_stream (asynchronous).
extern "C" hass_err hass_cuda_copy2d_d2d(void *d_dst, size_t dpitch, const void *d_src,
                                         size_t spitch, size_t width_bytes, size_t n_rows) {
    if (n_rows == 0 || width_bytes == 0) return HASS_OK;
    HASS_CUDA_CHECK(cudaMemcpy2DAsync(d_dst, dpitch, d_src, spitch, width_bytes, n_rows,
                                      cudaMemcpyDeviceToDevice, hass_cuda_stream));
    return HASS_OK;
}
