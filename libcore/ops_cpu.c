// ops_cpu.c: CPU reference twins of the CUDA kernels (plain C, fixed reduction order).
#include "ops.h"

#include <math.h>

// RMSNorm row by row; the sum of squares runs left to right in float.
void hass_cpu_rmsnorm(float *y, const float *x, const float *w, int n_rows, int dim, float eps) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        float s = 0.f;
        for (int i = 0; i < dim; i++) s += xr[i] * xr[i];
        float scale = 1.0f / sqrtf(s / (float)dim + eps);
        for (int i = 0; i < dim; i++) yr[i] = xr[i] * scale * w[i];
    }
}
