// cpu_quant.c: the weight-block formats and the quantized activation rows of the CPU matmul:
// dequantization of weight rows, 8-bit quantization of activation rows (portable and AVX-512,
// the same bits) in the layout every kernel path reads, and the copy of quantized weights in the
// packed layout of the AVX-512 kernel (matmul_int.h describes both layouts).
#include "matmul_int.h"

#include "kquant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef HASS_X86
#include <immintrin.h>
#endif

#ifdef HASS_X86
// fp16 rounding with the F16C instructions (round to nearest even, like the C version).
__attribute__((target("f16c"))) static float f16_round_hw(float x) {
    return _cvtsh_ss(_cvtss_sh(x, 0));
}
#endif

// fp16 rounding in C.
static float f16_round_c(float x) { return hass_f16_to_f32(hass_f32_to_f16(x)); }

float hass_f16_round(float x) {
#ifdef HASS_X86
    if (__builtin_cpu_supports("f16c")) return f16_round_hw(x);
#endif
    return f16_round_c(x);
}

int hass_quant_supported(int type) {
    return type == HASS_GGML_F32 || type == HASS_GGML_F16 || type == HASS_GGML_BF16 ||
           type == HASS_GGML_Q8_0 || type == HASS_GGML_Q4_0 || type == HASS_GGML_Q4_1 ||
           hass_kq_block_bytes(type);
}

int hass_quant_is_q(int type) {
    return type == HASS_GGML_Q8_0 || type == HASS_GGML_Q4_0 || type == HASS_GGML_Q4_1 ||
           hass_kq_block_bytes(type);
}

// Dequantize one weight row to floats.
void hass_quant_row(const hass_wmat *w, int r, float *out) {
    const uint8_t *p = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    int n = w->n_in;
    switch (w->type) {
    case HASS_GGML_F32: memcpy(out, p, (size_t)n * 4); break;
    case HASS_GGML_F16:
        for (int i = 0; i < n; i++) out[i] = hass_f16_to_f32(rd16(p + 2 * i));
        break;
    case HASS_GGML_BF16:
        for (int i = 0; i < n; i++) out[i] = hass_bf16_to_f32(rd16(p + 2 * i));
        break;
    case HASS_GGML_Q8_0:
    case HASS_GGML_Q4_0:
    case HASS_GGML_Q4_1:
        for (int b = 0; b < n / 32; b++) deq_block(w->type, p, b, out + b * 32);
        break;
    default:
        if (hass_kq_block_bytes(w->type)) hass_kq_dequant(w->type, p, n / hass_kq_block_values(w->type), out);
        else memset(out, 0, (size_t)n * 4);
        break;
    }
}

// Bytes of a packed weight matrix.
static size_t pk_bytes(int type, int n_in, int n_out) {
    pk_shape sh = pk_shape_of(n_in);
    size_t n = (size_t)n_out * sh.nfull;
    if (sh.g) n += ((size_t)n_out + sh.rg - 1) / sh.rg;
    return n * pk_wgroup(type);
}

size_t hass_quant_qrow_bytes(int n_in) { return qrow_layout(n_in).total; }

const float *hass_quant_qrow_d(const void *q, int n_in) {
    return (const float *)((const uint8_t *)q + qrow_layout(n_in).d);
}

const float *hass_quant_qrow_s(const void *q, int n_in) {
    return (const float *)((const uint8_t *)q + qrow_layout(n_in).s);
}

const float *hass_quant_qrow_se(const void *q, int n_in) {
    return (const float *)((const uint8_t *)q + qrow_layout(n_in).se);
}

size_t hass_matmul_scratch_bytes(int n_in, int n) {
    return hass_quant_qrow_bytes(n_in) * (size_t)(n > 0 ? n : 1) + 64;
}

// ----------------------------------------------------------------------------
// activation quantization (portable, shared by every kernel path)

