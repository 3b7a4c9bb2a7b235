// cpu_kernels_x86.c: the x86 SIMD matmul kernels, AVX2+FMA and AVX-512 VNNI (compiled for their
// targets with function attributes, run only where the CPU has them: dispatch in cpu_matmul.c),
// each output's arithmetic the same whatever the number of activation rows per call, and the
// kernel tables of the AVX2 and AVX-512 paths. The portable kernels (cpu_kernels_c.c) are
// their specification; the unit tests hold every path to a double-precision reference and to
// batch invariance.
#include "matmul_int.h"

#include "kquant.h"

#ifdef HASS_X86
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

// Sum of 8 lanes in a fixed order.
T_AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// AVX2: quantized weights, one block per step, maddubs for the integer dot. R is a
// compile-time constant in each instance (kq_avx2_1..4), so the accumulators stay in registers;
// the arithmetic of one row is the same in every instance.
T_AVX2 static inline __attribute__((always_inline)) void
kq_avx2_r(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, const int R,
          float *out, size_t os) {
    int nb = n_in / 32;
    qlayout ql = qrow_layout(n_in);
    const __m256i ones = _mm256_set1_epi16(1);
    const __m128i m4 = _mm_set1_epi8(15);
    __m256 acc[4];
    float accm[4];
    const int8_t *qs[4];
    const float *dx[4], *sx[4];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) {
        acc[r] = _mm256_setzero_ps();
        accm[r] = 0.f;
        qs[r] = (const int8_t *)(x + r * xs);
        dx[r] = (const float *)(x + r * xs + ql.d);
        sx[r] = (const float *)(x + r * xs + (type == HASS_GGML_Q4_1 ? ql.s : ql.se));
    }
    size_t bs = qblock_bytes(type);
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = w + b * bs;
        float dw = _cvtsh_ss(rd16(p));
        if (type == HASS_GGML_Q8_0) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 2));
            __m256i aw = _mm256_sign_epi8(wv, wv);
            _Pragma("GCC unroll 4")
            for (int r = 0; r < R; r++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(qs[r] + b * 32));
                __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv));
                __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
                acc[r] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw * dx[r][b]), acc[r]);
            }
        } else {
            size_t qo = type == HASS_GGML_Q4_0 ? 2 : 4;
            float mw = type == HASS_GGML_Q4_0 ? -8.f * dw : _cvtsh_ss(rd16(p + 2));
            __m128i q = _mm_loadu_si128((const __m128i *)(p + qo));
            __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
            __m256i wv = _mm256_set_m128i(hi, lo);
            _Pragma("GCC unroll 4")
            for (int r = 0; r < R; r++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(qs[r] + b * 32));
                __m256i p16 = _mm256_maddubs_epi16(wv, xv);
                __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
                acc[r] = _mm256_fmadd_ps(f, _mm256_set1_ps(dw * dx[r][b]), acc[r]);
                accm[r] = fmaf(mw, sx[r][b], accm[r]);
            }
        }
    }
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) out[r * os] = hsum256(acc[r]) + accm[r];
}

// AVX2 quantized kernel for any R <= 4 (dispatches to a constant-R instance).
T_AVX2 static void kq_avx2(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs,
                           int R, float *out, size_t os) {
    switch (R) {
    case 4: kq_avx2_r(type, n_in, w, x, xs, 4, out, os); break;
    case 3: kq_avx2_r(type, n_in, w, x, xs, 3, out, os); break;
    case 2: kq_avx2_r(type, n_in, w, x, xs, 2, out, os); break;
    default: kq_avx2_r(type, n_in, w, x, xs, 1, out, os); break;
    }
}
MM_ROWS(kq_avx2_rows, kq_avx2, T_AVX2)

// Load 8 weights of a float-type row as floats.
T_AVX2 static inline __m256 ldw8(int type, const uint8_t *w, int i) {
    if (type == HASS_GGML_F32) return _mm256_loadu_ps((const float *)(w + 4 * i));
    __m128i h = _mm_loadu_si128((const __m128i *)(w + 2 * i));
    if (type == HASS_GGML_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// AVX2: float-type weights x float activations, 8 lanes, scalar tail.
T_AVX2 static void kf_avx2(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs,
                           int R, float *out, size_t os) {
    __m256 acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n_in; i += 8) {
        __m256 wv = ldw8(type, w, i);
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps((const float *)(x + r * xs) + i), acc[r]);
    }
    for (int r = 0; r < R; r++) {
        float s = hsum256(acc[r]);
        const float *xr = (const float *)(x + r * xs);
        for (int j = i; j < n_in; j++) s += wf(type, w, j) * xr[j];
        out[r * os] = s;
    }
}
MM_ROWS(kf_avx2_rows, kf_avx2, T_AVX2)

