// test_tokenizer_smollm2.c: the SmolLM2 vocabulary (GGUF, pre "smollm") gives the same ids as
// llama.cpp and HF tokenizers on MT-bench, HumanEval and ShareGPT texts
// (tests/data/tok_smollm2.jsonl.gz, made by tests/gen/gen_tok_smollm2.py), and
// detok(tokenize(x)) == x on all of them.
#include <zlib.h>

#include "tokenizer.h"
#include "unit.h"

// Read one line of any length from a gz file into *buf; 0 at the end.
static int gz_line(gzFile f, char **buf, size_t *cap) {
    size_t len = 0;
    for (;;) {
        if (len + 2 > *cap) { *cap = *cap ? 2 * *cap : 1 << 16; *buf = realloc(*buf, *cap); }
        if (!gzgets(f, *buf + len, (int)(*cap - len))) return len > 0;
        len += strlen(*buf + len);
        if (len > 0 && (*buf)[len - 1] == '\n') return 1;
    }
}

// detok(encode(x)) == x over every fixture text with another tokenizer; returns texts that agree.
static int round_trips(const hass_tokenizer *t, int *n_text, char *first, size_t n_first) {
    gzFile f = gzopen("tests/data/tok_smollm2.jsonl.gz", "rb");
    char *line = NULL;
    size_t cap = 0;
    int ok = 0;
    *n_text = 0;
    while (f && gz_line(f, &line, &cap)) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *text = json_string_value(json_object_get(rec, "text"));
        size_t tl = json_string_length(json_object_get(rec, "text"));
        int32_t *ids;
        int64_t n;
        char *back = NULL;
        size_t bl = 0;
        if (text && !hass_tokenizer_encode_alloc(t, text, tl, HASS_BOS_MODEL, 0, &ids, &n)) {
            (*n_text)++;
            if (!hass_tokenizer_decode(t, ids, n, 0, &back, &bl) && bl == tl && !memcmp(back, text, tl)) ok++;
            else if (!first[0]) snprintf(first, n_first, "%s", json_string_value(json_object_get(rec, "src")));
            free(ids);
        }
        free(back);
        json_decref(rec);
    }
    if (f) gzclose(f);
    free(line);
    return ok;
}

int main(void) {
    hass_err e;
    // the same texts round trip through the LLaMA-2 SentencePiece vocabulary (one dummy-prefix
    // space removed at the start) and through GPT-2's byte-level BPE
    const char *others[] = {"tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf", "tokenizer/llama.cpp/ggml-vocab-gpt-2.gguf"};
    for (int k = 0; k < 2; k++) {
        char p[512], nm[160], first2[300] = "";
        hass_tokenizer *o = hass_tokenizer_load(unit_data(p, sizeof p, others[k]), &e);
        int nt = 0, ok = o ? round_trips(o, &nt, first2, sizeof first2) : 0;
        snprintf(nm, sizeof nm, "%s: detok(tokenize(x)) == x on MT-bench, HumanEval, ShareGPT", strrchr(others[k], '/') + 1);
        CHECK(nm, o && nt == 1252 && ok == nt, "%d/%d; first: %s", ok, nt, first2);
        hass_tokenizer_free(o);
    }
    const char *models = getenv("HASS_MODELS") ? getenv("HASS_MODELS") : "models";
    char mp[512];
    snprintf(mp, sizeof mp, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", models);
    if (!unit_exists(mp)) { SKIP("smollm2 vocabulary", "model not fetched"); UNIT_DONE(); }
    hass_tokenizer *t = hass_tokenizer_load(mp, &e);
    CHECK("smollm2 loads", t && hass_tokenizer_n_vocab(t) == 49152 && !strcmp(hass_tokenizer_pre(t), "smollm") &&
          hass_tokenizer_eos(t) == 2 && !hass_tokenizer_add_bos(t), "%s", t ? hass_tokenizer_pre(t) : hass_errmsg());
    if (!t) UNIT_DONE();
    CHECK("smollm2 end-of-generation tokens", hass_tokenizer_is_eog(t, 2) && hass_tokenizer_is_eog(t, 0) &&
          !hass_tokenizer_is_eog(t, 1), "eog");
    gzFile f = gzopen("tests/data/tok_smollm2.jsonl.gz", "rb");
    CHECK("smollm2 fixture opens", f != NULL, "tests/data/tok_smollm2.jsonl.gz");
    if (!f) UNIT_DONE();
    char *line = NULL;
    size_t cap = 0;
    int n_text = 0, n_ok = 0, n_rt = 0;
    int64_t n_tok = 0, n_bytes = 0;
    double secs = 0;
    char first[300] = "", first_rt[300] = "";
    int32_t *ids = NULL;
    while (gz_line(f, &line, &cap)) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *text = json_string_value(json_object_get(rec, "text"));
        size_t tl = json_string_length(json_object_get(rec, "text"));
        json_t *want = json_object_get(rec, "tokens");
        if (!text || !json_is_array(want)) { json_decref(rec); continue; }
        n_text++;
        int64_t n;
        double t0 = hass_now();
        e = hass_tokenizer_encode_alloc(t, text, tl, HASS_BOS_MODEL, 0, &ids, &n);
        secs += hass_now() - t0;
        n_tok += n;
        n_bytes += (int64_t)tl;
        int same = !e && (size_t)n == json_array_size(want);
        for (int64_t k = 0; same && k < n; k++) same = ids[k] == json_integer_value(json_array_get(want, (size_t)k));
        if (same) n_ok++;
        else if (!first[0]) snprintf(first, sizeof first, "%s", json_string_value(json_object_get(rec, "src")));
        char *back = NULL;
        size_t bl = 0;
        if (!e && !hass_tokenizer_decode(t, ids, n, 0, &back, &bl) && bl == tl && !memcmp(back, text, tl)) n_rt++;
        else if (!first_rt[0]) snprintf(first_rt, sizeof first_rt, "%s", json_string_value(json_object_get(rec, "src")));
        free(back);
        free(ids);
        ids = NULL;
        json_decref(rec);
    }
    gzclose(f);
    free(line);
    CHECK("smollm2 ids identical to llama.cpp/tokenizers on MT-bench, HumanEval, ShareGPT",
          n_text == 1252 && n_ok == n_text, "%d/%d texts; first differing: %s", n_ok, n_text, first);
    CHECK("smollm2 detok(tokenize(x)) == x", n_rt == n_text, "%d/%d; first: %s", n_rt, n_text, first_rt);
    printf("# smollm2: %d texts, %lld bytes, %lld tokens in %.3f s (%.0f tokens/s, one thread)\n", n_text,
           (long long)n_bytes, (long long)n_tok, secs, n_tok / (secs > 0 ? secs : 1));
    // special tokens: parsed only when asked
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t buf[32];
    int64_t n = hass_tokenizer_encode(t, s, strlen(s), HASS_BOS_MODEL, 1, buf, 32);
    CHECK("smollm2 parses <|im_start|> with parse_special", n >= 4 && buf[0] == 1 && buf[n - 1] == 2, "n=%lld", (long long)n);
    n = hass_tokenizer_encode(t, s, strlen(s), HASS_BOS_MODEL, 0, buf, 32);
    CHECK("smollm2 keeps <|im_start|> as text otherwise", n > 6 && buf[0] != 1, "n=%lld", (long long)n);
    hass_tokenizer_free(t);
    UNIT_DONE();
}
