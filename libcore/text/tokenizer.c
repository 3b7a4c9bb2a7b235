// tokenizer.c: vocabularies (GGUF, tokenizer.json, encoder.json+vocab.bpe), encoding (SPM
// bigram heap, byte-level BPE rank table + heap, hand-written pre-tokenizer matchers) and
// decoding (piece table, UTF-8-safe incremental detokenizer).
#include "tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "unicode.h"

// Pre-tokenizer rule sets (llama.cpp names in pre_names).
enum {
    PRE_SPM = 0,     // none: SentencePiece works on the whole text run
    PRE_GPT2,        // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    PRE_LLAMA3,      // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|...
    PRE_DIGITS_GPT2, // \p{N} isolated, then GPT-2 (starcoder, refact, smollm, command-r)
    PRE_FALCON,      // [\p{P}$+<=>^~|`]+ isolated, then GPT-2, then [0-9]{3} isolated
    PRE_QWEN2,       // LLaMA-3 with \p{N} (single digits)
    PRE_DEEPSEEK_CODER, // [\r\n], \s?\p{L}+, \s?\p{P}+, [一-龥ࠀ-一가-퟿]+, \p{N}: each isolated
    PRE_DEEPSEEK_LLM,   // [\r\n], \s?[Latin/Greek/... letters]+, \s?[ASCII/fullwidth punct]+,
                        // \s+$, [一-龥ࠀ-一가-퟿]+, \p{N}+: each isolated
};

// The letter class of DeepSeek-LLM's second rule (llama.cpp llama-vocab.cpp), as ranges.
static const uint32_t ds_letters[][2] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA},
    {0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377},
    {0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C},
    {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556},
    {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF},
    {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE},
    {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC},
    {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113},
    {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128},
    {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787},
    {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

// Whether cp is in a sorted-or-not list of ranges.
static int in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n) {
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i][0] && cp <= r[i][1]) return 1;
    return 0;
}

static const struct { const char *name; int pre; } pre_names[] = {
    {"default", PRE_SPM},         {"gpt-2", PRE_GPT2},          {"gpt2", PRE_GPT2},
    {"mpt", PRE_GPT2},            {"olmo", PRE_GPT2},           {"jais", PRE_GPT2},
    {"llama-bpe", PRE_LLAMA3},    {"llama3", PRE_LLAMA3},       {"llama-v3", PRE_LLAMA3},
    {"smollm", PRE_DIGITS_GPT2},  {"starcoder", PRE_DIGITS_GPT2}, {"refact", PRE_DIGITS_GPT2},
    {"command-r", PRE_DIGITS_GPT2}, {"codeshell", PRE_DIGITS_GPT2}, {"falcon", PRE_FALCON},
    {"qwen2", PRE_QWEN2},         {"deepseek-coder", PRE_DEEPSEEK_CODER},
    {"deepseek-llm", PRE_DEEPSEEK_LLM},         {"stablelm2", PRE_QWEN2},     {"deepseek-r1-qwen", PRE_QWEN2},
};

typedef struct merge_slot {
    uint64_t key;  // (left << 32) | right, UINT64_MAX = empty
    int32_t rank;  // merge priority (0 first)
    int32_t id;    // merged token
} merge_slot;

struct hass_tokenizer {
    int kind;             // HASS_TOK_SPM / HASS_TOK_BPE
    int pre;              // PRE_*
    char pre_name[32];    // llama.cpp spelling
    int32_t n_vocab;
    char *text;           // (text_bytes) stored strings, each NUL-terminated
    size_t text_bytes, text_cap;
    uint64_t *text_off;   // (n_vocab) offset of each stored string
    uint32_t *text_len;   // (n_vocab)
    char *piece;          // decoded bytes of all tokens
    uint64_t *piece_off;  // (n_vocab)
    uint32_t *piece_len;  // (n_vocab)
    float *score;         // (n_vocab) SPM merge scores
    uint8_t *type;        // (n_vocab) HASS_TOKEN_*
    uint8_t *eog;         // (n_vocab) ends a generation
    int32_t *str_hash;    // (str_cap) stored string -> id, -1 empty
    uint32_t str_cap;
    int32_t *piece_hash;  // (piece_cap) BPE: decoded bytes of normal tokens -> id
    uint32_t piece_cap;
    merge_slot *merges;   // (merge_cap) BPE pair -> merged
    uint32_t merge_cap;
    int32_t n_merges;
    int32_t byte_id[256]; // token of a raw byte (BPE mapped char, SPM <0xNN>), -1 if none
    int32_t *special;     // (n_special) ids parsed from text, longest first
    int32_t n_special;
    uint8_t special_first[256]; // first bytes of specials
    int32_t bos, eos, unk, pad;
    int add_bos, add_eos, add_space_prefix, ignore_merges;
    char *chat_template;
    uint32_t fingerprint;
    // merges as read ("a b"), until finish() turns them into the pair table
    char **merge_src;
    int32_t n_merge_src;
};

// ----------------------------------------------------------------------------------------------
// small helpers

// FNV-1a hash of bytes.
static uint32_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

// Mix of a 64-bit pair key.
static uint32_t hash_pair(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33;
    return (uint32_t)k;
}

// Smallest power of two >= 2n (at least 16).
static uint32_t table_cap(uint64_t n) {
    uint32_t c = 16;
    while (c < 2 * n) c <<= 1;
    return c;
}

static uint32_t gpt2_b2u[256]; // GPT-2 bytes_to_unicode: byte -> codepoint
static int16_t gpt2_u2b[324];  // its inverse for codepoints < 324, -1 elsewhere
static pthread_once_t gpt2_once = PTHREAD_ONCE_INIT;

// Fill the GPT-2 byte <-> unicode tables (once per process).
static void gpt2_init(void) {
    int n = 0;
    for (int i = 0; i < 324; i++) gpt2_u2b[i] = -1;
    for (int c = 0; c < 256; c++) {
        int printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE);
        gpt2_b2u[c] = printable ? (uint32_t)c : (uint32_t)(256 + n++);
        gpt2_u2b[gpt2_b2u[c]] = (int16_t)c;
    }
}

// GPT-2 bytes_to_unicode: byte -> codepoint.
static uint32_t gpt2_byte_cp(int b) {
    pthread_once(&gpt2_once, gpt2_init);
    return gpt2_b2u[b];
}

// GPT-2 unicode_to_bytes: codepoint -> byte, -1 if cp is not a mapped byte.
static int gpt2_cp_byte(uint32_t cp) {
    pthread_once(&gpt2_once, gpt2_init);
    return cp < 324 ? gpt2_u2b[cp] : -1;
}

// New empty tokenizer of a kind.
static hass_tokenizer *tok_new(int kind, hass_err *err) {
    hass_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { *err = hass_seterr(HASS_ENOMEM, "tokenizer: out of memory"); return NULL; }
    t->kind = kind;
    t->pre = kind == HASS_TOK_SPM ? PRE_SPM : PRE_GPT2;
    snprintf(t->pre_name, sizeof t->pre_name, "%s", kind == HASS_TOK_SPM ? "default" : "gpt-2");
    t->bos = t->eos = t->unk = t->pad = -1;
    t->add_space_prefix = kind == HASS_TOK_SPM;
    t->add_bos = kind == HASS_TOK_SPM;
    return t;
}

// realloc the array at *pp to n bytes; 0 on failure (*pp unchanged).
static int grow(void *pp, size_t n) {
    void **p = pp, *q = realloc(*p, n ? n : 1);
    if (!q) return 0;
    *p = q;
    return 1;
}

// Grow the per-token arrays to n entries (new entries: empty, UNUSED).
static hass_err tok_resize(hass_tokenizer *t, int32_t n) {
    if (n <= t->n_vocab) return HASS_OK;
    size_t m = (size_t)n;
    if (!grow(&t->text_off, m * sizeof *t->text_off) || !grow(&t->text_len, m * sizeof *t->text_len) ||
        !grow(&t->score, m * sizeof *t->score) || !grow(&t->type, m))
        return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    for (int32_t i = t->n_vocab; i < n; i++) {
        t->text_off[i] = 0; t->text_len[i] = 0; t->score[i] = 0; t->type[i] = HASS_TOKEN_UNUSED;
    }
    t->n_vocab = n;
    return HASS_OK;
}

// Set the stored string of token id.
static hass_err tok_set_text(hass_tokenizer *t, int32_t id, const char *s, size_t n) {
    if (t->text_bytes + n + 1 > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 1 << 16;
        while (cap < t->text_bytes + n + 1) cap *= 2;
        char *p = realloc(t->text, cap);
        if (!p) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
        t->text = p;
        t->text_cap = cap;
    }
    memcpy(t->text + t->text_bytes, s, n);
    t->text[t->text_bytes + n] = 0;
    t->text_off[id] = t->text_bytes;
    t->text_len[id] = (uint32_t)n;
    t->text_bytes += n + 1;
    return HASS_OK;
}

// Add a merge rule "a b" (copied).
static hass_err tok_add_merge(hass_tokenizer *t, const char *s, size_t n) {
    if ((t->n_merge_src & (t->n_merge_src - 1)) == 0) {
        size_t cap = t->n_merge_src ? 2 * (size_t)t->n_merge_src : 1024;
        char **p = realloc(t->merge_src, cap * sizeof *p);
        if (!p) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
        t->merge_src = p;
    }
    char *c = malloc(n + 1);
    if (!c) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    memcpy(c, s, n);
    c[n] = 0;
    t->merge_src[t->n_merge_src++] = c;
    return HASS_OK;
}

