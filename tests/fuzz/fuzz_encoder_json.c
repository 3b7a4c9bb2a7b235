// fuzz_encoder_json.c: hass_tokenizer_load on a folder holding a GPT-2 style encoder.json and
// vocab.bpe, then the tokenizer in use. Input: u16 length | encoder.json (absent when empty) | vocab.bpe.
#include "fuzz.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet();
    fuzz_two_files(data, size, "encoder.json", "vocab.bpe");
    hass_err e;
    fuzz_use_tokenizer(hass_tokenizer_load(fuzz_dir(), &e));
    return 0;
}