// Quantize the blocks of one row into qs, d[], s[] and se[]. As llama.cpp's quantize_row_q8_1:
// d = max|x| / 127, q = round(x / d) (ties to even), and the stored d and s = d * sum(q)
// rounded to fp16.
static void quant_blocks_c(const float *x, int nb, int8_t *qs, float *d, float *s, float *se) {
    for (int b = 0; b < nb; b++) {
        const float *xb = x + b * 32;
        float amax = 0.f;
        for (int k = 0; k < 32; k++) {
            float a = fabsf(xb[k]);
            if (a > amax) amax = a;
        }
        float db = amax / 127.f, id = db != 0.f ? 1.0f / db : 0.f;
        int sum = 0;
        for (int k = 0; k < 32; k++) {
            long v = lrintf(xb[k] * id);
            if (v > 127) v = 127;
            if (v < -127) v = -127;
            qs[b * 32 + k] = (int8_t)v;
            sum += (int)v;
        }
        d[b] = hass_f16_round(db);
        s[b] = hass_f16_round(db * (float)sum);
        se[b] = d[b] * (float)sum; // exact: 11-bit mantissa times |sum| < 2^12
    }
}

#ifdef HASS_X86
// quant_blocks_c with AVX-512, bit for bit: the same float operations per value (the max of
// |x| is exact in any order, vcvtps2dq rounds to nearest even like lrintf).
__attribute__((target("avx512f,avx512bw,avx512vl,f16c"))) static void
quant_blocks_avx512(const float *x, int nb, int8_t *qs, float *d, float *s, float *se) {
    const __m512i lim = _mm512_set1_epi32(127), nlim = _mm512_set1_epi32(-127);
    for (int b = 0; b < nb; b++) {
        __m512 x0 = _mm512_loadu_ps(x + b * 32), x1 = _mm512_loadu_ps(x + b * 32 + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
        float db = amax / 127.f, id = db != 0.f ? 1.0f / db : 0.f;
        __m512 iv = _mm512_set1_ps(id);
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, iv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, iv));
        q0 = _mm512_max_epi32(_mm512_min_epi32(q0, lim), nlim);
        q1 = _mm512_max_epi32(_mm512_min_epi32(q1, lim), nlim);
        _mm_storeu_si128((__m128i *)(qs + b * 32), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(qs + b * 32 + 16), _mm512_cvtepi32_epi8(q1));
        int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        d[b] = _cvtsh_ss(_cvtss_sh(db, 0));
        s[b] = _cvtsh_ss(_cvtss_sh(db * (float)sum, 0));
        se[b] = d[b] * (float)sum;
    }
}
#endif

// Write one packed activation group: lane l holds block bl[l] (-1: zeros) of the row's qs,
// d and s.
static void pack_xgroup(const uint8_t *qs, const float *d, const float *s, const int *bl, uint8_t *o) {
    float *dx = (float *)(o + 512), *sx = dx + 16;
    int32_t *xs = (int32_t *)(sx + 16), *xs16 = xs + 16;
    for (int ln = 0; ln < 16; ln++) {
        int b = bl[ln], sum = 0;
        for (int k = 0; k < 8; k++) {
            uint8_t *dst = o + k * 64 + 4 * ln;
            if (k == 4) xs16[ln] = sum;
            if (b >= 0) {
                memcpy(dst, qs + b * 32 + 4 * k, 4);
                sum += (int8_t)dst[0] + (int8_t)dst[1] + (int8_t)dst[2] + (int8_t)dst[3];
            } else {
                memset(dst, 0, 4);
            }
        }
        dx[ln] = b >= 0 ? d[b] : 0.f;
        sx[ln] = b >= 0 ? s[b] : 0.f;
        xs[ln] = sum;
    }
}

// Write the packed part of a quantized row (from its qs, d and s).
static void pack_xrow(int n_in, uint8_t *q) {
    qlayout l = qrow_layout(n_in);
    pk_shape sh = pk_shape_of(n_in);
    const float *d = (const float *)(q + l.d), *s = (const float *)(q + l.s);
    uint8_t *o = q + l.px;
    int bl[16];
    for (int gi = 0; gi < sh.nfull; gi++, o += PK_XGROUP) {
        for (int ln = 0; ln < 16; ln++) bl[ln] = 16 * gi + ln;
        pack_xgroup(q, d, s, bl, o);
    }
    if (sh.g) {
        for (int ln = 0; ln < 16; ln++) {
            int b = 16 * sh.nfull + ln % sh.g;
            bl[ln] = b < sh.nb ? b : -1;
        }
        pack_xgroup(q, d, s, bl, o);
    }
}

