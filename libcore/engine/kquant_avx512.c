// kquant_avx512.c: AVX-512 VNNI row kernels for Q4_K, Q6_K and Q5_0 weights x 8-bit activations, on
// the blocks as stored (no repacking). Each weight block is unpacked once for all R activation
// rows; per row the lanes accumulate in a fixed order that does not depend on R, so a row's
// result is the same whatever rows share the call (batch invariance). They differ from the
// portable specification (kquant.c) only in the order of the float additions.
#include "kquant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#include "gguf.h"
#include "half.h"

#define T_K512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

// A little-endian f16 at p as a float.
static inline float f16_at(const uint8_t *p) { return hass_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

// Lane l of the result: v[lane 2c + l / 8] (the scale of the 32-block that lane l covers).
T_K512 static inline __m512 pair_bcast(__m512 v, int c) {
    const __m512i i0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(_mm512_add_epi32(i0, _mm512_set1_epi32(2 * c)), v);
}

// The 6-bit scales (s) and mins (m) of the 8 groups of a Q4_K/Q5_K block's 12 scale bytes, as
// 8 int32 lanes each (hass_kq_scale_min, on 32-bit words).
T_K512 static inline void scale_min8(const uint8_t *sc, __m256i *s, __m256i *m) {
    uint32_t a, b, c;
    memcpy(&a, sc, 4), memcpy(&b, sc + 4, 4), memcpy(&c, sc + 8, 4);
    uint64_t s8 = (a & 0x3f3f3f3fu) | (uint64_t)((c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u)) << 32;
    uint64_t m8 = (b & 0x3f3f3f3fu) | (uint64_t)(((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u)) << 32;
    *s = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)s8));
    *m = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m8));
}

// Q4_K x R rows: per 256-block, chunk c of 32 bytes holds 32-blocks 2c (low nibbles) and 2c + 1
// (high nibbles), which meet the activation bytes 64c .. 64c + 63 as they lie; lane float work:
// acc += float(idot) * (D dx) with D dx worked out once per block and row (8 lanes, one per
// 32-block); the mins: accm += M * se (8 lanes).
T_K512 static inline __attribute__((always_inline)) void
q4k_r(int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
      const float *const *ser, const int R, float *out, size_t os) {
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[8];
    __m256 accm[8];
    for (int r = 0; r < R; r++) {
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm256_setzero_ps();
    }
    for (int sb = 0; sb < n_in / 256; sb++) {
        const uint8_t *b = w + (size_t)sb * 144;
        __m256i si, mi;
        scale_min8(b + 4, &si, &mi);
        __m256 Dv = _mm256_mul_ps(_mm256_set1_ps(f16_at(b)), _mm256_cvtepi32_ps(si));
        __m256 Mv = _mm256_mul_ps(_mm256_set1_ps(f16_at(b + 2)), _mm256_cvtepi32_ps(mi));
        __m512i W[4];
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
            W[c] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
        }
        for (int r = 0; r < R; r++) {
            const int8_t *x = xr[r] + 256 * sb;
            __m512 Dx = _mm512_castps256_ps512(_mm256_mul_ps(Dv, _mm256_loadu_ps(dxr[r] + 8 * sb)));
            for (int c = 0; c < 4; c++) {
                __m512i id = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[c], _mm512_loadu_si512((const void *)(x + 64 * c)));
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id), pair_bcast(Dx, c), acc[r]);
            }
            accm[r] = _mm256_fmadd_ps(Mv, _mm256_loadu_ps(ser[r] + 8 * sb), accm[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(accm[r]), _mm256_extractf128_ps(accm[r], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        out[r * os] = _mm512_reduce_add_ps(acc[r]) - _mm_cvtss_f32(h);
    }
}

// Q6_K x R rows: the 6-bit values made signed (q - 32) once per block; each activation vector is
// made unsigned (x + 128) and the dot corrected by 128 * (the lane's weight sum), an integer
// worked out once per block for all rows; lane l of vector k is scale group 4k + l / 4, whose
// scale times the activation's (d sc_g dx_(g/2), 16 lanes) is worked out once per block and row.
T_K512 static inline __attribute__((always_inline)) void
q6k_r(int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr, const int R,
      float *out, size_t os) {
    const __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(3), c32 = _mm512_set1_epi8(32);
    const __m512i x80 = _mm512_set1_epi8((char)0x80), one = _mm512_set1_epi8(1);
    const __m512i g0 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i half = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    __m512 acc[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (int sb = 0; sb < n_in / 256; sb++) {
        const uint8_t *b = w + (size_t)sb * 210;
        __m512 S = _mm512_mul_ps(_mm512_set1_ps(f16_at(b + 208)),
                                 _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192)))));
        __m512i W[4], ws[4];
        for (int k = 0; k < 4; k++) {
            int h = k / 2, nib = k % 2;
            __m512i lo = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512((const void *)(b + 64 * h)), 4 * nib), m4);
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
            __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(qh, 4 * nib)),
                                            _mm256_srli_epi16(qh, 4 * nib + 2), 1);
            hi = _mm512_slli_epi16(_mm512_and_si512(hi, m2), 4);
            W[k] = _mm512_sub_epi8(_mm512_or_si512(lo, hi), c32);
            ws[k] = _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), one, W[k]), 7);
        }
        for (int r = 0; r < R; r++) {
            const int8_t *x = xr[r] + 256 * sb;
            __m512 dx16 = _mm512_permutexvar_ps(half, _mm512_castps256_ps512(_mm256_loadu_ps(dxr[r] + 8 * sb)));
            __m512 T = _mm512_mul_ps(S, dx16);
            for (int k = 0; k < 4; k++) {
                __m512i xu = _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + 64 * k)), x80);
                __m512i id = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), xu, W[k]), ws[k]);
                __m512 Tk = _mm512_permutexvar_ps(_mm512_add_epi32(g0, _mm512_set1_epi32(4 * k)), T);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id), Tk, acc[r]);
            }
        }
    }
    for (int r = 0; r < R; r++) out[r * os] = _mm512_reduce_add_ps(acc[r]);
}

