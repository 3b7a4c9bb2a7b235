// fuzz_tokenizer_json.c: hass_tokenizer_load on a file named tokenizer.json holding the bytes
// (the loader also takes a SentencePiece model or a GGUF by their first bytes), then the
// tokenizer in use. Input: u16 length | tokenizer_config.json (absent when empty) | the file.
#include "fuzz.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    hass_err e;
    fuzz_use_tokenizer(hass_tokenizer_load(fuzz_two_files(data, size, "tokenizer_config.json", "tokenizer.json"), &e));
    return 0;
}
