// matmul_int.h: internal to libcore: what the files of the CPU matmul share: the block helpers,
// the layouts of a quantized activation row and of packed weights, the quantizer of one
// activation row (cpu_quant.c), the kernel type and the kernel table of each path (the portable
// C kernels, the specification, in cpu_kernels_c.c; AVX2+FMA and AVX-512 VNNI in
// cpu_kernels_x86.c), which cpu_matmul.c picks from and runs on the thread team.
#ifndef HASS_MATMUL_INT_H
#define HASS_MATMUL_INT_H

#include "quant.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define HASS_X86 1
#endif

// Little-endian u16 at p (block headers are not aligned).
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// Bytes of one 32-value block of a quantized type (Q8_0, Q4_0, Q4_1).
static inline size_t qblock_bytes(int type) {
    return type == HASS_GGML_Q8_0 ? 34 : type == HASS_GGML_Q4_0 ? 18 : 20;
}

// Dequantize one 32-block of a quantized weight row (block b) into out[32].
static inline void deq_block(int type, const uint8_t *w, int b, float *out) {
    if (type == HASS_GGML_Q8_0) {
        const uint8_t *p = w + (size_t)b * 34;
        float d = hass_f16_to_f32(rd16(p));
        for (int k = 0; k < 32; k++) out[k] = d * (float)(int8_t)p[2 + k];
    } else if (type == HASS_GGML_Q4_0) {
        const uint8_t *p = w + (size_t)b * 18;
        float d = hass_f16_to_f32(rd16(p));
        for (int k = 0; k < 16; k++) {
            out[k] = d * (float)((p[2 + k] & 15) - 8);
            out[k + 16] = d * (float)((p[2 + k] >> 4) - 8);
        }
    } else { // Q4_1
        const uint8_t *p = w + (size_t)b * 20;
        float d = hass_f16_to_f32(rd16(p)), m = hass_f16_to_f32(rd16(p + 2));
        for (int k = 0; k < 16; k++) {
            out[k] = d * (float)(p[4 + k] & 15) + m;
            out[k + 16] = d * (float)(p[4 + k] >> 4) + m;
        }
    }
}

// Offsets in a quantized activation row of nb blocks (np = ceil(nb / 2) pairs): qs (np * 64
// bytes, zero padded), d (nb floats), s (nb floats: d * sum(q) rounded to fp16, llama.cpp's
// Q8_1 s, used by Q4_1), se (nb floats: d * sum(q) exactly, for the Q4_0/Q8_0 corrections), then
// for the AVX-512 kernel dx16 (per pair 16 floats: d of the first block x8, of the second x8)
// and sx4 (per pair [se_a, s_a, se_b, s_b]).
// Then, at px, the row in the packed layout of the AVX-512 kernel for packed weights (see
// "packed layout" below).
typedef struct qlayout {
    size_t d, s, se, dx16, sx4, px, total;
} qlayout;

