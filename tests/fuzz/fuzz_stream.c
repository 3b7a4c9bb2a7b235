// fuzz_stream.c: the record stream reader (hass_stream_read: JSONL or binary frames, several
// streams back to back, the RECORD payload codec, pass-through frames) over the bytes as a FILE;
// every good record is written back through a binary and a JSONL writer, as the tools do.
#include "fuzz.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    if (!size) return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    FILE *null = fopen("/dev/null", "w");
    hass_stream_reader r;
    hass_stream_writer wb, wj;
    hass_stream_reader_init(&r, f, "fuzz", 0);
    hass_stream_writer_init(&wb, null, "null", 1, 0, 0);
    hass_stream_writer_init(&wj, null, "null", 0, 0, 0);
    r.jl.max_line = 4096;
    for (int i = 0; i < 100000 && !r.done; i++) {
        json_t *rec = NULL;
        if (hass_stream_read(&r, &rec)) {
            if (r.fatal) break;
            continue;
        }
        if (!rec) break;
        hass_stream_write(&wb, rec);
        hass_stream_write(&wj, rec);
        json_decref(rec);
    }
    hass_stream_writer_end(&wb);
    hass_stream_writer_free(&wb);
    hass_stream_writer_free(&wj);
    hass_stream_reader_free(&r);
    fclose(null);
    fclose(f);
    return 0;
}
