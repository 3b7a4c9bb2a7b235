// fuzz_tok.h: use a tokenizer loaded from fuzzed bytes the way the tools do: encode a fixed text
// (specials parsed), decode it back, and read every piece of the first ids.
#ifndef HASS_FUZZ_TOK_H
#define HASS_FUZZ_TOK_H

#include "tokenizer.h"

// Exercise t (NULL: nothing), then free it.
static inline void fuzz_use_tokenizer(hass_tokenizer *t) {
    if (!t) return;
    static const char text[] = "Hello world! 123 <s></s><|endoftext|> h\xc3\xa9llo\n\t  \xf0\x9f\xa6\x99 \xff";
    int32_t ids[256];
    int64_t k = hass_tokenizer_encode(t, text, sizeof text - 1, HASS_BOS_MODEL, 1, ids, 256);
    char *out = NULL;
    size_t len = 0;
    if (k > 0 && k <= 256 && !hass_tokenizer_decode(t, ids, k, 1, &out, &len)) free(out);
    size_t n;
    for (int32_t i = 0; i < hass_tokenizer_n_vocab(t) && i < 512; i++) hass_tokenizer_piece(t, i, &n);
    hass_tokenizer_fingerprint(t);
    hass_tokenizer_free(t);
}

#endif
