// test_kernels.c: every CUDA kernel against its CPU twin (libcore/engine/ops_cpu.c) on random inputs
// at several sizes (including sizes that do not fill a block), the GPU LLaMA forward against the
// same forward composed of twins, and a CUDA-graph replay against a plain launch. Skips without
// CUDA or a device. Tolerances: |gpu - cpu| <= atol + rtol*|cpu| per element, NMSE for matmuls
// and the forward; integer outputs (argmax, top-k, acceptance, compaction) must be equal.
#include "gpu.h"
#include "ops.h"
#include "unit.h"

#ifdef HASS_WITH_CUDA
static uint32_t g_seed = 12345;

// Uniform random float in [-1, 1) from a fixed LCG.
static float frand(void) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)(g_seed >> 8) / (float)(1u << 23) - 1.0f;
}

// Random integer in [0, n).
static int irand(int n) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (int)((g_seed >> 8) % (uint32_t)n);
}

// Fill n floats with frand() * scale.
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}

// Fill n bf16 values with bf16(frand() * scale).
static void fill_bf16(uint16_t *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = hass_f32_to_bf16(frand() * scale);
}

static int g_dev_fail; // a device call failed in up/down (reported by the check that follows)

// Device copy of n host bytes (NULL and g_dev_fail set on failure).
static void *up(const void *h, size_t n) {
    void *d = NULL;
    if (hass_cuda_malloc(&d, n) || (h && hass_cuda_h2d(d, h, n))) {
        g_dev_fail = 1;
        fprintf(stderr, "device: %s\n", hass_errmsg());
        hass_cuda_free(d);
        return NULL;
    }
    return d;
}

// Copy n bytes device -> host (g_dev_fail on failure).
static void down(void *h, const void *d, size_t n) {
    if (!d || hass_cuda_d2h(h, d, n)) {
        g_dev_fail = 1;
        fprintf(stderr, "device: %s\n", hass_errmsg());
    }
}

// Max |a-b| / (atol + rtol |b|) over n values (<= 1 passes); *at gets the worst index.
static double rel_err(const float *a, const float *b, size_t n, double atol, double rtol,
                      size_t *at) {
    double m = 0;
    *at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (d != d) d = 1e30;
        if (a[i] == b[i]) d = 0; // equal infinities
        if (d > m) m = d, *at = i;
    }
    return m;
}

// Check an element-wise comparison with a name built from fmt.
#define CHECK_CLOSE(name, gpu, cpu, n, atol, rtol)                                             \
    do {                                                                                       \
        size_t at_ = 0;                                                                        \
        double r_ = g_dev_fail ? 1e30 : rel_err(gpu, cpu, n, atol, rtol, &at_);                \
        CHECK(name, !g_dev_fail && r_ <= 1.0, "rel %g at %zu: gpu %.9g cpu %.9g%s", r_,        \
              g_dev_fail ? 0 : at_, g_dev_fail ? 0.0 : (double)(gpu)[at_],                     \
              g_dev_fail ? 0.0 : (double)(cpu)[at_], g_dev_fail ? " (device error)" : "");    \
    } while (0)

// RMSNorm at several shapes.
static void test_rmsnorm(void) {
    static const int shapes[][2] = {{1, 1}, {3, 7}, {5, 64}, {2, 576}, {17, 1000}, {4, 4096}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], dim = shapes[s][1];
        size_t n = (size_t)rows * dim;
        float *x = malloc(n * 4), *w = malloc((size_t)dim * 4), *y = malloc(n * 4), *g = malloc(n * 4);
        fill(x, n, 1), fill(w, (size_t)dim, 1);
        hass_cpu_rmsnorm(y, x, w, rows, dim, 1e-5f);
        g_dev_fail = 0;
        float *dx = up(x, n * 4), *dw = up(w, (size_t)dim * 4), *dy = up(NULL, n * 4);
        if (!g_dev_fail && hass_cuda_rmsnorm(dy, dx, dw, rows, dim, 1e-5f)) g_dev_fail = 1;
        down(g, dy, n * 4);
        char name[64];
        snprintf(name, sizeof name, "cuda rmsnorm %dx%d", rows, dim);
        CHECK_CLOSE(name, g, y, n, 1e-5, 1e-5);
        // fused bf16 output: within one bf16 step of the rounded twin
        uint16_t *hb = malloc(n * 2), *db = up(NULL, n * 2);
        if (!g_dev_fail && hass_cuda_rmsnorm_bf16(dy, db, dx, dw, rows, dim, 1e-5f)) g_dev_fail = 1;
        down(hb, db, n * 2);
        for (size_t i = 0; i < n; i++) g[i] = hass_bf16_to_f32(hb[i]);
        snprintf(name, sizeof name, "cuda rmsnorm_bf16 %dx%d", rows, dim);
        CHECK_CLOSE(name, g, y, n, 1e-6, 8e-3);
        hass_cuda_free(db), free(hb);
        hass_cuda_free(dx), hass_cuda_free(dw), hass_cuda_free(dy);
        free(x), free(w), free(y), free(g);
    }
}

// Embedding gather, including out-of-range ids (zero rows); must be exact.
static void test_embed(void) {
    static const int shapes[][3] = {{10, 1, 3}, {100, 33, 7}, {1000, 576, 17}, {32000, 4096, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int V = shapes[s][0], dim = shapes[s][1], nt = shapes[s][2];
        size_t nw = (size_t)V * dim, n = (size_t)nt * dim;
        uint16_t *tab = malloc(nw * 2);
        int32_t *tok = malloc((size_t)nt * 4);
        float *y = malloc(n * 4), *g = malloc(n * 4);
        fill_bf16(tab, nw, 1);
        for (int i = 0; i < nt; i++) tok[i] = irand(V);
        tok[nt - 1] = nt > 2 ? V : -1; // out of range
        hass_cpu_embed(y, tab, tok, nt, V, dim);
        g_dev_fail = 0;
        void *dt = up(tab, nw * 2), *dk = up(tok, (size_t)nt * 4), *dy = up(NULL, n * 4);
        if (!g_dev_fail && hass_cuda_embed(dy, dt, dk, nt, V, dim)) g_dev_fail = 1;
        down(g, dy, n * 4);
        char name[64];
        snprintf(name, sizeof name, "cuda embed %dx%d tok %d", V, dim, nt);
        CHECK_CLOSE(name, g, y, n, 0, 0);
        hass_cuda_free(dt), hass_cuda_free(dk), hass_cuda_free(dy);
        free(tab), free(tok), free(y), free(g);
    }
}

// RoPE in both layouts with a row stride wider than the heads.
static void test_rope(void) {
    static const int shapes[][4] = {{1, 1, 2, 0}, {3, 4, 16, 8}, {17, 9, 64, 0}, {5, 32, 128, 64}};
    for (int layout = 0; layout < 2; layout++) {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int nt = shapes[s][0], nh = shapes[s][1], hd = shapes[s][2];
            int stride = nh * hd + shapes[s][3];
            size_t n = (size_t)nt * stride;
            float *x = malloc(n * 4), *g = malloc(n * 4);
            int32_t *pos = malloc((size_t)nt * 4);
            fill(x, n, 1);
            for (int i = 0; i < nt; i++) pos[i] = i == 0 ? 0 : irand(4096);
            g_dev_fail = 0;
            void *dx = up(x, n * 4), *dp = up(pos, (size_t)nt * 4);
            float theta = layout ? 1e5f : 1e4f;
            hass_cpu_rope(x, pos, nt, stride, nh, hd, theta, layout);
            if (!g_dev_fail && hass_cuda_rope(dx, dp, nt, stride, nh, hd, theta, layout)) g_dev_fail = 1;
            down(g, dx, n * 4);
            char name[80];
            snprintf(name, sizeof name, "cuda rope %s %d tok %dx%d stride %d",
                     layout ? "half" : "adjacent", nt, nh, hd, stride);
            CHECK_CLOSE(name, g, x, n, 2e-6, 1e-5);
            hass_cuda_free(dx), hass_cuda_free(dp);
            free(x), free(g), free(pos);
        }
    }
}