void hass_quant_act_row(const float *x, int n_in, uint8_t *q, int fast, int packed,
                        int only_packed) {
    int nb = n_in / 32, np = (nb + 1) / 2;
    qlayout l = qrow_layout(n_in);
    int8_t *qs = (int8_t *)q;
    float *d = (float *)(q + l.d), *s = (float *)(q + l.s), *se = (float *)(q + l.se);
    float *dx16 = (float *)(q + l.dx16), *sx4 = (float *)(q + l.sx4);
#ifdef HASS_X86
    if (fast) quant_blocks_avx512(x, nb, qs, d, s, se);
    else
#endif
        quant_blocks_c(x, nb, qs, d, s, se);
    (void)fast;
    if (nb % 2) memset(qs + (size_t)nb * 32, 0, 32);
    if (packed) pack_xrow(n_in, q);
    if (only_packed) return;
    for (int p = 0; p < np; p++) {
        float da = d[2 * p], dbb = 2 * p + 1 < nb ? d[2 * p + 1] : 0.f;
        for (int k = 0; k < 8; k++) {
            dx16[p * 16 + k] = da;
            dx16[p * 16 + 8 + k] = dbb;
        }
        sx4[p * 4 + 0] = se[2 * p];
        sx4[p * 4 + 1] = s[2 * p];
        sx4[p * 4 + 2] = 2 * p + 1 < nb ? se[2 * p + 1] : 0.f;
        sx4[p * 4 + 3] = 2 * p + 1 < nb ? s[2 * p + 1] : 0.f;
    }
}

// Put lane ln's 32 values e into the group's 8 vectors: vector k gets values 4k .. 4k + 3.
static void lane_put(uint8_t V[8][64], int ln, const uint8_t *e) {
    for (int k = 0; k < 8; k++) memcpy(&V[k][4 * ln], e + 4 * k, 4);
}

// Write the low 4 bits of the 8 vectors as 4 x 64 bytes: vectors 2m and 2m + 1 are the low and
// high nibbles of the m-th 64 bytes.
static void pack_nibbles(uint8_t V[8][64], uint8_t *o) {
    for (int mi = 0; mi < 4; mi++, o += 64)
        for (int i = 0; i < 64; i++) o[i] = (uint8_t)((V[2 * mi][i] & 15) | (V[2 * mi + 1][i] & 15) << 4);
}

// Write one packed weight group: lane l holds the stored block blk[l] (NULL: a zero block).
static void pack_wgroup(int type, const uint8_t *const *blk, uint8_t *o) {
    uint8_t V[8][64];
    uint16_t dg[16], mg[16];
    for (int ln = 0; ln < 16; ln++) {
        uint8_t e[32];
        uint16_t dh = 0, mh = 0;
        memset(e, type == HASS_GGML_Q8_0 ? 0x80 : 0, 32);
        const uint8_t *b = blk[ln];
        if (b) {
            dh = rd16(b);
            if (type == HASS_GGML_Q8_0) {
                for (int k = 0; k < 32; k++) e[k] = (uint8_t)(b[2 + k] ^ 0x80);
            } else {
                int qo = type == HASS_GGML_Q4_0 ? 2 : 4;
                for (int k = 0; k < 16; k++) {
                    e[k] = b[qo + k] & 15;
                    e[k + 16] = b[qo + k] >> 4;
                }
                if (type == HASS_GGML_Q4_1) mh = rd16(b + 2);
            }
        }
        lane_put(V, ln, e);
        dg[ln] = dh;
        mg[ln] = mh;
    }
    uint8_t *p = o + (type == HASS_GGML_Q8_0 ? 512 : 256);
    if (type == HASS_GGML_Q8_0) memcpy(o, V, 512);
    else pack_nibbles(V, o);
    memcpy(p, dg, 32);
    if (type == HASS_GGML_Q4_1) memcpy(p + 32, mg, 32);
}

