// test_kquant.c: exact dequantization of Q5_0, Q5_1 and Q2_K..Q6_K (libcore/engine/kquant.c)
// against gguf-py's dequantize of the same random blocks (tests/data/kquant_ref.bin, made by
// tests/gen/gen_kquant.py), bit for bit, plus the block sizes.
#include "unit.h"

#include <stdint.h>

#include "gguf.h"
#include "kquant.h"
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

// Every kernel path against the portable one on random rows, and each path's row results the
// same whether it runs 1 or 8 activation rows at a time.
static void check_kernels(int type, const int *f16s, int nf) {
    enum { N_IN = 512, N_OUT = 24, NX = 8 };
    uint8_t *wd = random_rows(type, N_IN, N_OUT, f16s, nf, 7u + (unsigned)type);
    hass_wmat w = {type, N_IN, N_OUT, (size_t)N_IN / hass_kq_block_values(type) * hass_kq_block_bytes(type), wd, NULL};
    float *x = malloc(sizeof(float) * N_IN * NX);
    for (int i = 0; i < N_IN * NX; i++) x[i] = (float)((rand() % 2001) - 1000) / 250.f;
    void *q = malloc(hass_matmul_scratch_bytes(N_IN, NX));
    float ref[NX * N_OUT], all[NX * N_OUT], one[NX * N_OUT];
    int best = hass_kernel_set_path(2);
    for (int path = 0; path <= best; path++) {
        hass_kernel_set_path(path);
        hass_mm_job j = {&w, all};
        hass_mm_run(&j, 1, x, NX, q, NULL);
        for (int r = 0; r < NX; r++) {
            hass_mm_job j1 = {&w, one + r * N_OUT};
            hass_mm_run(&j1, 1, x + r * N_IN, 1, q, NULL);
        }
        if (path == 0) memcpy(ref, all, sizeof ref);
        char name[96];
        snprintf(name, sizeof name, "kquant_kernel_%s_path%d_batch_invariant", hass_ggml_type_name(type), path);
        CHECK(name, !memcmp(all, one, sizeof all), "rows differ between 8 at once and one at a time");
        snprintf(name, sizeof name, "kquant_kernel_%s_path%d_vs_c", hass_ggml_type_name(type), path);
        double e = unit_nmse(all, ref, NX * N_OUT);
        CHECK(name, e < 1e-12, "nmse %.3g against the portable kernel", e);
    }
    hass_kernel_set_path(best);
    free(q);
    free(x);
    free(wd);
}

int main(void) {
    check_kernels(HASS_GGML_Q4_K, (const int[]){0, 2}, 2);
    check_kernels(HASS_GGML_Q5_0, (const int[]){0}, 1);
    check_kernels(HASS_GGML_Q5_1, (const int[]){0, 2}, 2);
    check_kernels(HASS_GGML_Q6_K, (const int[]){208}, 1);
    check_kernels(HASS_GGML_Q5_K, (const int[]){0, 2}, 2);
    check_kernels(HASS_GGML_Q3_K, (const int[]){108}, 1);
    check_kernels(HASS_GGML_Q2_K, (const int[]){80, 82}, 2);
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
        free(got);
        off += nb * bb + nval * 4;
        types_seen++;
    }
    CHECK("kquant_ref_types", types_seen == 7, "%d of 7 types in the reference file", types_seen);
    free(buf);
    UNIT_DONE();
}