// A random tree of n nodes (parents first) as an ancestor-or-self mask (n, n).
static void tree_mask(uint8_t *mask, int32_t *parent, int n) {
    for (int i = 0; i < n; i++) parent[i] = i == 0 ? -1 : irand(i);
    memset(mask, 0, (size_t)n * n);
    for (int i = 0; i < n; i++)
        for (int j = i; j >= 0; j = parent[j]) mask[(size_t)i * n + j] = 1;
}

// Attention over committed KV + block, causal and tree masks, GQA, ragged sizes.
static void test_attention(void) {
    // n_past, n, n_head, n_kv_head, head_dim, masked
    static const int cases[][6] = {{0, 1, 1, 1, 8, 0},   {5, 3, 4, 2, 16, 1},  {37, 17, 8, 2, 64, 1},
                                   {512, 1, 32, 32, 128, 0}, {200, 60, 9, 3, 64, 1},
                                   {1000, 8, 4, 1, 128, 0}, {0, 64, 8, 8, 128, 1}};
    for (size_t s = 0; s < sizeof cases / sizeof *cases; s++) {
        int np = cases[s][0], n = cases[s][1], nh = cases[s][2], nkv = cases[s][3], hd = cases[s][4];
        int qs = nh * hd + 8, kvd = nkv * hd, nk = np + n;
        size_t nq = (size_t)n * qs, nkvv = (size_t)nk * kvd, no = (size_t)n * nh * hd;
        float *q = malloc(nq * 4), *k = malloc(nkvv * 4), *v = malloc(nkvv * 4);
        float *y = malloc(no * 4), *g = malloc(no * 4);
        uint8_t *mask = malloc((size_t)n * n);
        int32_t *par = malloc((size_t)n * 4);
        fill(q, nq, 1), fill(k, nkvv, 1), fill(v, nkvv, 1);
        tree_mask(mask, par, n);
        const uint8_t *m = cases[s][5] ? mask : NULL;
        hass_cpu_attention(y, q, k, v, m, np, n, qs, nh, nkv, hd);
        g_dev_fail = 0;
        void *dq = up(q, nq * 4), *dk = up(k, nkvv * 4), *dv = up(v, nkvv * 4);
        void *dm = up(mask, (size_t)n * n), *dy = up(NULL, no * 4);
        if (!g_dev_fail &&
            hass_cuda_attention(dy, dq, dk, dv, m ? dm : NULL, np, n, qs, nh, nkv, hd)) {
            fprintf(stderr, "%s\n", hass_errmsg());
            g_dev_fail = 1;
        }
        down(g, dy, no * 4);
        char name[96];
        snprintf(name, sizeof name, "cuda attention past %d n %d heads %d/%d d %d %s", np, n, nh,
                 nkv, hd, m ? "tree" : "causal");
        CHECK_CLOSE(name, g, y, no, 2e-5, 1e-4);
        hass_cuda_free(dq), hass_cuda_free(dk), hass_cuda_free(dv), hass_cuda_free(dm), hass_cuda_free(dy);
        free(q), free(k), free(v), free(y), free(g), free(mask), free(par);
    }
}

// SwiGLU and residual add.
static void test_swiglu_add(void) {
    static const int shapes[][2] = {{1, 1}, {3, 100}, {17, 1536}, {2, 11008}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int nt = shapes[s][0], ff = shapes[s][1];
        size_t n = (size_t)nt * ff;
        float *gu = malloc(2 * n * 4), *y = malloc(n * 4), *g = malloc(n * 4), *a = malloc(n * 4);
        fill(gu, 2 * n, 4);
        fill(a, n, 1);
        g_dev_fail = 0;
        float *dgu = up(gu, 2 * n * 4), *dy = up(NULL, n * 4), *da = up(a, n * 4);
        hass_cpu_swiglu(y, gu, nt, ff);
        if (!g_dev_fail && hass_cuda_swiglu(dy, dgu, nt, ff)) g_dev_fail = 1;
        down(g, dy, n * 4);
        char name[64];
        snprintf(name, sizeof name, "cuda swiglu %dx%d", nt, ff);
        CHECK_CLOSE(name, g, y, n, 1e-6, 1e-5);
        uint16_t *hb = malloc(n * 2), *db = up(NULL, n * 2);
        if (!g_dev_fail && hass_cuda_swiglu_bf16(db, dgu, nt, ff)) g_dev_fail = 1;
        down(hb, db, n * 2);
        for (size_t i = 0; i < n; i++) g[i] = hass_bf16_to_f32(hb[i]);
        snprintf(name, sizeof name, "cuda swiglu_bf16 %dx%d", nt, ff);
        CHECK_CLOSE(name, g, y, n, 1e-6, 8e-3);
        hass_cuda_free(db), free(hb);
        hass_cpu_add(y, a, n);
        if (!g_dev_fail && hass_cuda_add(dy, da, n)) g_dev_fail = 1;
        down(g, dy, n * 4);
        snprintf(name, sizeof name, "cuda add %zu", n);
        CHECK_CLOSE(name, g, y, n, 1e-6, 1e-5);
        hass_cuda_free(dgu), hass_cuda_free(dy), hass_cuda_free(da);
        free(gu), free(y), free(g), free(a);
    }
}