// Dequantize 8 nibbles of a Q4 block (the low 8 bytes, one nibble each): q * d + m (Q4_0
// passes m = -8 d, which gives the same single rounding as d * (q - 8)).
T_AVX2 static inline __m256 deq8(__m128i bytes8, __m256 d, __m256 m) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8)), d, m);
}

// AVX2, f32 mode: quantized weights dequantized per block (4 vectors of 8), FMA with the f32
// activations into two accumulators per row (vectors 0, 2 and 1, 3), added at the end. R is a
// compile-time constant per instance; the arithmetic of one row is the same in every instance.
T_AVX2 static inline __attribute__((always_inline)) void
kqf_avx2_r(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, const int R,
           float *out, size_t os) {
    int nb = n_in / 32;
    const __m128i m4 = _mm_set1_epi8(15);
    __m256 a0[4], a1[4];
    const float *xr[4];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) {
        a0[r] = a1[r] = _mm256_setzero_ps();
        xr[r] = (const float *)(x + r * xs);
    }
    size_t bs = qblock_bytes(type);
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = w + b * bs;
        __m256 d = _mm256_set1_ps(_cvtsh_ss(rd16(p))), wv[4];
        if (type == HASS_GGML_Q8_0) {
            __m128i q0 = _mm_loadu_si128((const __m128i *)(p + 2));
            __m128i q1 = _mm_loadu_si128((const __m128i *)(p + 18));
            wv[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q0)), d);
            wv[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q0, 8))), d);
            wv[2] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q1)), d);
            wv[3] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q1, 8))), d);
        } else {
            size_t qo = type == HASS_GGML_Q4_0 ? 2 : 4;
            __m256 m = type == HASS_GGML_Q4_0 ? _mm256_mul_ps(d, _mm256_set1_ps(-8.f))
                                              : _mm256_set1_ps(_cvtsh_ss(rd16(p + 2)));
            __m128i q = _mm_loadu_si128((const __m128i *)(p + qo));
            __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
            wv[0] = deq8(lo, d, m);
            wv[1] = deq8(_mm_srli_si128(lo, 8), d, m);
            wv[2] = deq8(hi, d, m);
            wv[3] = deq8(_mm_srli_si128(hi, 8), d, m);
        }
        _Pragma("GCC unroll 4")
        for (int r = 0; r < R; r++) {
            const float *xb = xr[r] + b * 32;
            a0[r] = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(xb), a0[r]);
            a1[r] = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(xb + 8), a1[r]);
            a0[r] = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(xb + 16), a0[r]);
            a1[r] = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(xb + 24), a1[r]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) out[r * os] = hsum256(_mm256_add_ps(a0[r], a1[r]));
}

// AVX2 f32-mode kernel for any R <= 4 (dispatches to a constant-R instance).
T_AVX2 static void kqf_avx2(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs,
                            int R, float *out, size_t os) {
    switch (R) {
    case 4: kqf_avx2_r(type, n_in, w, x, xs, 4, out, os); break;
    case 3: kqf_avx2_r(type, n_in, w, x, xs, 3, out, os); break;
    case 2: kqf_avx2_r(type, n_in, w, x, xs, 2, out, os); break;
    default: kqf_avx2_r(type, n_in, w, x, xs, 1, out, os); break;
    }
}
MM_ROWS(kqf_avx2_rows, kqf_avx2, T_AVX2)

