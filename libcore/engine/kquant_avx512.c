// kquant_avx512.c: AVX-512 VNNI row kernels for Q5_0, Q5_1 and Q2_K..Q6_K weights x 8-bit
// activations, on the blocks as stored (no repacking). Each weight block is unpacked once for
// all R activation rows; per row the lanes accumulate in a fixed order that does not depend on
// R, so a row's result is the same whatever rows share the call (batch invariance). The integer
// block dots are exact; they differ from the portable specification (kquant.c) only in the
// float work: the order of the additions, where products are grouped, fused multiply-adds.
#include "kquant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#include "gguf.h"

#define T_K512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

// A little-endian f16 at p as a float (F16C: exact, as hass_f16_to_f32).
T_K512 static inline float f16_at(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

// Lane l of the result: v[lane 2c + l / 8] (the scale of the 32-block that lane l covers).
T_K512 static inline __m512 pair_bcast(__m512 v, int c) {
    const __m512i i0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(_mm512_add_epi32(i0, _mm512_set1_epi32(2 * c)), v);
}

// The 6-bit scales (s) and mins (m) of the 8 groups of a Q4_K/Q5_K block's 12 scale bytes, as
// 8 int32 lanes each (hass_kq_scale_min, on 32-bit words).
T_K512 static inline void scale_min8(const uint8_t *sc, __m256i *s, __m256i *m) {
    uint64_t s8, m8;
    hass_kq_scale_min8(sc, &s8, &m8);
    *s = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)s8));
    *m = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m8));
}

// 64 bytes: 32 of byte a, then 32 of byte b (one byte per value of two 32-blocks).
T_K512 static inline __m512i two_bytes(int a, int b) {
    return _mm512_inserti64x4(_mm512_set1_epi8((char)a), _mm256_set1_epi8((char)b), 1);
}

// The 2-bit pieces of 32-blocks 2c and 2c + 1 of a K-quant block from its 64 bytes qs (kquant.h:
// block j takes bits 2 (j % 4) of bytes 32 (j / 4) ..), as 64 bytes 0..3.
T_K512 static inline __m512i crumbs64(const uint8_t *qs, int c) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (c / 2)));
    int s = 4 * (c % 2);
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(q, s)), _mm256_srli_epi16(q, s + 2), 1);
    return _mm512_and_si512(v, _mm512_set1_epi8(3));
}

// Q4_K / Q5_K x R rows (type a compile-time constant in each instance): per 256-block, chunk c
// of 32 bytes holds 32-blocks 2c (low nibbles) and 2c + 1 (high nibbles), which meet the
// activation bytes 64c .. 64c + 63 as they lie (Q5_K: the fifth bit, bit j of qh[k] for value
// k of 32-block j, added as 16); lane float work: acc += float(idot) * (D dx) with D dx worked
// out once per block and row (8 lanes, one per 32-block); the mins: accm += M * se (8 lanes).
T_K512 static inline __attribute__((always_inline)) void
q45k_r(int type, int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
       const float *const *ser, const int R, float *out, size_t os) {
    const __m512i m4 = _mm512_set1_epi8(15);
    const int five = type == HASS_GGML_Q5_K;
    const size_t bb = five ? 176 : 144, qso = five ? 48 : 16;
    __m512 acc[8];
    __m256 accm[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) {
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm256_setzero_ps();
    }
    for (int sb = 0; sb < n_in / 256; sb++) {
        const uint8_t *b = w + (size_t)sb * bb;
        __m256i si, mi;
        scale_min8(b + 4, &si, &mi);
        __m256 Dv = _mm256_mul_ps(_mm256_set1_ps(f16_at(b)), _mm256_cvtepi32_ps(si));
        __m256 Mv = _mm256_mul_ps(_mm256_set1_ps(f16_at(b + 2)), _mm256_cvtepi32_ps(mi));
        __m512i W[4];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(b + qso + 32 * c));
            W[c] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
            if (five) {
                __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 16)));
                __mmask64 k = _mm512_test_epi8_mask(qh, two_bytes(1 << 2 * c, 2 << 2 * c));
                W[c] = _mm512_or_si512(W[c], _mm512_maskz_set1_epi8(k, 16));
            }
        }
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const int8_t *x = xr[r] + 256 * sb;
            __m512 Dx = _mm512_castps256_ps512(_mm256_mul_ps(Dv, _mm256_loadu_ps(dxr[r] + 8 * sb)));
            _Pragma("GCC unroll 4")
            for (int c = 0; c < 4; c++) {
                __m512i id = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[c], _mm512_loadu_si512((const void *)(x + 64 * c)));
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id), pair_bcast(Dx, c), acc[r]);
            }
            accm[r] = _mm256_fmadd_ps(Mv, _mm256_loadu_ps(ser[r] + 8 * sb), accm[r]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(accm[r]), _mm256_extractf128_ps(accm[r], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        out[r * os] = _mm512_reduce_add_ps(acc[r]) - _mm_cvtss_f32(h);
    }
}

