// test_tokenizer_json.c: Hugging Face tokenizer.json loading (SentencePiece-style with byte
// fallback, and byte-level BPE) gives the ids of HF tokenizers (tests/data/tok_json_ids.jsonl,
// from tests/gen/gen_tok_json.py); the SPM one fingerprints like the same vocabulary in GGUF;
// tokenizer_config.json beside it is applied.
#include "chat.h"
#include "tokenizer.h"
#include "unit.h"

int main(void) {
    hass_err e;
    hass_tokenizer *spm = hass_tokenizer_load("tests/data/tok_json/stories260k", &e);
    CHECK("tokenizer.json (SentencePiece layout) loads from its folder",
          spm && hass_tokenizer_kind(spm) == HASS_TOK_SPM && hass_tokenizer_n_vocab(spm) == 512 &&
          hass_tokenizer_bos(spm) == 1 && hass_tokenizer_eos(spm) == 2, "%s", spm ? "" : hass_errmsg());
    hass_tokenizer *bl = hass_tokenizer_load("tests/data/tok_json/bytelevel/tokenizer.json", &e);
    CHECK("tokenizer.json (byte-level) loads with its tokenizer_config.json",
          bl && hass_tokenizer_kind(bl) == HASS_TOK_BPE && !strcmp(hass_tokenizer_pre(bl), "gpt-2") &&
          hass_tokenizer_eos(bl) == 0 && hass_tokenizer_is_eog(bl, 0) &&
          hass_tokenizer_chat_template(bl) && !strcmp(hass_chat_detect(hass_tokenizer_chat_template(bl)), "chatml"),
          "%s", bl ? hass_tokenizer_pre(bl) : hass_errmsg());
    if (!spm || !bl) UNIT_DONE();
    char p[512];
    hass_tokenizer *gg = hass_tokenizer_load(unit_data(p, sizeof p, "models/stories260K/stories260K-v3-f32.gguf"), &e);
    CHECK("same vocabulary from tokenizer.json and GGUF, same fingerprint",
          gg && hass_tokenizer_fingerprint(gg) == hass_tokenizer_fingerprint(spm), "%08x vs %08x",
          gg ? hass_tokenizer_fingerprint(gg) : 0, hass_tokenizer_fingerprint(spm));
    hass_tokenizer_free(gg);
    FILE *f = fopen("tests/data/tok_json_ids.jsonl", "r");
    char line[8192];
    int n[2] = {0, 0}, ok[2] = {0, 0}, rt[2] = {0, 0};
    char first[2][300] = {"", ""};
    while (f && fgets(line, sizeof line, f)) {
        json_t *r = json_loads(line, 0, NULL);
        int k = !strcmp(json_string_value(json_object_get(r, "tok")), "bytelevel");
        hass_tokenizer *t = k ? bl : spm;
        const char *text = json_string_value(json_object_get(r, "text"));
        size_t tl = json_string_length(json_object_get(r, "text"));
        json_t *want = json_object_get(r, "tokens");
        int32_t ids[1024];
        // HF splits added special tokens out of any text; llama.cpp (and we) only when asked
        int64_t m = hass_tokenizer_encode(t, text, tl, HASS_BOS_NO, 1, ids, 1024);
        int same = m == (int64_t)json_array_size(want);
        for (int64_t i = 0; same && i < m; i++) same = ids[i] == json_integer_value(json_array_get(want, (size_t)i));
        n[k]++;
        if (same) ok[k]++;
        else if (!first[k][0]) snprintf(first[k], sizeof first[k], "'%.60s'", text);
        char *back = NULL;
        size_t bl_len = 0;
        if (m >= 0 && !hass_tokenizer_decode(t, ids, m, 1, &back, &bl_len) && bl_len == tl && !memcmp(back, text, tl)) rt[k]++;
        free(back);
        json_decref(r);
    }
    if (f) fclose(f);
    CHECK("tokenizer.json SentencePiece ids equal HF tokenizers", n[0] == 50 && ok[0] == n[0], "%d/%d; first: %s", ok[0], n[0], first[0]);
    CHECK("tokenizer.json byte-level ids equal HF tokenizers", n[1] == 50 && ok[1] == n[1], "%d/%d; first: %s", ok[1], n[1], first[1]);
    CHECK("tokenizer.json round trips (specials kept)", rt[0] == n[0] && rt[1] == n[1], "%d/%d %d/%d", rt[0], n[0], rt[1], n[1]);
    hass_tokenizer *bad = hass_tokenizer_load("tests/data/chat_templates.json", &e);
    CHECK("a JSON file that is not a tokenizer is refused", !bad && e == HASS_EUNSUP && strstr(hass_errmsg(), "model type"), "%s", hass_errmsg());
    hass_tokenizer_free(spm);
    hass_tokenizer_free(bl);
    UNIT_DONE();
}