// Matmul through cuBLAS and through the GEMV kernel, beta 0 and 1; GEMV run twice bit-equal.
static void test_matmul(void *cublas) {
    static const int shapes[][3] = {{1, 8, 1},      {1, 64, 33},    {3, 576, 100},
                                    {8, 4096, 257}, {5, 1000, 129}, {17, 1536, 576},
                                    {64, 512, 1000}, {2, 11008, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
        float *x = malloc(nx * 4), *y0 = malloc(ny * 4), *y = malloc(ny * 4), *g = malloc(ny * 4);
        float *g2 = malloc(ny * 4);
        uint16_t *w = malloc(nw * 2);
        fill(x, nx, 1), fill_bf16(w, nw, 1.0f / sqrtf((float)in)), fill(y0, ny, 1);
        g_dev_fail = 0;
        float *dx = up(x, nx * 4), *dy = up(NULL, ny * 4);
        uint16_t *dw = up(w, nw * 2), *dxb = up(NULL, nx * 2);
        if (!g_dev_fail && hass_cuda_to_bf16(dxb, dx, nx)) g_dev_fail = 1;
        for (int path = 1; path <= 2; path++) {
            if (path == 2 && (n > 8 || in % 8)) continue;
            for (int b = 0; b < 2; b++) {
                memcpy(y, y0, ny * 4);
                hass_cpu_matmul(y, x, w, n, in, out, (float)b);
                if (!g_dev_fail && hass_cuda_h2d(dy, y0, ny * 4)) g_dev_fail = 1;
                if (!g_dev_fail &&
                    hass_cuda_matmul_bf16(cublas, dy, dxb, dw, n, in, out, (float)b, path)) {
                    fprintf(stderr, "%s\n", hass_errmsg());
                    g_dev_fail = 1;
                }
                down(g, dy, ny * 4);
                double e = g_dev_fail ? 1e30 : unit_nmse(g, y, ny);
                char name[96];
                snprintf(name, sizeof name, "cuda matmul %s %dx%d->%d beta %d",
                         path == 1 ? "cublas" : "gemv", n, in, out, b);
                CHECK(name, !g_dev_fail && e <= 1e-9, "nmse %g%s", e, g_dev_fail ? " (device error)" : "");
                if (path == 2 && b == 1) { // deterministic: same bits on a second run
                    if (!g_dev_fail && hass_cuda_h2d(dy, y0, ny * 4)) g_dev_fail = 1;
                    if (!g_dev_fail && hass_cuda_matmul_bf16(cublas, dy, dxb, dw, n, in, out, 1.f, 2))
                        g_dev_fail = 1;
                    down(g2, dy, ny * 4);
                    snprintf(name, sizeof name, "cuda gemv %dx%d->%d repeatable", n, in, out);
                    CHECK(name, !g_dev_fail && !memcmp(g, g2, ny * 4), "two runs differ");
                }
            }
        }
        // the f32 entry point (rounds x on the device) equals the CPU twin as well
        hass_cpu_matmul(y, x, w, n, in, out, 0.f);
        if (!g_dev_fail && hass_cuda_matmul(cublas, dy, dx, dw, dxb, n, in, out, 0.f)) g_dev_fail = 1;
        down(g, dy, ny * 4);
        char name[80];
        snprintf(name, sizeof name, "cuda matmul f32 in %dx%d->%d", n, in, out);
        double e = g_dev_fail ? 1e30 : unit_nmse(g, y, ny);
        CHECK(name, !g_dev_fail && e <= 1e-9, "nmse %g", e);
        hass_cuda_free(dx), hass_cuda_free(dy), hass_cuda_free(dw), hass_cuda_free(dxb);
        free(x), free(y0), free(y), free(g), free(g2), free(w);
    }
}

// Random logits with planted ties at the maximum and among the top values.
static void logits_with_ties(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * cols;
        for (int c = 0; c < cols; c++) xr[c] = frand() * 8;
        if (cols >= 4) {
            int a = irand(cols), b = irand(cols), d = irand(cols);
            xr[a] = xr[b] = 9.5f; // tie at the top
            xr[d] = 9.0f, xr[(d + 1) % cols] = 9.0f;
        }
    }
}

// Argmax, top-k, log-softmax per row.
static void test_rows(void) {
    static const int shapes[][2] = {{1, 1}, {3, 7}, {5, 1000}, {4, 32000}, {2, 49152}, {64, 3}};
    static const int ks[] = {1, 5, 10, 16};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        float *x = malloc(n * 4), *y = malloc(n * 4), *g = malloc(n * 4);
        int32_t ia[64], ga[64], ik[64 * 16], gk[64 * 16];
        float vk[64 * 16], gv[64 * 16];
        logits_with_ties(x, rows, cols);
        g_dev_fail = 0;
        float *dx = up(x, n * 4), *dy = up(NULL, n * 4), *dv = up(NULL, (size_t)rows * 16 * 4);
        int32_t *di = up(NULL, (size_t)rows * 16 * 4);
        hass_cpu_argmax(ia, x, rows, cols);
        if (!g_dev_fail && hass_cuda_argmax(di, dx, rows, cols)) g_dev_fail = 1;
        down(ga, di, (size_t)rows * 4);
        char name[80];
        snprintf(name, sizeof name, "cuda argmax %dx%d", rows, cols);
        CHECK(name, !g_dev_fail && !memcmp(ia, ga, (size_t)rows * 4), "row 0: gpu %d cpu %d", ga[0], ia[0]);
        for (size_t j = 0; j < sizeof ks / sizeof *ks; j++) {
            int k = ks[j];
            hass_cpu_topk(ik, vk, x, rows, cols, k);
            if (!g_dev_fail && hass_cuda_topk(di, dv, dx, rows, cols, k)) g_dev_fail = 1;
            down(gk, di, (size_t)rows * k * 4);
            down(gv, dv, (size_t)rows * k * 4);
            snprintf(name, sizeof name, "cuda topk %dx%d k %d", rows, cols, k);
            CHECK(name, !g_dev_fail && !memcmp(ik, gk, (size_t)rows * k * 4) &&
                            !memcmp(vk, gv, (size_t)rows * k * 4),
                  "first: gpu %d %g cpu %d %g", gk[0], gv[0], ik[0], vk[0]);
        }
        hass_cpu_log_softmax(y, x, rows, cols);
        if (!g_dev_fail && hass_cuda_log_softmax(dy, dx, rows, cols)) g_dev_fail = 1;
        down(g, dy, n * 4);
        snprintf(name, sizeof name, "cuda log_softmax %dx%d", rows, cols);
        CHECK_CLOSE(name, g, y, n, 1e-5, 1e-5);
        hass_cuda_free(dx), hass_cuda_free(dy), hass_cuda_free(dv), hass_cuda_free(di);
        free(x), free(y), free(g);
    }
}

