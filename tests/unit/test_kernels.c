// test_kernels.c: every CUDA kernel against its CPU twin on random inputs at several sizes
// (including sizes that do not fill a block). Skips without CUDA or a device.
#include "cuda.h"
#include "ops.h"
#include "unit.h"

#ifdef HASS_WITH_CUDA
// Uniform random floats in [-1, 1) from a fixed LCG.
static void fill(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;
    }
}

// Max |a-b| / (atol + rtol |b|) over n values (<= 1 passes).
static double rel_err(const float *a, const float *b, size_t n, double atol, double rtol) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (d > m || d != d) m = d != d ? 1e30 : d;
    }
    return m;
}

// RMSNorm at several shapes.
static void test_rmsnorm(void) {
    static const int shapes[][2] = {{1, 1}, {3, 7}, {5, 64}, {2, 576}, {17, 1000}, {4, 4096}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], dim = shapes[s][1];
        size_t n = (size_t)rows * dim;
        float *x = malloc(n * 4), *w = malloc((size_t)dim * 4), *y = malloc(n * 4), *g = malloc(n * 4);
        fill(x, n, 1 + (uint32_t)s);
        fill(w, (size_t)dim, 99);
        hass_cpu_rmsnorm(y, x, w, rows, dim, 1e-5f);
        void *dx, *dw, *dy;
        hass_err e = hass_cuda_malloc(&dx, n * 4);
        if (!e) e = hass_cuda_malloc(&dw, (size_t)dim * 4);
        if (!e) e = hass_cuda_malloc(&dy, n * 4);
        if (!e) e = hass_cuda_h2d(dx, x, n * 4);
        if (!e) e = hass_cuda_h2d(dw, w, (size_t)dim * 4);
        if (!e) e = hass_cuda_rmsnorm(dy, dx, dw, rows, dim, 1e-5f);
        if (!e) e = hass_cuda_d2h(g, dy, n * 4);
        char name[64];
        snprintf(name, sizeof name, "cuda rmsnorm %dx%d", rows, dim);
        double r = e ? 1e30 : rel_err(g, y, n, 1e-5, 1e-5);
        CHECK(name, !e && r <= 1.0, "err %s, rel %g", e ? hass_errmsg() : "none", r);
        hass_cuda_free(dx);
        hass_cuda_free(dw);
        hass_cuda_free(dy);
        free(x), free(w), free(y), free(g);
    }
}
#endif

int main(void) {
#ifdef HASS_WITH_CUDA
    if (hass_cuda_device_count() == 0) {
        SKIP("cuda kernels", "no CUDA device");
        UNIT_DONE();
    }
    test_rmsnorm();
#else
    SKIP("cuda kernels", "built without CUDA");
#endif
    UNIT_DONE();
}