// The 16 group scales of a Q3_K block (s6 - 32 of kquant.h, from its 12 scale bytes sc) as
// floats.
T_K512 static inline __m512 q3k_scales(const uint8_t *sc) {
    uint8_t s16[16];
    hass_kq_q3k_scales16(sc, s16);
    __m128i s = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)s16), _mm_set1_epi8(32));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(s));
}

// Q6_K / Q3_K / Q2_K x R rows, the types of 16 groups of 16 values (type a compile-time constant
// in each instance). Vector k holds values 64k .. 64k + 63, so lane l is scale group 4k + l / 4,
// whose scale times the activation's (d sc_g dx_(g/2), 16 lanes: T) is worked out once per block
// and row. Q6_K and Q3_K have signed values (q - 32; q2 - 4 where the hmask bit is clear), made
// once per block; each activation vector is made unsigned (x + 128) and the dot corrected by 128
// * (the lane's weight sum), an integer worked out once per block for all rows. Q2_K's values are
// unsigned and dot the activation bytes as they lie; its mins subtract, per lane, the lane's
// activation sum times dmin (sc_g >> 4) dx (T2).
T_K512 static inline __attribute__((always_inline)) void
qk16_r(int type, int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
       const int R, float *out, size_t os) {
    const __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(3), c32 = _mm512_set1_epi8(32);
    const __m512i x80 = _mm512_set1_epi8((char)0x80), one = _mm512_set1_epi8(1);
    const __m512i g0 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i half = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const size_t bb = type == HASS_GGML_Q6_K ? 210 : type == HASS_GGML_Q3_K ? 110 : 84;
    const int sgn = type != HASS_GGML_Q2_K;
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (int sb = 0; sb < n_in / 256; sb++) {
        const uint8_t *b = w + (size_t)sb * bb;
        __m512 S, S2 = _mm512_setzero_ps();
        __m512i W[4], ws[4];
        if (type == HASS_GGML_Q6_K) {
            S = _mm512_mul_ps(_mm512_set1_ps(f16_at(b + 208)),
                              _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192)))));
        } else if (type == HASS_GGML_Q3_K) {
            S = _mm512_mul_ps(_mm512_set1_ps(f16_at(b + 108)), q3k_scales(b + 96));
        } else {
            __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b));
            S = _mm512_mul_ps(_mm512_set1_ps(f16_at(b + 80)), _mm512_cvtepi32_ps(_mm512_and_si512(sc, _mm512_set1_epi32(15))));
            S2 = _mm512_mul_ps(_mm512_set1_ps(f16_at(b + 82)), _mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 4)));
        }
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) {
            if (type == HASS_GGML_Q6_K) {
                int h = k / 2, nib = k % 2;
                __m512i lo = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512((const void *)(b + 64 * h)), 4 * nib), m4);
                __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
                __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(qh, 4 * nib)),
                                                _mm256_srli_epi16(qh, 4 * nib + 2), 1);
                hi = _mm512_slli_epi16(_mm512_and_si512(hi, m2), 4);
                W[k] = _mm512_sub_epi8(_mm512_or_si512(lo, hi), c32);
            } else if (type == HASS_GGML_Q3_K) {
                __m512i v = crumbs64(b + 32, k);
                __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b));
                __mmask64 set = _mm512_test_epi8_mask(hm, two_bytes(1 << 2 * k, 2 << 2 * k));
                W[k] = _mm512_mask_sub_epi8(v, (__mmask64)~set, v, _mm512_set1_epi8(4));
            } else {
                W[k] = crumbs64(b + 16, k);
            }
            if (sgn) ws[k] = _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), one, W[k]), 7);
        }
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const int8_t *x = xr[r] + 256 * sb;
            __m512 dx16 = _mm512_permutexvar_ps(half, _mm512_castps256_ps512(_mm256_loadu_ps(dxr[r] + 8 * sb)));
            __m512 T = _mm512_mul_ps(S, dx16), T2 = _mm512_mul_ps(S2, dx16);
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                __m512i xv = _mm512_loadu_si512((const void *)(x + 64 * k)), id;
                __m512i gk = _mm512_add_epi32(g0, _mm512_set1_epi32(4 * k));
                if (sgn)
                    id = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(xv, x80), W[k]), ws[k]);
                else
                    id = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[k], xv);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id), _mm512_permutexvar_ps(gk, T), acc[r]);
                if (!sgn) {
                    __m512i is = _mm512_dpbusd_epi32(_mm512_setzero_si512(), one, xv);
                    acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(is), _mm512_permutexvar_ps(gk, T2), acc[r]);
                }
            }
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) out[r * os] = _mm512_reduce_add_ps(acc[r]);
}

