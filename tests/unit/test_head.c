// test_head.c: draft head save/load round trip, identity and shape checks (head for another
// target, wrong shapes, missing tensors, bias mismatch), public heads without metadata in
// F16/BF16 with an embed_tokens copy.
#include <unistd.h>

#include "half.h"
#include "head.h"
#include "safetensors.h"
#include "unit.h"

static hass_head_target target(void) {
    hass_head_target t = {0};
    t.n_embd = 64; t.n_vocab = 512; t.n_head = 8; t.n_head_kv = 4; t.head_dim = 8; t.n_ff = 172;
    t.rope_theta = 10000.f; t.norm_eps = 1e-5f; t.n_ctx_train = 512;
    t.fingerprint = 0x1234abcd; t.tok_fingerprint = 0x0badf00d;
    return t;
}

// Replace the first occurrence of `from` by `to` in a small text file.
static int edit_file(const char *path, const char *from, const char *to) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strstr(buf, from);
    if (!p) return 0;
    char out[8400];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(p - buf), buf, to, p + strlen(from));
    f = fopen(path, "wb");
    fputs(out, f);
    fclose(f);
    return 1;
}

// Rewrite a safetensors file with an odd-length JSON header (legal: trailing spaces pad it), so
// its data section starts at an odd offset. Returns the new header length, 0 on failure.
static unsigned long odd_header(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unsigned long hb = 0;
    for (int i = 7; i >= 0; i--) hb = hb << 8 | buf[i];
    if (n < 8 || hb > n - 8) return 0;
    unsigned long j = hb;
    while (j && buf[8 + j - 1] == ' ') j--;
    unsigned long nh = j | 1; // odd: the JSON plus at most one space
    if (!(f = fopen(path, "wb"))) return 0;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(nh >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(buf + 8, 1, j, f);
    if (nh > j) fputc(' ', f);
    fwrite(buf + 8 + hb, 1, n - 8 - hb, f);
    fclose(f);
    return nh;
}

// Config fields outside their ranges are refused as malformed input (HASS_EFORMAT, exit 3) with
// a message naming the field and its range.
static void test_config_ranges(const char *dir, const hass_head_target *tg) {
    static const char *cases[][3] = {
        {"\"num_hidden_layers\": 1", "\"num_hidden_layers\": 0", "\"num_hidden_layers\" 0 outside [1, 1]"},
        {"\"num_hidden_layers\": 1", "\"num_hidden_layers\": 1000", "\"num_hidden_layers\" 1000 outside"},
        {"\"head_dim\": 8", "\"head_dim\": 0", "\"head_dim\" 0 outside [2, 1024]"},
        {"\"head_dim\": 8", "\"head_dim\": 7", "\"head_dim\" 7 must be even"},
        {"\"hidden_size\": 64", "\"hidden_size\": 1000000000000", "\"hidden_size\" 1000000000000 outside [1, 65536]"},
        {"\"hidden_size\": 64", "\"hidden_size\": 1e12", "\"hidden_size\" must be an integer in [1, 65536]"},
        {"\"vocab_size\": 512", "\"vocab_size\": -5", "\"vocab_size\" -5 outside"},
        {"\"num_key_value_heads\": 4", "\"num_key_value_heads\": 16", "\"num_key_value_heads\" 16 outside [1, 8]"},
        {"\"rms_norm_eps\": ", "\"rms_norm_eps\": 5, \"x\": ", "\"rms_norm_eps\" must be a number in (0, 1]"},
    };
    char p[600], nm[160];
    snprintf(p, sizeof p, "%s/config.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(nm, sizeof nm, "config_range: %s", cases[i][1]);
        if (!edit_file(p, cases[i][0], cases[i][1])) {
            CHECK(nm, 0, "config has no %s", cases[i][0]);
            continue;
        }
        hass_err e;
        hass_head *l = hass_head_load(dir, tg, &e);
        CHECK(nm, !l && e == HASS_EFORMAT && strstr(hass_errmsg(), cases[i][2]), "err %d: %s", e,
              l ? "loaded" : hass_errmsg());
        hass_head_free(l);
        edit_file(p, cases[i][1], cases[i][0]);
    }
    hass_err e;
    hass_head *l = hass_head_load(dir, tg, &e);
    CHECK("config_range: restored config loads", l != NULL, "%s", hass_errmsg());
    hass_head_free(l);
}

// Draft vocabulary: the n most frequent ids (ties to the lower id), ascending; kept by a BF16
// save and load; a descending or out-of-range list is refused. BF16 weights are the f32 ones
// rounded to nearest even.
static void test_dvocab_and_bf16(hass_head *h, const hass_head_target *tg, const char *dir) {
    int64_t cnt[512] = {0};
    for (int i = 0; i < 512; i++) cnt[i] = (i * 37) % 11; // counts 0..10, many ties
    CHECK("dvocab_set", hass_head_set_dvocab(h, cnt, 100) == HASS_OK && h->n_dvocab == 100, "%d", h->n_dvocab);
    int asc = 1, top = 1, kept_min = 99;
    for (int i = 0; i < h->n_dvocab; i++) {
        asc &= i == 0 || h->dvocab[i] > h->dvocab[i - 1];
        if (cnt[h->dvocab[i]] < kept_min) kept_min = (int)cnt[h->dvocab[i]];
    }
    // every id left out has a lower count, or the same count and a higher id than a kept one
    for (int j = 0, k = 0; j < 512; j++) {
        while (k < h->n_dvocab && h->dvocab[k] < j) k++;
        int in = k < h->n_dvocab && h->dvocab[k] == j;
        if (!in && cnt[j] > kept_min) top = 0;
    }
    CHECK("dvocab_most_frequent_ascending", asc && top, "asc %d top %d", asc, top);
    char d3[600], p[700];
    snprintf(d3, sizeof d3, "%s/packed", dir);
    CHECK("save_bf16", hass_head_save_as(h, d3, NULL, 1) == HASS_OK, "%s", hass_errmsg());
    hass_err e;
    hass_head *l = hass_head_load(d3, tg, &e);
    int same = l && l->n_dvocab == 100 && !memcmp(l->dvocab, h->dvocab, 100 * sizeof(int32_t));
    for (size_t i = 0; same && i < h->n_params; i++)
        same = l->data[i] == hass_bf16_to_f32(hass_f32_to_bf16(h->data[i]));
    CHECK("load_bf16_with_dvocab", same, "%s", l ? "differs" : hass_errmsg());
    // the same file with an odd-length header: every BF16 value sits at an odd address
    snprintf(p, sizeof p, "%s/model.safetensors", d3);
    unsigned long hb = odd_header(p);
    hass_head *o = hass_head_load(d3, tg, &e);
    int same_odd = o && l && o->n_params == l->n_params;
    for (size_t i = 0; same_odd && i < l->n_params; i++) same_odd = o->data[i] == l->data[i];
    CHECK("load_bf16_odd_header", hb % 2 && same_odd, "header %lu: %s", hb,
          o ? "differs" : hass_errmsg());
    hass_head_free(o);
    hass_head_free(l);
    hass_st *st = hass_st_open(p, &e);
    hass_st_tensor ts[16];
    int64_t nt = st ? hass_st_n_tensors(st) : 0;
    int32_t bad[100];
    for (int64_t i = 0; i < nt && i < 16; i++) {
        ts[i] = *hass_st_tensor_at(st, i);
        if (!strcmp(ts[i].name, "draft_vocab")) {
            memcpy(bad, ts[i].data, sizeof bad);
            bad[5] = bad[4]; // not strictly ascending
            ts[i].data = bad;
        }
    }
    char p2[720];
    snprintf(p2, sizeof p2, "%s.new", p);
    hass_st_write(p2, ts, (int)nt, NULL);
    hass_st_free(st);
    rename(p2, p);
    l = hass_head_load(d3, tg, &e);
    CHECK("refuse_bad_dvocab", !l && e == HASS_EFORMAT && strstr(hass_errmsg(), "draft_vocab"), "%s", hass_errmsg());
    hass_head_free(l);
    hass_head_set_dvocab(h, cnt, 0);
    CHECK("dvocab_cleared", !h->dvocab && !h->n_dvocab, "%d", h->n_dvocab);
}

int main(void) {
    char dir[] = "/tmp/hass-test-head.XXXXXX";
    if (!mkdtemp(dir)) { CHECK("mkdtemp", 0, "no temp dir"); UNIT_DONE(); }
    char d1[512], d2[512], p[600];
    snprintf(d1, sizeof d1, "%s/ours", dir);
    hass_head_target tg = target();
    hass_err e;
    hass_head *h = hass_head_random(&tg, 1, 7, &e);
    CHECK("random_head", h && h->fc_b && h->n_params == 64 * 128 + 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 172 * 64 + 64,
          "params %zu", h ? h->n_params : 0);
    float bound = 1.f / sqrtf(128.f), mx = 0.f;
    for (int i = 0; i < 64 * 128; i++) mx = fmaxf(mx, fabsf(h->fc_w[i]));
    CHECK("random_init_bounds", mx <= bound && mx > 0.9f * bound && h->post_norm[3] == 1.f,
          "max %g bound %g", mx, bound);
    hass_head *h2 = hass_head_random(&tg, 1, 7, &e);
    CHECK("random_seeded", !memcmp(h->data, h2->data, h->n_params * sizeof(float)), "differs");
    hass_head_free(h2);
    CHECK("save", hass_head_save(h, d1, NULL) == HASS_OK, "%s", hass_errmsg());

    hass_head *l = hass_head_load(d1, &tg, &e);
    CHECK("load_roundtrip", l && !memcmp(l->data, h->data, h->n_params * sizeof(float)) &&
                                l->target_fp == tg.fingerprint && l->n_ctx_train == 512 &&
                                !strcmp(l->attn_mask, "correct") && l->has_bias,
          "%s", l ? "weights differ" : hass_errmsg());
    hass_head_free(l);
    snprintf(p, sizeof p, "%s/model.safetensors", d1);
    l = hass_head_load(p, &tg, &e);
    CHECK("load_by_file", l != NULL, "%s", hass_errmsg());
    hass_head_free(l);

    hass_head_target other = tg;
    other.fingerprint = 0x99999999;
    l = hass_head_load(d1, &other, &e);
    CHECK("refuse_other_target", !l && e == HASS_EVOCAB && strstr(hass_errmsg(), "1234abcd") &&
                                     strstr(hass_errmsg(), "99999999"),
          "err %d: %s", e, hass_errmsg());
    other = tg;
    other.tok_fingerprint = 0x1;
    l = hass_head_load(d1, &other, &e);
    CHECK("refuse_other_tokenizer", !l && e == HASS_EVOCAB, "err %d", e);
    other = tg;
    other.n_vocab = 32000;
    l = hass_head_load(d1, &other, &e);
    CHECK("refuse_other_vocab", !l && e == HASS_EVOCAB && strstr(hass_errmsg(), "32000"), "%s",
          hass_errmsg());
    other = tg;
    other.fingerprint = 0; // unknown target identity: dimensions only
    l = hass_head_load(d1, &other, &e);
    CHECK("unknown_target_fp_loads", l != NULL, "%s", hass_errmsg());
    hass_head_free(l);

    // wrong shapes: config says a different intermediate size than the tensors have
    snprintf(p, sizeof p, "%s/config.json", d1);
    CHECK("edit_config", edit_file(p, "\"intermediate_size\": 172", "\"intermediate_size\": 170"),
          "no field");
    l = hass_head_load(d1, &tg, &e);
    CHECK("refuse_wrong_shape", !l && e == HASS_EFORMAT && strstr(hass_errmsg(), "gate_proj") &&
                                    strstr(hass_errmsg(), "[172, 64]"),
          "%s", hass_errmsg());
    edit_file(p, "\"intermediate_size\": 170", "\"intermediate_size\": 172");
    edit_file(p, "\"bias\": true", "\"bias\": false");
    l = hass_head_load(d1, &tg, &e);
    CHECK("refuse_bias_mismatch", !l && e == HASS_EFORMAT && strstr(hass_errmsg(), "fc.bias"),
          "%s", hass_errmsg());
    edit_file(p, "\"bias\": false", "\"bias\": true");
    edit_file(p, "\"hidden_size\": 64", "\"hidden_size\": \"x\"");
    l = hass_head_load(d1, &tg, &e);
    CHECK("refuse_bad_config", !l && e == HASS_EFORMAT && strstr(hass_errmsg(), "hidden_size"),
          "%s", hass_errmsg());
    edit_file(p, "\"hidden_size\": \"x\"", "\"hidden_size\": 64");
    test_config_ranges(d1, &tg);

    // a public head: BF16, no bias key, embed_tokens present, no hass metadata, missing o_proj
    snprintf(d2, sizeof d2, "%s/public", dir);
    hass_head *nb = hass_head_random(&tg, 0, 3, &e);
    float *emb = calloc(512 * 64, sizeof(float));
    hass_head_save(nb, d2, emb);
    snprintf(p, sizeof p, "%s/model.safetensors", d2);
    hass_st *st = hass_st_open(p, &e);
    int64_t nt = hass_st_n_tensors(st);
    hass_st_tensor ts[16];
    uint16_t *bufs[16];
    for (int64_t i = 0; i < nt; i++) {
        ts[i] = *hass_st_tensor_at(st, i);
        size_t n = ts[i].n_bytes / 4;
        bufs[i] = malloc(n * 2);
        for (size_t k = 0; k < n; k++) bufs[i][k] = hass_f32_to_bf16(((const float *)ts[i].data)[k]);
        ts[i].dtype = HASS_ST_BF16;
        ts[i].data = bufs[i];
        ts[i].n_bytes = n * 2;
    }
    char p2[600];
    snprintf(p2, sizeof p2, "%s/public.safetensors", dir);
    CHECK("write_bf16", hass_st_write(p2, ts, (int)nt, NULL) == HASS_OK, "%s", hass_errmsg());
    rename(p2, p); // st keeps the old file mapped (the names stay valid)
    snprintf(p2, sizeof p2, "%s/config.json", d2);
    edit_file(p2, "\"bias\": false,", "");
    l = hass_head_load(d2, &tg, &e);
    CHECK("public_bf16_head_loads", l && !l->has_meta && !l->has_bias &&
                                        fabsf(l->wq[5] - nb->wq[5]) <= 1e-2f * fabsf(nb->wq[5]) + 1e-6f,
          "%s", l ? "values" : hass_errmsg());
    hass_head_free(l);
    // drop o_proj from the file: a clear error naming the tensor
    int j = 0;
    for (int64_t i = 0; i < nt; i++)
        if (!strstr(ts[i].name, "o_proj")) ts[j++] = ts[i];
    hass_st_write(p, ts, j, NULL);
    l = hass_head_load(d2, &tg, &e);
    CHECK("refuse_missing_tensor", !l && e == HASS_EFORMAT && strstr(hass_errmsg(), "o_proj") &&
                                       strstr(hass_errmsg(), "missing"),
          "%s", hass_errmsg());
    for (int64_t i = 0; i < nt; i++) free(bufs[i]);
    hass_st_free(st);
    l = hass_head_load("/nonexistent/head", &tg, &e);
    CHECK("refuse_missing_dir", !l && e == HASS_EIO, "err %d", e);
    free(emb);
    hass_head_free(nb);
    test_dvocab_and_bf16(h, &tg, dir);
    hass_head_free(h);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    UNIT_DONE();
}
