// kquant.c: exact dequantization of Q5_0, Q5_1 and the K-quants Q2_K..Q6_K (layouts in kquant.h).
#include "kquant.h"

#include <string.h>

#include "gguf.h"
#include "half.h"

#define QK_K 256

// A little-endian f16 at p as a float.
static float f16_at(const uint8_t *p) { return hass_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

// Values in one block of a type.
int hass_kq_block_values(int type) {
    switch (type) {
    case HASS_GGML_Q5_0: case HASS_GGML_Q5_1: return 32;
    case HASS_GGML_Q2_K: case HASS_GGML_Q3_K: case HASS_GGML_Q4_K: case HASS_GGML_Q5_K:
    case HASS_GGML_Q6_K: return QK_K;
    default: return 0;
    }
}

// Bytes of one block of a type.
size_t hass_kq_block_bytes(int type) {
    switch (type) {
    case HASS_GGML_Q5_0: return 22;
    case HASS_GGML_Q5_1: return 24;
    case HASS_GGML_Q2_K: return 84;
    case HASS_GGML_Q3_K: return 110;
    case HASS_GGML_Q4_K: return 144;
    case HASS_GGML_Q5_K: return 176;
    case HASS_GGML_Q6_K: return 210;
    default: return 0;
    }
}

// The 6-bit scale and min of group j of a Q4_K/Q5_K block.
void hass_kq_scale_min(const uint8_t *sc, int j, int *scale, int *min) {
    if (j < 4) {
        *scale = sc[j] & 63;
        *min = sc[j + 4] & 63;
    } else {
        *scale = (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4);
        *min = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
    }
}

// The 5-bit values of a Q5_0/Q5_1 block: nibbles of qs and bit e of qh.
static void q5_values(const uint8_t *qh4, const uint8_t *qs, int q[32]) {
    uint32_t qh;
    memcpy(&qh, qh4, 4); // little-endian host (x86, the supported CPUs)
    for (int e = 0; e < 16; e++) {
        q[e] = (qs[e] & 15) | (int)((qh >> e) & 1) << 4;
        q[e + 16] = (qs[e] >> 4) | (int)((qh >> (e + 16)) & 1) << 4;
    }
}

// One Q5_0 block (22 bytes) -> 32 values.
static void dq_q5_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    int q[32];
    q5_values(b + 2, b + 6, q);
    for (int e = 0; e < 32; e++) y[e] = (float)(q[e] - 16) * d;
}

// One Q5_1 block (24 bytes) -> 32 values.
static void dq_q5_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    int q[32];
    q5_values(b + 4, b + 8, q);
    for (int e = 0; e < 32; e++) y[e] = d * (float)q[e] + m;
}

// The 2-bit piece of value e of a K-quant block from its 64 bytes qs.
static int crumb(const uint8_t *qs, int e) {
    return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// One Q2_K block (84 bytes) -> 256 values.
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = f16_at(b + 80), dmin = f16_at(b + 82);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)(sc[g] & 15), ml = dmin * (float)(sc[g] >> 4);
        for (int e = g * 16; e < g * 16 + 16; e++) y[e] = dl * (float)crumb(qs, e) - ml;
    }
}

// The 6-bit signed scale (s6 - 32) of group g (0..15) of a Q3_K block's 12 scale bytes.
static int q3k_scale(const uint8_t *sc, int g) {
    int lo = (sc[g % 8] >> (4 * (g / 8))) & 15;
    int hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
    return (lo | hi << 4) - 32;
}

// One Q3_K block (110 bytes) -> 256 values.
static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    float d = f16_at(b + 108);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)q3k_scale(sc, g);
        for (int e = g * 16; e < g * 16 + 16; e++) {
            int h = (hm[e % 32] >> (e / 32)) & 1;
            y[e] = dl * (float)(crumb(qs, e) - (h ? 0 : 4));
        }
    }
}

// The nibble of value e of a Q4_K/Q5_K block from its 128 bytes qs.
static int nibble_k(const uint8_t *qs, int e) {
    return (qs[(e / 64) * 32 + e % 32] >> (4 * ((e % 64) / 32))) & 15;
}

// One Q4_K (144 bytes) or, with qh, Q5_K (176 bytes) block -> 256 values.
static void dq_q45_k(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    for (int g = 0; g < 8; g++) {
        int s, m;
        hass_kq_scale_min(b + 4, g, &s, &m);
        float dl = d * (float)s, ml = dmin * (float)m;
        for (int e = g * 32; e < g * 32 + 32; e++) {
            int q = nibble_k(qs, e) | (qh ? ((qh[e % 32] >> (e / 32)) & 1) << 4 : 0);
            y[e] = dl * (float)q - ml;
        }
    }
}

// One Q6_K block (210 bytes) -> 256 values.
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)sc[g];
        for (int e = g * 16; e < g * 16 + 16; e++) {
            int lo = (ql[(e / 128) * 64 + e % 64] >> (4 * ((e % 128) / 64))) & 15;
            int q = lo | crumb(qh, e) << 4;
            y[e] = dl * (float)(q - 32);
        }
    }
}

// Dequantize n_blocks blocks of type.
void hass_kq_dequant(int type, const void *src, int64_t n_blocks, float *out) {
    const uint8_t *b = src;
    size_t bb = hass_kq_block_bytes(type);
    int nv = hass_kq_block_values(type);
    for (int64_t i = 0; i < n_blocks; i++, b += bb, out += nv) {
        switch (type) {
        case HASS_GGML_Q5_0: dq_q5_0(b, out); break;
        case HASS_GGML_Q5_1: dq_q5_1(b, out); break;
        case HASS_GGML_Q2_K: dq_q2_k(b, out); break;
        case HASS_GGML_Q3_K: dq_q3_k(b, out); break;
        case HASS_GGML_Q4_K: dq_q45_k(b, NULL, b + 16, out); break;
        case HASS_GGML_Q5_K: dq_q45_k(b, b + 16, b + 48, out); break;
        case HASS_GGML_Q6_K: dq_q6_k(b, out); break;
        default: return;
        }
    }
}
