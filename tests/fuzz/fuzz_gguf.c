// fuzz_gguf.c: the GGUF reader (hass_gguf_open) on any bytes, then what reads an open file: the
// getters, both printers and the tokenizer built from its tokenizer.ggml.* keys.
#include "fuzz.h"
#include "gguf.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    hass_err e;
    hass_gguf *g = hass_gguf_open(fuzz_memfd(data, size), &e);
    if (!g) return 0;
    FILE *null = fopen("/dev/null", "w");
    hass_gguf_print(g, null, 1);
    hass_gguf_print_json(g, null);
    fclose(null);
    int64_t v;
    float f;
    const char *s;
    uint64_t n;
    hass_gguf_get_i64(g, "general.alignment", &v);
    hass_gguf_get_f32(g, "llama.rope.freq_base", &f);
    hass_gguf_get_str(g, "general.architecture", &s, &n);
    fuzz_use_tokenizer(hass_tokenizer_from_gguf(g, &e));
    hass_gguf_free(g);
    return 0;
}