static const char *tok_str(const hass_tokenizer *t, int32_t id) { return t->text + t->text_off[id]; }

// Lookup in the stored-string table.
static int32_t str_lookup(const hass_tokenizer *t, const char *s, size_t n) {
    if (!t->str_hash) return -1;
    uint32_t m = t->str_cap - 1;
    for (uint32_t h = hash_bytes(s, n) & m;; h = (h + 1) & m) {
        int32_t id = t->str_hash[h];
        if (id < 0) return -1;
        if (t->text_len[id] == n && !memcmp(tok_str(t, id), s, n)) return id;
    }
}

// Lookup of a BPE normal token by its decoded bytes.
static int32_t piece_lookup(const hass_tokenizer *t, const void *s, size_t n) {
    if (!t->piece_hash) return -1;
    uint32_t m = t->piece_cap - 1;
    for (uint32_t h = hash_bytes(s, n) & m;; h = (h + 1) & m) {
        int32_t id = t->piece_hash[h];
        if (id < 0) return -1;
        if (t->piece_len[id] == n && !memcmp(t->piece + t->piece_off[id], s, n)) return id;
    }
}

// Merge table lookup: rank and merged id of the pair (a, b); 0 if no rule.
static int merge_lookup(const hass_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t m = t->merge_cap - 1;
    for (uint32_t h = hash_pair(k) & m;; h = (h + 1) & m) {
        if (t->merges[h].key == UINT64_MAX) return 0;
        if (t->merges[h].key == k) { *rank = t->merges[h].rank; *id = t->merges[h].id; return 1; }
    }
}

// Decoded bytes of token id into buf (>= 4 * text_len bytes); returns the length.
static size_t decode_token(const hass_tokenizer *t, int32_t id, char *buf) {
    const char *s = tok_str(t, id);
    size_t n = t->text_len[id], o = 0;
    int ty = t->type[id];
    if (ty == HASS_TOKEN_CONTROL || ty == HASS_TOKEN_UNKNOWN || ty == HASS_TOKEN_UNUSED ||
        (ty == HASS_TOKEN_USER_DEFINED && t->kind == HASS_TOK_BPE)) {
        memcpy(buf, s, n);
        return n;
    }
    if (t->kind == HASS_TOK_SPM) {
        unsigned v;
        if (ty == HASS_TOKEN_BYTE && n == 6 && sscanf(s, "<0x%2X>", &v) == 1) {
            buf[0] = (char)v;
            return 1;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) { buf[o++] = ' '; i += 3; }
            else buf[o++] = s[i++];
        }
        return o;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = hass_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = l > 0 ? gpt2_cp_byte(cp) : -1;
        if (b >= 0) { buf[o++] = (char)b; i += (size_t)l; }
        else if (l > 0) { memcpy(buf + o, s + i, (size_t)l); o += (size_t)l; i += (size_t)l; }
        else buf[o++] = s[i++];
    }
    return o;
}

// Compare special ids by text length, longest first (qsort_r with the tokenizer).
static int cmp_special(const void *a, const void *b, void *arg) {
    const hass_tokenizer *sort_tok = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_tok->text_len[x] != sort_tok->text_len[y])
        return sort_tok->text_len[x] > sort_tok->text_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

// Build the lookup tables, pieces, merges, specials and the fingerprint after loading.
static hass_err tok_finish(hass_tokenizer *t) {
    int32_t n = t->n_vocab;
    if (n <= 0) return hass_seterr(HASS_EFORMAT, "tokenizer: empty vocabulary");
    // stored-string table (first id wins on duplicates)
    free(t->str_hash);
    t->str_cap = table_cap((uint64_t)n);
    t->str_hash = malloc(t->str_cap * sizeof *t->str_hash);
    if (!t->str_hash) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    memset(t->str_hash, 0xff, t->str_cap * sizeof *t->str_hash);
    for (int32_t id = 0; id < n; id++) {
        if (t->type[id] == HASS_TOKEN_UNUSED && t->text_len[id] == 0) continue;
        if (str_lookup(t, tok_str(t, id), t->text_len[id]) >= 0) continue;
        uint32_t m = t->str_cap - 1, h = hash_bytes(tok_str(t, id), t->text_len[id]) & m;
        while (t->str_hash[h] >= 0) h = (h + 1) & m;
        t->str_hash[h] = id;
    }
    // pieces
    free(t->piece);
    free(t->piece_off);
    free(t->piece_len);
    t->piece = malloc(t->text_bytes * 4 + 16);
    t->piece_off = malloc(n * sizeof *t->piece_off);
    t->piece_len = malloc(n * sizeof *t->piece_len);
    if (!t->piece || !t->piece_off || !t->piece_len)
        return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    uint64_t po = 0;
    for (int32_t id = 0; id < n; id++) {
        t->piece_off[id] = po;
        t->piece_len[id] = (uint32_t)decode_token(t, id, t->piece + po);
        po += t->piece_len[id];
    }
    // byte tokens
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t l;
        if (t->kind == HASS_TOK_SPM) l = (size_t)snprintf(s, sizeof s, "<0x%02X>", b);
        else l = (size_t)hass_utf8_encode(gpt2_byte_cp(b), s);
        t->byte_id[b] = str_lookup(t, s, l);
    }
    // BPE: decoded-bytes table of normal tokens and the merge table
    if (t->kind == HASS_TOK_BPE) {
        free(t->piece_hash);
        t->piece_cap = table_cap((uint64_t)n);
        t->piece_hash = malloc(t->piece_cap * sizeof *t->piece_hash);
        if (!t->piece_hash) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
        memset(t->piece_hash, 0xff, t->piece_cap * sizeof *t->piece_hash);
        for (int32_t id = 0; id < n; id++) {
            if (t->type[id] != HASS_TOKEN_NORMAL) continue;
            const char *p = t->piece + t->piece_off[id];
            if (piece_lookup(t, p, t->piece_len[id]) >= 0) continue;
            uint32_t m = t->piece_cap - 1, h = hash_bytes(p, t->piece_len[id]) & m;
            while (t->piece_hash[h] >= 0) h = (h + 1) & m;
            t->piece_hash[h] = id;
        }
    }
    if (t->n_merge_src > 0) {
        free(t->merges);
        t->merge_cap = table_cap((uint64_t)t->n_merge_src);
        t->merges = malloc(t->merge_cap * sizeof *t->merges);
        if (!t->merges) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
        for (uint32_t i = 0; i < t->merge_cap; i++) t->merges[i].key = UINT64_MAX;
        char *cat = NULL;
        size_t cat_cap = 0;
        t->n_merges = 0;
        for (int32_t r = 0; r < t->n_merge_src; r++) {
            const char *s = t->merge_src[r];
            const char *sp = strchr(s + (s[0] == ' ' ? 1 : 0), ' ');
            if (!sp) continue;
            size_t la = (size_t)(sp - s), lb = strlen(sp + 1);
            int32_t a = str_lookup(t, s, la), b = str_lookup(t, sp + 1, lb);
            if (la + lb + 1 > cat_cap) {
                cat_cap = 2 * (la + lb + 1);
                char *c = realloc(cat, cat_cap);
                if (!c) { free(cat); return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory"); }
                cat = c;
            }
            memcpy(cat, s, la);
            memcpy(cat + la, sp + 1, lb);
            int32_t ab = str_lookup(t, cat, la + lb);
            if (a < 0 || b < 0 || ab < 0) continue;
            if (t->kind == HASS_TOK_SPM) {
                // tokenizer.json SentencePiece-style: the merge rank is the priority
                if (t->score[ab] == -1e30f) t->score[ab] = -(float)r;
                continue;
            }
            uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
            uint32_t m = t->merge_cap - 1, h = hash_pair(k) & m;
            while (t->merges[h].key != UINT64_MAX && t->merges[h].key != k) h = (h + 1) & m;
            if (t->merges[h].key == k) continue; // first rule wins
            t->merges[h] = (merge_slot){k, r, ab};
            t->n_merges++;
        }
        free(cat);
    }
    for (int32_t r = 0; r < t->n_merge_src; r++) free(t->merge_src[r]);
    free(t->merge_src);
    t->merge_src = NULL;
    t->n_merge_src = 0;
    if (t->kind == HASS_TOK_BPE && !t->merges) {
        t->merge_cap = 16;
        t->merges = malloc(16 * sizeof *t->merges);
        if (!t->merges) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
        for (int i = 0; i < 16; i++) t->merges[i].key = UINT64_MAX;
    }
    // specials (control/unknown: with parse_special; user-defined: always), longest first
    free(t->special);
    t->special = malloc(n * sizeof *t->special);
    if (!t->special) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    t->n_special = 0;
    memset(t->special_first, 0, sizeof t->special_first);
    for (int32_t id = 0; id < n; id++) {
        int ty = t->type[id];
        if ((ty == HASS_TOKEN_CONTROL || ty == HASS_TOKEN_UNKNOWN || ty == HASS_TOKEN_USER_DEFINED) &&
            t->text_len[id] > 0) {
            t->special[t->n_special++] = id;
            t->special_first[(unsigned char)tok_str(t, id)[0]] = 1;
        }
    }
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special, t);
    // end-of-generation tokens
    free(t->eog);
    t->eog = calloc((size_t)n, 1);
    if (!t->eog) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    static const char *eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<EOT>", "</s>", "<|end_of_text|>",
                                      "<|eom_id|>", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>"};
    for (size_t i = 0; i < sizeof eog_names / sizeof *eog_names; i++) {
        int32_t id = str_lookup(t, eog_names[i], strlen(eog_names[i]));
        if (id >= 0 && t->type[id] != HASS_TOKEN_NORMAL) t->eog[id] = 1;
    }
    if (t->eos >= 0 && t->eos < n) t->eog[t->eos] = 1;
    // fingerprint
    uLong crc = crc32(0L, Z_NULL, 0);
    const char *kind = t->kind == HASS_TOK_SPM ? "spm" : "bpe";
    crc = crc32(crc, (const Bytef *)"hass-vocab-1\n", 13);
    crc = crc32(crc, (const Bytef *)kind, 3);
    crc = crc32(crc, (const Bytef *)"\n", 1);
    unsigned char le[4];
    uint32_t v = (uint32_t)n;
    for (int i = 0; i < 4; i++) le[i] = (unsigned char)(v >> (8 * i));
    crc = crc32(crc, le, 4);
    for (int32_t id = 0; id < n; id++) {
        v = t->text_len[id];
        for (int i = 0; i < 4; i++) le[i] = (unsigned char)(v >> (8 * i));
        crc = crc32(crc, le, 4);
        crc = crc32(crc, (const Bytef *)tok_str(t, id), v);
    }
    t->fingerprint = (uint32_t)crc;
    return HASS_OK;
}

