// fuzz_jsonl.c: the JSONL record reader (hass_jsonl_read) over the bytes as a FILE, every line
// to the end, with a small line limit so long lines are exercised too.
#include "fuzz.h"
#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (!size) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    hass_jsonl_reader r;
    hass_jsonl_reader_init(&r, f, "fuzz");
    r.max_line = 4096;
    for (int i = 0; i < 100000; i++) {
        json_t *o = NULL;
        hass_err e = hass_jsonl_read(&r, &o);
        if (e == HASS_EIO) break;
        if (!e && !o) break;
        json_decref(o);
    }
    hass_jsonl_reader_free(&r);
    fclose(f);
    return 0;
}
