// build.c: what this build contains (cpu-only or CUDA) and whether a device is usable.
#include "hass.h"

#ifdef HASS_WITH_CUDA
int hass_cuda_device_count_impl(void); // kernels/device.cu
#endif

// "cpu-only" or "cuda 13.0 sm_90".
const char *hass_build_config(void) {
#ifdef HASS_WITH_CUDA
    return "cuda " HASS_CUDA_VERSION " " HASS_CUDA_ARCH;
#else
    return "cpu-only";
#endif
}

// Usable CUDA devices now; 0 without CUDA support, driver or device.
int hass_cuda_device_count(void) {
#ifdef HASS_WITH_CUDA
    return hass_cuda_device_count_impl();
#else
    return 0;
#endif
}
