// fuzz_safetensors.c: the safetensors reader (hass_st_open, every tensor and metadata entry)
// and the draft head loader (hass_head_load: config.json + model.safetensors in one folder).
// Input: u16 length | config.json (absent when empty) | model.safetensors.
#include "fuzz.h"
#include "head.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    const char *p2 = fuzz_two_files(data, size, "config.json", "model.safetensors");
    hass_err e;
    hass_st *s = hass_st_open(p2, &e);
    if (s) {
        volatile uint8_t sink = 0;
        for (int64_t i = 0; i < hass_st_n_tensors(s); i++) {
            const hass_st_tensor *t = hass_st_tensor_at(s, i);
            if (t->n_bytes) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->n_bytes - 1];
            if (hass_st_find(s, t->name) != t && !hass_st_find(s, t->name)) abort();
        }
        for (int64_t i = 0; i < hass_st_n_meta(s); i++) {
            const char *k, *v;
            hass_st_meta_at(s, i, &k, &v);
            sink ^= (uint8_t)(strlen(k) + strlen(v));
        }
        (void)sink;
        hass_st_free(s);
    }
    hass_head_free(hass_head_load(fuzz_dir(), NULL, &e));
    return 0;
}