// Set the pre-tokenizer by llama.cpp name.
hass_err hass_tokenizer_set_pre(hass_tokenizer *t, const char *name) {
    for (size_t i = 0; i < sizeof pre_names / sizeof *pre_names; i++) {
        if (strcmp(pre_names[i].name, name)) continue;
        if ((pre_names[i].pre == PRE_SPM) != (t->kind == HASS_TOK_SPM))
            return hass_seterr(HASS_EINVAL, "tokenizer: pre-tokenizer '%s' does not fit a %s vocabulary",
                               name, t->kind == HASS_TOK_SPM ? "SentencePiece" : "byte-level BPE");
        t->pre = pre_names[i].pre;
        snprintf(t->pre_name, sizeof t->pre_name, "%s", name);
        t->ignore_merges = t->pre == PRE_LLAMA3;
        return HASS_OK;
    }
    return hass_seterr(HASS_EINVAL, "tokenizer: unknown pre-tokenizer '%s' (known: default, gpt-2, "
                       "llama-bpe, smollm, starcoder, refact, mpt, falcon, qwen2, deepseek-coder, deepseek-llm)", name);
}

// ----------------------------------------------------------------------------------------------
// GGUF

hass_tokenizer *hass_tokenizer_from_gguf(const hass_gguf *g, hass_err *err) {
    const char *path = hass_gguf_path(g);
    const char *model;
    uint64_t model_len;
    if (hass_gguf_get_str(g, "tokenizer.ggml.model", &model, &model_len)) {
        *err = hass_seterr(HASS_EFORMAT, "%s: no tokenizer (tokenizer.ggml.model missing)", path);
        return NULL;
    }
    int kind;
    if (model_len == 5 && !memcmp(model, "llama", 5)) kind = HASS_TOK_SPM;
    else if (model_len == 4 && !memcmp(model, "gpt2", 4)) kind = HASS_TOK_BPE;
    else {
        *err = hass_seterr(HASS_EUNSUP, "%s: tokenizer.ggml.model '%.*s' is not supported (llama, gpt2)",
                           path, (int)model_len, model);
        return NULL;
    }
    const hass_gguf_kv *toks = hass_gguf_find(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != HASS_GGUF_ARR || toks->atype != HASS_GGUF_STR || toks->n == 0 ||
        toks->n > INT32_MAX) {
        *err = hass_seterr(HASS_EFORMAT, "%s: tokenizer.ggml.tokens missing or not a string array", path);
        return NULL;
    }
    hass_tokenizer *t = tok_new(kind, err);
    if (!t) return NULL;
    hass_err e = tok_resize(t, (int32_t)toks->n);
    const hass_gguf_kv *sc = hass_gguf_find(g, "tokenizer.ggml.scores");
    const hass_gguf_kv *ty = hass_gguf_find(g, "tokenizer.ggml.token_type");
    if (sc && (sc->type != HASS_GGUF_ARR || sc->n != toks->n)) sc = NULL;
    if (ty && (ty->type != HASS_GGUF_ARR || ty->n != toks->n)) ty = NULL;
    for (uint64_t i = 0; !e && i < toks->n; i++) {
        uint64_t l;
        const char *s = hass_gguf_arr_str(toks, i, &l);
        e = tok_set_text(t, (int32_t)i, s ? s : "", s ? l : 0);
        t->score[i] = sc ? (float)hass_gguf_arr_num(sc, i) : 0.0f;
        int tt = ty ? (int)hass_gguf_arr_num(ty, i) : HASS_TOKEN_NORMAL;
        t->type[i] = (uint8_t)(tt >= 1 && tt <= 6 ? tt : HASS_TOKEN_NORMAL);
    }
    const hass_gguf_kv *mg = hass_gguf_find(g, "tokenizer.ggml.merges");
    if (!e && kind == HASS_TOK_BPE) {
        if (!mg || mg->type != HASS_GGUF_ARR || mg->atype != HASS_GGUF_STR) {
            e = hass_seterr(HASS_EFORMAT, "%s: byte-level BPE without tokenizer.ggml.merges", path);
        } else {
            for (uint64_t i = 0; !e && i < mg->n; i++) {
                uint64_t l;
                const char *s = hass_gguf_arr_str(mg, i, &l);
                if (s) e = tok_add_merge(t, s, l);
            }
        }
    }
    int64_t v;
    int b;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v) && v >= 0 && v < t->n_vocab) t->bos = (int32_t)v;
    else if (kind == HASS_TOK_SPM && t->n_vocab > 1) t->bos = 1;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &v) && v >= 0 && v < t->n_vocab) t->eos = (int32_t)v;
    else if (kind == HASS_TOK_SPM && t->n_vocab > 2) t->eos = 2;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.unknown_token_id", &v) && v >= 0 && v < t->n_vocab) t->unk = (int32_t)v;
    else if (kind == HASS_TOK_SPM) t->unk = 0;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.padding_token_id", &v) && v >= 0 && v < t->n_vocab) t->pad = (int32_t)v;
    const char *pre;
    uint64_t pre_len;
    if (!e && kind == HASS_TOK_BPE && !hass_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pre_len)) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(pre_len < 63 ? pre_len : 63), pre);
        if (hass_tokenizer_set_pre(t, name)) {
            HASS_WARN("%s: pre-tokenizer '%s' is not known; using the GPT-2 rules", path, name);
            hass_tokenizer_set_pre(t, "gpt-2");
        }
    }
    if (t->pre == PRE_LLAMA3) t->add_bos = 1;
    if (!hass_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (!hass_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (!hass_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;
    const char *ct;
    uint64_t ct_len;
    if (!e && !hass_gguf_get_str(g, "tokenizer.chat_template", &ct, &ct_len)) {
        t->chat_template = malloc(ct_len + 1);
        if (!t->chat_template) e = hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
        else { memcpy(t->chat_template, ct, ct_len); t->chat_template[ct_len] = 0; }
    }
    if (!e) e = tok_finish(t);
    if (e) {
        hass_tokenizer_free(t);
        *err = e;
        return NULL;
    }
    return t;
}

// ----------------------------------------------------------------------------------------------
// Hugging Face files

// Read a whole file into a malloc'd NUL-terminated buffer.
static hass_err read_file(const char *path, char **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (len + 1 < cap) break;
        char *p = realloc(buf, cap * 2);
        if (!p) { free(buf); buf = NULL; break; }
        buf = p;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
    if (bad) { free(buf); return hass_seterr(HASS_EIO, "%s: read error", path); }
    buf[len] = 0;
    *out = buf;
    if (n) *n = len;
    return HASS_OK;
}

// Parse a JSON file.
static json_t *load_json(const char *path, hass_err *err) {
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_ANY, &je);
    if (!j) {
        FILE *f = fopen(path, "rb");
        if (!f) *err = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
        else { fclose(f); *err = hass_seterr(HASS_EFORMAT, "%s:%d: %s", path, je.line, je.text); }
    }
    return j;
}

// Text of a token entry that is a string or {"content": string}.
static const char *token_content(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

// Add or set an added token: id, text, special flag.
static hass_err add_token(hass_tokenizer *t, int64_t id, const char *s, size_t n, int special) {
    if (id < 0 || id >= (1 << 24)) return hass_seterr(HASS_EFORMAT, "added token id %lld out of range", (long long)id);
    hass_err e = tok_resize(t, (int32_t)id + 1);
    if (e) return e;
    if (t->text_len[id] != n || memcmp(tok_str(t, (int32_t)id), s, n)) e = tok_set_text(t, (int32_t)id, s, n);
    t->type[id] = special ? HASS_TOKEN_CONTROL : HASS_TOKEN_USER_DEFINED;
    return e;
}

hass_err hass_tokenizer_apply_config(hass_tokenizer *t, const char *path) {
    hass_err e = HASS_OK;
    json_t *j = load_json(path, &e);
    if (!j) return e;
    if (!json_is_object(j)) {
        json_decref(j);
        return hass_seterr(HASS_EFORMAT, "%s: not a JSON object", path);
    }
    json_t *atd = json_object_get(j, "added_tokens_decoder");
    const char *key;
    json_t *val;
    json_object_foreach(atd, key, val) {
        const char *s = token_content(val);
        char *end;
        long long id = strtoll(key, &end, 10);
        if (!s || *end) continue;
        e = add_token(t, id, s, strlen(s), json_is_true(json_object_get(val, "special")));
        if (e) break;
    }
    if (!e) e = tok_finish(t);
    const char *bos = token_content(json_object_get(j, "bos_token"));
    const char *eos = token_content(json_object_get(j, "eos_token"));
    if (!e && bos) {
        int32_t id = str_lookup(t, bos, strlen(bos));
        if (id >= 0) t->bos = id;
        if (!strcmp(bos, "<|begin_of_text|>") && t->kind == HASS_TOK_BPE && t->pre == PRE_GPT2) {
            hass_tokenizer_set_pre(t, "llama-bpe"); // LLaMA-3 vocabulary in GPT-2 files
            t->add_bos = 1;
        }
    }
    if (!e && eos) {
        int32_t id = str_lookup(t, eos, strlen(eos));
        if (id >= 0) t->eos = id;
    }
    json_t *ab = json_object_get(j, "add_bos_token");
    if (json_is_boolean(ab)) t->add_bos = json_is_true(ab);
    json_t *ct = json_object_get(j, "chat_template");
    const char *cts = json_string_value(ct);
    if (json_is_array(ct)) { // [{"name": "default", "template": "..."}]
        size_t i;
        json_array_foreach(ct, i, val) {
            const char *nm = json_string_value(json_object_get(val, "name"));
            if (nm && !strcmp(nm, "default")) cts = json_string_value(json_object_get(val, "template"));
        }
    }
    if (!e && cts) {
        free(t->chat_template);
        t->chat_template = strdup(cts);
        if (!t->chat_template) e = hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    }
    if (!e) e = tok_finish(t); // eos may have changed
    json_decref(j);
    return e;
}

// Load GPT-2-style encoder.json + vocab.bpe from a folder.
static hass_tokenizer *load_encoder_json(const char *dir, hass_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    json_t *enc = load_json(path, err);
    if (!enc) return NULL;
    if (!json_is_object(enc)) {
        json_decref(enc);
        *err = hass_seterr(HASS_EFORMAT, "%s: not a JSON object", path);
        return NULL;
    }
    hass_tokenizer *t = tok_new(HASS_TOK_BPE, err);
    if (!t) { json_decref(enc); return NULL; }
    hass_err e = HASS_OK;
    const char *key;
    json_t *val;
    int64_t max_id = -1;
    json_object_foreach(enc, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24)) {
            e = hass_seterr(HASS_EFORMAT, "%s: id of \"%s\" is not a token id", path, key);
            break;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    if (!e && max_id < 0) e = hass_seterr(HASS_EFORMAT, "%s: empty vocabulary", path);
    if (!e) e = tok_resize(t, (int32_t)max_id + 1);
    if (!e) {
        json_object_foreach(enc, key, val) {
            int32_t id = (int32_t)json_integer_value(val);
            e = tok_set_text(t, id, key, strlen(key));
            t->type[id] = HASS_TOKEN_NORMAL;
            if (e) break;
        }
    }
    json_decref(enc);
    char *bpe = NULL;
    size_t bpe_len = 0;
    if (!e) {
        snprintf(path, sizeof path, "%s/vocab.bpe", dir);
        e = read_file(path, &bpe, &bpe_len);
    }
    for (size_t i = 0; !e && i < bpe_len;) {
        size_t j = i;
        while (j < bpe_len && bpe[j] != '\n') j++;
        size_t l = j;
        if (l > i && bpe[l - 1] == '\r') l--;
        if (l > i && !(i == 0 && !strncmp(bpe, "#version", 8))) e = tok_add_merge(t, bpe + i, l - i);
        i = j + 1;
    }
    free(bpe);
    if (!e) e = tok_finish(t);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    struct stat st;
    if (!e && !stat(path, &st)) e = hass_tokenizer_apply_config(t, path);
    if (e) { hass_tokenizer_free(t); *err = e; return NULL; }
    return t;
}

// Whether a tokenizer.json pre-tokenizer/normalizer tree contains a node of type ty (and, when
// pat is given, a Split whose regex contains pat).
static int json_has(const json_t *node, const char *ty, const char *pat) {
    if (!node || json_is_null(node)) return 0;
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) if (json_has(v, ty, pat)) return 1;
        return 0;
    }
    if (!json_is_object(node)) return 0;
    const char *t = json_string_value(json_object_get(node, "type"));
    if (t && !strcmp(t, ty)) {
        if (!pat) return 1;
        const char *re = json_string_value(json_object_get(json_object_get(node, "pattern"), "Regex"));
        if (re && strstr(re, pat)) return 1;
    }
    const char *subs[] = {"pretokenizers", "normalizers", "decoders"};
    for (int i = 0; i < 3; i++)
        if (json_has(json_object_get(node, subs[i]), ty, pat)) return 1;
    return 0;
}

