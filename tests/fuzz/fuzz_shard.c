// fuzz_shard.c: the feature shard reader (hass_shard_open, hass_shard_verify, hass_shard_read
// of every record) on any bytes.
#include "fuzz.h"
#include "shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    hass_err e;
    hass_shard *s = hass_shard_open(fuzz_memfd(data, size), 0, &e);
    if (!s) return 0;
    hass_shard_verify(s);
    enum { MAX = 64 };
    int H = hass_shard_n_embd(s);
    float *feat = malloc(sizeof(float) * MAX * (size_t)H);
    int32_t ids[MAX];
    uint8_t mask[MAX];
    for (int64_t i = 0; i < hass_shard_n_seq(s) && i < 1000; i++) {
        hass_shard_len(s, i);
        hass_shard_read(s, i, MAX, ids, mask, feat);
    }
    free(feat);
    hass_shard_free(s);
    return 0;
}
