// test_kquant.c: exact dequantization of Q5_0, Q5_1 and Q2_K..Q6_K (libcore/engine/kquant.c)
// against gguf-py's dequantize of the same random blocks (tests/data/kquant_ref.bin, made by
// tests/gen/gen_kquant.py), bit for bit, plus the block sizes; the SIMD row kernels
// (kquant_avx2.c, kquant_avx512.c) against the portable dot on random and fixture blocks, bit for
// bit where every float step is exact, and their batch invariance for R = 1..8; every kernel path
// through hass_mm_run.
#include "unit.h"

#include <stdint.h>

#include "gguf.h"
#include "kquant.h"
#include "pool.h"
#include "quant.h"

// Read a whole file into memory (caller frees); NULL when missing.
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len);
    *n = fread(b, 1, (size_t)len, f) == (size_t)len ? (size_t)len : 0;
    fclose(f);
    return b;
}

// A little-endian u32 at p.
static uint32_t u32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

// Random weight rows of a K-quant type with finite f16 scales (offsets of the f16 fields: f16s).
static uint8_t *random_rows(int type, int n_in, int n_out, const int *f16s, int nf, unsigned seed) {
    size_t bb = hass_kq_block_bytes(type), nb = (size_t)n_in / hass_kq_block_values(type) * n_out;
    uint8_t *w = malloc(nb * bb);
    srand(seed);
    for (size_t i = 0; i < nb * bb; i++) w[i] = (uint8_t)(rand() & 255);
    for (size_t b = 0; b < nb; b++)
        for (int f = 0; f < nf; f++) { // |value| in [2^-7, 2^-2], either sign
            uint16_t h = (uint16_t)(((rand() & 1) << 15) | ((8 + rand() % 6) << 10) | (rand() & 1023));
            w[b * bb + f16s[f]] = (uint8_t)h;
            w[b * bb + f16s[f] + 1] = (uint8_t)(h >> 8);
        }
    return w;
}

// Rows x (nx, n_in) through w one at a time on one thread (into one, (nx, n_out)), then the
// first n = 2..nx at once on pool (into all): whether every row's bits are the same both ways.
static int rows_invariant(const hass_wmat *w, const float *x, int nx, void *q, hass_pool *pool,
                          float *one, float *all) {
    for (int r = 0; r < nx; r++) {
        hass_mm_job j1 = {w, one + r * w->n_out};
        hass_mm_run(&j1, 1, x + r * w->n_in, 1, q, NULL);
    }
    int same = 1;
    for (int n = 2; n <= nx; n++) {
        hass_mm_job j = {w, all};
        hass_mm_run(&j, 1, x, n, q, pool);
        same &= !memcmp(all, one, sizeof(float) * n * w->n_out);
    }
    return same;
}

// Every kernel path against the portable one on random rows of n_in values, and each path's row
// results the same whether it runs 1, 2, .. or 8 activation rows at a time (hass_mm_run splits
// them into calls of up to the path's q_rows); on AVX-512, also the packed kernel (Q4_K) on two
// threads.
static void check_kernels(int type, const int *f16s, int nf, int n_in) {
    enum { N_OUT = 24, NX = 8 };
    uint8_t *wd = random_rows(type, n_in, N_OUT, f16s, nf, 7u + (unsigned)type);
    hass_wmat w = {type, n_in, N_OUT, (size_t)n_in / hass_kq_block_values(type) * hass_kq_block_bytes(type), wd, NULL};
    float *x = malloc(sizeof(float) * n_in * NX);
    for (int i = 0; i < n_in * NX; i++) x[i] = (float)((rand() % 2001) - 1000) / 250.f;
    void *q = malloc(hass_matmul_scratch_bytes(n_in, NX));
    float ref[NX * N_OUT], all[NX * N_OUT], one[NX * N_OUT];
    int best = hass_kernel_set_path(2);
    void *pk = best == 2 ? hass_quant_pack(&w) : NULL;
    hass_err err = HASS_OK;
    hass_pool *pool = pk ? hass_pool_new(2, &err) : NULL;
    for (int path = 0; path <= best + (pk != NULL); path++) {
        hass_kernel_set_path(path > best ? best : path);
        w.pk = path > best ? pk : NULL;
        int same = rows_invariant(&w, x, NX, q, w.pk ? pool : NULL, one, all);
        if (path == 0) memcpy(ref, all, sizeof ref);
        char name[96], pn[16];
        snprintf(pn, sizeof pn, path > best ? "packed" : "path%d", path);
        snprintf(name, sizeof name, "kquant_kernel_%s_n%d_%s_batch_invariant", hass_ggml_type_name(type), n_in, pn);
        CHECK(name, same, "rows differ between n = 2..8 at once and one at a time");
        snprintf(name, sizeof name, "kquant_kernel_%s_n%d_%s_vs_c", hass_ggml_type_name(type), n_in, pn);
        double e = unit_nmse(all, ref, NX * N_OUT);
        CHECK(name, e < 1e-12, "nmse %.3g against the portable kernel", e);
    }
    hass_kernel_set_path(best);
    hass_pool_free(pool);
    free(pk);
    free(q);
    free(x);
    free(wd);
}

