// cuda.h: the C view of kernels/ (device memory, copies, kernels). Only declared; defined when
// built with CUDA. libcore code calls these only under HASS_WITH_CUDA; tests skip without a device.
#ifndef HASS_CUDA_H
#define HASS_CUDA_H

#include "hass.h"

#ifdef HASS_WITH_CUDA
hass_err hass_cuda_malloc(void **d, size_t n_bytes);
void hass_cuda_free(void *d);
hass_err hass_cuda_h2d(void *d, const void *h, size_t n_bytes);
hass_err hass_cuda_d2h(void *h, const void *d, size_t n_bytes);
hass_err hass_cuda_sync(void);
hass_err hass_cuda_cublas_create(void **handle);
void hass_cuda_cublas_destroy(void *handle);

// Kernels: each has a CPU twin hass_cpu_<op> with the same parameters (libcore/ops.h).
hass_err hass_cuda_rmsnorm(float *d_y, const float *d_x, const float *d_w, int n_rows, int dim,
                           float eps);
#endif

#endif