// AVX-512 VNNI: quantized weights, two blocks per step (64 int8 products per vpdpbusd).
// Q8_0 weights are made unsigned by +128 (xor 0x80) and corrected with -128 * d * s_x; Q4_0
// nibbles are unsigned and corrected with -8 * d * s_x; Q4_1 adds m * s_x. The block scales of
// a pair come as one fp16 vector [d_a, m_a, d_b, m_b]; the correction terms accumulate in a
// 4-lane vector against the row's [0, s_a, 0, s_b]. R is a compile-time constant per instance.
T_AVX512 static inline __attribute__((always_inline)) void
kq_avx512_r(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, const int R,
            float *out, size_t os) {
    int nb = n_in / 32, np = (nb + 1) / 2;
    qlayout ql = qrow_layout(n_in);
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    const __m512i idx = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i idx1 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m128 mq8 = _mm_set_ps(1.f, -128.f, 1.f, -128.f), mq40 = _mm_set_ps(1.f, -8.f, 1.f, -8.f);
    const int cl = type == HASS_GGML_Q4_1 ? 1 : 0; // lanes cl and cl + 2 hold the correction
    __m512 acc[8];
    __m128 accm[8];
    const uint8_t *xr[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) {
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm_setzero_ps();
        xr[r] = x + r * xs;
    }
    size_t bs = qblock_bytes(type);
    for (int pi = 0; pi < np; pi++) {
        int b = 2 * pi, two = b + 1 < nb;
        const uint8_t *pa = w + b * bs, *pb = pa + bs;
        __m512i wv;
        __m128 dm;
        if (type == HASS_GGML_Q8_0) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(pa + 2));
            __m256i c = two ? _mm256_loadu_si256((const __m256i *)(pb + 2)) : _mm256_set1_epi8((char)0x80);
            wv = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1), x80);
            uint32_t ha = rd16(pa), hb = two ? rd16(pb) : 0;
            dm = _mm_mul_ps(_mm_cvtph_ps(_mm_set_epi32(0, 0, (int)(hb | hb << 16), (int)(ha | ha << 16))), mq8);
        } else {
            size_t qo = type == HASS_GGML_Q4_0 ? 2 : 4;
            __m128i qa = _mm_loadu_si128((const __m128i *)(pa + qo));
            __m128i qb = two ? _mm_loadu_si128((const __m128i *)(pb + qo)) : _mm_setzero_si128();
            __m256i q = _mm256_set_m128i(qb, qa);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            wv = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); // loA loB hiA hiB
            wv = _mm512_shuffle_i64x2(wv, wv, _MM_SHUFFLE(3, 1, 2, 0)); // loA hiA loB hiB
            if (type == HASS_GGML_Q4_0) {
                uint32_t ha = rd16(pa), hb = two ? rd16(pb) : 0;
                dm = _mm_mul_ps(_mm_cvtph_ps(_mm_set_epi32(0, 0, (int)(hb | hb << 16), (int)(ha | ha << 16))), mq40);
            } else {
                uint32_t ua, ub = 0;
                memcpy(&ua, pa, 4);
                if (two) memcpy(&ub, pb, 4);
                dm = _mm_cvtph_ps(_mm_set_epi32(0, 0, (int)ub, (int)ua)); // d_a m_a d_b m_b
            }
        }
        // dm: Q4_1 [d_a, m_a, d_b, m_b]; Q8_0/Q4_0 [-k d_a, d_a, -k d_b, d_b]
        __m512 dwv = _mm512_permutexvar_ps(cl ? idx : idx1, _mm512_castps128_ps512(dm));
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            __m512i xv = _mm512_loadu_si512((const void *)(xr[r] + (size_t)pi * 64));
            __m512 dxv = _mm512_load_ps((const float *)(xr[r] + ql.dx16) + pi * 16);
            __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(dwv, dxv), acc[r]);
            accm[r] = _mm_fmadd_ps(dm, _mm_load_ps((const float *)(xr[r] + ql.sx4) + pi * 4), accm[r]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) {
        __m128 m = accm[r];
        float corr = cl ? _mm_cvtss_f32(_mm_shuffle_ps(m, m, 1)) + _mm_cvtss_f32(_mm_shuffle_ps(m, m, 3))
                        : _mm_cvtss_f32(m) + _mm_cvtss_f32(_mm_shuffle_ps(m, m, 2));
        out[r * os] = _mm512_reduce_add_ps(acc[r]) + corr;
    }
}

// AVX-512 quantized kernel for any R <= 8 (dispatches to a constant-R instance).
T_AVX512 static void kq_avx512(int type, int n_in, const uint8_t *w, const uint8_t *x,
                               size_t xs, int R, float *out, size_t os) {
    switch (R) {
    case 8: kq_avx512_r(type, n_in, w, x, xs, 8, out, os); break;
    case 7: kq_avx512_r(type, n_in, w, x, xs, 7, out, os); break;
    case 6: kq_avx512_r(type, n_in, w, x, xs, 6, out, os); break;
    case 5: kq_avx512_r(type, n_in, w, x, xs, 5, out, os); break;
    case 4: kq_avx512_r(type, n_in, w, x, xs, 4, out, os); break;
    case 3: kq_avx512_r(type, n_in, w, x, xs, 3, out, os); break;
    case 2: kq_avx512_r(type, n_in, w, x, xs, 2, out, os); break;
    default: kq_avx512_r(type, n_in, w, x, xs, 1, out, os); break;
    }
}
MM_ROWS(kq_avx512_rows, kq_avx512, T_AVX512)