// Packed layout (AVX-512 kernel kp_avx512, weights packed by hass_quant_pack): blocks go in
// groups of 16, one block per 32-bit lane: 8 vectors of 64 bytes, vector k lane l byte t =
// element 4k + t of lane l's block, so that one vpdpbusd per vector leaves in every lane an
// integer partial dot of ONE block and the float work (one convert, one multiply-add by
// d_w * d_x, one by m_w * s_x per lane) is done once per 16 blocks instead of per pair. A weight
// row of nb = 16 * nfull + t blocks: its nfull groups (main region, row after row); the tails
// (0 < t < 16 blocks, padded with zero blocks to g = a power of two >= 2) of RG = 16 / g
// consecutive rows share one group in the tail region (lane l: block 16 * nfull + l % g of row
// l / g; zero rows past n_out), so the tails cost one group per RG rows (SmolLM2: 18 = 16 + 2
// blocks, the tails of 8 rows per group). Weights, per group: Q4_0/Q4_1 the 4-bit values two per
// byte (vectors 2m and 2m + 1 are the low and high nibbles of the m-th 64 stored bytes), Q8_0
// the values as bytes q + 128; then the 16 scales d (fp16) and for Q4_1 the 16 mins m (fp16):
// the stored bytes, rearranged. Q4_K takes the same layout over its 32-blocks (value q, weight
// d sc q - dmin m): the 4-bit values as Q4_1's, then per lane its 6-bit scale sc and min m as
// bytes, then [d, dmin] of the 256-block of lanes 0-7 and of lanes 8-15 (fp16; a row of an odd
// number of 256-blocks puts its last one in a tail group of g = 8, so each half of a group is
// always one 256-block). Q6_K (weight d sc (q - 32), a scale per 16 values) likewise: the low
// 4 bits of q as Q4_1's values, then the high 2 bits (64 bytes for vectors 4c .. 4c + 3: bits
// 2t, 2t + 1 of byte i are those of byte i of vector 4c + t), per lane the scales of its first
// and of its last 16 values (int8), then d of each half group (fp16). Q5_0 (weight d (q - 16)): the low 4
// bits as Q4_0's values, then the fifth bits (64 bytes: bit k of byte i is that of byte i of
// vector k), then the 16 d (fp16). Activations: a row's nfull groups (lane l: block 16 gi + l) and
// with a tail one more group (lane l: block 16 * nfull + l % g, the tail repeated RG times),
// each: the 8 vectors, then per lane d_x (16 floats), s_x (16 floats, llama.cpp's fp16 s), the
// sum of the lane's bytes (16 int32, for the exact -128 / -8 corrections of Q8_0 / Q4_0) and the
// sum of its first 16 bytes (16 int32, Q6_K's -32 correction per half block).

enum { PK_XGROUP = 512 + 256 }; // bytes of an activation group

// Group structure of a packed row of n_in values.
typedef struct pk_shape {
    int nb, nfull; // blocks; full groups
    int g, rg;     // tail blocks rounded up (0: no tail); rows per tail group (16 / g)
} pk_shape;

// The packed shape of rows of n_in values.
static inline pk_shape pk_shape_of(int n_in) {
    pk_shape sh = {n_in / 32, n_in / 32 / 16, 0, 0};
    int t = sh.nb % 16;
    if (t) {
        sh.g = 2;
        while (sh.g < t) sh.g *= 2;
        sh.rg = 16 / sh.g;
    }
    return sh;
}

// Bytes of a packed weight group (Q4_K: 256 of values, 16 scales, 16 mins, then d and dmin of the
// 256-block of lanes 0-7 and of lanes 8-15 as fp16).
static inline size_t pk_wgroup(int type) {
    return type == HASS_GGML_Q8_0 ? 16 * 34 : type == HASS_GGML_Q4_1 ? 16 * 20
         : type == HASS_GGML_Q4_K ? 256 + 32 + 8 : type == HASS_GGML_Q6_K ? 256 + 128 + 32 + 4
         : type == HASS_GGML_Q5_0 ? 16 * 22 : 16 * 18;
}

// Layout of a quantized row of n_in values.
static inline qlayout qrow_layout(int n_in) {
    size_t nb = (size_t)(n_in / 32), np = (nb + 1) / 2;
    qlayout l;
    l.d = np * 64;
    l.s = l.d + nb * 4;
    l.se = l.s + nb * 4;
    l.dx16 = (l.se + nb * 4 + 63) / 64 * 64;
    l.sx4 = l.dx16 + np * 64;
    l.px = (l.sx4 + np * 16 + 63) / 64 * 64;
    pk_shape sh = pk_shape_of(n_in);
    l.total = l.px + (size_t)(sh.nfull + (sh.g > 0)) * PK_XGROUP;
    return l;
}

// Quantize one activation row x (n_in) into q, in the layout of qrow_layout: qs, d, s, se, then
// the AVX-512 kernels' parts: the pair-wise scales (old layout, unless only_packed) and/or the
// packed part (packed). fast: the AVX-512 quantizer (same bits as the portable one).
void hass_quant_act_row(const float *x, int n_in, uint8_t *q, int fast, int packed,
                        int only_packed);

