// test_train_shard.c: feature shards (libcore/shard.c): round trip in f16 and bf16, the bad-input
// cases (corrupt record, corrupt header, another target's shard, truncation, bad magic, token
// outside the vocabulary), atomic writing, and the target fingerprint/matrices on stories260K.
#include "shard.h"
#include "unit.h"

#include <unistd.h>

// Write a 3-record shard at path; returns 0 on success. Features are k/8 - 2 (exact in f16/bf16).
static int write_shard(const char *path, int dtype, uint32_t fp) {
    hass_err err;
    hass_shard_writer *w = hass_shard_writer_open(path, dtype, 8, 50, fp, &err);
    if (!w) return -1;
    int lens[3] = {5, 1, 7};
    for (int r = 0; r < 3; r++) {
        int32_t ids[8];
        uint8_t mask[8];
        float feat[64];
        for (int t = 0; t < lens[r]; t++) ids[t] = (r * 7 + t * 3) % 50, mask[t] = (t + r) % 2;
        for (int k = 0; k < lens[r] * 8; k++) feat[k] = (float)((k + r) % 32) / 8.0f - 2.0f;
        if (hass_shard_writer_add(w, lens[r], ids, mask, feat)) {
            hass_shard_writer_abort(w);
            return -1;
        }
    }
    return hass_shard_writer_close(w) ? -1 : 0;
}