// W packed groups (16 blocks each, one per lane; group i at w + i * ws: W consecutive weight
// rows' groups, or W tail groups) against R activation rows, register-blocked: each weight
// vector is unpacked once for all R rows and each activation vector loaded once for all W
// groups. Per (group i, row r): the 16 lanes' integer block dots (exact, so how the products
// are split between accumulators changes no bit), the Q8_0/Q4_0 corrections in integers, then
// acc[i * as + r * rs] += float(dot) * (d_w * d_x) (+ m_w * s_x for Q4_1, - m_w * se_x for
// Q4_K) per lane; Q6_K, a scale per 16 values, does that for each half of the block in turn
// (first: from zero, acc not read): the same arithmetic for every (i, r) whatever W and R are.
T_AVX512 static inline __attribute__((always_inline)) void
kp_gblock(int type, const uint8_t *w, size_t ws, const int W, const uint8_t *x, size_t xs,
          const int R, __m512 *acc, size_t as, size_t rs, const int first) {
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const size_t G = pk_wgroup(type);
    const int six = type == HASS_GGML_Q6_K, NH = six ? 2 : 1; // halves with their own scales
    // the weights stream from memory, and with several activation rows per pass the hardware
    // prefetcher falls behind; one row is bandwidth-bound
    if (R >= 2)
        _Pragma("GCC unroll 4")
        for (int i = 0; i < W; i++)
            for (size_t off = 0; off < G; off += 64)
                _mm_prefetch((const char *)(w + i * ws + 8 * G + off), _MM_HINT_T0);
    // the weight scales of each group (per half), for all rows: d_w (and m_w for Q4_1 and Q4_K,
    // whose lanes' scales are d sc and dmin m of their 256-block, Q6_K's d sc: exact in f32)
    const int five = type == HASS_GGML_Q5_0;
    const size_t dpo = type == HASS_GGML_Q8_0 ? 512 : six ? 384 : five ? 320 : 256;
    const __m512i hd = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 dwv[2][4], mwv[4];
    _Pragma("GCC unroll 4")
    for (int i = 0; i < W; i++) {
        const uint8_t *dp = w + i * ws + dpo;
        if (type == HASS_GGML_Q4_K) {
            __m512 h = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(dp + 32))));
            __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)dp)));
            __m512 mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(dp + 16))));
            dwv[0][i] = _mm512_mul_ps(_mm512_permutexvar_ps(hd, h), sc);
            mwv[i] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_add_epi32(hd, _mm512_set1_epi32(1)), h), mn);
        } else if (six) {
            __m512i ih = _mm512_srli_epi32(hd, 1); // lanes 0-7: d of half 0, 8-15: of half 1
            __m512 h = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(*(const int *)(dp + 32))));
            __m512 d = _mm512_permutexvar_ps(ih, h);
            _Pragma("GCC unroll 2")
            for (int hf = 0; hf < 2; hf++)
                dwv[hf][i] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                  _mm_loadu_si128((const __m128i *)(dp + 16 * hf)))));
        } else {
            dwv[0][i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dp));
            mwv[i] = type == HASS_GGML_Q4_1 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dp + 32)))
                                            : _mm512_setzero_ps();
        }
    }
    _Pragma("GCC unroll 2")
    for (int hf = 0; hf < NH; hf++) {
        __m512i ia[4][8]; // (W, R) integer block dots, one lane per block
        _Pragma("GCC unroll 4")
        for (int m = hf * 4 / NH; m < (hf + 1) * 4 / NH; m++) { // weight and activation vectors 2m, 2m + 1
            __m512i lo[4], hi[4];
            _Pragma("GCC unroll 4")
            for (int i = 0; i < W; i++) {
                const uint8_t *wi = w + i * ws;
                if (type == HASS_GGML_Q8_0) {
                    lo[i] = _mm512_loadu_si512((const void *)(wi + 128 * m));
                    hi[i] = _mm512_loadu_si512((const void *)(wi + 128 * m + 64));
                } else {
                    __m512i q = _mm512_loadu_si512((const void *)(wi + 64 * m));
                    lo[i] = _mm512_and_si512(q, m4);
                    hi[i] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                    if (five) { // the fifth bits of vectors 2m and 2m + 1 (bits 2m, 2m + 1 of the plane)
                        __m512i p = _mm512_loadu_si512((const void *)(wi + 256)), m10 = _mm512_set1_epi8(0x10);
                        __m512i p0 = 2 * m < 4 ? _mm512_slli_epi16(p, 4 - 2 * m) : _mm512_srli_epi16(p, 2 * m - 4);
                        __m512i p1 = 2 * m + 1 < 4 ? _mm512_slli_epi16(p, 3 - 2 * m) : _mm512_srli_epi16(p, 2 * m - 3);
                        lo[i] = _mm512_or_si512(lo[i], _mm512_and_si512(p0, m10));
                        hi[i] = _mm512_or_si512(hi[i], _mm512_and_si512(p1, m10));
                    }
                    if (six) { // the high 2 bits of vectors 2m (bits 2t) and 2m + 1 (bits 2t + 2), t = 2 (m % 2)
                        __m512i c = _mm512_loadu_si512((const void *)(wi + 256 + 64 * (m / 2)));
                        __m512i c0 = m % 2 ? c : _mm512_slli_epi16(c, 4);
                        __m512i c1 = m % 2 ? _mm512_srli_epi16(c, 2) : _mm512_slli_epi16(c, 2);
                        lo[i] = _mm512_or_si512(lo[i], _mm512_and_si512(c0, m30));
                        hi[i] = _mm512_or_si512(hi[i], _mm512_and_si512(c1, m30));
                    }
                }
            }
            _Pragma("GCC unroll 8")
            for (int r = 0; r < R; r++) {
                __m512i xl = _mm512_loadu_si512((const void *)(x + r * xs + 128 * m));
                __m512i xh = _mm512_loadu_si512((const void *)(x + r * xs + 128 * m + 64));
                _Pragma("GCC unroll 4")
                for (int i = 0; i < W; i++) {
                    int m0 = m == hf * 4 / NH;
                    __m512i t = _mm512_dpbusd_epi32(m0 ? _mm512_setzero_si512() : ia[i][r], lo[i], xl);
                    ia[i][r] = _mm512_dpbusd_epi32(t, hi[i], xh);
                }
            }
        }
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const uint8_t *xg = x + r * xs;
            const float *dx = (const float *)(xg + 512), *sx = dx + 16;
            __m512 dxv = _mm512_loadu_ps(dx), sxv = _mm512_loadu_ps(sx);
            __m512i xsum = _mm512_loadu_si512((const void *)(sx + 16)), corr = _mm512_setzero_si512();
            if (type == HASS_GGML_Q8_0 || type == HASS_GGML_Q4_0 || five) // 128, 8, 16 times the sum
                corr = _mm512_slli_epi32(xsum, type == HASS_GGML_Q8_0 ? 7 : five ? 4 : 3);
            if (six) { // q - 32: 32 times the half's activation sum
                __m512i x16 = _mm512_loadu_si512((const void *)(sx + 32));
                corr = _mm512_slli_epi32(hf ? _mm512_sub_epi32(xsum, x16) : x16, 5);
            }
            // Q4_K's mins meet d_x * sum(q), exactly as the quantizer's se
            if (type == HASS_GGML_Q4_K) sxv = _mm512_mul_ps(dxv, _mm512_cvtepi32_ps(xsum));
            _Pragma("GCC unroll 4")
            for (int i = 0; i < W; i++) {
                int plain = type == HASS_GGML_Q4_1 || type == HASS_GGML_Q4_K;
                __m512i d = plain ? ia[i][r] : _mm512_sub_epi32(ia[i][r], corr);
                __m512 *a = acc + i * as + r * rs;
                __m512 a0 = first && hf == 0 ? _mm512_setzero_ps() : *a;
                __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(dwv[hf][i], dxv), a0);
                if (type == HASS_GGML_Q4_1) v = _mm512_fmadd_ps(mwv[i], sxv, v);
                if (type == HASS_GGML_Q4_K) v = _mm512_fnmadd_ps(mwv[i], sxv, v);
                *a = v;
            }
        }
    }
}

