// cpu_matmul.c: the CPU matmul's dispatch and threads: which kernel path runs (portable C,
// AVX2+FMA, AVX-512 VNNI; picked at run time from what the CPU has, HASS_KERNELS or
// hass_kernel_set_path), which kernel of its table (matmul_int.h) each matmul takes, and the
// work split over chunks of output rows on the model's thread team (pool.h).
//
// Batch invariance: every output y[i, r] is computed by one kernel call whose arithmetic for it
// (block order, vector lanes, final horizontal sum) does not depend on how many activation rows
// are processed together, on the tiling or on the thread count (matmul_int.h, hass_mm_kernel).
#include "matmul_int.h"

#include "kquant.h"

#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// dispatch

static int g_path = -1; // 0 c, 1 avx2, 2 avx512

// Pick the best path the CPU has (HASS_KERNELS may force a lower one).
static int kernel_path(void) {
    int p = g_path;
    if (p >= 0) return p;
    p = 0;
#ifdef HASS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) p = 1;
    if (p == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        p = 2;
#endif
    const char *e = getenv("HASS_KERNELS");
    if (e && !strcmp(e, "c")) p = 0;
    else if (e && !strcmp(e, "avx2") && p > 1) p = 1;
    g_path = p;
    return p;
}

int hass_kernel_set_path(int p) {
    g_path = -1;
    int best = kernel_path();
    g_path = p < best ? (p < 0 ? 0 : p) : best;
    return g_path;
}

int hass_kernel_level(void) { return kernel_path(); }

const char *hass_kernel_path(void) {
    static const char *names[] = {"c", "avx2", "avx512"};
    return names[kernel_path()];
}

// The kernel table of the current path.
static const hass_mm_kernels *kernels(void) {
    static const hass_mm_kernels *const tab[] = {&hass_mm_kernels_c,
#ifdef HASS_X86
                                                 &hass_mm_kernels_avx2, &hass_mm_kernels_avx512
#endif
    };
    return tab[kernel_path()];
}

// Kernel of table t for a weight type; f32act: quantized weights take f32 activations (the
// dequantize-and-FMA kernels) instead of 8-bit ones; packed: the packed-layout kernel of a
// quantized type (NULL where the path has none).
static hass_mm_kernel pick(const hass_mm_kernels *t, int type, int f32act, int packed) {
    if (packed)
        return type == HASS_GGML_Q4_1 ? t->kp_q4_1 : type == HASS_GGML_Q4_0 ? t->kp_q4_0
             : type == HASS_GGML_Q8_0 ? t->kp_q8_0 : type == HASS_GGML_Q4_K ? t->kp_q4_k
             : type == HASS_GGML_Q6_K ? t->kp_q6_k : type == HASS_GGML_Q5_0 ? t->kp_q5_0 : NULL;
    if (!hass_quant_is_q(type)) return t->kf;
    if (hass_kq_block_bytes(type)) return f32act ? t->kkf : t->kk;
    return f32act ? t->kqf : t->kq;
}

// ----------------------------------------------------------------------------
// threaded driver

enum { MM_CHUNK = 16, MM_MAXJOBS = 8 };

// A matmul job for the pool: the weight-row chunks of several matmuls sharing one input.
typedef struct mm_ctx {
    const hass_mm_job *jobs;
    int n_jobs, n, n_in, G;
    const int *first;       // (n_jobs + 1) first chunk of each job
    hass_mm_kernel *kern;        // (n_jobs)
    int packed;             // the rows get their packed part: 1 some jobs' weights are packed,
                            // 2 all of them are (the other parts are then not written)
    size_t px[MM_MAXJOBS];  // where job j's kernel reads in a row: 0, or its packed part
    const uint8_t *xb;      // input rows (quantized or float)
    size_t xs;              // input row stride in bytes
    const float *x;         // float input (for quantization)
    uint8_t *q;             // quantized rows
    size_t rb;              // quantized row bytes
} mm_ctx;

// Quantize input rows [i0, i1).
static void mm_quant(void *ctx, int k, int i0, int i1) {
    mm_ctx *c = ctx;
    (void)k;
    int fast = kernel_path() == 2;
    for (int i = i0; i < i1; i++)
        hass_quant_act_row(c->x + (size_t)i * c->n_in, c->n_in, c->q + i * c->rb, fast, c->packed > 0,
                           c->packed == 2);
}

// Compute weight-row chunks [c0, c1) of the jobs for all input rows.
static void mm_chunks(void *ctx, int k, int c0, int c1) {
    mm_ctx *c = ctx;
    (void)k;
    for (int ch = c0; ch < c1; ch++) {
        int j = 0;
        while (ch >= c->first[j + 1]) j++;
        const hass_wmat *w = c->jobs[j].w;
        int r0 = (ch - c->first[j]) * MM_CHUNK, r1 = r0 + MM_CHUNK;
        if (r1 > w->n_out) r1 = w->n_out;
        float *y = c->jobs[j].y;
        // a chunk of MM_CHUNK weight rows stays in L1 while each group of G activation rows
        // passes over it
        for (int i = 0; i < c->n; i += c->G) {
            int R = c->n - i < c->G ? c->n - i : c->G;
            c->kern[j](w, r0, r1, c->xb + (size_t)i * c->xs + c->px[j], c->xs, R,
                       y + (size_t)i * w->n_out + r0, (size_t)w->n_out);
        }
    }
}

void hass_mm_run(const hass_mm_job *jobs, int n_jobs, const float *x, int n, void *q,
                 hass_pool *pool) {
    hass_mm_run_prec(jobs, n_jobs, x, n, q, pool, HASS_PREC_Q8);
}

void hass_mm_run_prec(const hass_mm_job *jobs, int n_jobs, const float *x, int n, void *q,
                      hass_pool *pool, int prec) {
    HASS_ASSERT(n_jobs >= 1 && n_jobs <= MM_MAXJOBS);
    int n_in = jobs[0].w->n_in, isq = hass_quant_is_q(jobs[0].w->type);
    int f32act = prec == HASS_PREC_F32;
    const hass_mm_kernels *t = kernels();
    int first[MM_MAXJOBS + 1];
    hass_mm_kernel kern[MM_MAXJOBS];
    mm_ctx c = {jobs, n_jobs, n, n_in, isq ? t->q_rows : t->f_rows, first, kern, 0, {0}, NULL, 0,
                x, q, hass_quant_qrow_bytes(n_in)};
    // the packed kernel for each job whose weights are packed, where the path has one (a
    // matmul's jobs are always the same, so each weight matrix always takes the same kernel)
    int jp[MM_MAXJOBS], n_packed = 0;
    for (int j = 0; j < n_jobs; j++) {
        jp[j] = isq && !f32act && jobs[j].w->pk != NULL && pick(t, jobs[j].w->type, 0, 1) != NULL;
        c.px[j] = jp[j] ? qrow_layout(n_in).px : 0;
        n_packed += jp[j];
    }
    c.packed = n_packed == n_jobs ? 2 : n_packed > 0;
    if (isq && !f32act) {
        hass_pool_run(n > 8 ? pool : NULL, n, mm_quant, &c);
        c.xb = q;
        c.xs = c.rb;
    } else {
        c.xb = (const uint8_t *)x;
        c.xs = (size_t)n_in * sizeof(float);
    }
    first[0] = 0;
    for (int j = 0; j < n_jobs; j++) {
        first[j + 1] = first[j] + (jobs[j].w->n_out + MM_CHUNK - 1) / MM_CHUNK;
        kern[j] = pick(t, jobs[j].w->type, f32act, jp[j]);
    }
    hass_pool_run(pool, first[n_jobs], mm_chunks, &c);
}