// A SIMD row kernel of kquant.h and its name.
typedef void (*rowk)(int type, int n_in, const uint8_t *w, const int8_t *const *x,
                     const float *const *dx, const float *const *se, int R, float *out, size_t os);
typedef struct simd_kernel {
    const char *name;
    rowk k;
    int path; // the kernel path (hass_kernel_set_path) the CPU needs for it
} simd_kernel;
static const simd_kernel SIMD[] = {{"avx2", hass_kq_avx2, 1}, {"avx512", hass_kq_avx512, 2}};

// 8 activation rows of n_in values as the row kernels take them: x[r] (n_in int8, zero padded
// to a multiple of 64), dx[r], se[r] (n_in / 32 each).
typedef struct act8 {
    int8_t *x[8];
    float *dx[8], *se[8];
} act8;

// Random activation rows, quantized by the library (hass_quant_rows) when exact is 0; with
// exact, small integers (-4..4) with dx = 1, so that with power-of-two weight scales every float
// step of every kernel is exact and all must agree bit for bit.
static act8 act8_make(int n_in, int exact) {
    act8 a;
    int nb = n_in / 32;
    size_t qb = hass_quant_qrow_bytes(n_in);
    uint8_t *q = malloc(qb * 8);
    float *xf = malloc(sizeof(float) * n_in * 8);
    for (int i = 0; i < n_in * 8; i++) xf[i] = (float)((rand() % 2001) - 1000) / 250.f;
    hass_quant_rows(xf, 8, n_in, q);
    for (int r = 0; r < 8; r++) {
        a.x[r] = calloc((size_t)n_in + 64, 1);
        a.dx[r] = malloc(sizeof(float) * nb);
        a.se[r] = malloc(sizeof(float) * nb);
        memcpy(a.x[r], q + r * qb, (size_t)n_in);
        memcpy(a.dx[r], hass_quant_qrow_d(q + r * qb, n_in), sizeof(float) * nb);
        memcpy(a.se[r], hass_quant_qrow_se(q + r * qb, n_in), sizeof(float) * nb);
        for (int b = 0; exact && b < nb; b++) {
            int sum = 0;
            for (int k = 0; k < 32; k++) sum += a.x[r][32 * b + k] = (int8_t)(rand() % 9 - 4);
            a.dx[r][b] = 1.f;
            a.se[r][b] = (float)sum;
        }
    }
    free(xf);
    free(q);
    return a;
}

// Free act8_make's rows.
static void act8_free(act8 *a) {
    for (int r = 0; r < 8; r++) free(a->x[r]), free(a->dx[r]), free(a->se[r]);
}

