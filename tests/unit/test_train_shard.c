// test_train_shard.c: feature shards (libcore/train/shard.c): round trip in f16 and bf16, the bad-input
// cases (corrupt record, corrupt header, another target's shard, truncation, bad magic, token
// outside the vocabulary), atomic writing, the target matrices on stories260K, and a shard
// written by an independent writer (tests/gen/gen_train_shard.py) read back.
//
// Helper modes for tests/e2e/train.sh (not tests themselves):
//   test_train_shard nan-shard IN OUT     copy shard IN to OUT with a NaN feature in record 2
//   test_train_shard head-check DIR MODEL load the head in DIR against MODEL (head.h), exit 0/1
#include "frame.h"
#include "head.h"
#include "shard.h"
#include "tokenizer.h"
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

// Set the header's n_embd of the shard at path and fix the header CRC (a header that lies).
static void set_n_embd(const char *path, uint32_t n_embd) {
    FILE *f = fopen(path, "r+b");
    uint8_t h[64];
    if (!f || fread(h, 1, 64, f) != 64) {
        if (f) fclose(f);
        return;
    }
    for (int i = 0; i < 4; i++) h[20 + i] = (uint8_t)(n_embd >> (8 * i));
    uint32_t c = hass_crc32(0, h, 60);
    for (int i = 0; i < 4; i++) h[60 + i] = (uint8_t)(c >> (8 * i));
    fseek(f, 0, SEEK_SET);
    fwrite(h, 1, 64, f);
    fclose(f);
}

// A header whose n_embd differs from the records' width says so, naming both widths.
static void test_wrong_width(const char *dir) {
    char path[512], nm[96];
    snprintf(path, sizeof path, "%s/w.shard", dir);
    static const uint32_t widths[] = {4, 7, 16, 4096};
    for (int i = 0; i < 4; i++) {
        write_shard(path, HASS_SHARD_BF16, 5);
        set_n_embd(path, widths[i]);
        hass_err err = HASS_OK;
        hass_shard *s = hass_shard_open(path, 0, &err);
        char want[96];
        snprintf(want, sizeof want, "the records are 8 features wide, the header says n_embd %u", widths[i]);
        snprintf(nm, sizeof nm, "shard: header n_embd %u, records 8 wide: width mismatch", widths[i]);
        CHECK(nm, !s && err == HASS_EFORMAT && strstr(hass_errmsg(), want), "%s", hass_errmsg());
        hass_shard_free(s);
    }
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
        SKIP("shard: stories260K matrices", "no stories260K in HASS_DATA");
        return;
    }
    hass_err err;
    hass_model *m = hass_model_load(p, 1, &err);
    if (!m) {
        CHECK("shard: load stories260K", 0, "%s", hass_errmsg());
        return;
    }
    float *E = NULL, *W = NULL;
    err = hass_shard_target_mats(m, &E, &W);
    float row[64];
    int32_t tok = 7;
    hass_model_embed(m, &tok, 1, row);
    CHECK("shard: stories260K embedding as f32 = the engine's embedding rows",
          err == HASS_OK && !memcmp(E + 7 * 64, row, sizeof row), "err %d", err);
    float lg[512], lg2[512];
    hass_model_lm_head(m, row, 1, lg);
    double worst = 0;
    for (int v = 0; v < 512; v++) {
        double s = 0;
        for (int i = 0; i < 64; i++) s += (double)W[(size_t)v * 64 + i] * row[i];
        lg2[v] = (float)s;
        worst = fmax(worst, fabs(lg2[v] - lg[v]));
    }
    CHECK("shard: head as f32 gives the engine's logits", worst < 1e-4, "max diff %g", worst);
    hass_shard_mats_free(E, W);
    hass_model_free(m);
}

