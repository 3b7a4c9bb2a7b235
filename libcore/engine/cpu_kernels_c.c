// cpu_kernels_c.c: the portable C matmul kernels, the specification of the SIMD ones
// (cpu_kernels_x86.c): quantized weights x 8-bit activation rows (an integer dot per block, the
// float sum in block order), quantized weights x f32 rows, float weights x f32 rows; the kernel
// table of the portable path.
#include "matmul_int.h"

#include "kquant.h"

// Portable: quantized weights x 8-bit activations, integer dot per block, float sum in order.
static void kq_c(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, int R,
                 float *out, size_t os) {
    int nb = n_in / 32;
    for (int r = 0; r < R; r++) {
        const uint8_t *xr = x + r * xs;
        const int8_t *qs = (const int8_t *)xr;
        qlayout ql = qrow_layout(n_in);
        const float *dx = (const float *)(xr + ql.d), *sx = (const float *)(xr + ql.s);
        float acc = 0.f;
        const uint8_t *p = w;
        for (int b = 0; b < nb; b++) {
            const int8_t *q = qs + b * 32;
            int isum = 0;
            if (type == HASS_GGML_Q8_0) {
                for (int k = 0; k < 32; k++) isum += (int8_t)p[2 + k] * q[k];
                acc += hass_f16_to_f32(rd16(p)) * dx[b] * (float)isum;
                p += 34;
            } else if (type == HASS_GGML_Q4_0) {
                for (int k = 0; k < 16; k++)
                    isum += ((p[2 + k] & 15) - 8) * q[k] + ((p[2 + k] >> 4) - 8) * q[k + 16];
                acc += hass_f16_to_f32(rd16(p)) * dx[b] * (float)isum;
                p += 18;
            } else { // Q4_1
                for (int k = 0; k < 16; k++) isum += (p[4 + k] & 15) * q[k] + (p[4 + k] >> 4) * q[k + 16];
                acc += hass_f16_to_f32(rd16(p)) * dx[b] * (float)isum;
                acc += hass_f16_to_f32(rd16(p + 2)) * sx[b];
                p += 20;
            }
        }
        out[r * os] = acc;
    }
}

// Portable, f32 mode: quantized weights dequantized per block to f32 (as hass_quant_row), times
// the f32 activations as they are; 32 partial sums (one per block position) added in order at
// the end.
static void kqf_c(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, int R,
                  float *out, size_t os) {
    int nb = n_in / 32;
    for (int r = 0; r < R; r++) {
        const float *xr = (const float *)(x + r * xs);
        float a[32] = {0}, wb[32];
        for (int b = 0; b < nb; b++) {
            deq_block(type, w, b, wb);
            for (int k = 0; k < 32; k++) a[k] += wb[k] * xr[b * 32 + k];
        }
        float s = 0.f;
        for (int k = 0; k < 32; k++) s += a[k];
        out[r * os] = s;
    }
}

// Portable: float-type weights x float activations, 4 partial sums in fixed order.
static void kf_c(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, int R,
                 float *out, size_t os) {
    for (int r = 0; r < R; r++) {
        const float *xr = (const float *)(x + r * xs);
        float a[4] = {0, 0, 0, 0};
        int i = 0;
        for (; i + 4 <= n_in; i += 4)
            for (int k = 0; k < 4; k++) a[k] += wf(type, w, i + k) * xr[i + k];
        for (; i < n_in; i++) a[0] += wf(type, w, i) * xr[i];
        out[r * os] = (a[0] + a[1]) + (a[2] + a[3]);
    }
}

// Q5_x and K-quant weights x 8-bit activations: kquant.c's specification, row by row.
static void kk_c(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, int R,
                 float *out, size_t os) {
    for (int r = 0; r < R; r++)
        out[r * os] = hass_kq_dot_q8(type, n_in, w, (const int8_t *)(x + r * xs),
                                     hass_quant_qrow_d(x + r * xs, n_in));
}

// Q5_x and K-quant weights x f32 activations (f32 mode), row by row.
static void kkf_c(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, int R,
                  float *out, size_t os) {
    for (int r = 0; r < R; r++) out[r * os] = hass_kq_dot_f32(type, n_in, w, (const float *)(x + r * xs));
}

MM_ROWS(kq_c_rows, kq_c, )
MM_ROWS(kqf_c_rows, kqf_c, )
MM_ROWS(kf_c_rows, kf_c, )
MM_ROWS(kk_c_rows, kk_c, )
MM_ROWS(kkf_c_rows, kkf_c, )

// The portable Q5_x / K-quant kernels, shared with the x86 tables.
void hass_mm_kk_c(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs, int R,
                  float *out, size_t os) {
    kk_c_rows(w, o0, o1, x, xs, R, out, os);
}

// The same in f32 mode.
void hass_mm_kkf_c(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs, int R,
                   float *out, size_t os) {
    kkf_c_rows(w, o0, o1, x, xs, R, out, os);
}

// The portable path: the row kernels take any R; 4 activation rows a call.
const hass_mm_kernels hass_mm_kernels_c = {
    .kq = kq_c_rows, .kqf = kqf_c_rows, .kf = kf_c_rows, .kk = kk_c_rows, .kkf = kkf_c_rows,
    .q_rows = 4, .f_rows = 4};