// kp_gblock over n groups (group i at w + i * ws, its accumulators at acc + i * as), W at a time
// (W = 4 up to 4 activation rows, 2 up to 8: the accumulators and weight vectors fit the 32
// registers), the rest one by one; the same arithmetic per output as one at a time.
T_AVX512 static inline __attribute__((always_inline)) void
kp_groups(int type, const uint8_t *w, size_t ws, int n, const uint8_t *x, size_t xs, const int R,
          __m512 *acc, size_t as, size_t rs, const int first) {
    const int W = R <= 4 ? 4 : 2;
    int i = 0;
    for (; i + W <= n; i += W) kp_gblock(type, w + i * ws, ws, W, x, xs, R, acc + i * as, as, rs, first);
    for (; i < n; i++) kp_gblock(type, w + i * ws, ws, 1, x, xs, R, acc + i * as, as, rs, first);
}

// The 16 sums of the 16 lanes of v[0..15], lane j of the result = sum of v[j]'s lanes, in a
// fixed tree (halves, quarters, pairs, single lanes) whatever the neighbours hold.
T_AVX512 static inline __m512 hsum16x16(const __m512 *v) {
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) // lanes 0-7: half sums of v[2i], 8-15: of v[2i + 1]
        a[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 4; i++) // 128-bit lane q: quarter sums of v[4i + q]
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int i = 0; i < 2; i++) // lane 4q + e: pair sums of v[4 * (2i + e / 2) + q]
        c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    // lane 4q + e: whole sum of v[4 * e + q] (e = 0, 1 from c[0]; 2, 3 from c[1])
    __m512 d = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i perm = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(perm, d);
}

