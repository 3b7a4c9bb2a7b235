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
void hass_kq_q5_values(const uint8_t *qh4, const uint8_t *qs, int q[32]) {
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
    hass_kq_q5_values(b + 2, b + 6, q);
    for (int e = 0; e < 32; e++) y[e] = (float)(q[e] - 16) * d;
}

// One Q5_1 block (24 bytes) -> 32 values.
static void dq_q5_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    int q[32];
    hass_kq_q5_values(b + 4, b + 8, q);
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

// The signed integer value e (-4..3) of a Q3_K block.
static int q3k_value(const uint8_t *b, int e) {
    return crumb(b + 32, e) - (((b[e % 32] >> (e / 32)) & 1) ? 0 : 4);
}

// One Q3_K block (110 bytes) -> 256 values.
static void dq_q3_k(const uint8_t *b, float *y) {
    float d = f16_at(b + 108);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)q3k_scale(b + 96, g);
        for (int e = g * 16; e < g * 16 + 16; e++) y[e] = dl * (float)q3k_value(b, e);
    }
}

// The nibble of value e of a Q4_K/Q5_K block from its 128 bytes qs.
static int nibble_k(const uint8_t *qs, int e) {
    return (qs[(e / 64) * 32 + e % 32] >> (4 * ((e % 64) / 32))) & 15;
}

// The integer value e of a Q4_K block (qs) or, with qh, of a Q5_K block (0..15 or 0..31).
static int q45k_value(const uint8_t *qh, const uint8_t *qs, int e) {
    return nibble_k(qs, e) | (qh ? ((qh[e % 32] >> (e / 32)) & 1) << 4 : 0);
}

// The signed integer value e (-32..31) of a Q6_K block.
static int q6k_value(const uint8_t *b, int e) {
    int lo = (b[(e / 128) * 64 + e % 64] >> (4 * ((e % 128) / 64))) & 15;
    return (lo | crumb(b + 128, e) << 4) - 32;
}

