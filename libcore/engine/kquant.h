// kquant.h: internal to libcore: the GGUF block formats beyond Q4_0/Q4_1/Q8_0 (Q5_0, Q5_1 and the
// K-quants Q2_K..Q6_K) and their exact dequantization, the specification every kernel for these
// types is checked against (tests/unit/test_kquant.c compares it to gguf-py's dequantize).
//
// Layouts (little-endian, ggml's): QK = 32 values a block for Q5_x, QK_K = 256 for the K-quants.
//   Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}                      v = (q5 - 16) * d
//   Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}               v = q5 * d + m
//     q5 of value e: low nibble of qs[e] (e < 16) or high nibble of qs[e - 16], bit e of qh as bit 4
//   Q2_K {u8 sc[16]; u8 qs[64]; f16 d; f16 dmin}           16 groups of 16:
//     v = (d * (sc & 15)) * q2 - dmin * (sc >> 4)
//   Q3_K {u8 hmask[32]; u8 qs[64]; u8 sc[12]; f16 d}       16 groups of 16, 6-bit signed scales:
//     v = (d * (s6 - 32)) * (q2 - (hmask bit ? 0 : 4))
//   Q4_K {f16 d; f16 dmin; u8 sc[12]; u8 qs[128]}          8 groups of 32, 6-bit scale and min:
//     v = (d * s) * q4 - dmin * m
//   Q5_K {f16 d; f16 dmin; u8 sc[12]; u8 qh[32]; u8 qs[128]}   as Q4_K with a fifth bit from qh
//   Q6_K {u8 ql[128]; u8 qh[64]; i8 sc[16]; f16 d}         16 groups of 16:
//     v = (d * sc) * (q6 - 32)
// Within a K-quant block value e takes its 2-bit pieces from byte (e / 128) * 32 + e % 32 at
// shift 2 * ((e % 128) / 32); its nibbles (Q4_K/Q5_K) from byte (e / 64) * 32 + e % 32, high
// nibble when (e % 64) >= 32; Q6_K's nibbles from byte (e / 128) * 64 + e % 64, high nibble when
// (e % 128) >= 64; single high bits (Q3_K hmask, Q5_K qh) from bit e / 32 of byte e % 32.
// Every product is one float32 operation in the order written above (no fused multiply-add).
#ifndef HASS_KQUANT_H
#define HASS_KQUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Values in one block of a type (32 or 256), 0 for a type this file does not handle.
int hass_kq_block_values(int type);
// Bytes of one block of a type, 0 for a type this file does not handle.
size_t hass_kq_block_bytes(int type);
// Dequantize n_blocks blocks of type from src into out (n_blocks * hass_kq_block_values(type)).
void hass_kq_dequant(int type, const void *src, int64_t n_blocks, float *out);
// The 6-bit scale and min of group j (0..7) of a Q4_K/Q5_K block's 12 scale bytes.
void hass_kq_scale_min(const uint8_t *sc, int j, int *scale, int *min);
// The 32 5-bit values (0..31) of a Q5_0/Q5_1 block from its 4 high-bit bytes qh4 and its 16
// bytes qs (the weight is d (q - 16), or d q + m).
void hass_kq_q5_values(const uint8_t *qh4, const uint8_t *qs, int q[32]);
// The 256 6-bit values q (0..63) of a Q6_K block b as stored (weight e is d sc_(e/16) (q_e -
// 32)), in one pass.
void hass_kq_q6k_values(const uint8_t *b, uint8_t q[256]);