// AVX-512 VNNI on packed weights (hass_quant_pack: pk, a matrix of n_out rows) and the packed
// part of quantized activation rows: weight rows o0 .. o0 + n_rows - 1 (n_rows <= 16, o0 a
// multiple of 16) against R activation rows (x: the first row's packed part, stride xs),
// out[o + r * os]. Per output: the main groups in order into 16 lanes summed by hsum16x16, plus
// the row's lanes of its tail group added in order; the same arithmetic for any R, n_rows, o0.
T_AVX512 static inline __attribute__((always_inline)) void
kp_avx512_r(int type, int n_in, const uint8_t *pk, int n_out, int o0, int n_rows,
            const uint8_t *x, size_t xs, const int R, float *out, size_t os) {
    pk_shape sh = pk_shape_of(n_in);
    size_t G = pk_wgroup(type), wrb = (size_t)sh.nfull * G;
    __m512 res[8];
    if (sh.nfull) {
        const uint8_t *w = pk + (size_t)o0 * wrb;
        __m512 red[8][16]; // (R, 16) per activation row and weight row: its 16 lanes
        for (int r = 0; r < R; r++)
            for (int o = n_rows; o < 16; o++) red[r][o] = _mm512_setzero_ps();
        // the groups of a row in order; the rows W at a time
        kp_groups(type, w, wrb, n_rows, x, xs, R, &red[0][0], 1, 16, 1);
        for (int gi = 1; gi < sh.nfull; gi++)
            kp_groups(type, w + gi * G, wrb, n_rows, x + (size_t)gi * PK_XGROUP, xs, R, &red[0][0], 1, 16, 0);
        for (int r = 0; r < R; r++) res[r] = hsum16x16(red[r]);
    } else {
        for (int r = 0; r < R; r++) res[r] = _mm512_setzero_ps();
    }
    if (sh.g) { // tail groups: lane l of group c is row o0 + c * rg + l / g
        const uint8_t *wt = pk + (size_t)n_out * wrb + (size_t)(o0 / sh.rg) * G;
        const uint8_t *xt = x + (size_t)sh.nfull * PK_XGROUP;
        int nc = (n_rows + sh.rg - 1) / sh.rg;
        __m512 tg[16][8]; // (nc, R)
        kp_groups(type, wt, G, nc, xt, xs, R, &tg[0][0], 8, 1, 1);
        // lane o of E_b: block b of row o (group o / rg, lane (o % rg) g + b), gathered by
        // permutes rather than through memory (a wide load of narrow stores stalls); the
        // row's blocks are summed in order, then added to the main groups' sum
        const __m512i lane0 = _mm512_mullo_epi32( // lane o: (o % rg) g, block 0 of row o
            _mm512_and_si512(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                             _mm512_set1_epi32(sh.rg - 1)),
            _mm512_set1_epi32(sh.g));
        for (int r = 0; r < R; r++) {
            __m512 t = _mm512_setzero_ps();
            for (int b = 0; b < sh.g; b++) {
                __m512i idx = _mm512_add_epi32(lane0, _mm512_set1_epi32(b));
                __m512 e = _mm512_setzero_ps();
                for (int c = 0; c < nc; c++)
                    e = _mm512_mask_permutexvar_ps(e, (__mmask16)(((1u << sh.rg) - 1) << (c * sh.rg)), idx, tg[c][r]);
                t = b == 0 ? e : _mm512_add_ps(t, e);
            }
            res[r] = _mm512_add_ps(res[r], t);
        }
    }
    __mmask16 keep = (__mmask16)((1u << n_rows) - 1);
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(out + r * os, keep, res[r]);
}