void hass_kq_q6k_values(const uint8_t *b, uint8_t q[256]) {
    for (int n = 0; n < 2; n++)     // 128-value halves: 64 bytes of low 4 bits, 32 of high 2
        for (int s = 0; s < 4; s++) // values 32 s .. 32 s + 31 of the half
            for (int l = 0; l < 32; l++)
                q[128 * n + 32 * s + l] = (uint8_t)(((b[64 * n + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 15) |
                                                    ((b[128 + 32 * n + l] >> (2 * s)) & 3) << 4);
}

// One Q4_K (144 bytes) or, with qh, Q5_K (176 bytes) block -> 256 values.
static void dq_q45_k(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    for (int g = 0; g < 8; g++) {
        int s, m;
        hass_kq_scale_min(b + 4, g, &s, &m);
        float dl = d * (float)s, ml = dmin * (float)m;
        for (int e = g * 32; e < g * 32 + 32; e++) {
            y[e] = dl * (float)q45k_value(qh, qs, e) - ml;
        }
    }
}

// One Q6_K block (210 bytes) -> 256 values.
static void dq_q6_k(const uint8_t *b, float *y) {
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int g = 0; g < 16; g++) {
        float dl = d * (float)sc[g];
        for (int e = g * 16; e < g * 16 + 16; e++) y[e] = dl * (float)q6k_value(b, e);
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

// Integer dot of n weight values q with activations qx, and the sum of those activations.
static void idots(const int *q, const int8_t *qx, int n, int *dot, int *sx) {
    int d = 0, s = 0;
    for (int k = 0; k < n; k++) {
        d += q[k] * qx[k];
        s += qx[k];
    }
    *dot = d;
    *sx = s;
}

// The 8-bit-path contribution of the 256 values of one K-quant block (b0: its first 32-block).
static float kblock_q8(int type, const uint8_t *b, const int8_t *qx, const float *dx) {
    float acc = 0.f;
    int q[32], id, is, id2, is2;
    for (int j = 0; j < 8; j++) {
        const int8_t *xj = qx + 32 * j;
        float t;
        if (type == HASS_GGML_Q4_K || type == HASS_GGML_Q5_K) {
            const uint8_t *qh = type == HASS_GGML_Q5_K ? b + 16 : NULL;
            const uint8_t *qs = type == HASS_GGML_Q5_K ? b + 48 : b + 16;
            int s, m;
            hass_kq_scale_min(b + 4, j, &s, &m);
            for (int k = 0; k < 32; k++) q[k] = q45k_value(qh, qs, 32 * j + k);
            idots(q, xj, 32, &id, &is);
            t = (f16_at(b) * (float)s * dx[j]) * (float)id - f16_at(b + 2) * (float)m * (dx[j] * (float)is);
        } else if (type == HASS_GGML_Q6_K) {
            const int8_t *sc = (const int8_t *)(b + 192);
            for (int k = 0; k < 32; k++) q[k] = q6k_value(b, 32 * j + k);
            idots(q, xj, 16, &id, &is);
            idots(q + 16, xj + 16, 16, &id2, &is2);
            float d = f16_at(b + 208);
            t = (d * (float)sc[2 * j] * dx[j]) * (float)id + (d * (float)sc[2 * j + 1] * dx[j]) * (float)id2;
        } else if (type == HASS_GGML_Q3_K) {
            for (int k = 0; k < 32; k++) q[k] = q3k_value(b, 32 * j + k);
            idots(q, xj, 16, &id, &is);
            idots(q + 16, xj + 16, 16, &id2, &is2);
            float d = f16_at(b + 108);
            t = (d * (float)q3k_scale(b + 96, 2 * j) * dx[j]) * (float)id +
                (d * (float)q3k_scale(b + 96, 2 * j + 1) * dx[j]) * (float)id2;
        } else { // Q2_K
            for (int k = 0; k < 32; k++) q[k] = crumb(b + 16, 32 * j + k);
            idots(q, xj, 16, &id, &is);
            idots(q + 16, xj + 16, 16, &id2, &is2);
            float d = f16_at(b + 80), dmin = f16_at(b + 82);
            uint8_t sa = b[2 * j], sb = b[2 * j + 1];
            t = ((d * (float)(sa & 15) * dx[j]) * (float)id - dmin * (float)(sa >> 4) * (dx[j] * (float)is)) +
                ((d * (float)(sb & 15) * dx[j]) * (float)id2 - dmin * (float)(sb >> 4) * (dx[j] * (float)is2));
        }
        acc += t;
    }
    return acc;
}

// Dot of one weight row with one 8-bit activation row.
float hass_kq_dot_q8(int type, int n_in, const uint8_t *w, const int8_t *qx, const float *dx) {
    size_t bb = hass_kq_block_bytes(type);
    float acc = 0.f;
    if (type == HASS_GGML_Q5_0 || type == HASS_GGML_Q5_1) {
        int q[32], id, is;
        for (int b = 0; b < n_in / 32; b++, w += bb) {
            int off = type == HASS_GGML_Q5_0 ? 2 : 4;
            hass_kq_q5_values(w + off, w + off + 4, q);
            if (type == HASS_GGML_Q5_0)
                for (int k = 0; k < 32; k++) q[k] -= 16;
            idots(q, qx + 32 * b, 32, &id, &is);
            acc += (f16_at(w) * dx[b]) * (float)id;
            if (type == HASS_GGML_Q5_1) acc += f16_at(w + 2) * (dx[b] * (float)is);
        }
        return acc;
    }
    for (int b = 0; b < n_in / QK_K; b++, w += bb) acc += kblock_q8(type, w, qx + QK_K * b, dx + 8 * b);
    return acc;
}

// Dot of one weight row with float activations.
float hass_kq_dot_f32(int type, int n_in, const uint8_t *w, const float *x) {
    int nv = hass_kq_block_values(type);
    size_t bb = hass_kq_block_bytes(type);
    float a[32] = {0}, wb[QK_K];
    for (int b = 0; b < n_in / nv; b++, w += bb) {
        hass_kq_dequant(type, w, 1, wb);
        for (int k = 0; k < nv; k++) a[k % 32] += wb[k] * x[b * nv + k];
    }
    float s = 0.f;
    for (int k = 0; k < 32; k++) s += a[k];
    return s;
}
