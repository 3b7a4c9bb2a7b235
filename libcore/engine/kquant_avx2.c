// kquant_avx2.c: AVX2+FMA row kernels for Q5_0, Q5_1 and Q2_K..Q6_K weights x 8-bit activations,
// for CPUs without AVX-512 VNNI, on the blocks as stored. One 32-block at a time: its 32 weight
// bytes are unpacked once for all R (<= 4 an instance) activation rows, the integer dot is
// maddubs (unsigned weight bytes x signed activation bytes; signed weights as |w| x sign(x, w))
// then madd (by 1, or by the 16-value groups' integer scales), exact; per row 8 float lanes
// accumulate in a fixed order that does not depend on R (batch invariance). They differ from the
// portable specification (kquant.c) only in the float work: the order of the additions, where
// products are grouped, fused multiply-adds.
#include "kquant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "gguf.h"

#define T_KAVX2 __attribute__((target("avx2,fma,f16c")))

// A little-endian f16 at p as a float (F16C: exact, as hass_f16_to_f32).
T_KAVX2 static inline float f16_at(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

// Integer dot of 32 weight bytes w (unsigned, or signed with sgn) with 32 activation bytes x as
// 8 int32 lanes (lane i: values 4i .. 4i + 3, the pairs of 16-bit sums times m16's pairs).
T_KAVX2 static inline __m256i dot32(__m256i w, __m256i x, int sgn, __m256i m16) {
    __m256i p = sgn ? _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
                    : _mm256_maddubs_epi16(w, x);
    return _mm256_madd_epi16(p, m16);
}

// Sum of 8 lanes in a fixed order.
T_KAVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// 16 int16 lanes: 8 of a, then 8 of b.
T_KAVX2 static inline __m256i halves16(int a, int b) {
    return _mm256_set_m128i(_mm_set1_epi16((short)b), _mm_set1_epi16((short)a));
}

// Q4_K / Q5_K x R rows (type a compile-time constant in each instance): 32-block j is the low
// (j even) or high nibbles of the 32 bytes qs[32 (j / 2) ..] (Q5_K: the fifth bit, bit j of
// qh[k] for value k, added as 16); per row and block acc += float(idot) * (D dx)_j, D dx worked
// out once per block and row (8 floats); the mins accm += M * se (8 lanes).
T_KAVX2 static inline __attribute__((always_inline)) void
q45k_r(int type, int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
       const float *const *ser, const int R, float *out, size_t os) {
    const __m256i m4 = _mm256_set1_epi8(15), b1 = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
    const int five = type == HASS_GGML_Q5_K;
    const size_t bb = five ? 176 : 144, qso = five ? 48 : 16;
    __m256 acc[4], accm[4];
    float Dx[4][8];
    for (int r = 0; r < R; r++) acc[r] = accm[r] = _mm256_setzero_ps();
    for (int sb = 0; sb < n_in / 256; sb++) {
        const uint8_t *b = w + (size_t)sb * bb;
        uint64_t s8, m8;
        hass_kq_scale_min8(b + 4, &s8, &m8);
        __m256 Dv = _mm256_mul_ps(_mm256_set1_ps(f16_at(b)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)s8))));
        __m256 Mv = _mm256_mul_ps(_mm256_set1_ps(f16_at(b + 2)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m8))));
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(Dx[r], _mm256_mul_ps(Dv, _mm256_loadu_ps(dxr[r] + 8 * sb)));
            accm[r] = _mm256_fmadd_ps(Mv, _mm256_loadu_ps(ser[r] + 8 * sb), accm[r]);
        }
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(b + qso + 32 * (j / 2)));
            __m256i W = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, m4);
            if (five) W = _mm256_or_si256(W, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, j), b1), 4));
            _Pragma("GCC unroll 4")
            for (int r = 0; r < R; r++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(xr[r] + 256 * sb + 32 * j));
                __m256 f = _mm256_cvtepi32_ps(dot32(W, x, 0, ones));
                acc[r] = _mm256_fmadd_ps(f, _mm256_broadcast_ss(&Dx[r][j]), acc[r]);
            }
        }
    }
    for (int r = 0; r < R; r++) out[r * os] = hsum8(acc[r]) - hsum8(accm[r]);
}

