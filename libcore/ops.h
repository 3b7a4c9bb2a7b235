// ops.h: CPU reference kernels. Each CUDA kernel in kernels/ has its twin here with the same
// parameters; the twin is the specification. Reductions run in a fixed order (batch invariance).
#ifndef HASS_OPS_H
#define HASS_OPS_H

#include "hass.h"

// y = x / sqrt(mean(x^2) + eps) * w, row by row.
void hass_cpu_rmsnorm(float *y,       // (n_rows, dim)
                      const float *x, // (n_rows, dim)
                      const float *w, // (dim)
                      int n_rows, int dim, float eps);

#endif
