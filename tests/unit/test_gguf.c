// test_gguf.c: the GGUF reader on real files (v1, v3) and on truncated, oversized and garbage
// files, which must be refused with a clear error and never crash.
#include <stdint.h>
#include <unistd.h>

#include "gguf.h"
#include "unit.h"

// Write bytes to a temp file; returns its path (static buffer).
static const char *write_tmp(const void *data, size_t n) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/hass-test-gguf-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

// Read a whole file into memory.
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

// Open bytes as a GGUF file; returns the error code (and frees on success).
static hass_err open_bytes(const void *data, size_t n) {
    hass_err e;
    hass_gguf *g = hass_gguf_open(write_tmp(data, n), &e);
    hass_gguf_free(g);
    return e;
}

// The stories260K v1 file: header, metadata and tensors as documented.
static void test_v1(void) {
    char p[512];
    hass_err e;
    hass_gguf *g = hass_gguf_open(unit_data(p, sizeof p, "models/stories260K/tinyllamas-stories-260k-f32.gguf"), &e);
    CHECK("gguf v1 opens", g != NULL, "%s", hass_errmsg());
    if (!g) return;
    CHECK("gguf v1 version", hass_gguf_version(g) == 1, "got %u", hass_gguf_version(g));
    CHECK("gguf v1 counts", hass_gguf_n_kv(g) == 18 && hass_gguf_n_tensors(g) == 48,
          "kv %lld tensors %lld", (long long)hass_gguf_n_kv(g), (long long)hass_gguf_n_tensors(g));
    int64_t v = 0;
    CHECK("gguf v1 embedding_length", !hass_gguf_get_i64(g, "llama.embedding_length", &v) && v == 64, "%lld", (long long)v);
    float eps = 0;
    CHECK("gguf v1 rms eps", !hass_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) && fabsf(eps - 1e-5f) < 1e-9f, "%g", eps);
    const hass_gguf_kv *tok = hass_gguf_find(g, "tokenizer.ggml.tokens");
    uint64_t len = 0;
    const char *s = tok ? hass_gguf_arr_str(tok, 403, &len) : NULL;
    CHECK("gguf v1 token 403", s && len == 7 && !memcmp(s, "\xe2\x96\x81Once", 7), "len %llu", (unsigned long long)len);
    const hass_gguf_tensor *t = hass_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    CHECK("gguf v1 tensor shape", t && t->ne[0] == 172 && t->ne[1] == 64 && t->type == HASS_GGML_F32 && t->n_bytes == 172 * 64 * 4, "bad");
    const hass_gguf_tensor *emb = hass_gguf_find_tensor(g, "token_embd.weight");
    const hass_gguf_tensor *out = hass_gguf_find_tensor(g, "output.weight");
    CHECK("gguf v1 tied classifier bytes", emb && out && !memcmp(emb->data, out->data, emb->n_bytes), "differ");
    CHECK("gguf v1 data offset", emb->offset == 0 && out->offset > 0, "offset %llu", (unsigned long long)emb->offset);
    hass_gguf_free(g);
}

// The v3 stories file gives the same tensors as the v1 file.
static void test_v3_same_as_v1(void) {
    char p1[512], p3[512];
    hass_err e1, e3;
    hass_gguf *g1 = hass_gguf_open(unit_data(p1, sizeof p1, "models/stories260K/tinyllamas-stories-260k-f32.gguf"), &e1);
    hass_gguf *g3 = hass_gguf_open(unit_data(p3, sizeof p3, "models/stories260K/stories260K-v3-f32.gguf"), &e3);
    CHECK("gguf v3 opens", g3 && hass_gguf_version(g3) == 3, "%s", hass_errmsg());
    if (g1 && g3) {
        int same = hass_gguf_n_tensors(g1) == hass_gguf_n_tensors(g3);
        for (int64_t i = 0; same && i < hass_gguf_n_tensors(g1); i++) {
            const hass_gguf_tensor *a = hass_gguf_tensor_at(g1, i), *b = hass_gguf_tensor_at(g3, i);
            same = !strcmp(a->name, b->name) && a->n_bytes == b->n_bytes && !memcmp(a->data, b->data, a->n_bytes);
        }
        CHECK("gguf v1 and v3 tensors identical", same, "differ");
    }
    hass_gguf_free(g1);
    hass_gguf_free(g3);
}

// F16 tensors and the full LLaMA-2 vocabulary in the tiny random model.
static void test_tiny_random(void) {
    char p[512];
    hass_err e;
    hass_gguf *g = hass_gguf_open(unit_data(p, sizeof p, "models/llama-2-tiny-random/llama-2-tiny-random.gguf"), &e);
    CHECK("gguf tiny-random opens", g != NULL, "%s", hass_errmsg());
    if (!g) return;
    const hass_gguf_tensor *t = hass_gguf_find_tensor(g, "token_embd.weight");
    CHECK("gguf f16 tensor", t && t->type == HASS_GGML_F16 && t->ne[0] == 8 && t->ne[1] == 32000 && t->n_bytes == 8 * 32000 * 2, "bad");
    const hass_gguf_kv *tok = hass_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK("gguf 32000 tokens", tok && tok->n == 32000, "bad");
    hass_gguf_free(g);
}

