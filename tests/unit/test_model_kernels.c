// test_model_kernels.c: the CPU matmul kernels (portable C, AVX2, AVX-512) against a plain
// double-precision reference on random weights of every supported type, and batch invariance
// (a row's output is bit-identical for any block size and thread count); for quantized weights
// both the default 8-bit-activation kernels and the f32-activation ones (HASS_PREC_F32), and
// the AVX-512 kernel on weights in its packed layout (hass_quant_pack; path "avx512packed"),
// with row tails of 2, 4, 8 and 16 blocks (tail groups shared by 8, 4, 2 and 1 rows; 37 rows
// leave the last tail group part empty).
#include "quant.h"
#include "unit.h"

#include <stdint.h>

static uint64_t rng = 42;
// Uniform in [-1, 1).
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / 8388608.f - 1.f;
}

// Fill a weight matrix of a type with random blocks.
static void fill(int type, uint8_t *p, int n_in, int n_out) {
    size_t rb = hass_ggml_row_bytes(type, n_in);
    for (int r = 0; r < n_out; r++) {
        uint8_t *q = p + r * rb;
        if (type == HASS_GGML_F32) {
            for (int i = 0; i < n_in; i++) ((float *)q)[i] = frand();
        } else if (type == HASS_GGML_F16 || type == HASS_GGML_BF16) {
            for (int i = 0; i < n_in; i++) {
                float f = frand();
                uint16_t h;
                if (type == HASS_GGML_F16) {
                    h = hass_f32_to_f16(f);
                } else {
                    uint32_t u;
                    memcpy(&u, &f, 4);
                    h = (uint16_t)(u >> 16);
                }
                memcpy(q + 2 * i, &h, 2);
            }
        } else {
            int bs = type == HASS_GGML_Q8_0 ? 34 : type == HASS_GGML_Q4_0 ? 18 : 20;
            for (int b = 0; b < n_in / 32; b++) {
                uint8_t *blk = q + b * bs;
                uint16_t d = hass_f32_to_f16(0.01f + 0.05f * (frand() + 1.f));
                uint16_t m = hass_f32_to_f16(0.3f * frand());
                memcpy(blk, &d, 2);
                int off = 2;
                if (type == HASS_GGML_Q4_1) { memcpy(blk + 2, &m, 2); off = 4; }
                int nq = type == HASS_GGML_Q8_0 ? 32 : 16;
                for (int k = 0; k < nq; k++) blk[off + k] = (uint8_t)(rng = rng * 6364136223846793005ull + 1, rng >> 33);
            }
        }
    }
}

// hass_matmul_shared (q/k/v, gate/up sharing an input) gives the bits of separate hass_matmul
// calls, for Q8_0 (the input quantized once) and F32 weights; mixed kinds are refused.
static void test_shared(void) {
    enum { NIN = 96, N = 5, NO = 3 };
    const int outs[NO] = {40, 24, 7};
    const int types[2] = {HASS_GGML_Q8_0, HASS_GGML_F32};
    float x[N * NIN];
    for (int i = 0; i < N * NIN; i++) x[i] = frand();
    for (int ti = 0; ti < 2; ti++) {
        size_t rb = hass_ggml_row_bytes(types[ti], NIN);
        uint8_t *wd[NO];
        hass_wmat wm[NO];
        const hass_wmat *wp[NO];
        float *ys[NO], *ysep[NO];
        for (int j = 0; j < NO; j++) {
            wd[j] = malloc(rb * outs[j]);
            fill(types[ti], wd[j], NIN, outs[j]);
            wm[j] = (hass_wmat){types[ti], NIN, outs[j], rb, wd[j], NULL};
            wp[j] = &wm[j];
            ys[j] = malloc(sizeof(float) * N * outs[j]);
            ysep[j] = malloc(sizeof(float) * N * outs[j]);
        }
        hass_err e = hass_matmul_shared(NULL, ys, x, N, wp, NO, NULL);
        int same = e == HASS_OK;
        for (int j = 0; j < NO && same; j++) {
            hass_matmul(NULL, ysep[j], x, N, wp[j], NULL);
            same = !memcmp(ys[j], ysep[j], sizeof(float) * N * outs[j]);
        }
        char name[96];
        snprintf(name, sizeof name, "matmul_shared_%s_equals_separate", hass_ggml_type_name(types[ti]));
        CHECK(name, same, "%s", e ? hass_errmsg() : "other bits than separate calls");
        for (int j = 0; j < NO; j++) free(wd[j]), free(ys[j]), free(ysep[j]);
    }
    float wf[4 * NIN] = {0}, y0[N * 4], y1[N * 4];
    uint8_t wq[4 * 3 * 34] = {0};
    hass_wmat a = {HASS_GGML_F32, NIN, 4, sizeof(float) * NIN, wf, NULL};
    hass_wmat b = {HASS_GGML_Q8_0, NIN, 4, 3 * 34, wq, NULL};
    const hass_wmat *mix[2] = {&a, &b};
    float *ym[2] = {y0, y1};
    CHECK("matmul_shared_refuses_mixed_kinds", hass_matmul_shared(NULL, ym, x, N, mix, 2, NULL) == HASS_EINVAL,
          "mixed F32 and Q8_0 accepted");
}