// Descending order of logits (qsort with a row pointer).
static const float *g_sort_x;
static int by_logit_desc(const void *a, const void *b) {
    float x = g_sort_x[*(const int *)a], y = g_sort_x[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

// Whether pick is a correct full-vocabulary draw for u, in double precision: the kept set is
// every logit >= the largest threshold whose mass reaches top_p (ties kept together), and u *
// kept mass lies in pick's interval of the index-order CDF, up to tol of the kept mass (float
// sums in another order move a boundary by about that much; a wrong pick is far off).
static int draw_consistent(const float *x, int n, float temp, float top_p, float u, int pick,
                           double tol) {
    double m = -INFINITY, tot = 0, thr = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int i = 0; i < n; i++) tot += exp(((double)x[i] - m) / temp);
    if (top_p < 1.f) {
        int *ix = malloc(sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) ix[i] = i;
        g_sort_x = x;
        qsort(ix, (size_t)n, sizeof *ix, by_logit_desc);
        double c = 0;
        for (int j = 0; j < n; j++) {
            c += exp(((double)x[ix[j]] - m) / temp);
            if (c >= top_p * tot) {
                thr = x[ix[j]];
                break;
            }
        }
        free(ix);
    }
    double kept = 0, lo = -1, hi = -1;
    for (int i = 0; i < n; i++) {
        if (x[i] < thr) continue;
        if (i == pick) lo = kept;
        kept += exp(((double)x[i] - m) / temp);
        if (i == pick) hi = kept;
    }
    double t = (double)u * kept, e = tol * kept;
    return pick >= 0 && pick < n && lo >= 0 && t >= lo - e && t <= hi + e;
}

// Sampling: greedy must agree exactly, top-k up to an exp rounding in rare rows; full-vocabulary
// sampling (index order, with and without top-p): every row where the GPU and the twin part is
// a boundary case, both picks consistent with u in double precision (draw_consistent, 1e-4).
static void test_sample(void) {
    static const int shapes[][2] = {{64, 1000}, {32, 32000}, {16, 7}};
    static const float cfg[][3] = {{0, 0, 1}, {0.8f, 10, 0.9f}, {1.0f, 16, 1.0f},
                                   {0.7f, 0, 1.0f}, {1.0f, 0, 0.9f}, {0.5f, 0, 0.5f}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        float *x = malloc(n * 4), u[64];
        int32_t t[64], gt[64];
        logits_with_ties(x, rows, cols);
        for (int r = 0; r < rows; r++) u[r] = r == 0 ? 0.f : (frand() + 1) * 0.5f;
        g_dev_fail = 0;
        float *dx = up(x, n * 4), *du = up(u, (size_t)rows * 4);
        int32_t *dt = up(NULL, (size_t)rows * 4);
        for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
            float temp = cfg[c][0], top_p = cfg[c][2];
            int top_k = (int)cfg[c][1];
            hass_cpu_sample(t, x, u, rows, cols, temp, top_k, top_p);
            if (!g_dev_fail && hass_cuda_sample(dt, dx, du, rows, cols, temp, top_k, top_p)) g_dev_fail = 1;
            down(gt, dt, (size_t)rows * 4);
            int same = 0, bad = 0;
            for (int r = 0; r < rows; r++) {
                same += t[r] == gt[r];
                if (t[r] != gt[r] && temp > 0 && top_k == 0) {
                    const float *xr = x + (size_t)r * cols;
                    bad += !draw_consistent(xr, cols, temp, top_p, u[r], t[r], 1e-4) ||
                           !draw_consistent(xr, cols, temp, top_p, u[r], gt[r], 1e-4);
                }
            }
            // greedy: every row; top-k: all but rows/32; full row: every difference a boundary
            int ok = temp <= 0 ? same == rows : top_k > 0 ? same >= rows - rows / 32 : !bad;
            char name[96];
            snprintf(name, sizeof name, "cuda sample %dx%d temp %g top_k %d top_p %g", rows, cols,
                     temp, top_k, top_p);
            CHECK(name, !g_dev_fail && ok && t[0] == gt[0],
                  "%d/%d rows agree; %d differing rows not at a CDF boundary", same, rows, bad);
        }
        hass_cuda_free(dx), hass_cuda_free(du), hass_cuda_free(dt);
        free(x);
    }
}

// Greedy acceptance on random trees over a small vocabulary (so paths are long).
static void test_accept(void) {
    static const int sizes[] = {1, 2, 5, 33, 60, 100};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int n = sizes[s];
        int32_t tok[100], par[100], tgt[100], path[100], gpath[100], np = 0, gnp = -1;
        uint8_t *mask = malloc((size_t)n * n);
        for (int rep = 0; rep < 4; rep++) {
            tree_mask(mask, par, n);
            if (rep == 1) // a chain: every node the child of the previous
                for (int i = 1; i < n; i++) par[i] = i - 1;
            for (int i = 0; i < n; i++) tok[i] = irand(3), tgt[i] = irand(3);
            if (rep == 1)
                for (int i = 1; i < n; i++) tok[i] = tgt[i - 1]; // all accepted
            hass_cpu_accept_greedy(path, &np, tok, par, tgt, n);
            g_dev_fail = 0;
            int32_t *dt = up(tok, (size_t)n * 4), *dp = up(par, (size_t)n * 4);
            int32_t *dg = up(tgt, (size_t)n * 4), *dpath = up(NULL, (size_t)n * 4), *dn = up(NULL, 4);
            if (!g_dev_fail && hass_cuda_accept_greedy(dpath, dn, dt, dp, dg, n)) g_dev_fail = 1;
            down(&gnp, dn, 4);
            if (!g_dev_fail && gnp >= 1 && gnp <= n) down(gpath, dpath, (size_t)gnp * 4);
            char name[64];
            snprintf(name, sizeof name, "cuda accept greedy n %d tree %d", n, rep);
            CHECK(name, !g_dev_fail && gnp == np && !memcmp(path, gpath, (size_t)np * 4) &&
                            (rep != 1 || np == n),
                  "gpu path of %d, cpu %d", gnp, np);
            hass_cuda_free(dt), hass_cuda_free(dp), hass_cuda_free(dg), hass_cuda_free(dpath), hass_cuda_free(dn);
        }
        free(mask);
    }
}