// The SIMD row kernels this CPU runs against the portable dot (hass_kq_dot_q8) on n_out weight
// rows w of n_in values (what: the test name's middle): nmse under 1e-12, or with exact equal
// bit for bit; and each row's result bit for bit the same for every R = 1..8 and place in the
// call (batch invariance).
static void check_rowk(int type, const uint8_t *w, int n_in, int n_out, int exact, const char *what) {
    act8 a = act8_make(n_in, exact);
    size_t rb = (size_t)n_in / hass_kq_block_values(type) * hass_kq_block_bytes(type);
    float *ref = malloc(sizeof(float) * 8 * n_out), *one = malloc(sizeof(float) * 8 * n_out);
    for (int o = 0; o < n_out; o++)
        for (int r = 0; r < 8; r++)
            ref[o * 8 + r] = hass_kq_dot_q8(type, n_in, w + o * rb, a.x[r], a.dx[r]);
    int best = hass_kernel_set_path(2);
    for (size_t ki = 0; ki < sizeof SIMD / sizeof *SIMD; ki++) {
        const simd_kernel *k = &SIMD[ki];
        char name[128];
        snprintf(name, sizeof name, "kquant_rowk_%s_%s_%s", k->name, hass_ggml_type_name(type), what);
        if (best < k->path) {
            SKIP(name, "the CPU lacks the kernel's instructions");
            continue;
        }
        int inv = 1;
        for (int o = 0; o < n_out; o++) {
            for (int r = 0; r < 8; r++)
                k->k(type, n_in, w + o * rb, (const int8_t *const *)a.x + r, (const float *const *)a.dx + r,
                     (const float *const *)a.se + r, 1, one + o * 8 + r, 1);
            for (int R = 2; R <= 8; R++)
                for (int at = 0; at + R <= 8; at++) {
                    float got[8];
                    k->k(type, n_in, w + o * rb, (const int8_t *const *)a.x + at, (const float *const *)a.dx + at,
                         (const float *const *)a.se + at, R, got, 1);
                    inv &= !memcmp(got, one + o * 8 + at, sizeof(float) * R);
                }
        }
        char iname[160];
        snprintf(iname, sizeof iname, "%s_batch_invariant", name);
        CHECK(iname, inv, "a row's result differs between R = 1 and R = 2..8 or its place in the call");
        if (exact) {
            CHECK(name, !memcmp(one, ref, sizeof(float) * 8 * n_out), "not bit for bit the portable dot");
        } else {
            double e = unit_nmse(one, ref, (size_t)8 * n_out);
            CHECK(name, e < 1e-12, "nmse %.3g against the portable dot", e);
        }
    }
    hass_kernel_set_path(best);
    free(one);
    free(ref);
    act8_free(&a);
}

// check_rowk on random rows of several lengths; with exact, every f16 scale +-1/16 (0x2c00).
static void check_rowk_random(int type, const int *f16s, int nf, int exact) {
    int nv = hass_kq_block_values(type);
    const int lens[] = {1, 3, 7, 28};
    for (int li = 0; li < 4; li++) {
        int n_in = nv * lens[li], n_out = 5;
        if (n_in > 2048) continue;
        uint8_t *w = random_rows(type, n_in, n_out, f16s, nf, 11u + (unsigned)(type * 4 + li));
        size_t bb = hass_kq_block_bytes(type), nb = (size_t)n_in / nv * n_out;
        for (size_t b = 0; exact && b < nb; b++)
            for (int f = 0; f < nf; f++) {
                w[b * bb + f16s[f]] = 0;
                w[b * bb + f16s[f] + 1] = (uint8_t)(0x2c | (rand() & 1) << 7);
            }
        char what[48];
        snprintf(what, sizeof what, "n%d_%s", n_in, exact ? "exact" : "random");
        check_rowk(type, w, n_in, n_out, exact, what);
        free(w);
    }
}

// The types with their f16 fields' offsets.
static const struct {
    int type, nf, f16s[2];
} TYPES[] = {
    {HASS_GGML_Q4_K, 2, {0, 2}}, {HASS_GGML_Q5_0, 1, {0}},       {HASS_GGML_Q5_1, 2, {0, 2}},
    {HASS_GGML_Q6_K, 1, {208}},  {HASS_GGML_Q5_K, 2, {0, 2}},    {HASS_GGML_Q3_K, 1, {108}},
    {HASS_GGML_Q2_K, 2, {80, 82}},
};