// The shard made by gen_train_shard.py (Python writer of the documented layout) reads back.
static void test_python_shard(void) {
    hass_err err;
    hass_shard *s = hass_shard_open("tests/data/train_tiny.shard", 0, &err);
    static const int lens[6] = {24, 31, 18, 40, 27, 35};
    int ok = s && hass_shard_n_seq(s) == 6 && hass_shard_n_tok(s) == 175 && hass_shard_n_embd(s) == 64 &&
             hass_shard_verify(s) == HASS_OK;
    int32_t ids[40];
    uint8_t mask[40];
    float feat[40 * 64];
    for (int r = 0; ok && r < 6; r++) {
        int n = hass_shard_read(s, r, 40, ids, mask, feat);
        ok &= n == lens[r] && mask[4] == 0 && mask[5] == 1;
        double ss = 0; // features are RMS-normalised rows times the final norm weight: finite, nonzero
        for (int k = 0; k < n * 64; k++) ss += (double)feat[k] * feat[k];
        ok &= ss > 0 && isfinite(ss);
    }
    CHECK("shard: a shard from the independent Python writer reads back", ok, "%s", s ? "content differs" : hass_errmsg());
    hass_shard_free(s);
}

// Helper: copy a shard with a NaN feature in record 2.
static int make_nan_shard(const char *in, const char *out) {
    hass_err err;
    hass_shard *s = hass_shard_open(in, 0, &err);
    if (!s) return fprintf(stderr, "%s\n", hass_errmsg()), 1;
    int H = hass_shard_n_embd(s), L = 0;
    for (int64_t r = 0; r < hass_shard_n_seq(s); r++) L = hass_shard_len(s, r) > L ? hass_shard_len(s, r) : L;
    int32_t *ids = malloc(sizeof(int32_t) * L);
    uint8_t *mask = malloc(L);
    float *feat = malloc(sizeof(float) * L * H);
    hass_shard_writer *w = hass_shard_writer_open(out, hass_shard_dtype(s), H, hass_shard_n_vocab(s), hass_shard_fp(s), &err);
    for (int64_t r = 0; w && r < hass_shard_n_seq(s); r++) {
        int n = hass_shard_read(s, r, L, ids, mask, feat);
        if (r == 2) feat[(n / 2) * H + 3] = NAN;
        if (n < 0 || hass_shard_writer_add(w, n, ids, mask, feat)) return fprintf(stderr, "%s\n", hass_errmsg()), 1;
    }
    int rc = !w || hass_shard_writer_close(w);
    hass_shard_free(s);
    free(ids), free(mask), free(feat);
    return rc;
}

// Helper: load a trained head against the target (fingerprints, shapes).
static int head_check(const char *dir, const char *model) {
    hass_err err;
    hass_model *m = hass_model_load(model, 1, &err);
    hass_tokenizer *t = m ? hass_tokenizer_load(model, &err) : NULL;
    if (!t) return fprintf(stderr, "%s\n", hass_errmsg()), 1;
    const hass_model_cfg *c = hass_model_config(m);
    hass_head_target tg = {c->n_embd, c->n_vocab, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->rope_theta,
                           c->norm_eps, 0, hass_model_fingerprint(m), hass_tokenizer_fingerprint(t)};
    hass_head *h = hass_head_load(dir, &tg, &err);
    if (h) printf("head ok: attn_mask %s, recipe %s\n", h->attn_mask, h->recipe);
    else fprintf(stderr, "%s\n", hass_errmsg());
    int rc = h ? 0 : 1;
    hass_head_free(h);
    hass_tokenizer_free(t);
    hass_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "nan-shard")) return make_nan_shard(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "head-check")) return head_check(argv[2], argv[3]);
    char dir[] = "/tmp/hass-shard-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_roundtrip(dir, HASS_SHARD_F16, "f16");
    test_roundtrip(dir, HASS_SHARD_BF16, "bf16");
    test_bad(dir);
    test_wrong_width(dir);
    test_target();
    test_python_shard();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    UNIT_DONE();
}
