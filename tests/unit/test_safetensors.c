// test_safetensors.c: write/read round trip with metadata, dtype conversions, atomic replace,
// and truncated/hostile files refused with clear errors.
#include <unistd.h>

#include "safetensors.h"
#include "unit.h"

// Write raw bytes to a file.
static void put(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

int main(void) {
    char path[128], bad[128];
    snprintf(path, sizeof path, "/tmp/hass-st-%d.safetensors", (int)getpid());
    snprintf(bad, sizeof bad, "/tmp/hass-st-bad-%d.safetensors", (int)getpid());
    float w[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    uint16_t hb[3] = {hass_f32_to_bf16(1.0f), hass_f32_to_bf16(-0.5f), hass_f32_to_bf16(3.0f)};
    hass_st_tensor t[2] = {
        {.name = "fc.weight", .dtype = HASS_ST_F32, .n_dims = 2, .shape = {2, 3}, .data = w, .n_bytes = sizeof w},
        {.name = "norm", .dtype = HASS_ST_BF16, .n_dims = 1, .shape = {3}, .data = hb, .n_bytes = sizeof hb},
    };
    const char *meta[] = {"hass.recipe", "S=3", "format", "pt", NULL};
    hass_err e = hass_st_write(path, t, 2, meta);
    CHECK("st write", !e, "%s", hass_errmsg());
    hass_st *st = hass_st_open(path, &e);
    CHECK("st open", st != NULL, "%s", hass_errmsg());
    if (st) {
        const hass_st_tensor *a = hass_st_find(st, "fc.weight"), *b = hass_st_find(st, "norm");
        CHECK("st tensors", hass_st_n_tensors(st) == 2 && a && b && a->n_dims == 2 && a->shape[0] == 2 &&
              a->shape[1] == 3 && !memcmp(a->data, w, sizeof w), "bad");
        CHECK("st bf16", b && b->dtype == HASS_ST_BF16 && hass_bf16_to_f32(((const uint16_t *)b->data)[1]) == -0.5f, "bad");
        CHECK("st meta", hass_st_meta(st, "hass.recipe") && !strcmp(hass_st_meta(st, "hass.recipe"), "S=3") &&
              hass_st_n_meta(st) == 2 && !hass_st_meta(st, "nope"), "bad");
        CHECK("st data aligned to 8", ((uintptr_t)a->data & 7) == 0, "%p", a->data);
        hass_st_free(st);
    }
    // truncated copies and garbage are refused
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int refused = 0;
    for (size_t cut = 0; cut < n; cut++) {
        put(bad, buf, cut);
        hass_st *s2 = hass_st_open(bad, &e);
        refused += !s2 && e == HASS_EFORMAT;
        hass_st_free(s2);
    }
    CHECK("st every truncation refused", refused == (int)n, "%d of %zu", refused, n);
    put(bad, "\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10);
    hass_st *s3 = hass_st_open(bad, &e);
    CHECK("st huge header length", !s3 && e == HASS_EFORMAT && strstr(hass_errmsg(), "header length"), "%s", hass_errmsg());
    const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}";
    uint8_t img[128] = {0};
    img[0] = (uint8_t)strlen(h);
    memcpy(img + 8, h, strlen(h));
    put(bad, img, 8 + strlen(h) + 16);
    s3 = hass_st_open(bad, &e);
    CHECK("st shape/offset mismatch", !s3 && strstr(hass_errmsg(), "'x'") && strstr(hass_errmsg(), "shape needs 16"), "%s", hass_errmsg());
    h = "{\"x\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,8]}}";
    img[0] = (uint8_t)strlen(h);
    memcpy(img + 8, h, strlen(h));
    put(bad, img, 8 + strlen(h) + 16);
    s3 = hass_st_open(bad, &e);
    CHECK("st unknown dtype", !s3 && e == HASS_EUNSUP && strstr(hass_errmsg(), "unsupported dtype Q4"), "%s", hass_errmsg());
    // atomic replace: a failing write (unwritable folder) leaves the old file intact
    e = hass_st_write("/nonexistent-dir/x.safetensors", t, 2, NULL);
    CHECK("st write to missing folder fails", e == HASS_EIO, "%d", e);
    t[0].n_bytes = 4;
    e = hass_st_write(path, t, 2, NULL);
    CHECK("st write refuses bad n_bytes, old file kept", e == HASS_EINVAL && (st = hass_st_open(path, &e)) != NULL, "%s", hass_errmsg());
    hass_st_free(st);
    // conversions
    CHECK("bf16 round to nearest even", hass_f32_to_bf16(1.00390625f) == 0x3f80 && hass_f32_to_bf16(1.01171875f) == 0x3f82, "%04x %04x", hass_f32_to_bf16(1.00390625f), hass_f32_to_bf16(1.01171875f));
    int f16ok = 1;
    for (uint32_t x = 0; x < 65536; x++) {
        uint16_t hx = (uint16_t)x;
        float fx = hass_f16_to_f32(hx);
        if (fx == fx && hass_f32_to_f16(fx) != hx) f16ok = 0;
    }
    CHECK("f16 round trip of all 65536 halves", f16ok, "mismatch");
    CHECK("f16 values", hass_f16_to_f32(0x3c00) == 1.0f && hass_f16_to_f32(0xc000) == -2.0f && hass_f16_to_f32(0x0001) == 5.9604645e-8f, "bad");
    unlink(path);
    unlink(bad);
    UNIT_DONE();
}