// Decode attention (position read on the device, fixed split count) vs hass_cpu_attention with
// one query: GQA, head_dim 32..128, splits with empty key ranges, the first position.
static void test_attention_decode(void) {
    // n_head, n_kv_head, head_dim, n_past, max_keys, n_split
    static const int cases[][6] = {{4, 2, 64, 0, 64, 1},     {4, 2, 64, 63, 512, 2},
                                   {8, 8, 128, 300, 4096, 16}, {9, 3, 64, 1000, 1024, 4},
                                   {2, 1, 32, 5, 100, 7},     {32, 8, 128, 511, 512, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        int H = cases[ci][0], Hk = cases[ci][1], hd = cases[ci][2], np = cases[ci][3];
        int mk = cases[ci][4], ns = cases[ci][5], kvd = Hk * hd;
        size_t nq = (size_t)H * hd, nkv = (size_t)mk * kvd;
        float *q = malloc(nq * 4), *kc = malloc(nkv * 4), *vc = malloc(nkv * 4);
        float *ref = malloc(nq * 4), *got = malloc(nq * 4);
        fill(q, nq, 1.f), fill(kc, nkv, 1.f), fill(vc, nkv, 1.f);
        hass_cpu_attention(ref, q, kc, vc, NULL, np, 1, (int)nq, H, Hk, hd);
        g_dev_fail = 0;
        float *dq = up(q, nq * 4), *dk = up(kc, nkv * 4), *dv = up(vc, nkv * 4);
        float *dout = up(NULL, nq * 4), *dpart = up(NULL, (size_t)ns * H * (hd + 2) * 4);
        int32_t *dnp = up(&np, 4);
        if (!g_dev_fail && hass_cuda_attention_decode(dout, dq, dk, dv, dnp, mk, H, Hk, hd, dpart, ns))
            g_dev_fail = 1;
        down(got, dout, nq * 4);
        size_t at = 0;
        double r = g_dev_fail ? 1e30 : rel_err(got, ref, nq, 2e-5, 1e-4, &at);
        char name[96];
        snprintf(name, sizeof name, "cuda attention decode heads %d/%d hd %d past %d splits %d",
                 H, Hk, hd, np, ns);
        CHECK(name, !g_dev_fail && r <= 1.0, "worst %.3g at %zu", r, at);
        hass_cuda_free(dq), hass_cuda_free(dk), hass_cuda_free(dv), hass_cuda_free(dout);
        hass_cuda_free(dpart), hass_cuda_free(dnp);
        free(q), free(kc), free(vc), free(ref), free(got);
    }
}

// Batch invariance: attention_rows over a block (causal and a tree mask) gives each query exactly
// the bits of attention_decode run for that query alone over the same visible keys laid out as
// a chain (what plain decoding computes); within tolerance of the CPU twin.
static void test_attention_rows_invariant(void) {
    enum { H = 9, HK = 3, HD = 64, NP = 37, N = 7, MK = 600, NS = 3 };
    // a tree of 7: 0 root; 1, 2 children of 0; 3 child of 1; 4, 5 children of 3; 6 child of 2
    static const int parent[N] = {-1, 0, 0, 1, 3, 3, 2};
    int kvd = HK * HD, qs = H * HD + 2 * kvd;
    size_t nkv = (size_t)MK * kvd;
    float *q = malloc((size_t)N * qs * 4), *kc = malloc(nkv * 4), *vc = malloc(nkv * 4);
    float *kc2 = malloc(nkv * 4), *vc2 = malloc(nkv * 4);
    float *got = malloc((size_t)N * H * HD * 4), *one = malloc((size_t)H * HD * 4);
    float *ref = malloc((size_t)N * H * HD * 4);
    uint8_t mask[N * N] = {0};
    fill(q, (size_t)N * qs, 1.f), fill(kc, nkv, 1.f), fill(vc, nkv, 1.f);
    for (int i = 0; i < N; i++)
        for (int j = i; j >= 0; j = parent[j]) mask[i * N + j] = 1;
    for (int m = 0; m < 2; m++) { // 0 causal, 1 tree
        const uint8_t *mk = m ? mask : NULL;
        g_dev_fail = 0;
        float *dq = up(q, (size_t)N * qs * 4), *dk = up(kc, nkv * 4), *dv = up(vc, nkv * 4);
        float *dout = up(NULL, (size_t)N * H * HD * 4);
        float *dpart = up(NULL, hass_cuda_attention_rows_part(NS, N, H, HD) * 4);
        uint8_t *dm = up(mask, sizeof mask);
        if (!g_dev_fail && hass_cuda_attention_rows(dout, dq, dk, dv, mk ? dm : NULL, NP, N, qs, MK,
                                                    H, HK, HD, dpart, NS))
            g_dev_fail = 1;
        down(got, dout, (size_t)N * H * HD * 4);
        hass_cpu_attention(ref, q, kc, vc, mk, NP, N, qs, H, HK, HD);
        size_t at = 0;
        double r = g_dev_fail ? 1e30 : rel_err(got, ref, (size_t)N * H * HD, 2e-5, 1e-4, &at);
        CHECK(m ? "cuda attention rows (tree) vs cpu" : "cuda attention rows (causal) vs cpu",
              !g_dev_fail && r <= 1.0, "worst %.3g at %zu", r, at);
        // each query alone: its visible block entries copied after the committed rows as a chain
        int same = 0;
        for (int i = 0; i < N; i++) {
            memcpy(kc2, kc, nkv * 4), memcpy(vc2, vc, nkv * 4);
            int L = NP;
            for (int j = 0; j < N; j++) {
                if (mk ? !mask[i * N + j] : j > i) continue;
                memcpy(kc2 + (size_t)L * kvd, kc + (size_t)(NP + j) * kvd, (size_t)kvd * 4);
                memcpy(vc2 + (size_t)L * kvd, vc + (size_t)(NP + j) * kvd, (size_t)kvd * 4);
                L++;
            }
            int np1 = L - 1;
            float *dk2 = up(kc2, nkv * 4), *dv2 = up(vc2, nkv * 4), *dq1 = up(q + (size_t)i * qs, (size_t)H * HD * 4);
            int32_t *dnp = up(&np1, 4);
            if (!g_dev_fail && hass_cuda_attention_decode(dout, dq1, dk2, dv2, dnp, MK, H, HK, HD,
                                                          dpart, NS))
                g_dev_fail = 1;
            down(one, dout, (size_t)H * HD * 4);
            same += !g_dev_fail && !memcmp(one, got + (size_t)i * H * HD, (size_t)H * HD * 4);
            hass_cuda_free(dk2), hass_cuda_free(dv2), hass_cuda_free(dq1), hass_cuda_free(dnp);
        }
        CHECK(m ? "cuda attention rows (tree) == decode of each query alone, bit for bit"
                : "cuda attention rows (causal) == decode of each query alone, bit for bit",
              same == N, "%d of %d queries identical", same, N);
        hass_cuda_free(dq), hass_cuda_free(dk), hass_cuda_free(dv), hass_cuda_free(dout);
        hass_cuda_free(dpart), hass_cuda_free(dm);
    }
    free(q), free(kc), free(vc), free(kc2), free(vc2), free(got), free(one), free(ref);
}

// Batch invariance of the matmul's default path: row r of a block of n (1, 5, 16, 40 rows) has
// exactly the bits of the same row computed alone.
static void test_matmul_invariant(void *cublas) {
    enum { IN = 576, OUT = 200, NMAX = 40 };
    float *x = malloc((size_t)NMAX * IN * 4), *y = malloc((size_t)NMAX * OUT * 4);
    float *y1 = malloc((size_t)OUT * 4);
    uint16_t *w = malloc((size_t)OUT * IN * 2);
    fill(x, (size_t)NMAX * IN, 1.f);
    for (size_t i = 0; i < (size_t)OUT * IN; i++) w[i] = hass_f32_to_bf16(0.05f * (float)((i * 7919) % 201) / 100.f - 0.05f);
    static const int ns[] = {1, 5, 16, 40};
    hass_cuda_set_batch_invariant(1);
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        int n = ns[k], same = 0;
        g_dev_fail = 0;
        float *dx = up(x, (size_t)n * IN * 4), *dy = up(NULL, (size_t)n * OUT * 4);
        uint16_t *dw = up(w, (size_t)OUT * IN * 2), *dxb = up(NULL, (size_t)n * IN * 2);
        if (!g_dev_fail && hass_cuda_matmul(cublas, dy, dx, dw, dxb, n, IN, OUT, 0.f)) g_dev_fail = 1;
        down(y, dy, (size_t)n * OUT * 4);
        for (int r = 0; r < n; r++) {
            if (!g_dev_fail && hass_cuda_matmul(cublas, dy, dx + (size_t)r * IN, dw, dxb, 1, IN, OUT, 0.f))
                g_dev_fail = 1;
            down(y1, dy, (size_t)OUT * 4);
            same += !g_dev_fail && !memcmp(y1, y + (size_t)r * OUT, (size_t)OUT * 4);
        }
        char name[96];
        snprintf(name, sizeof name, "cuda matmul rows of a block of %d == each row alone, bit for bit", n);
        CHECK(name, same == n, "%d of %d rows identical", same, n);
        hass_cuda_free(dx), hass_cuda_free(dy), hass_cuda_free(dw), hass_cuda_free(dxb);
    }
    free(x), free(y), free(y1), free(w);
}