// Write one packed Q4_K group: lane l holds 32-block b[l] of the Q4_K row row[l] (NULL: a zero
// block); lanes 0-7 lie in one 256-block and lanes 8-15 in one (their d and dmin kept once).
static void pack_wgroup_q4k(const uint8_t *const *row, const int *b, uint8_t *o) {
    uint8_t V[8][64], sc[16], mn[16];
    uint16_t dd[4] = {0, 0, 0, 0};
    for (int ln = 0; ln < 16; ln++) {
        uint8_t e[32] = {0};
        int s = 0, m = 0;
        if (row[ln]) {
            const uint8_t *blk = row[ln] + (size_t)(b[ln] / 8) * 144, *q;
            int j = b[ln] % 8;
            q = blk + 16 + 32 * (j / 2); // 32-blocks 2c and 2c + 1: low and high nibbles
            for (int k = 0; k < 32; k++) e[k] = j % 2 ? q[k] >> 4 : q[k] & 15;
            hass_kq_scale_min(blk + 4, j, &s, &m);
            dd[2 * (ln / 8)] = rd16(blk);
            dd[2 * (ln / 8) + 1] = rd16(blk + 2);
        }
        lane_put(V, ln, e);
        sc[ln] = (uint8_t)s;
        mn[ln] = (uint8_t)m;
    }
    pack_nibbles(V, o);
    memcpy(o + 256, sc, 16);
    memcpy(o + 272, mn, 16);
    memcpy(o + 288, dd, 8);
}

// Write one packed Q6_K group: lane l holds 32-block b[l] of the Q6_K row row[l] (NULL: a zero
// block); lanes 0-7 lie in one 256-block and lanes 8-15 in one (their d kept once).
static void pack_wgroup_q6k(const uint8_t *const *row, const int *b, uint8_t *o) {
    uint8_t V[8][64], q[256];
    int8_t sc[2][16];
    uint16_t dd[2] = {0, 0};
    const uint8_t *dec = NULL; // the 256-block whose values q holds
    for (int ln = 0; ln < 16; ln++) {
        uint8_t e[32] = {0};
        sc[0][ln] = sc[1][ln] = 0;
        if (row[ln]) {
            const uint8_t *blk = row[ln] + (size_t)(b[ln] / 8) * 210;
            int j = b[ln] % 8;
            if (blk != dec) hass_kq_q6k_values(dec = blk, q);
            memcpy(e, q + 32 * j, 32);
            sc[0][ln] = (int8_t)blk[192 + 2 * j];
            sc[1][ln] = (int8_t)blk[192 + 2 * j + 1];
            dd[ln / 8] = rd16(blk + 208);
        }
        lane_put(V, ln, e);
    }
    pack_nibbles(V, o);
    o += 256;
    for (int c = 0; c < 2; c++, o += 64)
        for (int i = 0; i < 64; i++) {
            int h = 0;
            for (int t = 0; t < 4; t++) h |= (V[4 * c + t][i] >> 4) << (2 * t);
            o[i] = (uint8_t)h;
        }
    memcpy(o, sc, 32);
    memcpy(o + 32, dd, 4);
}

// Write one packed Q5_0 group: lane l holds the stored block blk[l] (NULL: a zero block).
static void pack_wgroup_q5_0(const uint8_t *const *blk, uint8_t *o) {
    uint8_t V[8][64];
    uint16_t dg[16];
    for (int ln = 0; ln < 16; ln++) {
        int q[32] = {0};
        uint8_t e[32];
        dg[ln] = 0;
        if (blk[ln]) {
            hass_kq_q5_values(blk[ln] + 2, blk[ln] + 6, q);
            dg[ln] = rd16(blk[ln]);
        }
        for (int k = 0; k < 32; k++) e[k] = (uint8_t)q[k];
        lane_put(V, ln, e);
    }
    pack_nibbles(V, o);
    o += 256;
    for (int i = 0; i < 64; i++) {
        int h = 0;
        for (int k = 0; k < 8; k++) h |= (V[k][i] >> 4) << k;
        o[i] = (uint8_t)h;
    }
    memcpy(o + 64, dg, 32);
}