// Weight element i of a float-type row (the portable kernel, the SIMD ones' tails).
static inline float wf(int type, const uint8_t *w, int i) {
    if (type == HASS_GGML_F32) {
        float f;
        memcpy(&f, w + 4 * i, 4);
        return f;
    }
    uint16_t h = rd16(w + 2 * i);
    return type == HASS_GGML_F16 ? hass_f16_to_f32(h) : hass_bf16_to_f32(h);
}

// ----------------------------------------------------------------------------
// kernels

// A matmul kernel, what dispatch picks and runs: weight rows [o0, o1) of w against R activation
// rows starting at x (stride xs bytes), writing out[r * os + o - o0]. x holds what the kernel
// reads: quantized rows (kq), the packed parts of quantized rows (kp: each row's part at
// qrow_layout(n_in).px, the same stride) or f32 rows (kqf, kf). kq, kqf and kf run a row kernel
// on one weight row after the other (MM_ROWS); kp reads w->pk, 16 weight rows at once (o0 a
// multiple of 16, o1 - o0 <= 16). Batch invariance: each output's arithmetic (block order,
// vector lanes, final horizontal sum) is the same whatever R, the range and the thread count.
typedef void (*hass_mm_kernel)(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs,
                               int R, float *out, size_t os);

// Row kernels (static in cpu_kernels_c.c and cpu_kernels_x86.c). Signature: dot one weight row
// `w` (n_in values of `type`) with R activation rows (R <= 8 for the quantized AVX-512 kernel,
// <= 4 otherwise) starting at x (stride xs bytes; quantized rows or floats), writing
// out[r * os]:
//   void k(int type, int n_in, const uint8_t *w, const uint8_t *x, size_t xs, int R,
//          float *out, size_t os);
// MM_ROWS(name, rowk, ATTR) defines `name`, the hass_mm_kernel that runs the row kernel `rowk`
// over weight rows [o0, o1) of w's stored rows; ATTR: its target attribute (empty for the
// portable kernels).
#define MM_ROWS(name, rowk, ATTR)                                                                 \
    ATTR static void name(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs, int R, \
                          float *out, size_t os) {                                                \
        for (int o = o0; o < o1; o++)                                                             \
            rowk(w->type, w->n_in, (const uint8_t *)w->data + (size_t)o * w->row_bytes, x, xs, R, \
                 out + (o - o0), os);                                                             \
    }

// The kernels of one path (portable C, AVX2, AVX-512), the table dispatch picks from.
typedef struct hass_mm_kernels {
    hass_mm_kernel kq;  // quantized weights x 8-bit activation rows
    hass_mm_kernel kqf; // quantized weights x f32 activation rows (HASS_PREC_F32)
    hass_mm_kernel kf;  // F32/F16/BF16 weights x f32 activation rows
    hass_mm_kernel kk;  // Q5_x and K-quant weights (kquant.h) x 8-bit activation rows
    hass_mm_kernel kkf; // the same x f32 activation rows (HASS_PREC_F32)
    // packed weights (hass_quant_pack) x the packed part of 8-bit rows; NULL: none on this path
    hass_mm_kernel kp_q4_0, kp_q4_1, kp_q8_0, kp_q4_k, kp_q6_k, kp_q5_0;
    int q_rows; // most activation rows per call for quantized weights
    int f_rows; // most activation rows per call for float weights
} hass_mm_kernels;

// The kernel table of each path.
extern const hass_mm_kernels hass_mm_kernels_c;
// The portable Q5_x / K-quant kernels (cpu_kernels_c.c), for the paths that have no faster one.
void hass_mm_kk_c(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs, int R,
                  float *out, size_t os);
void hass_mm_kkf_c(const hass_wmat *w, int o0, int o1, const uint8_t *x, size_t xs, int R,
                   float *out, size_t os);
#ifdef HASS_X86
extern const hass_mm_kernels hass_mm_kernels_avx2, hass_mm_kernels_avx512;
#endif

#endif