// Every prefix of a real file is refused with EFORMAT (never a crash).
static void test_truncated(void) {
    char p[512];
    size_t n = 0;
    uint8_t *b = slurp(unit_data(p, sizeof p, "models/stories260K/stories260K-v3-f32.gguf"), &n);
    if (!b) {
        SKIP("gguf truncated", "stories260K missing");
        return;
    }
    int bad = 0, first_bad = -1;
    // every cut in the first KiB, a dense sample of the rest of the header, coarse cuts in the data
    for (size_t cut = 0; cut < n; cut += cut < 1024 ? 1 : cut < 12000 ? 61 : 4099) {
        hass_err e = open_bytes(b, cut);
        if (e != HASS_EFORMAT) {
            bad++;
            if (first_bad < 0) first_bad = (int)cut;
        }
    }
    CHECK("gguf every truncation refused", bad == 0, "%d cuts not refused, first at %d", bad, first_bad);
    hass_err e = open_bytes(b, n - 1);
    CHECK("gguf truncation message", e == HASS_EFORMAT && strstr(hass_errmsg(), "truncated"), "%s", hass_errmsg());
    free(b);
}

// Hostile counts and lengths are refused before allocating.
static void test_hostile(void) {
    uint8_t h[64] = "GGUF";
    // v3, 1 tensor, 2^40 kv pairs
    h[4] = 3;
    uint64_t n_t = 1, n_kv = 1ull << 40;
    memcpy(h + 8, &n_t, 8);
    memcpy(h + 16, &n_kv, 8);
    hass_err e = open_bytes(h, 24);
    CHECK("gguf huge kv count refused", e == HASS_EFORMAT && strstr(hass_errmsg(), "limit"), "%d %s", e, hass_errmsg());
    // a huge tensor count is named as such, at its own offset (8); one the file cannot hold too
    n_t = 1ull << 40, n_kv = 0;
    memcpy(h + 8, &n_t, 8);
    memcpy(h + 16, &n_kv, 8);
    e = open_bytes(h, 24);
    CHECK("gguf huge tensor count named at offset 8", e == HASS_EFORMAT &&
          strstr(hass_errmsg(), "offset 8: tensor count: 1099511627776 is over the limit"), "%d %s", e, hass_errmsg());
    n_t = 1000;
    memcpy(h + 8, &n_t, 8);
    e = open_bytes(h, 64);
    CHECK("gguf tensor count beyond the file refused", e == HASS_EFORMAT &&
          strstr(hass_errmsg(), "offset 8: tensor count: 1000 is over the entries"), "%d %s", e, hass_errmsg());
    n_t = 1;
    // one kv whose key length is 2^62
    n_kv = 1;
    memcpy(h + 16, &n_kv, 8);
    uint64_t klen = 1ull << 62;
    memcpy(h + 24, &klen, 8);
    e = open_bytes(h, 40);
    CHECK("gguf oversized string refused", e == HASS_EFORMAT, "%d %s", e, hass_errmsg());
    // a string array claiming 2^60 elements
    uint8_t a[64] = "GGUF";
    a[4] = 3;
    n_t = 0;
    memcpy(a + 8, &n_t, 8);
    memcpy(a + 16, &n_kv, 8);
    klen = 1;
    memcpy(a + 24, &klen, 8);
    a[32] = 'k';
    uint32_t t = 9, at = 8;
    memcpy(a + 33, &t, 4);
    memcpy(a + 37, &at, 4);
    uint64_t alen = 1ull << 60;
    memcpy(a + 41, &alen, 8);
    e = open_bytes(a, 49);
    CHECK("gguf oversized array refused", e == HASS_EFORMAT, "%d %s", e, hass_errmsg());
    // wrong magic, garbage, empty, future version
    e = open_bytes("GGML\x03\0\0\0", 8);
    CHECK("gguf bad magic", e == HASS_EFORMAT && strstr(hass_errmsg(), "magic"), "%s", hass_errmsg());
    uint8_t junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)((x = x * 1103515245 + 12345) >> 16);
    e = open_bytes(junk, sizeof junk);
    CHECK("gguf garbage refused", e == HASS_EFORMAT, "%d", e);
    e = open_bytes("", 0);
    CHECK("gguf empty file", e == HASS_EFORMAT, "%d", e);
    e = open_bytes("GGUF\x09\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24);
    CHECK("gguf future version", e == HASS_EVERSION && strstr(hass_errmsg(), "version 9"), "%s", hass_errmsg());
    hass_gguf *g = hass_gguf_open("/nonexistent/x.gguf", &e);
    CHECK("gguf missing file", !g && e == HASS_EIO && strstr(hass_errmsg(), "/nonexistent/x.gguf"), "%s", hass_errmsg());
}

// Random byte flips in a real header never crash; the reader either opens or refuses.
static void test_fuzz_flips(void) {
    char p[512];
    size_t n = 0;
    uint8_t *b = slurp(unit_data(p, sizeof p, "models/stories260K/tinyllamas-stories-260k-f32.gguf"), &n);
    if (!b) return;
    uint32_t x = 7;
    int ok = 0, refused = 0;
    for (int it = 0; it < 300; it++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        for (int k = 0; k < 4; k++) {
            x = x * 1664525u + 1013904223u;
            size_t pos = (x >> 8) % 11456; // header region
            x = x * 1664525u + 1013904223u;
            c[pos] = (uint8_t)(x >> 24);
        }
        hass_err e = open_bytes(c, n);
        if (e == HASS_OK) ok++;
        else refused++;
        free(c);
    }
    CHECK("gguf 300 header mutations handled", ok + refused == 300, "ok %d refused %d", ok, refused);
    free(b);
}

int main(void) {
    test_v1();
    test_v3_same_as_v1();
    test_tiny_random();
    test_truncated();
    test_hostile();
    test_fuzz_flips();
    unlink(write_tmp("", 0));
    UNIT_DONE();
}
