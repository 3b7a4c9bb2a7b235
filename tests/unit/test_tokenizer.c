// test_tokenizer.c: llama.cpp's tokenizer vectors (46 cases each) for every vocabulary we claim,
// detok(encode(x)) == x on them, special-token parsing, BOS handling, fingerprints, the
// incremental detokenizer across UTF-8 boundaries, and unicode tables.
#include <unistd.h>

#include "tokenizer.h"
#include "unicode.h"
#include "unit.h"

// Read a whole file; NULL if missing.
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

// A folder holding the LLaMA-3 encoder.json, vocab.bpe and tokenizer_config.json (symlinks).
static const char *llama3_dir(void) {
    static char dir[256];
    if (dir[0]) return dir;
    char b[512];
    snprintf(dir, sizeof dir, "%s/hass-tok-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return NULL;
    const char *d = unit_data_dir();
    char abs[512];
    if (d[0] != '/') { char cwd[256]; snprintf(abs, sizeof abs, "%s/%s", getcwd(cwd, sizeof cwd), d); d = abs; }
    const char *src[] = {"tokenizer/llama3/encoder.json", "tokenizer/llama3/vocab.bpe",
                         "tokenizer/hf/Meta-Llama-3-8B-Instruct/tokenizer_config.json"};
    const char *dst[] = {"encoder.json", "vocab.bpe", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        char s[600], t[600];
        snprintf(s, sizeof s, "%s/%s", d, src[i]);
        snprintf(t, sizeof t, "%s/%s", dir, dst[i]);
        if (symlink(s, t)) return NULL;
    }
    (void)b;
    return dir;
}

// Remove the temporary LLaMA-3 folder.
static void llama3_cleanup(void) {
    const char *d = llama3_dir();
    if (!d) return;
    const char *names[] = {"encoder.json", "vocab.bpe", "tokenizer_config.json"};
    char p[600];
    for (int i = 0; i < 3; i++) { snprintf(p, sizeof p, "%s/%s", d, names[i]); unlink(p); }
    rmdir(d);
}

// Run the 46 cases of ggml-vocab-<name>.gguf.inp/.out against a tokenizer.
static void run_vectors(const char *name, const hass_tokenizer *t) {
    char p1[512], p2[512], cn[128];
    snprintf(cn, sizeof cn, "ggml-vocab-%s.gguf.inp", name);
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/llama.cpp/%s", cn);
    size_t ni, no;
    char *inp = slurp(unit_data(p1, sizeof p1, rel), &ni);
    snprintf(rel, sizeof rel, "tokenizer/llama.cpp/ggml-vocab-%s.gguf.out", name);
    char *out = slurp(unit_data(p2, sizeof p2, rel), &no);
    if (!inp || !out) { SKIP(name, "vectors missing"); free(inp); free(out); return; }
    const char *sep = "\n__ggml_vocab_test__\n";
    char *ci = inp, *co = out;
    int n_case = 0, n_ok = 0, n_rt = 0, n_rt_ok = 0;
    char first_bad[512] = "", first_rt[512] = "";
    for (;;) {
        char *e = strstr(ci, sep);
        if (!e) break;
        char *nl = strchr(co, '\n');
        if (!nl) break;
        *nl = 0;
        int32_t want[512];
        int nw = 0;
        for (char *s = strtok(co, " "); s && nw < 512; s = strtok(NULL, " ")) want[nw++] = atoi(s);
        int32_t got[512];
        int64_t ng = hass_tokenizer_encode(t, ci, (size_t)(e - ci), HASS_BOS_NO, 0, got, 512);
        int same = ng == nw;
        for (int k = 0; same && k < nw; k++) same = got[k] == want[k];
        n_case++;
        if (same) n_ok++;
        else if (!first_bad[0]) {
            int o = snprintf(first_bad, sizeof first_bad, "case %d '%.*s': got", n_case, (int)(e - ci < 40 ? e - ci : 40), ci);
            for (int k = 0; k < ng && k < 12 && o < 400; k++) o += snprintf(first_bad + o, sizeof first_bad - (size_t)o, " %d", got[k]);
            o += snprintf(first_bad + o, sizeof first_bad - (size_t)o, " want");
            for (int k = 0; k < nw && k < 12 && o < 480; k++) o += snprintf(first_bad + o, sizeof first_bad - (size_t)o, " %d", want[k]);
        }
        // round trip on the expected ids
        char *txt = NULL;
        size_t tl = 0;
        if (!hass_tokenizer_decode(t, want, nw, 0, &txt, &tl)) {
            n_rt++;
            if (tl == (size_t)(e - ci) && !memcmp(txt, ci, tl)) n_rt_ok++;
            else if (!first_rt[0]) snprintf(first_rt, sizeof first_rt, "case %d: '%.*s' -> '%s'", n_case, (int)(e - ci < 40 ? e - ci : 40), ci, txt);
        }
        free(txt);
        ci = e + strlen(sep);
        co = nl + 1;
    }
    char nm[128];
    snprintf(nm, sizeof nm, "vectors %s: %d/46 cases", name, n_ok);
    CHECK(nm, n_case == 46 && n_ok == 46, "%d/%d ok; first failure: %s", n_ok, n_case, first_bad);
    snprintf(nm, sizeof nm, "vectors %s: detok(ids) == text", name);
    CHECK(nm, n_rt == 46 && n_rt_ok == 46, "%d/%d; first: %s", n_rt_ok, n_rt, first_rt);
    free(inp);
    free(out);
}

// Load a vocab-only GGUF from the vectors folder.
static hass_tokenizer *load_vocab(const char *name) {
    char p[512], rel[256];
    snprintf(rel, sizeof rel, "tokenizer/llama.cpp/ggml-vocab-%s.gguf", name);
    hass_err e;
    hass_tokenizer *t = hass_tokenizer_load(unit_data(p, sizeof p, rel), &e);
    if (!t) printf("# load %s: %s\n", name, hass_errmsg());
    return t;
}

int main(void) {
    // unicode groups
    CHECK("unicode letters", hass_unicode_cat('a') == HASS_UCAT_L && hass_unicode_cat(0x4E00) == HASS_UCAT_L &&
          hass_unicode_cat(0x1780) == HASS_UCAT_L, "cat");
    CHECK("unicode numbers and marks", hass_unicode_cat('7') == HASS_UCAT_N && hass_unicode_cat(0xBD) == HASS_UCAT_N &&
          hass_unicode_cat(0x17B6) == HASS_UCAT_M && hass_unicode_cat(0x1F999) == HASS_UCAT_S, "cat");
    CHECK("unicode white space", hass_unicode_is_space(0x3000) && hass_unicode_is_space('\t') &&
          !hass_unicode_is_space(0x200B) && !hass_unicode_is_space('x'), "space");
    int ascii_ok = 1;
    for (uint32_t c = 0; c < 128; c++) {
        int g = hass_unicode_cat(c);
        unsigned want = (g == HASS_UCAT_L ? HASS_UF_L : g == HASS_UCAT_N ? HASS_UF_N : g == HASS_UCAT_P ? HASS_UF_P
                         : g == HASS_UCAT_S ? HASS_UF_S : g == HASS_UCAT_M ? HASS_UF_M : 0) |
                        (hass_unicode_is_space(c) ? HASS_UF_SPACE : 0);
        ascii_ok &= hass_unicode_flags(c) == want;
    }
    CHECK("unicode ASCII fast table agrees with the range table", ascii_ok, "mismatch");
    uint32_t cp;
    CHECK("utf8 rejects overlong and surrogates",
          hass_utf8_decode((const unsigned char *)"\xC0\xAF", 2, &cp) < 0 &&
          hass_utf8_decode((const unsigned char *)"\xED\xA0\x80", 3, &cp) < 0 &&
          hass_utf8_decode((const unsigned char *)"\xF0\x9F\xA6\x99", 4, &cp) == 4 && cp == 0x1F999, "decode");

    const char *gguf_vocabs[] = {"llama-spm", "phi-3", "gpt-2", "mpt", "starcoder", "refact", "falcon", "deepseek-coder", "deepseek-llm"};
    for (size_t i = 0; i < sizeof gguf_vocabs / sizeof *gguf_vocabs; i++) {
        hass_tokenizer *t = load_vocab(gguf_vocabs[i]);
        if (!t) { CHECK(gguf_vocabs[i], 0, "load failed: %s", hass_errmsg()); continue; }
        run_vectors(gguf_vocabs[i], t);
        hass_tokenizer_free(t);
    }
    const char *d3 = llama3_dir();
    hass_err e;
    hass_tokenizer *l3 = d3 ? hass_tokenizer_load(d3, &e) : NULL;
    CHECK("llama-3 from encoder.json + vocab.bpe + tokenizer_config.json",
          l3 && hass_tokenizer_n_vocab(l3) == 128256 && hass_tokenizer_bos(l3) == 128000 &&
          !strcmp(hass_tokenizer_pre(l3), "llama-bpe"), "%s", l3 ? hass_tokenizer_pre(l3) : hass_errmsg());
    if (l3) {
        run_vectors("llama-bpe", l3);
        int32_t ids[16];
        const char *s = "<|start_header_id|>user<|end_header_id|>";
        int64_t n = hass_tokenizer_encode(l3, s, strlen(s), HASS_BOS_MODEL, 1, ids, 16);
        CHECK("llama-3 specials parsed with parse_special", n == 4 && ids[0] == 128000 && ids[1] == 128006 &&
              ids[3] == 128007, "n=%lld", (long long)n);
        n = hass_tokenizer_encode(l3, s, strlen(s), HASS_BOS_NO, 0, ids, 16);
        CHECK("llama-3 specials are plain text without parse_special", n > 4 && ids[0] != 128006, "n=%lld", (long long)n);
        CHECK("llama-3 <|eot_id|> ends generation", hass_tokenizer_is_eog(l3, 128009) && hass_tokenizer_is_eog(l3, 128001) &&
              !hass_tokenizer_is_eog(l3, 9906), "eog");
        int64_t offs[16];
        n = hass_tokenizer_encode_offsets(l3, "Hello world!!", 13, HASS_BOS_MODEL, 0, ids, offs, 16);
        CHECK("byte-level offsets of tokens", n == 4 && offs[0] == 0 && offs[1] == 0 && offs[2] == 5 && offs[3] == 11,
              "n=%lld", (long long)n);
        n = hass_tokenizer_encode(l3, "Hello world", 11, HASS_BOS_MODEL, 0, ids, 1);
        CHECK("encode reports the size needed", n == -3, "n=%lld", (long long)n);
        hass_tokenizer_free(l3);
    }
    llama3_cleanup();

    // SPM: BOS, byte fallback, the leading-space rule, incremental detok across bytes
    hass_tokenizer *spm = load_vocab("llama-spm");
    if (spm) {
        int32_t ids[32];
        int64_t offs[32];
        int64_t n = hass_tokenizer_encode_offsets(spm, " Hello world", 12, HASS_BOS_MODEL, 0, ids, offs, 32);
        CHECK("spm byte offsets of tokens (BOS and dummy prefix at 0)", n == 4 && ids[1] == 29871 && offs[0] == 0 &&
              offs[1] == 0 && offs[2] == 0 && offs[3] == 6, "n=%lld %lld %lld %lld", (long long)n, (long long)offs[1],
              (long long)offs[2], (long long)offs[3]);
        n = hass_tokenizer_encode_offsets(spm, "a<s>b", 5, HASS_BOS_NO, 1, ids, offs, 32);
        CHECK("spm offsets around a special token", n == 3 && ids[1] == 1 && offs[0] == 0 && offs[1] == 1 && offs[2] == 4,
              "n=%lld ids %d %d %d offs %lld %lld", (long long)n, ids[0], ids[1], ids[2], (long long)offs[1], (long long)offs[2]);
        n = hass_tokenizer_encode(spm, "Hello world", 11, HASS_BOS_MODEL, 0, ids, 32);
        CHECK("spm adds BOS as the model says", n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186, "n=%lld", (long long)n);
        const char *llama = "\xF0\x9F\xA6\x99"; // 🦙 = 4 byte tokens
        n = hass_tokenizer_encode(spm, llama, 4, HASS_BOS_NO, 0, ids, 32);
        CHECK("spm byte fallback", n == 5 && ids[1] == 243 && ids[4] == 156, "n=%lld", (long long)n);
        hass_detok d;
        hass_detok_init(&d, spm, 0);
        char *buf = NULL;
        size_t len = 0, cap = 0;
        size_t lens[5];
        for (int k = 0; k < 5; k++) { hass_detok_push(&d, ids[k], &buf, &len, &cap); lens[k] = len; }
        CHECK("detok holds bytes until the UTF-8 sequence is complete",
              lens[0] == 0 && lens[3] == 0 && lens[4] == 4 && !memcmp(buf, llama, 4), "lens %zu %zu %zu", lens[0], lens[3], lens[4]);
        hass_detok_init(&d, spm, 0);
        len = 0;
        hass_detok_push(&d, 243, &buf, &len, &cap);
        hass_detok_push(&d, 15043, &buf, &len, &cap);
        hass_detok_flush(&d, &buf, &len, &cap);
        CHECK("detok replaces a broken sequence by U+FFFD", len == 9 && !memcmp(buf, "\xEF\xBF\xBD Hello", 9), "'%s'", buf);
        int32_t sp[] = {1, 15043, 2};
        char *txt;
        hass_tokenizer_decode(spm, sp, 3, 1, &txt, NULL);
        CHECK("decode keeps specials when asked", !strcmp(txt, "<s>Hello</s>"), "'%s'", txt);
        free(txt);
        hass_tokenizer_decode(spm, sp, 3, 0, &txt, NULL);
        CHECK("decode drops specials by default", !strcmp(txt, "Hello"), "'%s'", txt);
        free(txt);
        free(buf);
        uint32_t fp = hass_tokenizer_fingerprint(spm);
        hass_tokenizer *tiny = NULL;
        char p[512];
        hass_tokenizer *pm = hass_tokenizer_load(unit_data(p, sizeof p, "tokenizer/llama2/tokenizer.model"), &e);
        CHECK("SentencePiece tokenizer.model (protobuf) loads the LLaMA-2 vocabulary",
              pm && hass_tokenizer_n_vocab(pm) == 32000 && hass_tokenizer_fingerprint(pm) == fp &&
              hass_tokenizer_bos(pm) == 1 && hass_tokenizer_eos(pm) == 2, "%s", pm ? "fingerprint differs" : hass_errmsg());
        if (pm) run_vectors("llama-spm", pm); // the same 46 cases through the protobuf vocabulary
        hass_tokenizer_free(pm);
        tiny = hass_tokenizer_load(unit_data(p, sizeof p, "models/llama-2-tiny-random/llama-2-tiny-random.gguf"), &e);
        CHECK("same LLaMA-2 vocab, same fingerprint", tiny && hass_tokenizer_fingerprint(tiny) == fp, "%08x", fp);
        hass_tokenizer_free(tiny);
        hass_tokenizer_free(spm);
    }
    hass_tokenizer *st = NULL;
    char p[512];
    st = hass_tokenizer_load(unit_data(p, sizeof p, "models/stories260K/tinyllamas-stories-260k-f32.gguf"), &e);
    if (st) {
        int32_t ids[32];
        const char *s = "Once upon a time";
        int64_t n = hass_tokenizer_encode(st, s, strlen(s), HASS_BOS_MODEL, 0, ids, 32);
        CHECK("stories260K (GGUF v1) encodes the reference prompt", n == 5 && ids[0] == 1 && ids[1] == 403 &&
              ids[2] == 407 && ids[3] == 261 && ids[4] == 378, "n=%lld %d %d", (long long)n, ids[0], ids[1]);
        CHECK("stories260K eos ends generation", hass_tokenizer_is_eog(st, 2) && hass_tokenizer_eos(st) == 2, "eos");
        hass_tokenizer_free(st);
    } else CHECK("stories260K loads", 0, "%s", hass_errmsg());

    hass_tokenizer *bad = hass_tokenizer_load("/nonexistent/tok.gguf", &e);
    CHECK("missing file is an I/O error naming it", !bad && e == HASS_EIO && strstr(hass_errmsg(), "/nonexistent/tok.gguf"), "%s", hass_errmsg());
    UNIT_DONE();
}