// Load a Hugging Face tokenizer.json (model BPE).
static hass_tokenizer *load_tokenizer_json(const char *path, hass_err *err) {
    json_t *j = load_json(path, err);
    if (!j) return NULL;
    json_t *model = json_object_get(j, "model");
    const char *mt = json_string_value(json_object_get(model, "type"));
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    if (!mt || strcmp(mt, "BPE") || !json_is_object(vocab) || !json_is_array(merges)) {
        *err = hass_seterr(HASS_EUNSUP, "%s: model type %s is not supported (BPE with vocab and merges)",
                           path, mt ? mt : "(missing)");
        json_decref(j);
        return NULL;
    }
    json_t *norm = json_object_get(j, "normalizer"), *pret = json_object_get(j, "pre_tokenizer");
    int spm = json_is_true(json_object_get(model, "byte_fallback")) || json_has(pret, "Metaspace", NULL) ||
              json_has(norm, "Prepend", NULL);
    hass_tokenizer *t = tok_new(spm ? HASS_TOK_SPM : HASS_TOK_BPE, err);
    if (!t) { json_decref(j); return NULL; }
    hass_err e = HASS_OK;
    const char *key;
    json_t *val;
    int64_t max_id = -1;
    json_object_foreach(vocab, key, val) {
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    json_t *added = json_object_get(j, "added_tokens");
    size_t i;
    json_array_foreach(added, i, val) {
        if (json_integer_value(json_object_get(val, "id")) > max_id) max_id = json_integer_value(json_object_get(val, "id"));
    }
    if (max_id < 0 || max_id >= (1 << 24)) e = hass_seterr(HASS_EFORMAT, "%s: bad vocabulary size", path);
    if (!e) e = tok_resize(t, (int32_t)max_id + 1);
    json_object_foreach(vocab, key, val) {
        if (e) break;
        int64_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0) { e = hass_seterr(HASS_EFORMAT, "%s: bad id of \"%s\"", path, key); break; }
        e = tok_set_text(t, (int32_t)id, key, strlen(key));
        t->type[id] = HASS_TOKEN_NORMAL;
        t->score[id] = -1e30f;
        unsigned bv;
        if (spm && strlen(key) == 6 && sscanf(key, "<0x%2X>", &bv) == 1) t->type[id] = HASS_TOKEN_BYTE;
    }
    json_array_foreach(merges, i, val) {
        if (e) break;
        if (json_is_string(val)) e = tok_add_merge(t, json_string_value(val), json_string_length(val));
        else if (json_is_array(val) && json_array_size(val) == 2) {
            const char *a = json_string_value(json_array_get(val, 0)), *b = json_string_value(json_array_get(val, 1));
            if (!a || !b) continue;
            size_t la = strlen(a), lb = strlen(b);
            char *s = malloc(la + lb + 2);
            if (!s) { e = hass_seterr(HASS_ENOMEM, "tokenizer: out of memory"); break; }
            memcpy(s, a, la); s[la] = ' '; memcpy(s + la + 1, b, lb);
            e = tok_add_merge(t, s, la + lb + 1);
            free(s);
        }
    }
    json_array_foreach(added, i, val) {
        if (e) break;
        const char *s = json_string_value(json_object_get(val, "content"));
        if (s) e = add_token(t, json_integer_value(json_object_get(val, "id")), s, strlen(s),
                             json_is_true(json_object_get(val, "special")));
    }
    if (!e && !spm) {
        if (json_has(pret, "Split", "\\p{N}{1,3}")) hass_tokenizer_set_pre(t, "llama-bpe");
        else if (json_has(pret, "Split", "\\p{N}|")) hass_tokenizer_set_pre(t, "qwen2");
        else if (json_has(pret, "Digits", NULL)) hass_tokenizer_set_pre(t, "smollm");
        else hass_tokenizer_set_pre(t, "gpt-2");
        json_t *im = json_object_get(model, "ignore_merges");
        if (json_is_boolean(im)) t->ignore_merges = json_is_true(im);
        t->add_bos = 0;
    }
    if (spm) {
        t->add_space_prefix = json_has(norm, "Prepend", NULL) ||
                              json_is_true(json_object_get(pret, "add_prefix_space")) ||
                              (json_has(pret, "Metaspace", NULL) && !json_has(norm, "Replace", NULL));
        const char *ps = json_string_value(json_object_get(pret, "prepend_scheme"));
        if (ps && !strcmp(ps, "never")) t->add_space_prefix = 0;
    }
    if (!e) e = tok_finish(t);
    if (!e) {
        // defaults before the config: <s>/</s>/<unk> by name
        int32_t id;
        if ((id = str_lookup(t, "<s>", 3)) >= 0) t->bos = id;
        if ((id = str_lookup(t, "</s>", 4)) >= 0) t->eos = id;
        if ((id = str_lookup(t, "<unk>", 5)) >= 0) t->unk = id;
        const char *unk = json_string_value(json_object_get(model, "unk_token"));
        if (unk && (id = str_lookup(t, unk, strlen(unk))) >= 0) t->unk = id;
    }
    json_decref(j); // after the last use of model (it lives inside j)
    // tokenizer_config.json beside it
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", path);
    char *slash = strrchr(cfg, '/');
    snprintf(slash ? slash + 1 : cfg, sizeof cfg - (size_t)(slash ? slash + 1 - cfg : 0), "tokenizer_config.json");
    struct stat st;
    if (!e && !stat(cfg, &st)) e = hass_tokenizer_apply_config(t, cfg);
    if (!e) e = tok_finish(t);
    if (e) { hass_tokenizer_free(t); *err = e; return NULL; }
    return t;
}