// Flip one byte of a file at offset.
static void flip(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void test_roundtrip(const char *dir, int dtype, const char *tag) {
    char path[512], nm[128];
    snprintf(path, sizeof path, "%s/a.shard", dir);
    int ok = write_shard(path, dtype, 0xabcdef01u) == 0;
    hass_err err = HASS_OK;
    hass_shard *s = ok ? hass_shard_open(path, 0xabcdef01u, &err) : NULL;
    snprintf(nm, sizeof nm, "shard %s: write and open", tag);
    CHECK(nm, s && hass_shard_n_seq(s) == 3 && hass_shard_n_tok(s) == 13 && hass_shard_n_embd(s) == 8 &&
          hass_shard_len(s, 2) == 7 && hass_shard_dtype(s) == dtype, "err %d %s", err, hass_errmsg());
    if (!s) return;
    int32_t ids[8];
    uint8_t mask[8];
    float feat[64];
    int bad = 0;
    for (int r = 0; r < 3; r++) {
        int n = hass_shard_read(s, r, 8, ids, mask, feat);
        for (int t = 0; t < n; t++) bad += ids[t] != (r * 7 + t * 3) % 50 || mask[t] != (t + r) % 2;
        for (int k = 0; k < n * 8; k++) bad += feat[k] != (float)((k + r) % 32) / 8.0f - 2.0f;
    }
    snprintf(nm, sizeof nm, "shard %s: ids, masks and features read back exactly", tag);
    CHECK(nm, bad == 0, "%d values differ", bad);
    int n = hass_shard_read(s, 2, 4, ids, mask, feat);
    snprintf(nm, sizeof nm, "shard %s: read truncates to max_len", tag);
    CHECK(nm, n == 4 && ids[3] == (14 + 9) % 50, "n %d", n);
    snprintf(nm, sizeof nm, "shard %s: verify passes", tag);
    CHECK(nm, hass_shard_verify(s) == HASS_OK, "%s", hass_errmsg());
    hass_shard_free(s);
}

static void test_bad(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/b.shard", dir);
    hass_err err = HASS_OK;
    write_shard(path, HASS_SHARD_F16, 77);
    hass_shard *s = hass_shard_open(path, 78, &err);
    CHECK("shard: another target's fingerprint refused (EVOCAB)", !s && err == HASS_EVOCAB &&
          strstr(hass_errmsg(), "another") == NULL && strstr(hass_errmsg(), "target"), "err %d %s", err, hass_errmsg());
    hass_shard_free(s);
    // a flipped feature byte in record 2: opens (bounds fine), reading record 2 fails, 0 works
    flip(path, 64 + (8 + 5 * 4 + 8 + 5 * 16) + (8 + 4 + 4 + 16) + 8 + 7 * 4 + 8 + 20);
    s = hass_shard_open(path, 77, &err);
    int32_t ids[8];
    uint8_t mask[8];
    float feat[64];
    int r0 = s ? hass_shard_read(s, 0, 8, ids, mask, feat) : -99;
    int r2 = s ? hass_shard_read(s, 2, 8, ids, mask, feat) : -99;
    CHECK("shard: corrupt record -> CRC error naming the record", s && r0 == 5 && r2 == HASS_EFORMAT &&
          strstr(hass_errmsg(), "record 2: CRC"), "r0 %d r2 %d %s", r0, r2, hass_errmsg());
    CHECK("shard: verify finds the corrupt record", s && hass_shard_verify(s) == HASS_EFORMAT, "verify ok");
    hass_shard_free(s);
    write_shard(path, HASS_SHARD_F16, 77);
    flip(path, 20); // n_embd
    s = hass_shard_open(path, 0, &err);
    CHECK("shard: corrupt header -> header CRC error", !s && err == HASS_EFORMAT && strstr(hass_errmsg(), "header CRC"),
          "%s", hass_errmsg());
    hass_shard_free(s);
    write_shard(path, HASS_SHARD_F16, 77);
    if (truncate(path, 200) != 0) perror("truncate");
    s = hass_shard_open(path, 0, &err);
    CHECK("shard: truncated file refused", !s && err == HASS_EFORMAT && strstr(hass_errmsg(), "truncated"),
          "%s", hass_errmsg());
    hass_shard_free(s);
    FILE *f = fopen(path, "wb");
    fputs("{\"not\": \"a shard\"}                                                      ", f);
    fclose(f);
    s = hass_shard_open(path, 0, &err);
    CHECK("shard: bad magic refused", !s && err == HASS_EFORMAT && strstr(hass_errmsg(), "HASSFEAT"), "%s", hass_errmsg());
    hass_shard_free(s);
    hass_shard_writer *w = hass_shard_writer_open(path, HASS_SHARD_BF16, 8, 50, 1, &err);
    int32_t bad_ids[2] = {3, 50};
    uint8_t m2[2] = {1, 1};
    float f2[16] = {0};
    hass_err e = hass_shard_writer_add(w, 2, bad_ids, m2, f2);
    CHECK("shard writer: token outside the vocabulary refused", e == HASS_EINVAL, "err %d", e);
    unlink(path);
    hass_shard_writer_abort(w);
    CHECK("shard writer: abort leaves no file", access(path, F_OK) != 0, "file exists");
}

static void test_target(void) {
    char buf[512];
    const char *p = unit_data(buf, sizeof buf, "models/stories260K/stories260K-v3-f32.gguf");
    if (!unit_exists(p)) {
        SKIP("shard: stories260K fingerprint and matrices", "no stories260K in HASS_DATA");
        return;
    }
    hass_err err;
    hass_gguf *g = hass_gguf_open(p, &err);
    if (!g) {
        CHECK("shard: open stories260K", 0, "%s", hass_errmsg());
        return;
    }
    uint32_t fp1 = hass_shard_target_fp(g), fp2 = hass_shard_target_fp(g);
    float *E = NULL, *W = NULL;
    int V = 0, H = 0;
    err = hass_shard_target_mats(g, &E, &W, &V, &H);
    CHECK("shard: stories260K matrices (512 x 64) and a stable fingerprint",
          err == HASS_OK && V == 512 && H == 64 && fp1 == fp2 && fp1 != 0, "err %d V %d H %d", err, V, H);
    const hass_gguf_tensor *te = hass_gguf_find_tensor(g, "token_embd.weight");
    CHECK("shard: embedding rows copied as stored (F32)", E && te && !memcmp(E, te->data, 4 * 64),
          "row 0 differs");
    hass_shard_mats_free(E, W);
    hass_gguf_free(g);
}

int main(void) {
    char dir[] = "/tmp/hass-shard-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_roundtrip(dir, HASS_SHARD_F16, "f16");
    test_roundtrip(dir, HASS_SHARD_BF16, "bf16");
    test_bad(dir);
    test_target();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    UNIT_DONE();
}