// KV store at a device position vs hass_cpu_kv_store: exact.
static void test_kv_store(void) {
    enum { N = 3, QD = 40, KVD = 24, STRIDE = QD + 2 * KVD + 4, CTX = 16 };
    int np = 9;
    float qkv[N * STRIDE], kc[CTX * KVD], vc[CTX * KVD], gk[CTX * KVD], gv[CTX * KVD];
    fill(qkv, N * STRIDE, 1.f), fill(kc, CTX * KVD, 1.f), fill(vc, CTX * KVD, 1.f);
    g_dev_fail = 0;
    float *dq = up(qkv, sizeof qkv), *dk = up(kc, sizeof kc), *dv = up(vc, sizeof vc);
    int32_t *dnp = up(&np, 4);
    if (!g_dev_fail && hass_cuda_kv_store(dk, dv, dq, dnp, N, STRIDE, QD, KVD)) g_dev_fail = 1;
    down(gk, dk, sizeof gk), down(gv, dv, sizeof gv);
    hass_cpu_kv_store(kc, vc, qkv, np, N, STRIDE, QD, KVD);
    CHECK("cuda kv store at a device position", !g_dev_fail && !memcmp(gk, kc, sizeof kc) &&
                                                   !memcmp(gv, vc, sizeof vc),
          "differs");
    hass_cuda_free(dq), hass_cuda_free(dk), hass_cuda_free(dv), hass_cuda_free(dnp);
}

// The decode step captured ONCE as a graph replays at other positions (n_past on the device)
// bit for bit like plain launches of the same step, which match the block forward closely.
static void test_llama_decode_graph(void) {
    hass_cuda_llama_cfg cfg = {.n_layer = 2, .n_embd = 64, .n_head = 4, .n_kv_head = 2,
                               .n_ff = 96, .n_vocab = 50, .n_ctx = 600, .max_tok = 16,
                               .rope_layout = HASS_ROPE_HALF, .tied = 1,
                               .rope_theta = 10000.f, .norm_eps = 1e-5f};
    enum { V = 50 };
    hass_err err;
    hass_cuda_llama *m = hass_cuda_llama_new(&cfg, &err);
    CHECK("cuda llama decode new", m != NULL, "%s", hass_errmsg());
    if (!m) return;
    float a[V], b[V], f[V];
    void *stream = NULL, *graph = NULL;
    int32_t tok = 3, pos = 12;
    hass_err e = hass_cuda_llama_randomize(m, 9);
    if (!e) e = hass_cuda_stream_create(&stream);
    if (!e) hass_cuda_set_stream(stream);
    // decode vs the block forward at 12 (another attention kernel: close, not equal)
    if (!e) e = hass_cuda_llama_set_input(m, &tok, &pos, NULL, 1);
    if (!e) e = hass_cuda_llama_forward(m, 12, 1, 0);
    if (!e) e = hass_cuda_d2h(f, m->logits, sizeof f);
    if (!e) e = hass_cuda_llama_set_past(m, 12);
    if (!e) e = hass_cuda_llama_decode(m);
    if (!e) e = hass_cuda_d2h(a, m->logits, sizeof a);
    double q = e ? 1e30 : unit_nmse(a, f, V);
    CHECK("cuda llama decode == forward n=1 (NMSE)", !e && q < 1e-10, "%s nmse %g",
          e ? hass_errmsg() : "", q);
    if (!e) e = hass_cuda_graph_begin();
    if (!e) {
        hass_err fe = hass_cuda_llama_decode(m);
        e = hass_cuda_graph_end(&graph);
        if (fe) e = fe;
    }
    static const int positions[] = {12, 300, 5, 599};
    int same = 0;
    for (int i = 0; i < 4 && !e; i++) {
        tok = 1 + i, pos = positions[i];
        e = hass_cuda_llama_set_input(m, &tok, &pos, NULL, 1);
        if (!e) e = hass_cuda_llama_set_past(m, pos);
        if (!e) e = hass_cuda_llama_decode(m);
        if (!e) e = hass_cuda_d2h(a, m->logits, sizeof a);
        if (!e) e = hass_cuda_d2d(m->logits, m->x, sizeof b); // scribble
        if (!e) e = hass_cuda_graph_launch(graph);
        if (!e) e = hass_cuda_d2h(b, m->logits, sizeof b);
        same += !e && !memcmp(a, b, sizeof a);
    }
    CHECK("cuda llama decode graph replays at positions 12, 300, 5, 599 == plain", !e && same == 4,
          "%s; %d/4 identical", e ? hass_errmsg() : "", same);
    hass_cuda_graph_free(graph);
    hass_cuda_set_stream(NULL);
    hass_cuda_stream_destroy(stream);
    hass_cuda_llama_free(m);
}

// Stochastic acceptance: GPU walk vs hass_cpu_accept_sample with the same uniforms, random trees
// (few distinct tokens, so siblings repeat and the dedup runs), peaked logits so paths go deep,
// vocabularies that do and do not fill the block, several processors. Sums run in another
// order on the GPU, so a uniform within rounding of a boundary may pick otherwise: at least 97%
// of the walks must be identical (path and bonus), and the walks must both accept and reject.
static void test_accept_sample(void) {
    static const int vocab[] = {40, 1000, 32007};
    static const float procs[][3] = {{1.f, 0, 1.f}, {0.7f, 5, 1.f}, {1.3f, 0, 0.8f},
                                     {1.f, 3, 0.6f}, {0.9f, 50, 0.95f}};
    enum { NMAX = 64, TRIALS = 60 };
    for (size_t vi = 0; vi < sizeof vocab / sizeof *vocab; vi++) {
        int V = vocab[vi], same = 0, total = 0, deep = 0, rejected = 0;
        float *lg = malloc(sizeof(float) * NMAX * V), *probs = malloc(sizeof(float) * V);
        uint8_t mask[NMAX * NMAX];
        g_dev_fail = 0;
        float *dl = up(NULL, sizeof(float) * NMAX * V), *dprobs = up(NULL, sizeof(float) * V);
        int32_t *dt = up(NULL, NMAX * 4), *dp = up(NULL, NMAX * 4), *dpath = up(NULL, NMAX * 4);
        int32_t *dout = up(NULL, 12);
        double *du = up(NULL, sizeof(double) * (NMAX + 1));
        for (int trial = 0; trial < TRIALS && !g_dev_fail; trial++) {
            int n = 1 + irand(NMAX);
            int32_t tok[NMAX], par[NMAX], path[NMAX], gpath[NMAX], np = 0, bonus = -2, gout[3];
            double u[NMAX + 1];
            tree_mask(mask, par, n);
            for (int i = 0; i < n; i++) tok[i] = irand(4);
            for (int i = 0; i < n * V; i++) // tokens 0..3 hold most of the mass at any V
                lg[i] = (i % V < 4 ? logf((float)V) + 2.f : 0.f) + 2.f * frand();
            for (int i = 0; i <= n; i++) u[i] = 0.5 * (frand() + 1.0);
            const float *pr = procs[trial % 5];
            hass_cpu_accept_sample(path, &np, &bonus, tok, par, lg, u, n, V, pr[0], (int)pr[1],
                                   pr[2], probs);
            if (hass_cuda_h2d(dl, lg, sizeof(float) * n * V) || hass_cuda_h2d(dt, tok, n * 4) ||
                hass_cuda_h2d(dp, par, n * 4) || hass_cuda_h2d(du, u, sizeof(double) * (n + 1)) ||
                hass_cuda_accept_sample(dpath, dout, dt, dp, dl, du, n, V, pr[0], (int)pr[1],
                                        pr[2], dprobs) ||
                hass_cuda_d2h(gout, dout, 12)) {
                g_dev_fail = 1;
                fprintf(stderr, "device: %s\n", hass_errmsg());
                break;
            }
            int ok = gout[0] == np && gout[1] == bonus && gout[2] >= np && gout[2] <= n + 1;
            if (ok && np > 0 && np <= n) {
                down(gpath, dpath, (size_t)np * 4);
                ok = !memcmp(gpath, path, (size_t)np * 4);
            }
            same += ok, total++;
            deep += np > 2;
            rejected += np == 1 && n > 1;
        }
        char name[80];
        snprintf(name, sizeof name, "cuda accept sample V %d (%d random trees)", V, TRIALS);
        CHECK(name, !g_dev_fail && total == TRIALS && same * 100 >= 97 * total && deep && rejected,
              "%d/%d walks identical, %d deep, %d rejected at the root", same, total, deep,
              rejected);
        hass_cuda_free(dl), hass_cuda_free(dprobs), hass_cuda_free(dt), hass_cuda_free(dp);
        hass_cuda_free(dpath), hass_cuda_free(dout), hass_cuda_free(du);
        free(lg), free(probs);
    }
}