// Q5_0 x R rows, two 32-blocks a vector: the 5-bit values as bytes 0..31 (nibbles, then the
// fifth bit from qh as a byte mask), dotted with the activation bytes as they lie; lane float
// work acc += float(idot) * (d dx); the -16 offset as corr += d * se per block (se = dx * isx).
T_K512 static inline __attribute__((always_inline)) void
q50_r(int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
      const float *const *ser, const int R, float *out, size_t os) {
    const __m256i m4 = _mm256_set1_epi8(15);
    int nb = n_in / 32;
    __m512 acc[8];
    float corr[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps(), corr[r] = 0.f;
    for (int b = 0; b < nb; b += 2) {
        int two = b + 1 < nb;
        __m256i v[2];
        float d[2] = {0.f, 0.f};
        for (int h = 0; h < 2; h++) {
            if (h && !two) {
                v[h] = _mm256_setzero_si256();
                continue;
            }
            const uint8_t *p = w + (size_t)(b + h) * 22;
            uint32_t qh;
            memcpy(&qh, p + 2, 4);
            __m128i qs = _mm_loadu_si128((const __m128i *)(p + 6));
            __m256i lohi = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), m4);
            v[h] = _mm256_or_si256(lohi, _mm256_maskz_set1_epi8((__mmask32)qh, 16));
            d[h] = f16_at(p);
        }
        __m512i W = _mm512_inserti64x4(_mm512_castsi256_si512(v[0]), v[1], 1);
        for (int r = 0; r < R; r++) {
            const float *dx = dxr[r] + b, *se = ser[r] + b;
            float s0 = d[0] * dx[0], s1 = two ? d[1] * dx[1] : 0.f;
            __m512 sc = pair_bcast(_mm512_castps128_ps512(_mm_set_ps(0.f, 0.f, s1, s0)), 0);
            __m512i id = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W, _mm512_loadu_si512((const void *)(xr[r] + 32 * b)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id), sc, acc[r]);
            corr[r] += d[0] * se[0] + (two ? d[1] * se[1] : 0.f);
        }
    }
    for (int r = 0; r < R; r++) out[r * os] = _mm512_reduce_add_ps(acc[r]) - 16.f * corr[r];
}

// Whether hass_kq_avx512 has a kernel for a type.
int hass_kq_avx512_has(int type) {
    return type == HASS_GGML_Q4_K || type == HASS_GGML_Q6_K || type == HASS_GGML_Q5_0;
}

// One weight row against R (<= 8) quantized activation rows.
T_K512 void hass_kq_avx512(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                           const float *const *dx, const float *const *se, int R, float *out,
                           size_t os) {
#define KQ_CASE(n)                                                                                 \
    case n:                                                                                       \
        if (type == HASS_GGML_Q4_K) q4k_r(n_in, w, x, dx, se, n, out, os);                        \
        else if (type == HASS_GGML_Q5_0) q50_r(n_in, w, x, dx, se, n, out, os);                   \
        else q6k_r(n_in, w, x, dx, n, out, os);                                                   \
        break;
    switch (R) {
        KQ_CASE(8) KQ_CASE(7) KQ_CASE(6) KQ_CASE(5) KQ_CASE(4) KQ_CASE(3) KQ_CASE(2)
        default: KQ_CASE(1)
    }
#undef KQ_CASE
}
#else
int hass_kq_avx512_has(int type) { return 0; }
void hass_kq_avx512(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                    const float *const *dx, const float *const *se, int R, float *out, size_t os) {}
#endif