// Instances of the packed kernel (a hass_mm_kernel on w->pk) for one weight type and R = 1..8.
#define KP_TYPE(name, TYPE)                                                                       \
    T_AVX512 static void name(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs,    \
                              int R, float *out, size_t os) {                                     \
        const uint8_t *pk = w->pk;                                                                \
        int n_in = w->n_in, n_out = w->n_out, n_rows = o1 - o0;                                   \
        switch (R) {                                                                              \
        case 8: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 8, out, os); break;         \
        case 7: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 7, out, os); break;         \
        case 6: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 6, out, os); break;         \
        case 5: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 5, out, os); break;         \
        case 4: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 4, out, os); break;         \
        case 3: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 3, out, os); break;         \
        case 2: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 2, out, os); break;         \
        default: kp_avx512_r(TYPE, n_in, pk, n_out, o0, n_rows, x, xs, 1, out, os); break;        \
        }                                                                                         \
    }
KP_TYPE(kp_avx512_q4_1, HASS_GGML_Q4_1)
KP_TYPE(kp_avx512_q4_0, HASS_GGML_Q4_0)
KP_TYPE(kp_avx512_q8_0, HASS_GGML_Q8_0)
KP_TYPE(kp_avx512_q4_k, HASS_GGML_Q4_K)
KP_TYPE(kp_avx512_q6_k, HASS_GGML_Q6_K)
KP_TYPE(kp_avx512_q5_0, HASS_GGML_Q5_0)
#undef KP_TYPE

// AVX-512, f32 mode: quantized weights dequantized per block (elements 0-15 and 16-31 as two
// vectors), FMA with the f32 activations into two accumulators per row, added at the end. R
// (<= 8) is a compile-time constant per instance.
T_AVX512 static inline __attribute__((always_inline)) void
kqf_avx512_r(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, const int R,
             float *out, size_t os) {
    int nb = n_in / 32;
    const __m128i m4 = _mm_set1_epi8(15);
    __m512 a0[8], a1[8];
    const float *xr[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) {
        a0[r] = a1[r] = _mm512_setzero_ps();
        xr[r] = (const float *)(x + r * xs);
    }
    size_t bs = qblock_bytes(type);
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = w + b * bs;
        __m512 d = _mm512_set1_ps(_cvtsh_ss(rd16(p))), w0, w1;
        if (type == HASS_GGML_Q8_0) {
            __m128i q0 = _mm_loadu_si128((const __m128i *)(p + 2));
            __m128i q1 = _mm_loadu_si128((const __m128i *)(p + 18));
            w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d);
            w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d);
        } else {
            size_t qo = type == HASS_GGML_Q4_0 ? 2 : 4;
            __m512 m = type == HASS_GGML_Q4_0 ? _mm512_mul_ps(d, _mm512_set1_ps(-8.f))
                                              : _mm512_set1_ps(_cvtsh_ss(rd16(p + 2)));
            __m128i q = _mm_loadu_si128((const __m128i *)(p + qo));
            __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
            w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), d, m);
            w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), d, m);
        }
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const float *xb = xr[r] + b * 32;
            a0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xb), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), a1[r]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) out[r * os] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

// AVX-512 f32-mode kernel for any R <= 8 (dispatches to a constant-R instance).
T_AVX512 static void kqf_avx512(int type, int n_in, const uint8_t *w, const uint8_t *x,
                                size_t xs, int R, float *out, size_t os) {
    switch (R) {
    case 8: kqf_avx512_r(type, n_in, w, x, xs, 8, out, os); break;
    case 7: kqf_avx512_r(type, n_in, w, x, xs, 7, out, os); break;
    case 6: kqf_avx512_r(type, n_in, w, x, xs, 6, out, os); break;
    case 5: kqf_avx512_r(type, n_in, w, x, xs, 5, out, os); break;
    case 4: kqf_avx512_r(type, n_in, w, x, xs, 4, out, os); break;
    case 3: kqf_avx512_r(type, n_in, w, x, xs, 3, out, os); break;
    case 2: kqf_avx512_r(type, n_in, w, x, xs, 2, out, os); break;
    default: kqf_avx512_r(type, n_in, w, x, xs, 1, out, os); break;
    }
}
MM_ROWS(kqf_avx512_rows, kqf_avx512, T_AVX512)