// hass_kq_q6k_values (the Q6_K packer's decoder) gives the values of the exact dequantizer:
// d * sc * (q - 32) from it equals hass_kq_dequant bit for bit on random blocks.
static void check_q6k_values(void) {
    const int f16s[1] = {208};
    uint8_t *w = random_rows(HASS_GGML_Q6_K, 256 * 16, 1, f16s, 1, 99u), q[256];
    float y[256];
    int same = 1;
    for (int blk = 0; blk < 16; blk++) {
        const uint8_t *b = w + blk * 210;
        hass_kq_dequant(HASS_GGML_Q6_K, b, 1, y);
        hass_kq_q6k_values(b, q);
        float d = hass_f16_to_f32((uint16_t)(b[208] | b[209] << 8));
        for (int e = 0; e < 256; e++) {
            float v = d * (float)(int8_t)b[192 + e / 16] * (float)(q[e] - 32);
            same &= q[e] < 64 && !memcmp(&v, &y[e], 4);
        }
    }
    CHECK("kquant_q6k_values_match_dequant", same, "hass_kq_q6k_values disagrees with hass_kq_dequant");
    free(w);
}

int main(void) {
    check_q6k_values();
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++) {
        int t = TYPES[i].type, nf = TYPES[i].nf;
        const int *f = TYPES[i].f16s;
        int k = hass_kq_block_values(t) == 256;
        check_kernels(t, f, nf, k ? 512 : 864);
        check_kernels(t, f, nf, k ? 768 : 896);
        if (k) check_kernels(t, f, nf, 256); // one 256-block a row: tail groups only
        check_rowk_random(t, f, nf, 0);
        check_rowk_random(t, f, nf, 1);
    }
    CHECK("kquant_block_sizes",
          hass_kq_block_bytes(HASS_GGML_Q4_K) == 144 && hass_kq_block_bytes(HASS_GGML_Q5_K) == 176 &&
              hass_kq_block_bytes(HASS_GGML_Q6_K) == 210 && hass_kq_block_bytes(HASS_GGML_Q5_0) == 22 &&
              hass_kq_block_values(HASS_GGML_Q6_K) == 256 && hass_kq_block_values(HASS_GGML_Q5_0) == 32 &&
              hass_kq_block_bytes(HASS_GGML_Q8_0) == 0,
          "block sizes differ from ggml's");
    size_t n = 0;
    uint8_t *buf = slurp("tests/data/kquant_ref.bin", &n);
    if (!buf || n < 8 || memcmp(buf, "HKQ1", 4)) {
        CHECK("kquant_ref_file", 0, "tests/data/kquant_ref.bin missing or bad");
        free(buf);
        UNIT_DONE();
    }
    uint32_t entries = u32(buf + 4);
    size_t off = 8;
    int types_seen = 0;
    for (uint32_t i = 0; i < entries && off + 8 <= n; i++) {
        int type = (int)u32(buf + off);
        int64_t nb = u32(buf + off + 4);
        off += 8;
        size_t bb = hass_kq_block_bytes(type);
        int nv = hass_kq_block_values(type);
        size_t nval = (size_t)nb * (size_t)nv;
        char name[64];
        snprintf(name, sizeof name, "kquant_dequant_type_%d", type);
        if (!bb || off + nb * bb + nval * 4 > n) {
            CHECK(name, 0, "type %d: unknown or truncated entry", type);
            break;
        }
        float *got = malloc(nval * sizeof *got);
        hass_kq_dequant(type, buf + off, nb, got);
        const uint8_t *want = buf + off + nb * bb;
        size_t bad = 0, first = 0;
        for (size_t k = 0; k < nval; k++) {
            if (memcmp(&got[k], want + 4 * k, 4)) {
                if (!bad) first = k;
                bad++;
            }
        }
        float w0;
        memcpy(&w0, want + 4 * first, 4);
        CHECK(name, bad == 0, "%zu of %zu values differ, first at %zu: %.9g vs gguf-py %.9g", bad,
              nval, first, got[first], w0);
        // the fixture's blocks as one weight row through the SIMD row kernels
        check_rowk(type, buf + off, (int)nval, 1, 0, "fixture");
        free(got);
        off += nb * bb + nval * 4;
        types_seen++;
    }
    CHECK("kquant_ref_types", types_seen == 7, "%d of 7 types in the reference file", types_seen);
    free(buf);
    UNIT_DONE();
}