// ----------------------------------------------------------------------------------------------
// SentencePiece tokenizer.model (protobuf ModelProto; BPE models only)

typedef struct pb {
    const uint8_t *p, *end;
} pb;

// Read a varint; 0 on truncation.
static int pb_varint(pb *b, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) return 1;
    }
    return 0;
}

// Read a field key and, for length-delimited fields, its bounds; skip nothing. 0 at the end or
// on malformed input (*bad set).
static int pb_field(pb *b, uint32_t *field, uint32_t *wire, pb *sub, uint64_t *val, int *bad) {
    uint64_t k;
    if (b->p >= b->end) return 0;
    if (!pb_varint(b, &k)) { *bad = 1; return 0; }
    *field = (uint32_t)(k >> 3);
    *wire = (uint32_t)(k & 7);
    switch (*wire) {
    case 0: if (!pb_varint(b, val)) { *bad = 1; return 0; } return 1;
    case 1: if (b->end - b->p < 8) { *bad = 1; return 0; } memcpy(val, b->p, 8); b->p += 8; return 1;
    case 5: {
        if (b->end - b->p < 4) { *bad = 1; return 0; }
        uint32_t u;
        memcpy(&u, b->p, 4);
        *val = u;
        b->p += 4;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (!pb_varint(b, &n) || n > (uint64_t)(b->end - b->p)) { *bad = 1; return 0; }
        sub->p = b->p;
        sub->end = b->p + n;
        b->p += n;
        return 1;
    }
    default: *bad = 1; return 0;
    }
}

// Load a SentencePiece BPE tokenizer.model.
static hass_tokenizer *load_spm_model(const char *path, hass_err *err) {
    char *data;
    size_t n;
    hass_err e = read_file(path, &data, &n);
    if (e) { *err = e; return NULL; }
    hass_tokenizer *t = tok_new(HASS_TOK_SPM, err);
    if (!t) { free(data); return NULL; }
    pb b = {(const uint8_t *)data, (const uint8_t *)data + n}, sub;
    uint32_t field, wire;
    uint64_t val;
    int bad = 0, model_type = 2, add_prefix = 1;
    int64_t ids[4] = {0, 1, 2, -1}; // unk, bos, eos, pad
    int32_t n_tok = 0;
    while (!e && pb_field(&b, &field, &wire, &sub, &val, &bad)) {
        if (field == 1 && wire == 2) { // SentencePiece
            pb s = sub, x;
            const char *piece = "";
            size_t plen = 0;
            float score = 0;
            int type = HASS_TOKEN_NORMAL;
            while (pb_field(&s, &field, &wire, &x, &val, &bad)) {
                if (field == 1 && wire == 2) { piece = (const char *)x.p; plen = (size_t)(x.end - x.p); }
                else if (field == 2 && wire == 5) { uint32_t u = (uint32_t)val; memcpy(&score, &u, 4); }
                else if (field == 3 && wire == 0) type = (int)val;
            }
            if (!(e = tok_resize(t, n_tok + 1)) && !(e = tok_set_text(t, n_tok, piece, plen))) {
                t->score[n_tok] = score;
                t->type[n_tok] = (uint8_t)(type >= 1 && type <= 6 ? type : HASS_TOKEN_NORMAL);
                n_tok++;
            }
        } else if (field == 2 && wire == 2) { // TrainerSpec
            pb s = sub, x;
            while (pb_field(&s, &field, &wire, &x, &val, &bad)) {
                if (wire != 0) continue;
                if (field == 3) model_type = (int)val;
                else if (field >= 40 && field <= 43) ids[field - 40] = (int64_t)(int32_t)(uint32_t)val;
            }
        } else if (field == 3 && wire == 2) { // NormalizerSpec
            pb s = sub, x;
            while (pb_field(&s, &field, &wire, &x, &val, &bad))
                if (field == 3 && wire == 0) add_prefix = val != 0;
        }
    }
    free(data);
    if (!e && (bad || n_tok == 0)) e = hass_seterr(HASS_EFORMAT, "%s: not a SentencePiece model (bad protobuf)", path);
    if (!e && model_type != 2)
        e = hass_seterr(HASS_EUNSUP, "%s: SentencePiece model type %d is not supported (BPE only)", path, model_type);
    if (!e) {
        t->add_space_prefix = add_prefix;
        t->unk = ids[0] >= 0 && ids[0] < n_tok ? (int32_t)ids[0] : -1;
        t->bos = ids[1] >= 0 && ids[1] < n_tok ? (int32_t)ids[1] : -1;
        t->eos = ids[2] >= 0 && ids[2] < n_tok ? (int32_t)ids[2] : -1;
        t->pad = ids[3] >= 0 && ids[3] < n_tok ? (int32_t)ids[3] : -1;
        e = tok_finish(t);
    }
    if (e) { hass_tokenizer_free(t); *err = e; return NULL; }
    return t;
}

hass_tokenizer *hass_tokenizer_load(const char *path, hass_err *err) {
    struct stat st;
    if (stat(path, &st)) {
        *err = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char p[4096];
    if (S_ISDIR(st.st_mode)) {
        snprintf(p, sizeof p, "%s/tokenizer.json", path);
        if (!stat(p, &st)) return load_tokenizer_json(p, err);
        snprintf(p, sizeof p, "%s/encoder.json", path);
        if (!stat(p, &st)) return load_encoder_json(path, err);
        snprintf(p, sizeof p, "%s/tokenizer.model", path);
        if (!stat(p, &st)) return hass_tokenizer_load(p, err);
        *err = hass_seterr(HASS_EFORMAT, "%s: folder has no tokenizer.json, encoder.json + vocab.bpe or tokenizer.model", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) { *err = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno)); return NULL; }
    char magic[4] = {0};
    size_t r = fread(magic, 1, 4, f);
    fclose(f);
    if (r == 4 && !memcmp(magic, "GGUF", 4)) {
        hass_gguf *g = hass_gguf_open(path, err);
        if (!g) return NULL;
        hass_tokenizer *t = hass_tokenizer_from_gguf(g, err);
        hass_gguf_free(g);
        return t;
    }
    if (r >= 1 && magic[0] == 0x0A) { // protobuf field 1, length-delimited: SentencePiece ModelProto
        hass_tokenizer *t = load_spm_model(path, err);
        snprintf(p, sizeof p, "%s", path);
        char *slash = strrchr(p, '/');
        snprintf(slash ? slash + 1 : p, sizeof p - (size_t)(slash ? slash + 1 - p : 0), "tokenizer_config.json");
        struct stat cst;
        if (t && !stat(p, &cst) && (*err = hass_tokenizer_apply_config(t, p))) { hass_tokenizer_free(t); return NULL; }
        return t;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strcmp(base, "encoder.json")) {
        snprintf(p, sizeof p, "%.*s", (int)(base - path), path);
        return load_encoder_json(p[0] ? p : ".", err);
    }
    return load_tokenizer_json(path, err);
}

void hass_tokenizer_free(hass_tokenizer *t) {
    if (!t) return;
    for (int32_t r = 0; r < t->n_merge_src; r++) free(t->merge_src[r]);
    free(t->merge_src);
    free(t->text); free(t->text_off); free(t->text_len); free(t->piece); free(t->piece_off);
    free(t->piece_len); free(t->score); free(t->type); free(t->eog); free(t->str_hash);
    free(t->piece_hash); free(t->merges); free(t->special); free(t->chat_template);
    free(t);
}

// ----------------------------------------------------------------------------------------------
// getters

int32_t hass_tokenizer_n_vocab(const hass_tokenizer *t) { return t->n_vocab; }
int hass_tokenizer_kind(const hass_tokenizer *t) { return t->kind; }
const char *hass_tokenizer_pre(const hass_tokenizer *t) { return t->pre_name; }
int32_t hass_tokenizer_bos(const hass_tokenizer *t) { return t->bos; }
int32_t hass_tokenizer_eos(const hass_tokenizer *t) { return t->eos; }
int hass_tokenizer_add_bos(const hass_tokenizer *t) { return t->add_bos; }
uint32_t hass_tokenizer_fingerprint(const hass_tokenizer *t) { return t->fingerprint; }
const char *hass_tokenizer_chat_template(const hass_tokenizer *t) { return t->chat_template; }