int main(void) {
    const int types[] = {HASS_GGML_F32, HASS_GGML_F16, HASS_GGML_BF16, HASS_GGML_Q8_0,
                         HASS_GGML_Q4_0, HASS_GGML_Q4_1};
    // block counts 18 (16 + a tail of 2), 3 (no full group, a tail of 4 with one zero block),
    // 21 (16 + a tail of 8 with three zero blocks), 9 (a tail of 16 with seven)
    const int n_ins[] = {576, 96, 672, 288};
    const int n_nin = (int)(sizeof n_ins / sizeof n_ins[0]);
    enum { NOUT = 37, NMAX = 13 };
    int best = hass_kernel_set_path(2);
    char name[128];
    hass_err perr;
    hass_pool *pool2 = hass_pool_new(2, &perr); // the block runs on 2 threads, single rows on 1
    CHECK("kernels_pool", pool2 && hass_pool_threads(pool2) == 2, "%s", hass_errmsg());
    // f16 round trip
    int f16ok = 1;
    for (int i = 0; i < 1000; i++) {
        float f = frand() * 100.f;
        float g = hass_f16_to_f32(hass_f32_to_f16(f));
        if (fabsf(f - g) > fabsf(f) * 1e-3f) f16ok = 0;
    }
    CHECK("kernels_f16_roundtrip", f16ok, "f16 conversion error above 1e-3 relative");
    // activation quantization: the AVX-512 quantizer writes the same bytes as the portable one
    // (values, scales and the packed part), also for all-zero blocks and halfway values
    if (best == 2) {
        enum { QN = 5, QIN = 672 };
        float *xa = malloc(sizeof(float) * QN * QIN);
        for (int i = 0; i < QN * QIN; i++) xa[i] = frand() * (i % 5 == 0 ? 8.f : 1.f);
        for (int k = 0; k < 32; k++) xa[32 + k] = 0.f;                   // a zero block
        for (int k = 0; k < 32; k++) xa[64 + k] = k == 0 ? 127.f : (float)(k % 7) - 2.5f; // ties
        size_t qb = hass_quant_qrow_bytes(QIN);
        uint8_t *qa = malloc(qb * QN), *qc = malloc(qb * QN);
        memset(qa, 0x5a, qb * QN);
        memset(qc, 0x5a, qb * QN);
        hass_kernel_set_path(0);
        hass_quant_rows(xa, QN, QIN, qc);
        hass_kernel_set_path(2);
        hass_quant_rows(xa, QN, QIN, qa);
        CHECK("kernels_quant_rows_avx512_equals_c", !memcmp(qa, qc, qb * QN),
              "the AVX-512 quantizer's bytes differ from the portable one's");
        free(xa); free(qa); free(qc);
    }
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        for (int ni = 0; ni < n_nin; ni++) {
            int type = types[ti], n_in = n_ins[ni];
            size_t rb = hass_ggml_row_bytes(type, n_in);
            uint8_t *w = malloc(rb * NOUT);
            float *x = malloc(sizeof(float) * NMAX * n_in), *deq = malloc(sizeof(float) * n_in);
            float *y = malloc(sizeof(float) * NMAX * NOUT), *y1 = malloc(sizeof(float) * NOUT);
            double *ref = malloc(sizeof(double) * NMAX * NOUT);
            void *q = malloc(hass_matmul_scratch_bytes(n_in, NMAX));
            float *xq = malloc(sizeof(float) * NMAX * n_in);
            fill(type, w, n_in, NOUT);
            for (int i = 0; i < NMAX * n_in; i++) x[i] = frand() * (i % 7 == 0 ? 4.f : 1.f);
            hass_wmat wm = {type, n_in, NOUT, rb, w, NULL};
            // reference: dequantized weights x (quantized, for Q types) activations in double
            memcpy(xq, x, sizeof(float) * NMAX * n_in);
            if (hass_quant_is_q(type)) {
                hass_quant_rows(x, NMAX, n_in, q);
                size_t qb = hass_quant_qrow_bytes(n_in);
                for (int i = 0; i < NMAX; i++) {
                    const int8_t *qs = (const int8_t *)((uint8_t *)q + i * qb);
                    const float *d = hass_quant_qrow_d((uint8_t *)q + i * qb, n_in);
                    for (int k = 0; k < n_in; k++) xq[i * n_in + k] = d[k / 32] * qs[k];
                }
            }
            double scale = 0;
            for (int r = 0; r < NOUT; r++) {
                hass_quant_row(&wm, r, deq);
                for (int i = 0; i < NMAX; i++) {
                    double s = 0;
                    for (int k = 0; k < n_in; k++) s += (double)deq[k] * xq[i * n_in + k];
                    if (type == HASS_GGML_Q4_1) {
                        // the m term uses llama.cpp's fp16-rounded s = d * sum(q) of the row
                        size_t qb = hass_quant_qrow_bytes(n_in);
                        const uint8_t *qr = (const uint8_t *)q + i * qb;
                        const float *dq = hass_quant_qrow_d(qr, n_in), *sq = hass_quant_qrow_s(qr, n_in);
                        const uint8_t *blk = w + r * rb;
                        for (int b = 0; b < n_in / 32; b++, blk += 20) {
                            int sum = 0;
                            for (int k = 0; k < 32; k++) sum += ((const int8_t *)qr)[b * 32 + k];
                            uint16_t mh;
                            memcpy(&mh, blk + 2, 2);
                            s += (double)hass_f16_to_f32(mh) * ((double)sq[b] - (double)dq[b] * sum);
                        }
                    }
                    ref[i * NOUT + r] = s;
                    if (fabs(s) > scale) scale = fabs(s);
                }
            }
            // the portable, AVX2 and AVX-512 paths on the weights as stored, then (path best + 1)
            // the AVX-512 kernel on the packed copy
            void *pk = best == 2 && hass_quant_is_q(type) ? hass_quant_pack(&wm) : NULL;
            // BF16 weights widened to F32: the drafter keeps a bf16-valued head in BF16 on the
            // promise that every path gives the same bits as for the F32 copy
            float *wf = type == HASS_GGML_BF16 ? malloc(sizeof(float) * NOUT * n_in) : NULL;
            float *yf = wf ? malloc(sizeof(float) * NMAX * NOUT) : NULL;
            for (int r = 0; wf && r < NOUT; r++) hass_quant_row(&wm, r, wf + (size_t)r * n_in);
            for (int path = 0; path <= best + (pk != NULL); path++) {
                hass_kernel_set_path(path > best ? best : path);
                wm.pk = path > best ? pk : NULL;
                const char *pname = path > best ? "avx512packed" : hass_kernel_path();
                hass_mm_job job = {&wm, y};
                hass_mm_run(&job, 1, x, NMAX, q, pool2);
                double err = 0;
                for (int i = 0; i < NMAX * NOUT; i++) {
                    double e = fabs(y[i] - ref[i]);
                    if (e > err) err = e;
                }
                snprintf(name, sizeof name, "kernels_%s_%s_n%d_vs_reference", pname,
                         hass_ggml_type_name(type), n_in);
                CHECK(name, err <= 1e-5 * scale + 1e-6, "max abs err %g (scale %g)", err, scale);
                // batch invariance: each row alone, one thread, equals its row in the block
                int same = 1;
                for (int i = 0; i < NMAX; i++) {
                    hass_mm_job j1 = {&wm, y1};
                    hass_mm_run(&j1, 1, x + i * n_in, 1, q, NULL);
                    if (memcmp(y1, y + i * NOUT, sizeof(float) * NOUT)) same = 0;
                }
                snprintf(name, sizeof name, "kernels_%s_%s_n%d_batch_invariant", pname,
                         hass_ggml_type_name(type), n_in);
                CHECK(name, same, "a row computed alone differs from the same row in a block of %d", NMAX);
                if (wf) {
                    hass_wmat w32 = {HASS_GGML_F32, n_in, NOUT, sizeof(float) * n_in, wf, NULL};
                    hass_mm_job jf = {&w32, yf};
                    hass_mm_run(&jf, 1, x, NMAX, q, pool2);
                    snprintf(name, sizeof name, "kernels_%s_bf16_n%d_equals_f32", pname, n_in);
                    CHECK(name, !memcmp(yf, y, sizeof(float) * NMAX * NOUT),
                          "BF16 weights give other bits than the same values in F32");
                }
            }
            wm.pk = NULL;
            free(pk);
            free(wf);
            free(yf);
            // f32 mode: quantized weights dequantized in the kernel, f32 activations as they are
            if (hass_quant_is_q(type)) {
                double scale2 = 0;
                for (int r = 0; r < NOUT; r++) {
                    hass_quant_row(&wm, r, deq);
                    for (int i = 0; i < NMAX; i++) {
                        double sum = 0;
                        for (int k = 0; k < n_in; k++) sum += (double)deq[k] * x[i * n_in + k];
                        ref[i * NOUT + r] = sum;
                        if (fabs(sum) > scale2) scale2 = fabs(sum);
                    }
                }
                for (int path = 0; path <= best; path++) {
                    hass_kernel_set_path(path);
                    hass_mm_job job = {&wm, y};
                    hass_mm_run_prec(&job, 1, x, NMAX, NULL, pool2, HASS_PREC_F32);
                    double err = 0;
                    for (int i = 0; i < NMAX * NOUT; i++) {
                        double e = fabs(y[i] - ref[i]);
                        if (e > err) err = e;
                    }
                    snprintf(name, sizeof name, "kernels_f32act_%s_%s_n%d_vs_reference",
                             hass_kernel_path(), hass_ggml_type_name(type), n_in);
                    CHECK(name, err <= 1e-5 * scale2 + 1e-6, "max abs err %g (scale %g)", err, scale2);
                    int same = 1;
                    for (int i = 0; i < NMAX; i++) {
                        hass_mm_job j1 = {&wm, y1};
                        hass_mm_run_prec(&j1, 1, x + i * n_in, 1, NULL, NULL, HASS_PREC_F32);
                        if (memcmp(y1, y + i * NOUT, sizeof(float) * NOUT)) same = 0;
                    }
                    snprintf(name, sizeof name, "kernels_f32act_%s_%s_n%d_batch_invariant",
                             hass_kernel_path(), hass_ggml_type_name(type), n_in);
                    CHECK(name, same, "a row computed alone differs from the same row in a block "
                          "of %d", NMAX);
                }
            }
            hass_kernel_set_path(2);
            free(w); free(x); free(deq); free(y); free(y1); free(ref); free(q); free(xq);
        }
    }
    hass_pool_free(pool2);
    test_shared();
    UNIT_DONE();
}