// KV compaction for several kept sets; must be exact.
static void test_kv_compact(void) {
    // n_layer, n_ctx, kv_dim, L0
    static const int cases[][4] = {{1, 8, 1, 0}, {3, 50, 24, 10}, {4, 128, 4096, 60}, {2, 100, 200, 37}};
    for (size_t s = 0; s < sizeof cases / sizeof *cases; s++) {
        int nl = cases[s][0], ctx = cases[s][1], kvd = cases[s][2], L0 = cases[s][3];
        size_t stride = (size_t)ctx * kvd, n = stride * nl;
        float *k = malloc(n * 4), *v = malloc(n * 4), *gk = malloc(n * 4), *gv = malloc(n * 4);
        int32_t idx[64];
        int span = ctx - L0 < 64 ? ctx - L0 : 64, nk = 0;
        for (int j = 0; j < span; j++) // random increasing subset, first entry always kept
            if (j == 0 || irand(3) == 0) idx[nk++] = j;
        fill(k, n, 1), fill(v, n, 1);
        g_dev_fail = 0;
        float *dk = up(k, n * 4), *dv = up(v, n * 4);
        int32_t *di = up(idx, (size_t)nk * 4);
        hass_cpu_kv_compact(k, v, idx, nk, L0, nl, stride, kvd);
        if (!g_dev_fail && hass_cuda_kv_compact(dk, dv, di, nk, L0, nl, stride, kvd)) g_dev_fail = 1;
        down(gk, dk, n * 4);
        down(gv, dv, n * 4);
        char name[80];
        snprintf(name, sizeof name, "cuda kv compact layers %d ctx %d dim %d keep %d", nl, ctx, kvd, nk);
        CHECK(name, !g_dev_fail && !memcmp(k, gk, n * 4) && !memcmp(v, gv, n * 4), "caches differ");
        hass_cuda_free(dk), hass_cuda_free(dv), hass_cuda_free(di);
        free(k), free(v), free(gk), free(gv);
    }
}

// Host copy of a device buffer of n bytes (malloc'd).
static void *grab(const void *d, size_t n) {
    void *h = malloc(n);
    down(h, d, n);
    return h;
}

// The forward of hass_cuda_llama_forward composed of CPU twins, on host copies of the weights.
static void cpu_forward(const hass_cuda_llama *m, uint16_t **w, float **nw, float *kc, float *vc,
                        const int32_t *tok, const int32_t *pos, const uint8_t *mask, int n_past,
                        int n, float *logits) {
    const hass_cuda_llama_cfg *c = &m->cfg;
    int E = c->n_embd, F = c->n_ff, hd = m->head_dim;
    size_t ls = (size_t)c->n_ctx * m->kv_dim;
    float *x = malloc((size_t)n * E * 4), *h = malloc((size_t)n * E * 4);
    float *qkv = malloc((size_t)n * m->qkv_dim * 4), *att = malloc((size_t)n * m->q_dim * 4);
    float *gu = malloc((size_t)n * 2 * F * 4), *ff = malloc((size_t)n * F * 4);
    hass_cpu_embed(x, w[0], tok, n, c->n_vocab, E);
    for (int l = 0; l < c->n_layer; l++) {
        uint16_t **lw = w + 2 + 4 * l;
        float *kcl = kc + l * ls, *vcl = vc + l * ls;
        hass_cpu_rmsnorm(h, x, nw[1 + 2 * l], n, E, c->norm_eps);
        hass_cpu_matmul(qkv, h, lw[0], n, E, m->qkv_dim, 0.f);
        hass_cpu_rope(qkv, pos, n, m->qkv_dim, c->n_head, hd, c->rope_theta, c->rope_layout);
        hass_cpu_rope(qkv + m->q_dim, pos, n, m->qkv_dim, c->n_kv_head, hd, c->rope_theta, c->rope_layout);
        for (int i = 0; i < n; i++) {
            memcpy(kcl + (size_t)(n_past + i) * m->kv_dim, qkv + (size_t)i * m->qkv_dim + m->q_dim, (size_t)m->kv_dim * 4);
            memcpy(vcl + (size_t)(n_past + i) * m->kv_dim, qkv + (size_t)i * m->qkv_dim + m->q_dim + m->kv_dim, (size_t)m->kv_dim * 4);
        }
        hass_cpu_attention(att, qkv, kcl, vcl, mask, n_past, n, m->qkv_dim, c->n_head, c->n_kv_head, hd);
        hass_cpu_matmul(x, att, lw[1], n, m->q_dim, E, 1.f);
        hass_cpu_rmsnorm(h, x, nw[2 + 2 * l], n, E, c->norm_eps);
        hass_cpu_matmul(gu, h, lw[2], n, E, 2 * F, 0.f);
        hass_cpu_swiglu(ff, gu, n, F);
        hass_cpu_matmul(x, ff, lw[3], n, F, E, 1.f);
    }
    hass_cpu_rmsnorm(h, x, nw[0], n, E, c->norm_eps);
    hass_cpu_matmul(logits, h, w[1], n, E, c->n_vocab, 0.f);
    free(x), free(h), free(qkv), free(att), free(gu), free(ff);
}