int hass_tokenizer_is_eog(const hass_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

int hass_tokenizer_token_type(const hass_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->type[id] : 0;
}

int hass_tokenizer_is_special(const hass_tokenizer *t, int32_t id) {
    int ty = hass_tokenizer_token_type(t, id);
    return ty == HASS_TOKEN_CONTROL || ty == HASS_TOKEN_UNKNOWN || ty == HASS_TOKEN_UNUSED;
}

const char *hass_tokenizer_text(const hass_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->text_len[id];
    return tok_str(t, id);
}

int32_t hass_tokenizer_find(const hass_tokenizer *t, const char *text, size_t len) {
    return str_lookup(t, text, len);
}

const char *hass_tokenizer_piece(const hass_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->piece_len[id];
    return t->piece + t->piece_off[id];
}

// ----------------------------------------------------------------------------------------------
// encoding

#define UF_IN 64 // set for every codepoint inside the piece (out of range reads as 0)

typedef struct heap_ent {
    float key;    // SPM: -score; BPE: rank
    int32_t pos;  // left symbol (tie-break: leftmost first)
    int32_t a, b; // BPE: ids of the pair; SPM: size in bytes (a)
} heap_ent;

typedef struct enc_ws {
    uint32_t *cp;      // (n_cp) codepoints of the text run
    uint32_t *off;     // (n_cp + 1) byte offset of each codepoint
    uint8_t *fl;       // (n_cp) HASS_UF_* | UF_IN
    int32_t *sid;      // (n_bytes) BPE symbol ids / SPM symbol lengths
    int32_t *prev, *next; // (n_bytes)
    int32_t *start;    // (n_bytes) SPM: byte start of each symbol
    heap_ent *heap;    // (n_bytes)
    int32_t n_heap;
    char *buf;         // (n_bytes * 3 + 4) SPM text with U+2581
    int32_t *out;      // caller's ids
    int64_t n_out, n_max;
    int64_t *offs;     // caller's byte offsets of the ids (NULL: not wanted)
    size_t run_off;    // byte offset of the current text run in the whole text
    int32_t *bmap;     // (cap_buf) SPM: offset in the run of each byte of buf
    size_t cap_sym;    // room in sid/prev/next/start (heap: 3x)
    size_t cap_buf;    // room in buf
    int oom;           // an allocation failed
} enc_ws;

// Grow the symbol arrays to n symbols (heap 3n); sets w->oom on failure.
static int ws_reserve(enc_ws *w, size_t n) {
    if (n <= w->cap_sym) return !w->oom;
    size_t c = w->cap_sym ? w->cap_sym : 256;
    while (c < n) c *= 2;
    if (!grow(&w->sid, c * sizeof *w->sid) || !grow(&w->prev, c * sizeof *w->prev) ||
        !grow(&w->next, c * sizeof *w->next) || !grow(&w->start, c * sizeof *w->start) ||
        !grow(&w->heap, 3 * c * sizeof *w->heap)) {
        w->oom = 1;
        return 0;
    }
    w->cap_sym = c;
    return 1;
}

// Append one id starting at byte off of the text (counted even past n_max).
static void emit(enc_ws *w, int32_t id, size_t off) {
    if (w->n_out < w->n_max) {
        w->out[w->n_out] = id;
        if (w->offs) w->offs[w->n_out] = (int64_t)off;
    }
    w->n_out++;
}

// Heap order: smaller key first, then smaller pos.
static int heap_less(const heap_ent *x, const heap_ent *y) {
    return x->key < y->key || (x->key == y->key && x->pos < y->pos);
}

// Push onto the workspace heap.
static void heap_push(enc_ws *w, heap_ent e) {
    int32_t i = w->n_heap++;
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (!heap_less(&e, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

// Pop the smallest entry.
static heap_ent heap_pop(enc_ws *w) {
    heap_ent top = w->heap[0], last = w->heap[--w->n_heap];
    int32_t i = 0, n = w->n_heap;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!heap_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

// Queue the BPE pair (l, r) if a merge rule exists.
static void bpe_try(const hass_tokenizer *t, enc_ws *w, int32_t l, int32_t r) {
    int32_t rank, id;
    if (w->sid[l] < 0 || w->sid[r] < 0) return;
    if (merge_lookup(t, w->sid[l], w->sid[r], &rank, &id))
        heap_push(w, (heap_ent){(float)rank, l, w->sid[l], w->sid[r]});
}

// Byte-level BPE of one pre-tokenized piece (raw bytes p[0..n)).
static void bpe_word(const hass_tokenizer *t, enc_ws *w, const unsigned char *p, int32_t n, size_t off) {
    if (n <= 0) return;
    if (t->ignore_merges || n == 1) {
        int32_t id = piece_lookup(t, p, (size_t)n);
        if (id >= 0) { emit(w, id, off); return; }
    }
    if (!ws_reserve(w, (size_t)n)) return;
    for (int32_t i = 0; i < n; i++) {
        w->sid[i] = t->byte_id[p[i]];
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < n ? i + 1 : -1;
    }
    w->n_heap = 0;
    for (int32_t i = 0; i + 1 < n; i++) bpe_try(t, w, i, i + 1);
    while (w->n_heap > 0) {
        heap_ent e = heap_pop(w);
        int32_t l = e.pos, r = w->next[l];
        if (r < 0 || w->sid[l] != e.a || w->sid[r] != e.b) continue; // stale
        int32_t rank, id;
        merge_lookup(t, e.a, e.b, &rank, &id);
        w->sid[l] = id;
        w->sid[r] = -2;
        w->next[l] = w->next[r];
        if (w->next[l] >= 0) w->prev[w->next[l]] = l;
        if (w->prev[l] >= 0) bpe_try(t, w, w->prev[l], l);
        if (w->next[l] >= 0) bpe_try(t, w, l, w->next[l]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        if (w->sid[i] >= 0) emit(w, w->sid[i], off + (size_t)i);
        else if (t->unk >= 0) emit(w, t->unk, off + (size_t)i);
    }
}

// Whether id may be produced from text by SentencePiece merges.
static int spm_mergeable(const hass_tokenizer *t, int32_t id) {
    return id >= 0 && (t->type[id] == HASS_TOKEN_NORMAL || t->type[id] == HASS_TOKEN_USER_DEFINED);
}

// Queue the SPM bigram (l, r) if the joined text is a token.
static void spm_try(const hass_tokenizer *t, enc_ws *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t id = str_lookup(t, w->buf + w->start[l], (size_t)(w->sid[l] + w->sid[r]));
    if (!spm_mergeable(t, id)) return;
    heap_push(w, (heap_ent){-t->score[id], l, w->sid[l] + w->sid[r], 0});
}

// SentencePiece BPE of w->buf[0..n) (spaces already U+2581, prefix added).
static void spm_run(const hass_tokenizer *t, enc_ws *w, int32_t n) {
    int32_t ns = 0;
    if (!ws_reserve(w, (size_t)n + 1)) return;
    for (int32_t i = 0; i < n;) {
        uint32_t cp;
        int l = hass_utf8_decode((const unsigned char *)w->buf + i, (size_t)(n - i), &cp);
        if (l < 0) l = 1;
        w->start[ns] = i;
        w->sid[ns] = l; // length in bytes
        w->prev[ns] = ns - 1;
        w->next[ns] = -1;
        if (ns > 0) w->next[ns - 1] = ns;
        ns++;
        i += l;
    }
    if (ns == 0) return;
    w->n_heap = 0;
    for (int32_t i = 0; i + 1 < ns; i++) spm_try(t, w, i, i + 1);
    while (w->n_heap > 0) {
        heap_ent e = heap_pop(w);
        int32_t l = e.pos, r = w->next[l];
        if (r < 0 || w->sid[l] == 0 || w->sid[r] == 0 || w->sid[l] + w->sid[r] != e.a) continue;
        w->sid[l] += w->sid[r];
        w->sid[r] = 0;
        w->next[l] = w->next[r];
        if (w->next[l] >= 0) w->prev[w->next[l]] = l;
        spm_try(t, w, w->prev[l], l);
        spm_try(t, w, l, w->next[l]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        const char *s = w->buf + w->start[i];
        int32_t id = str_lookup(t, s, (size_t)w->sid[i]);
        if (spm_mergeable(t, id) || (id >= 0 && w->sid[i] > 0 && t->type[id] != HASS_TOKEN_CONTROL &&
                                     t->type[id] != HASS_TOKEN_BYTE && t->type[id] != HASS_TOKEN_UNKNOWN)) {
            emit(w, id, w->run_off + (size_t)w->bmap[w->start[i]]);
            continue;
        }
        for (int32_t k = 0; k < w->sid[i]; k++) { // byte fallback
            int32_t b = t->byte_id[(unsigned char)s[k]];
            size_t o = w->run_off + (size_t)w->bmap[w->start[i] + k];
            if (b >= 0) emit(w, b, o);
            else if (t->unk >= 0) emit(w, t->unk, o);
        }
    }
}

// Get flags of codepoint i inside [.., end).
#define FL(i) ((i) < end ? w->fl[i] : 0)
#define CP(i) ((i) < end ? w->cp[i] : 0xFFFFFFFFu)

// GPT-2 regex: end of the match at pos.
static int32_t match_gpt2(const enc_ws *w, int32_t pos, int32_t end) {
    uint32_t c = w->cp[pos];
    if (c == '\'' && pos + 1 < end) {
        uint32_t c1 = w->cp[pos + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
        if (pos + 2 < end) {
            uint32_t c2 = w->cp[pos + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return pos + 3;
        }
    }
    unsigned f2 = c == ' ' ? FL(pos + 1) : w->fl[pos];
    if (f2 & HASS_UF_L) {
        pos += c == ' ';
        while (FL(pos) & HASS_UF_L) pos++;
        return pos;
    }
    if (f2 & HASS_UF_N) {
        pos += c == ' ';
        while (FL(pos) & HASS_UF_N) pos++;
        return pos;
    }
    if (!(f2 & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N)) && f2) {
        pos += c == ' ';
        while ((FL(pos) & UF_IN) && !(FL(pos) & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N))) pos++;
        return pos;
    }
    int32_t nws = 0;
    while (FL(pos + nws) & HASS_UF_SPACE) nws++;
    if (nws > 1 && pos + nws < end) return pos + nws - 1; // \s+(?!\S)
    if (nws > 0) return pos + nws;
    return pos + 1;
}

// LLaMA-3 regex (digits: max 3 per piece, or 1 for Qwen2): end of the match at pos.
static int32_t match_llama3(const enc_ws *w, int32_t pos, int32_t end, int max_digits) {
    uint32_t c = w->cp[pos];
    unsigned f = w->fl[pos];
    if (c == '\'' && pos + 1 < end) {
        uint32_t c1 = w->cp[pos + 1];
        if (c1 < 128) c1 |= 0x20 * (c1 >= 'A' && c1 <= 'Z');
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
        if (pos + 2 < end) {
            uint32_t c2 = w->cp[pos + 2];
            if (c2 < 128) c2 |= 0x20 * (c2 >= 'A' && c2 <= 'Z');
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return pos + 3;
        }
    }
    if (!(c == '\r' || c == '\n' || (f & HASS_UF_N))) {
        if ((f & HASS_UF_L) || (FL(pos + 1) & HASS_UF_L)) { // [^\r\n\p{L}\p{N}]?\p{L}+
            pos++;
            while (FL(pos) & HASS_UF_L) pos++;
            return pos;
        }
    }
    if (f & HASS_UF_N) { // \p{N}{1,3}
        int32_t s = pos;
        while ((FL(pos) & HASS_UF_N) && pos - s < max_digits) pos++;
        return pos;
    }
    unsigned f2 = c == ' ' ? FL(pos + 1) : f;
    if (!(f2 & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N)) && f2) { // ?[^\s\p{L}\p{N}]+[\r\n]*
        pos += c == ' ';
        while ((FL(pos) & UF_IN) && !(FL(pos) & (HASS_UF_SPACE | HASS_UF_L | HASS_UF_N))) pos++;
        while (CP(pos) == '\r' || CP(pos) == '\n') pos++;
        return pos;
    }
    int32_t nws = 0, last_nl = -1;
    while (FL(pos + nws) & HASS_UF_SPACE) {
        uint32_t c2 = w->cp[pos + nws];
        if (c2 == '\r' || c2 == '\n') last_nl = pos + nws + 1;
        nws++;
    }
    if (last_nl > 0) return last_nl;                      // \s*[\r\n]+
    if (nws > 1 && pos + nws < end) return pos + nws - 1; // \s+(?!\S)
    if (nws > 0) return pos + nws;                        // \s+
    return pos + 1;
}

// Isolating stage: \p{N} single codepoints (kind 0), runs of [\p{P}$+<=>^~|`] (kind 1),
// [0-9]{3} (kind 2). Returns the end of the match or of the gap before the next match.
static int32_t match_isolate(const enc_ws *w, int32_t pos, int32_t end, int kind) {
#define IS_PUNCT(i) ((w->fl[i] & HASS_UF_P) || strchr("$+<=>^~|`", (int)(w->cp[i] < 128 ? w->cp[i] : 1)))
#define IS_D3(i) ((i) + 2 < end && w->cp[i] - '0' < 10 && w->cp[(i) + 1] - '0' < 10 && w->cp[(i) + 2] - '0' < 10)
    if (kind == 0) {
        if (w->fl[pos] & HASS_UF_N) return pos + 1;
        while (pos < end && !(w->fl[pos] & HASS_UF_N)) pos++;
        return pos;
    }
    if (kind == 1) {
        if (IS_PUNCT(pos) && w->cp[pos]) {
            while (pos < end && IS_PUNCT(pos) && w->cp[pos]) pos++;
            return pos;
        }
        while (pos < end && !(IS_PUNCT(pos) && w->cp[pos])) pos++;
        return pos;
    }
    if (IS_D3(pos)) return pos + 3;
    while (pos < end && !IS_D3(pos)) pos++;
    return pos;
#undef IS_PUNCT
#undef IS_D3
}

// Length of a DeepSeek isolating match at pos (0 if none): kind 3 [\r\n], 4 \s?\p{L}+,
// 5 \s?\p{P}+, 6 [\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+, 7 \s?[ds_letters]+,
// 8 \s?[!-/:-~！-／：-～‘-‟　-。]+, 9 \s+$, 11 \p{N}+.
static int32_t iso_len(const enc_ws *w, int32_t pos, int32_t end, int kind) {
    static const uint32_t ds_punct[][2] = {{0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
                                           {0x2018, 0x201F}, {0x3000, 0x3002}};
#define DS_L(i) ((i) < end && in_ranges(w->cp[i], ds_letters, sizeof ds_letters / sizeof *ds_letters))
#define DS_P(i) ((i) < end && in_ranges(w->cp[i], ds_punct, sizeof ds_punct / sizeof *ds_punct))
    uint32_t c = w->cp[pos];
    int32_t p = pos;
    switch (kind) {
    case 3: return c == '\r' || c == '\n';
    case 4:
    case 5: {
        unsigned want = kind == 4 ? HASS_UF_L : HASS_UF_P;
        if ((w->fl[p] & HASS_UF_SPACE) && (FL(p + 1) & want)) p++;
        while (FL(p) & want) p++;
        return p - pos;
    }
    case 7:
        if ((w->fl[p] & HASS_UF_SPACE) && DS_L(p + 1)) p++;
        while (DS_L(p)) p++;
        return p - pos;
    case 8:
        if ((w->fl[p] & HASS_UF_SPACE) && DS_P(p + 1)) p++;
        while (DS_P(p)) p++;
        return p - pos;
    case 9:
        while (FL(p) & HASS_UF_SPACE) p++;
        return p == end ? p - pos : 0;
    case 11:
        while (FL(p) & HASS_UF_N) p++;
        return p - pos;
    default:
        while (p < end && ((w->cp[p] >= 0x0800 && w->cp[p] <= 0x9FA5) || (w->cp[p] >= 0xAC00 && w->cp[p] <= 0xD7FF))) p++;
        return p - pos;
    }
#undef DS_L
#undef DS_P
}

// Isolating stage over DeepSeek-Coder's rules: end of the match at pos, or of the gap before
// the next match.
static int32_t match_iso(const enc_ws *w, int32_t pos, int32_t end, int kind) {
    int32_t l = iso_len(w, pos, end, kind);
    if (l > 0) return pos + l;
    while (pos < end && iso_len(w, pos, end, kind) == 0) pos++;
    return pos;
}

// Run pre-tokenizer stage `stage` over codepoints [a, b), then BPE each final piece.
static void pre_split(const hass_tokenizer *t, enc_ws *w, const char *text, int stage, int32_t a, int32_t b) {
    static const int stages[][7] = {
        [PRE_SPM] = {-1},
        [PRE_GPT2] = {1, -1},
        [PRE_LLAMA3] = {2, -1},
        [PRE_DIGITS_GPT2] = {10, 1, -1},
        [PRE_FALCON] = {11, 1, 12, -1},
        [PRE_QWEN2] = {3, -1},
        [PRE_DEEPSEEK_CODER] = {23, 24, 25, 26, 10, -1},
        [PRE_DEEPSEEK_LLM] = {23, 27, 28, 29, 26, 31, -1},
    };
    int s = stages[t->pre][stage];
    if (s < 0) {
        bpe_word(t, w, (const unsigned char *)text + w->off[a], (int32_t)(w->off[b] - w->off[a]), w->run_off + w->off[a]);
        return;
    }
    for (int32_t pos = a; pos < b;) {
        int32_t e;
        switch (s) {
        case 1: e = match_gpt2(w, pos, b); break;
        case 2: e = match_llama3(w, pos, b, 3); break;
        case 3: e = match_llama3(w, pos, b, 1); break;
        default: e = s >= 20 ? match_iso(w, pos, b, s - 20) : match_isolate(w, pos, b, s - 10); break;
        }
        if (e <= pos) e = pos + 1;
        if (e > b) e = b;
        pre_split(t, w, text, stage + 1, pos, e);
        pos = e;
    }
}

// Encode one run of plain text (no specials inside).
static void encode_run(const hass_tokenizer *t, enc_ws *w, const char *s, size_t n, int space_prefix) {
    if (t->kind == HASS_TOK_SPM) {
        int32_t o = 0;
        if (3 * n + 4 > w->cap_buf) {
            if (!grow(&w->buf, 3 * n + 4) || !grow(&w->bmap, (3 * n + 4) * sizeof *w->bmap)) { w->oom = 1; return; }
            w->cap_buf = 3 * n + 4;
        }
        if (space_prefix) { // the dummy prefix belongs to the first character
            memcpy(w->buf, "\xE2\x96\x81", 3);
            w->bmap[0] = w->bmap[1] = w->bmap[2] = 0;
            o = 3;
        }
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') {
                memcpy(w->buf + o, "\xE2\x96\x81", 3);
                w->bmap[o] = w->bmap[o + 1] = w->bmap[o + 2] = (int32_t)i;
                o += 3;
            } else {
                w->bmap[o] = (int32_t)i;
                w->buf[o++] = s[i];
            }
        }
        spm_run(t, w, o);
        return;
    }
    int32_t nc = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = hass_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        unsigned f;
        if (l < 0) { l = 1; f = 0; cp = 0xFFFD; } // invalid byte: its own "other" unit
        else f = hass_unicode_flags(cp);
        w->cp[nc] = cp;
        w->fl[nc] = (uint8_t)(f | UF_IN);
        w->off[nc] = (uint32_t)i;
        nc++;
        i += (size_t)l;
    }
    w->off[nc] = (uint32_t)n;
    pre_split(t, w, s, 0, 0, nc);
}

// Special token starting at s (n bytes left), longest first; -1 if none.
static int32_t special_at(const hass_tokenizer *t, const char *s, size_t n, int parse_special) {
    if (!t->special_first[(unsigned char)s[0]]) return -1;
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        size_t l = t->text_len[id];
        if (l > n || tok_str(t, id)[0] != s[0] || memcmp(tok_str(t, id), s, l)) continue;
        if (!parse_special && t->type[id] != HASS_TOKEN_USER_DEFINED) continue;
        return id;
    }
    return -1;
}

int64_t hass_tokenizer_encode(const hass_tokenizer *t, const char *text, size_t len, int add_bos,
                              int parse_special, int32_t *ids, int64_t n_max) {
    return hass_tokenizer_encode_offsets(t, text, len, add_bos, parse_special, ids, NULL, n_max);
}

int64_t hass_tokenizer_encode_offsets(const hass_tokenizer *t, const char *text, size_t len, int add_bos,
                                      int parse_special, int32_t *ids, int64_t *offs, int64_t n_max) {
    if (len > (size_t)INT32_MAX / 4) return INT64_MIN;
    enc_ws w = {0};
    size_t nb = t->kind == HASS_TOK_BPE ? len + 1 : 1;
    w.cp = malloc(nb * sizeof *w.cp);
    w.off = malloc((nb + 1) * sizeof *w.off);
    w.fl = malloc(nb);
    w.out = ids;
    w.offs = offs;
    w.n_max = ids ? n_max : 0;
    int64_t ret = INT64_MIN;
    if (!w.cp || !w.off || !w.fl) goto out;
    int bos = add_bos == HASS_BOS_ALWAYS || (add_bos == HASS_BOS_MODEL && t->add_bos);
    if (bos && t->bos >= 0) emit(&w, t->bos, 0);
    int prev_special = 1; // SPM: a run after the start or a special token gets the dummy prefix
    size_t run = 0;
    for (size_t i = 0; i <= len;) {
        int32_t sp = i < len && t->n_special ? special_at(t, text + i, len - i, parse_special) : -1;
        if (i < len && sp < 0) { i++; continue; }
        if (i > run) {
            w.run_off = run;
            encode_run(t, &w, text + run, i - run, t->add_space_prefix && prev_special);
            prev_special = 0;
        }
        if (sp < 0) break;
        emit(&w, sp, i);
        prev_special = 1;
        i += t->text_len[sp];
        run = i;
    }
    if (bos && t->add_eos && add_bos == HASS_BOS_MODEL && t->eos >= 0) emit(&w, t->eos, len);
    if (w.oom) goto out;
    ret = w.n_out <= n_max || (!ids && n_max == 0 && w.n_out == 0) ? w.n_out : -w.n_out;
out:
    free(w.cp); free(w.off); free(w.fl); free(w.sid); free(w.prev); free(w.next); free(w.start);
    free(w.heap); free(w.buf); free(w.bmap);
    return ret;
}

hass_err hass_tokenizer_encode_alloc(const hass_tokenizer *t, const char *text, size_t len,
                                     int add_bos, int parse_special, int32_t **ids, int64_t *n) {
    int64_t cap = (int64_t)len + 8;
    int32_t *buf = malloc((size_t)cap * sizeof *buf);
    if (!buf) return hass_seterr(HASS_ENOMEM, "tokenize: out of memory");
    int64_t r = hass_tokenizer_encode(t, text, len, add_bos, parse_special, buf, cap);
    if (r < 0 && r != INT64_MIN) { // more ids than bytes (dummy prefixes after many specials)
        cap = -r;
        free(buf);
        buf = malloc((size_t)cap * sizeof *buf);
        r = buf ? hass_tokenizer_encode(t, text, len, add_bos, parse_special, buf, cap) : INT64_MIN;
    }
    if (r < 0) {
        free(buf);
        return hass_seterr(HASS_ENOMEM, "tokenize: out of memory");
    }
    *ids = buf;
    *n = r;
    return HASS_OK;
}

// ----------------------------------------------------------------------------------------------
// decoding

void hass_detok_init(hass_detok *d, const hass_tokenizer *t, int keep_special) {
    memset(d, 0, sizeof *d);
    d->t = t;
    d->keep_special = keep_special;
    d->at_start = 1;
}

// Append bytes to a growable buffer (keeps a NUL after them).
static hass_err buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) return hass_seterr(HASS_ENOMEM, "detok: out of memory");
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return HASS_OK;
}

// Append bytes, valid UTF-8 only: complete sequences pass, invalid bytes become U+FFFD and an
// unfinished tail is kept in d->pending.
static hass_err detok_bytes(hass_detok *d, const char *s, size_t n, char **buf, size_t *len, size_t *cap) {
    char tmp[16];
    hass_err e = HASS_OK;
    while (n > 0 && !e) {
        if (d->n_pending > 0) { // complete the pending sequence byte by byte
            d->pending[d->n_pending++] = *s++;
            n--;
            uint32_t cp;
            int l = hass_utf8_decode((const unsigned char *)d->pending, (size_t)d->n_pending, &cp);
            if (l == d->n_pending) { e = buf_add(buf, len, cap, d->pending, (size_t)l); d->n_pending = 0; }
            else if (!hass_utf8_incomplete_tail(d->pending, (size_t)d->n_pending)) {
                // broken: replace the first byte, re-feed the rest
                int np = d->n_pending;
                memcpy(tmp, d->pending + 1, (size_t)(np - 1));
                d->n_pending = 0;
                e = buf_add(buf, len, cap, "\xEF\xBF\xBD", 3);
                if (!e) e = detok_bytes(d, tmp, (size_t)(np - 1), buf, len, cap);
            }
            continue;
        }
        size_t bad;
        size_t ok = hass_utf8_valid_prefix(s, n, &bad);
        if (ok) e = buf_add(buf, len, cap, s, ok);
        s += ok;
        n -= ok;
        if (!n || e) break;
        int k = hass_utf8_incomplete_tail(s, n);
        if (k > 0 && (size_t)k == n) { memcpy(d->pending, s, n); d->n_pending = (int)n; break; }
        e = buf_add(buf, len, cap, "\xEF\xBF\xBD", 3);
        s++;
        n--;
    }
    return e;
}

hass_err hass_detok_push(hass_detok *d, int32_t id, char **buf, size_t *len, size_t *cap) {
    const hass_tokenizer *t = d->t;
    if (id < 0 || id >= t->n_vocab)
        return hass_seterr(HASS_ERANGE, "token %d outside the vocabulary (0..%d)", id, t->n_vocab - 1);
    if (hass_tokenizer_is_special(t, id) && !d->keep_special) return HASS_OK;
    size_t n;
    const char *p = hass_tokenizer_piece(t, id, &n);
    if (!hass_tokenizer_is_special(t, id)) {
        // SPM: the dummy prefix the encoder put in front of the first text run
        if (d->at_start && t->kind == HASS_TOK_SPM && t->add_space_prefix && n > 0 && p[0] == ' ') {
            p++;
            n--;
        }
        d->at_start = 0;
    }
    return detok_bytes(d, p, n, buf, len, cap);
}

hass_err hass_detok_flush(hass_detok *d, char **buf, size_t *len, size_t *cap) {
    hass_err e = HASS_OK;
    if (d->n_pending > 0) e = buf_add(buf, len, cap, "\xEF\xBF\xBD", 3);
    d->n_pending = 0;
    d->at_start = 1;
    if (!e && !*buf) e = buf_add(buf, len, cap, "", 0);
    return e;
}

// Decode ids, from the start of a sequence or as a continuation.
static hass_err decode_ids(const hass_tokenizer *t, const int32_t *ids, int64_t n, int keep_special, int at_start,
                           char **out, size_t *out_len) {
    hass_detok d;
    hass_detok_init(&d, t, keep_special);
    d.at_start = at_start;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    hass_err e = HASS_OK;
    for (int64_t i = 0; i < n && !e; i++) e = hass_detok_push(&d, ids[i], &buf, &len, &cap);
    if (!e) e = hass_detok_flush(&d, &buf, &len, &cap);
    if (e) { free(buf); return e; }
    *out = buf;
    if (out_len) *out_len = len;
    return HASS_OK;
}

hass_err hass_tokenizer_decode(const hass_tokenizer *t, const int32_t *ids, int64_t n,
                               int keep_special, char **out, size_t *out_len) {
    return decode_ids(t, ids, n, keep_special, 1, out, out_len);
}

hass_err hass_tokenizer_decode_continuation(const hass_tokenizer *t, const int32_t *ids, int64_t n,
                                            int keep_special, char **out, size_t *out_len) {
    return decode_ids(t, ids, n, keep_special, 0, out, out_len);
}
