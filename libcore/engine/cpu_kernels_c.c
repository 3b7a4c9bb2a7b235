// cpu_kernels_c.c: the portable C matmul kernels, the specification of the SIMD ones
// (cpu_kernels_x86.c): quantized weights x 8-bit activation rows (an integer dot per block, the
// float sum in block order), quantized weights x f32 rows, float weights x f32 rows; the kernel
// table of the portable path.
#include "matmul_int.h"

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

MM_ROWS(kq_c_rows, kq_c, )
MM_ROWS(kqf_c_rows, kqf_c, )
MM_ROWS(kf_c_rows, kf_c, )

// The portable path: the row kernels take any R; 4 activation rows a call.
const hass_mm_kernels hass_mm_kernels_c = {
    .kq = kq_c_rows, .kqf = kqf_c_rows, .kf = kf_c_rows, .q_rows = 4, .f_rows = 4};