// Q6_K / Q3_K / Q2_K x R rows, the types of 16 groups of 16 values (type a compile-time constant
// in each instance): 32-block j holds groups 2j and 2j + 1, whose integer scales multiply the
// lanes' 16-bit sums in the madd (lanes 0..3: group 2j, 4..7: group 2j + 1); per row and block
// acc += float(scaled idot) * (d dx_j). Q6_K and Q3_K values are signed (q - 32; q2 - 4 where
// the hmask bit is clear). Q2_K's mins subtract float(sum of (sc_g >> 4) x) * (dmin dx_j).
T_KAVX2 static inline __attribute__((always_inline)) void
qk16_r(int type, int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
       const int R, float *out, size_t os) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), b1 = _mm256_set1_epi8(1);
    const __m256i ones = _mm256_set1_epi16(1);
    const size_t bb = type == HASS_GGML_Q6_K ? 210 : type == HASS_GGML_Q3_K ? 110 : 84;
    const int q2 = type == HASS_GGML_Q2_K;
    __m256 acc[4];
    float dd[4][8], dm[4][8];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int sb = 0; sb < n_in / 256; sb++) {
        const uint8_t *b = w + (size_t)sb * bb;
        int sc[16];
        float d, dmin = 0.f;
        if (type == HASS_GGML_Q6_K) {
            for (int g = 0; g < 16; g++) sc[g] = (int8_t)b[192 + g];
            d = f16_at(b + 208);
        } else if (type == HASS_GGML_Q3_K) {
            uint8_t s16[16];
            hass_kq_q3k_scales16(b + 96, s16);
            for (int g = 0; g < 16; g++) sc[g] = s16[g] - 32;
            d = f16_at(b + 108);
        } else {
            for (int g = 0; g < 16; g++) sc[g] = b[g];
            d = f16_at(b + 80), dmin = f16_at(b + 82);
        }
        for (int r = 0; r < R; r++) {
            __m256 dx = _mm256_loadu_ps(dxr[r] + 8 * sb);
            _mm256_storeu_ps(dd[r], _mm256_mul_ps(_mm256_set1_ps(d), dx));
            if (q2) _mm256_storeu_ps(dm[r], _mm256_mul_ps(_mm256_set1_ps(dmin), dx));
        }
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) {
            int h = j / 4, s = 2 * (j % 4);
            __m256i W, M = _mm256_setzero_si256(), sc16;
            if (type == HASS_GGML_Q6_K) {
                __m256i lo = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32 * (j % 2)));
                __m256i hi = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
                lo = _mm256_and_si256(_mm256_srli_epi16(lo, 4 * ((j % 4) / 2)), m4);
                hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hi, s), m2), 4);
                W = _mm256_sub_epi8(_mm256_or_si256(lo, hi), _mm256_set1_epi8(32));
                sc16 = halves16(sc[2 * j], sc[2 * j + 1]);
            } else if (type == HASS_GGML_Q3_K) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * h));
                __m256i hb = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)b), j), b1);
                W = _mm256_and_si256(_mm256_srli_epi16(q, s), m2);
                W = _mm256_sub_epi8(_mm256_or_si256(W, _mm256_slli_epi16(hb, 2)), _mm256_set1_epi8(4));
                sc16 = halves16(sc[2 * j], sc[2 * j + 1]);
            } else {
                __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * h));
                W = _mm256_and_si256(_mm256_srli_epi16(q, s), m2);
                sc16 = halves16(sc[2 * j] & 15, sc[2 * j + 1] & 15);
                M = _mm256_set_m128i(_mm_set1_epi8((char)(sc[2 * j + 1] >> 4)), _mm_set1_epi8((char)(sc[2 * j] >> 4)));
            }
            _Pragma("GCC unroll 4")
            for (int r = 0; r < R; r++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(xr[r] + 256 * sb + 32 * j));
                __m256 f = _mm256_cvtepi32_ps(dot32(W, x, !q2, sc16));
                acc[r] = _mm256_fmadd_ps(f, _mm256_broadcast_ss(&dd[r][j]), acc[r]);
                if (q2) {
                    __m256 fm = _mm256_cvtepi32_ps(dot32(M, x, 0, ones));
                    acc[r] = _mm256_fnmadd_ps(fm, _mm256_broadcast_ss(&dm[r][j]), acc[r]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++) out[r * os] = hsum8(acc[r]);
}