// hass_kq_scale_min of all 8 groups at once, on 32-bit words: byte j of *s8 / *m8 is group j's
// scale / min (for the SIMD kernels, which widen the bytes).
static inline void hass_kq_scale_min8(const uint8_t *sc, uint64_t *s8, uint64_t *m8) {
    uint32_t a, b, c;
    memcpy(&a, sc, 4), memcpy(&b, sc + 4, 4), memcpy(&c, sc + 8, 4);
    *s8 = (a & 0x3f3f3f3fu) | (uint64_t)((c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u)) << 32;
    *m8 = (b & 0x3f3f3f3fu) | (uint64_t)(((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u)) << 32;
}

// The 16 6-bit group scales s6 (0..63, before the - 32) of a Q3_K block's 12 scale bytes sc, on
// 32-bit words: group g's low 4 bits from byte g % 8 (its high nibble when g >= 8), its high 2
// bits from byte 8 + g % 4 at shift 2 (g / 4); byte g of the 16 bytes at s16 is group g's.
static inline void hass_kq_q3k_scales16(const uint8_t *sc, uint8_t s16[16]) {
    uint32_t a, b, c, wd[4];
    memcpy(&a, sc, 4), memcpy(&b, sc + 4, 4), memcpy(&c, sc + 8, 4);
    uint32_t lo[4] = {a & 0x0f0f0f0fu, b & 0x0f0f0f0fu, (a >> 4) & 0x0f0f0f0fu, (b >> 4) & 0x0f0f0f0fu};
    for (int i = 0; i < 4; i++) wd[i] = lo[i] | ((c >> (2 * i)) & 0x03030303u) << 4;
    memcpy(s16, wd, 16);
}

// Dot of one weight row w (n_in values of type, n_in a multiple of the block) with one activation
// row quantized in blocks of 32 (qx: n_in int8, dx: n_in / 32 scales; quant.h's layout), the
// portable specification of the 8-bit path. Per 32 values b, with the block's integer dots:
//   Q5_0: (d dx_b) idot                       Q5_1: (d dx_b) idot + m (dx_b isx)
//   Q4_K/Q5_K: (D dx_b) idot - M (dx_b isx)   (D = d s, M = dmin m of the group)
//   Q2_K: per half h: (dl_h dx_b) idot_h - ml_h (dx_b isx_h), halves added
//   Q3_K/Q6_K: per half h: (dl_h dx_b) idot_h, halves added
// (isx: the sum of the activation's integers), then the blocks added in order.
float hass_kq_dot_q8(int type, int n_in, const uint8_t *w, const int8_t *qx, const float *dx);
// Dot of one weight row with float activations x (n_in), the f32 mode: each block dequantized
// as hass_kq_dequant, 32 partial sums (one per position in a block of 32) added in order at the
// end.
float hass_kq_dot_f32(int type, int n_in, const uint8_t *w, const float *x);
// Whether the AVX-512 VNNI kernels (kquant_avx512.c) have one for a type (every type of this
// file); 0 on other CPUs' builds. The caller checks that the CPU has AVX-512 VNNI.
int hass_kq_avx512_has(int type);
// One weight row w against R (<= 8) 8-bit activation rows: x[r] (n_in int8), dx[r] (n_in / 32
// scales), se[r] (n_in / 32 exact d * sum(q)); out[r * os].
void hass_kq_avx512(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                    const float *const *dx, const float *const *se, int R, float *out, size_t os);
// The same with AVX2+FMA (kquant_avx2.c; every type of this file; 0 on other CPUs' builds); the
// caller checks that the CPU has AVX2 and FMA. Activation bytes must be in -127..127 (the
// quantizer's range). R <= 8.
int hass_kq_avx2_has(int type);
void hass_kq_avx2(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                  const float *const *dx, const float *const *se, int R, float *out, size_t os);

// For the SIMD files: call the instance for n rows (a constant) of their row kernels q45k_r
// (Q4_K, Q5_K), qk16_r (Q6_K, Q3_K, Q2_K) and q5_r (Q5_0, Q5_1), by type, with the arguments
// of hass_kq_avx512 in scope.
#define HASS_KQ_ROW_SWITCH(n)                                                                      \
    switch (type) {                                                                               \
    case HASS_GGML_Q4_K: q45k_r(HASS_GGML_Q4_K, n_in, w, x, dx, se, n, out, os); break;           \
    case HASS_GGML_Q5_K: q45k_r(HASS_GGML_Q5_K, n_in, w, x, dx, se, n, out, os); break;           \
    case HASS_GGML_Q6_K: qk16_r(HASS_GGML_Q6_K, n_in, w, x, dx, n, out, os); break;               \
    case HASS_GGML_Q3_K: qk16_r(HASS_GGML_Q3_K, n_in, w, x, dx, n, out, os); break;               \
    case HASS_GGML_Q2_K: qk16_r(HASS_GGML_Q2_K, n_in, w, x, dx, n, out, os); break;               \
    case HASS_GGML_Q5_1: q5_r(HASS_GGML_Q5_1, n_in, w, x, dx, se, n, out, os); break;             \
    default: q5_r(HASS_GGML_Q5_0, n_in, w, x, dx, se, n, out, os); break;                         \
    }

#endif