// Load 16 weights of a float-type row as floats.
T_AVX512 static inline __m512 ldw16(int type, const uint8_t *w, int i) {
    if (type == HASS_GGML_F32) return _mm512_loadu_ps((const float *)(w + 4 * i));
    __m256i h = _mm256_loadu_si256((const __m256i *)(w + 2 * i));
    if (type == HASS_GGML_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// AVX-512: float-type weights x float activations, 16 lanes, scalar tail.
T_AVX512 static void kf_avx512(int type, int n_in, const uint8_t *w, const uint8_t *x,
                               size_t xs, int R, float *out, size_t os) {
    __m512 acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n_in; i += 16) {
        __m512 wv = ldw16(type, w, i);
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps((const float *)(x + r * xs) + i), acc[r]);
    }
    for (int r = 0; r < R; r++) {
        float s = _mm512_reduce_add_ps(acc[r]);
        const float *xr = (const float *)(x + r * xs);
        for (int j = i; j < n_in; j++) s += wf(type, w, j) * xr[j];
        out[r * os] = s;
    }
}
MM_ROWS(kf_avx512_rows, kf_avx512, T_AVX512)

// A K-quant row kernel of kquant.h (hass_kq_avx2, hass_kq_avx512) and whether it has a type.
typedef void (*kq_rowk)(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                        const float *const *dx, const float *const *se, int R, float *out, size_t os);
typedef int (*kq_has)(int type);

// Q5_x / K-quant weights x 8-bit activations: the row kernel k over weight rows [o0, o1) where it
// has the type, the portable kernel where not.
static void kk_rows(kq_rowk k, kq_has has, const hass_wmat *w, int o0, int o1, const uint8_t *x,
                    size_t xs, int R, float *out, size_t os) {
    if (!has(w->type)) {
        hass_mm_kk_c(w, o0, o1, x, xs, R, out, os);
        return;
    }
    const int8_t *xr[8];
    const float *dx[8], *se[8];
    for (int r = 0; r < R; r++) {
        xr[r] = (const int8_t *)(x + r * xs);
        dx[r] = hass_quant_qrow_d(x + r * xs, w->n_in);
        se[r] = hass_quant_qrow_se(x + r * xs, w->n_in);
    }
    for (int o = o0; o < o1; o++)
        k(w->type, w->n_in, (const uint8_t *)w->data + (size_t)o * w->row_bytes, xr, dx, se, R,
          out + (o - o0), os);
}

// Q5_x / K-quant weights x 8-bit activations with AVX2+FMA (kquant_avx2.c).
static void kk_avx2_rows(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs, int R,
                         float *out, size_t os) {
    kk_rows(hass_kq_avx2, hass_kq_avx2_has, w, o0, o1, x, xs, R, out, os);
}

// Q5_x / K-quant weights x 8-bit activations with AVX-512 VNNI (kquant_avx512.c).
static void kk_avx512_rows(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs, int R,
                           float *out, size_t os) {
    kk_rows(hass_kq_avx512, hass_kq_avx512_has, w, o0, o1, x, xs, R, out, os);
}

// AVX2+FMA: 4 activation rows a call, no packed kernels.
const hass_mm_kernels hass_mm_kernels_avx2 = {
    .kq = kq_avx2_rows, .kqf = kqf_avx2_rows, .kf = kf_avx2_rows, .kk = kk_avx2_rows,
    .kkf = hass_mm_kkf_c, .q_rows = 4, .f_rows = 4};

// AVX-512 VNNI: 8 activation rows a call for quantized weights (kq, kqf, kp), 4 for float ones.
const hass_mm_kernels hass_mm_kernels_avx512 = {
    .kq = kq_avx512_rows, .kqf = kqf_avx512_rows, .kf = kf_avx512_rows, .kk = kk_avx512_rows,
    .kkf = hass_mm_kkf_c, .kp_q4_0 = kp_avx512_q4_0,
    .kp_q4_1 = kp_avx512_q4_1, .kp_q8_0 = kp_avx512_q8_0, .kp_q4_k = kp_avx512_q4_k,
    .kp_q6_k = kp_avx512_q6_k, .kp_q5_0 = kp_avx512_q5_0, .q_rows = 8, .f_rows = 4};
#endif