// Q5_0 / Q5_1 x R rows, two 32-blocks a vector: the 5-bit values as bytes 0..31 (nibbles, then
// the fifth bit from qh as a byte mask), dotted with the activation bytes as they lie; lane float
// work acc += float(idot) * (d dx); the offset as corr += c * se per block (se = dx * isx; Q5_0:
// c = d, the result acc - 16 corr; Q5_1: c = m, the result acc + corr).
T_K512 static inline __attribute__((always_inline)) void
q5_r(int type, int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
     const float *const *ser, const int R, float *out, size_t os) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const int one = type == HASS_GGML_Q5_1;
    const size_t bb = one ? 24 : 22, qho = one ? 4 : 2;
    int nb = n_in / 32;
    __m512 acc[8];
    float corr[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps(), corr[r] = 0.f;
    for (int b = 0; b < nb; b += 2) {
        int two = b + 1 < nb;
        __m256i v[2];
        float d[2] = {0.f, 0.f}, c[2] = {0.f, 0.f};
        for (int h = 0; h < 2; h++) {
            if (h && !two) {
                v[h] = _mm256_setzero_si256();
                continue;
            }
            const uint8_t *p = w + (size_t)(b + h) * bb;
            uint32_t qh;
            memcpy(&qh, p + qho, 4);
            __m128i qs = _mm_loadu_si128((const __m128i *)(p + qho + 4));
            __m256i lohi = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), m4);
            v[h] = _mm256_or_si256(lohi, _mm256_maskz_set1_epi8((__mmask32)qh, 16));
            d[h] = f16_at(p);
            c[h] = one ? f16_at(p + 2) : d[h];
        }
        __m512i W = _mm512_inserti64x4(_mm512_castsi256_si512(v[0]), v[1], 1);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const float *dx = dxr[r] + b, *se = ser[r] + b;
            float s0 = d[0] * dx[0], s1 = two ? d[1] * dx[1] : 0.f;
            __m512 sc = pair_bcast(_mm512_castps128_ps512(_mm_set_ps(0.f, 0.f, s1, s0)), 0);
            __m512i id = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W, _mm512_loadu_si512((const void *)(xr[r] + 32 * b)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id), sc, acc[r]);
            corr[r] += c[0] * se[0] + (two ? c[1] * se[1] : 0.f);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) out[r * os] = _mm512_reduce_add_ps(acc[r]) + (one ? 1.f : -16.f) * corr[r];
}

// Whether hass_kq_avx512 has a kernel for a type.
int hass_kq_avx512_has(int type) { return hass_kq_block_bytes(type) != 0; }

// One weight row against R (<= 8) quantized activation rows.
T_K512 void hass_kq_avx512(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                           const float *const *dx, const float *const *se, int R, float *out,
                           size_t os) {
#define KQ_CASE(n)                                                                                 \
    case n:                                                                                       \
        HASS_KQ_ROW_SWITCH(n)                                                                     \
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
