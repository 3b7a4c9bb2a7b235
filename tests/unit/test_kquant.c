// test_kquant.c: exact dequantization of Q5_0, Q5_1 and Q2_K..Q6_K (libcore/engine/kquant.c)
// against gguf-py's dequantize of the same random blocks (tests/data/kquant_ref.bin, made by
// tests/gen/gen_kquant.py), bit for bit, plus the block sizes.
#include "unit.h"

#include <stdint.h>

#include "gguf.h"
#include "kquant.h"

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

int main(void) {
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