// Write the group of lanes (row ptr[l] or NULL, block b[l]) of a matrix of type.
static void pack_lanes(int type, const uint8_t *const *ptr, const int *b, uint8_t *o) {
    if (type == HASS_GGML_Q4_K || type == HASS_GGML_Q6_K) {
        (type == HASS_GGML_Q4_K ? pack_wgroup_q4k : pack_wgroup_q6k)(ptr, b, o);
        return;
    }
    const uint8_t *blk[16];
    size_t bs = type == HASS_GGML_Q5_0 ? 22 : qblock_bytes(type);
    for (int ln = 0; ln < 16; ln++) blk[ln] = ptr[ln] ? ptr[ln] + (size_t)b[ln] * bs : NULL;
    if (type == HASS_GGML_Q5_0) pack_wgroup_q5_0(blk, o);
    else pack_wgroup(type, blk, o);
}

// Packing work for the pool: task t < n_out packs row t's main groups, task n_out + c tail group c.
typedef struct pack_ctx {
    const hass_wmat *w;
    pk_shape sh;
    uint8_t *pk;
} pack_ctx;

// Pack tasks [t0, t1) (see pack_ctx).
static void pack_tasks(void *ctx, int k, int t0, int t1) {
    const pack_ctx *c = ctx;
    const hass_wmat *w = c->w;
    int type = w->type, n_out = w->n_out;
    size_t G = pk_wgroup(type);
    const uint8_t *ptr[16];
    int b[16];
    (void)k;
    for (int t = t0; t < t1; t++) {
        uint8_t *o;
        if (t < n_out) {
            o = c->pk + (size_t)t * c->sh.nfull * G;
            for (int gi = 0; gi < c->sh.nfull; gi++, o += G) {
                for (int ln = 0; ln < 16; ln++) {
                    ptr[ln] = (const uint8_t *)w->data + (size_t)t * w->row_bytes;
                    b[ln] = 16 * gi + ln;
                }
                pack_lanes(type, ptr, b, o);
            }
            continue;
        }
        int r0 = (t - n_out) * c->sh.rg; // tail group of rows r0 .. r0 + rg - 1
        o = c->pk + (size_t)n_out * c->sh.nfull * G + (size_t)(t - n_out) * G;
        for (int ln = 0; ln < 16; ln++) {
            int r = r0 + ln / c->sh.g;
            b[ln] = 16 * c->sh.nfull + ln % c->sh.g;
            ptr[ln] = r < n_out && b[ln] < c->sh.nb ? (const uint8_t *)w->data + (size_t)r * w->row_bytes : NULL;
        }
        pack_lanes(type, ptr, b, o);
    }
}

void *hass_quant_pack(const hass_wmat *w) { return hass_quant_pack_on(w, NULL); }

int hass_quant_packable(const hass_wmat *w) {
    int t = w->type, k = t == HASS_GGML_Q4_K || t == HASS_GGML_Q6_K;
    int ok = t == HASS_GGML_Q4_0 || t == HASS_GGML_Q4_1 || t == HASS_GGML_Q8_0 || t == HASS_GGML_Q5_0 || k;
    return ok && w->n_in > 0 && w->n_out > 0 && w->n_in % (k ? 256 : 32) == 0;
}

void *hass_quant_pack_on(const hass_wmat *w, hass_pool *pool) {
    if (!hass_quant_packable(w)) return NULL;
    pack_ctx c = {w, pk_shape_of(w->n_in), malloc(pk_bytes(w->type, w->n_in, w->n_out))};
    if (!c.pk) return NULL;
    int n_tail = c.sh.g ? (w->n_out + c.sh.rg - 1) / c.sh.rg : 0;
    hass_pool_run(pool, w->n_out + n_tail, pack_tasks, &c);
    return c.pk;
}

void hass_quant_rows(const float *x, int n, int n_in, void *q) {
    size_t rb = hass_quant_qrow_bytes(n_in);
    int fast = hass_kernel_level() == 2;
    for (int i = 0; i < n; i++)
        hass_quant_act_row(x + (size_t)i * n_in, n_in, (uint8_t *)q + i * rb, fast, 1, 0);
}