// Q5_0 / Q5_1 x R rows, one 32-block a step: the 5-bit values as bytes 0..31 (nibbles, then bit
// e of qh spread to byte e as 16); per row acc += float(idot) * (d dx); the offset as corr +=
// c * se per block (se = dx * isx; Q5_0: c = d, the result acc - 16 corr; Q5_1: c = m, the
// result acc + corr).
T_KAVX2 static inline __attribute__((always_inline)) void
q5_r(int type, int n_in, const uint8_t *w, const int8_t *const *xr, const float *const *dxr,
     const float *const *ser, const int R, float *out, size_t os) {
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const int one = type == HASS_GGML_Q5_1;
    const size_t bb = one ? 24 : 22, qho = one ? 4 : 2;
    __m256 acc[4];
    float corr[4];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps(), corr[r] = 0.f;
    for (int b = 0; b < n_in / 32; b++) {
        const uint8_t *p = w + (size_t)b * bb;
        uint32_t qh;
        memcpy(&qh, p + qho, 4);
        __m128i qs = _mm_loadu_si128((const __m128i *)(p + qho + 4));
        __m256i W = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), m4);
        __m256i hb = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread), bits);
        W = _mm256_or_si256(W, _mm256_and_si256(_mm256_cmpeq_epi8(hb, bits), _mm256_set1_epi8(16)));
        float d = f16_at(p), c = one ? f16_at(p + 2) : d;
        _Pragma("GCC unroll 4")
        for (int r = 0; r < R; r++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(xr[r] + 32 * b));
            __m256 f = _mm256_cvtepi32_ps(dot32(W, x, 0, ones));
            acc[r] = _mm256_fmadd_ps(f, _mm256_set1_ps(d * dxr[r][b]), acc[r]);
            corr[r] += c * ser[r][b];
        }
    }
    for (int r = 0; r < R; r++) out[r * os] = hsum8(acc[r]) + (one ? 1.f : -16.f) * corr[r];
}

// Whether hass_kq_avx2 has a kernel for a type.
int hass_kq_avx2_has(int type) { return hass_kq_block_bytes(type) != 0; }

// One weight row against n (<= 4) quantized activation rows (n a constant in each instance).
#define KQ2_CASE(n)                                                                                \
    case n:                                                                                       \
        HASS_KQ_ROW_SWITCH(n)                                                                     \
        break;

// One weight row against R (<= 4) quantized activation rows.
T_KAVX2 static void kq_avx2_4(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                              const float *const *dx, const float *const *se, int R, float *out,
                              size_t os) {
    switch (R) {
        KQ2_CASE(4) KQ2_CASE(3) KQ2_CASE(2)
        default: KQ2_CASE(1)
    }
}
#undef KQ2_CASE

// One weight row against R (<= 8) quantized activation rows, 4 at a time.
void hass_kq_avx2(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                  const float *const *dx, const float *const *se, int R, float *out, size_t os) {
    for (int r = 0; r < R; r += 4)
        kq_avx2_4(type, n_in, w, x + r, dx + r, se + r, R - r < 4 ? R - r : 4, out + r * os, os);
}
#else
int hass_kq_avx2_has(int type) { return 0; }
void hass_kq_avx2(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                  const float *const *dx, const float *const *se, int R, float *out, size_t os) {}
#endif