// GPU forward (prefill, then a tree block) against the twin composition; then a CUDA graph of a
// decode step must give the same bits as the plain launch.
static void test_llama(void) {
    hass_cuda_llama_cfg cfg = {.n_layer = 2, .n_embd = 64, .n_head = 4, .n_kv_head = 2,
                               .n_ff = 96, .n_vocab = 50, .n_ctx = 64, .max_tok = 16,
                               .rope_layout = HASS_ROPE_PAIRS, .tied = 0,
                               .rope_theta = 10000.f, .norm_eps = 1e-5f};
    hass_err err;
    hass_cuda_llama *m = hass_cuda_llama_new(&cfg, &err);
    CHECK("cuda llama new", m != NULL, "%s", hass_errmsg());
    if (!m) return;
    g_dev_fail = 0;
    if (hass_cuda_llama_randomize(m, 7)) g_dev_fail = 1;
    size_t E = 64, V = 50, F = 96;
    uint16_t *w[2 + 4 * 2];
    float *nw[1 + 2 * 2];
    w[0] = grab(m->tok_embd, V * E * 2);
    w[1] = grab(m->lm_head, V * E * 2);
    nw[0] = grab(m->out_norm, E * 4);
    for (int l = 0; l < 2; l++) {
        w[2 + 4 * l] = grab(m->layers[l].wqkv, (size_t)m->qkv_dim * E * 2);
        w[3 + 4 * l] = grab(m->layers[l].wo, E * m->q_dim * 2);
        w[4 + 4 * l] = grab(m->layers[l].w_gu, 2 * F * E * 2);
        w[5 + 4 * l] = grab(m->layers[l].w_down, E * F * 2);
        nw[1 + 2 * l] = grab(m->layers[l].attn_norm, E * 4);
        nw[2 + 2 * l] = grab(m->layers[l].ffn_norm, E * 4);
    }
    size_t kvn = (size_t)2 * 64 * m->kv_dim;
    float *kc = calloc(kvn, 4), *vc = calloc(kvn, 4), *ref = malloc(16 * V * 4), *got = malloc(16 * V * 4);
    int32_t tok[16], pos[16], par[16];
    uint8_t mask[16 * 16];
    // prefill 5 tokens, causal
    for (int i = 0; i < 5; i++) tok[i] = irand((int)V), pos[i] = i;
    cpu_forward(m, w, nw, kc, vc, tok, pos, NULL, 0, 5, ref);
    if (!g_dev_fail && (hass_cuda_llama_set_input(m, tok, pos, NULL, 5) ||
                        hass_cuda_llama_forward(m, 0, 5, 0))) g_dev_fail = 1;
    down(got, m->logits, 5 * V * 4);
    double e = g_dev_fail ? 1e30 : unit_nmse(got, ref, 5 * V);
    CHECK("cuda llama prefill 5 vs twins", !g_dev_fail && e < 1e-6, "nmse %g (%s)", e, hass_errmsg());
    // a tree of 7 nodes at positions 5 + depth
    tree_mask(mask, par, 7);
    for (int i = 0; i < 7; i++) {
        int d = 0;
        for (int j = par[i]; j >= 0; j = par[j]) d++;
        tok[i] = irand((int)V), pos[i] = 5 + d;
    }
    cpu_forward(m, w, nw, kc, vc, tok, pos, mask, 5, 7, ref);
    if (!g_dev_fail && (hass_cuda_llama_set_input(m, tok, pos, mask, 7) ||
                        hass_cuda_llama_forward(m, 5, 7, 1))) g_dev_fail = 1;
    down(got, m->logits, 7 * V * 4);
    e = g_dev_fail ? 1e30 : unit_nmse(got, ref, 7 * V);
    CHECK("cuda llama tree 7 after 5 vs twins", !g_dev_fail && e < 1e-6, "nmse %g", e);
    // graph replay of a decode step equals the plain launch bit for bit
    void *stream = NULL, *graph = NULL;
    float *g1 = malloc(V * 4), *g2 = malloc(V * 4);
    tok[0] = 3, pos[0] = 12;
    hass_err ge = hass_cuda_stream_create(&stream);
    if (!ge) {
        hass_cuda_set_stream(stream);
        ge = hass_cuda_llama_set_input(m, tok, pos, NULL, 1);
        if (!ge) ge = hass_cuda_llama_forward(m, 12, 1, 0);
        if (!ge) ge = hass_cuda_d2h(g1, m->logits, V * 4);
        if (!ge) ge = hass_cuda_d2d(m->logits, m->x, V * 4); // scribble over the logits
        if (!ge) ge = hass_cuda_graph_begin();
        if (!ge) {
            hass_err fe = hass_cuda_llama_forward(m, 12, 1, 0);
            ge = hass_cuda_graph_end(&graph);
            if (fe) ge = fe;
        }
        if (!ge) ge = hass_cuda_graph_launch(graph);
        if (!ge) ge = hass_cuda_graph_launch(graph);
        if (!ge) ge = hass_cuda_d2h(g2, m->logits, V * 4);
        hass_cuda_graph_free(graph);
        hass_cuda_set_stream(NULL);
        hass_cuda_stream_destroy(stream);
    }
    CHECK("cuda llama decode graph == plain launch", !ge && !memcmp(g1, g2, V * 4), "%s",
          ge ? hass_errmsg() : "logits differ");
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) free(w[i]);
    for (size_t i = 0; i < sizeof nw / sizeof *nw; i++) free(nw[i]);
    free(kc), free(vc), free(ref), free(got), free(g1), free(g2);
    hass_cuda_llama_free(m);
}

// A stack larger than the card is refused with HASS_ENOMEM and a message, before allocating.
static void test_llama_too_big(void) {
    hass_cuda_llama_cfg cfg = {.n_layer = 400, .n_embd = 8192, .n_head = 64, .n_kv_head = 8,
                               .n_ff = 28672, .n_vocab = 128256, .n_ctx = 4096, .max_tok = 64,
                               .rope_theta = 5e5f, .norm_eps = 1e-5f};
    hass_err err = HASS_OK;
    hass_cuda_llama *m = hass_cuda_llama_new(&cfg, &err);
    CHECK("cuda llama too big: ENOMEM", !m && err == HASS_ENOMEM && strstr(hass_errmsg(), "GiB"),
          "err %d: %s", (int)err, hass_errmsg());
    hass_cuda_llama_free(m);
}
#endif

int main(void) {
#ifdef HASS_WITH_CUDA
    if (hass_cuda_device_count() == 0) {
        SKIP("cuda kernels", "no CUDA device");
        UNIT_DONE();
    }
    void *cublas = NULL;
    if (hass_cuda_cublas_create(&cublas)) {
        CHECK("cublas handle", 0, "%s", hass_errmsg());
        UNIT_DONE();
    }
    test_rmsnorm();
    test_embed();
    test_rope();
    test_attention();
    test_attention_decode();
    test_attention_rows_invariant();
    test_kv_store();
    test_swiglu_add();
    test_matmul(cublas);
    test_matmul_invariant(cublas);
    test_rows();
    test_sample();
    test_accept();
    test_accept_sample();
    test_kv_compact();
    test_llama();
    test_llama_decode_graph();
    test_llama_too_big();
    hass_cuda_cublas_destroy(cublas);
#else
    SKIP("cuda kernels", "built without CUDA");
#endif
    UNIT_DONE();
}
