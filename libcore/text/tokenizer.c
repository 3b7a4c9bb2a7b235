// tokenizer.c: the vocabulary store: a tokenizer being loaded (stored strings, scores, types,
// merge rules), the tables built from it once loaded (string and piece hashes, merge pairs,
// byte tokens, specials, end-of-generation flags, fingerprint), and the getters. The loaders,
// encoder, pre-tokenizers and decoder live in tokenizer_*.c (see tokenizer_int.h).
#include <pthread.h>
#include <zlib.h>

#include "tokenizer_int.h"
#include "unicode.h"

// ----------------------------------------------------------------------------------------------
// building

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
uint32_t hass_tok_gpt2_byte_cp(int b) {
    pthread_once(&gpt2_once, gpt2_init);
    return gpt2_b2u[b];
}

// GPT-2 unicode_to_bytes: codepoint -> byte, -1 if cp is not a mapped byte.
int hass_tok_gpt2_cp_byte(uint32_t cp) {
    pthread_once(&gpt2_once, gpt2_init);
    return cp < 324 ? gpt2_u2b[cp] : -1;
}

// New empty tokenizer of a kind.
hass_tokenizer *hass_tok_new(int kind, hass_err *err) {
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

// Grow the per-token arrays to n entries (new entries: empty, UNUSED).
hass_err hass_tok_resize(hass_tokenizer *t, int32_t n) {
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
hass_err hass_tok_set_text(hass_tokenizer *t, int32_t id, const char *s, size_t n) {
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
hass_err hass_tok_add_merge(hass_tokenizer *t, const char *s, size_t n) {
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

// ----------------------------------------------------------------------------------------------
// the tables built after loading (hass_tok_finish)

// (Re)allocate an empty bytes -> id table (*tab, *cap slots) for n ids.
static hass_err id_table_new(int32_t **tab, uint32_t *cap, int32_t n) {
    free(*tab);
    *cap = table_cap((uint64_t)n);
    *tab = malloc(*cap * sizeof **tab);
    if (!*tab) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    memset(*tab, 0xff, *cap * sizeof **tab);
    return HASS_OK;
}

// Put id under the n bytes at s into the first free slot of tab (cap slots, linear probing).
static void id_table_put(int32_t *tab, uint32_t cap, const void *s, size_t n, int32_t id) {
    uint32_t m = cap - 1, h = hash_bytes(s, n) & m;
    while (tab[h] >= 0) h = (h + 1) & m;
    tab[h] = id;
}

// Stored-string table: string -> id (first id wins on duplicates).
static hass_err build_str_hash(hass_tokenizer *t) {
    hass_err e = id_table_new(&t->str_hash, &t->str_cap, t->n_vocab);
    if (e) return e;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->type[id] == HASS_TOKEN_UNUSED && t->text_len[id] == 0) continue;
        if (str_lookup(t, tok_str(t, id), t->text_len[id]) >= 0) continue;
        id_table_put(t->str_hash, t->str_cap, tok_str(t, id), t->text_len[id], id);
    }
    return HASS_OK;
}

// Piece table: the decoded bytes of every token, back to back.
static hass_err build_pieces(hass_tokenizer *t) {
    int32_t n = t->n_vocab;
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
        t->piece_len[id] = (uint32_t)hass_tok_decode_token(t, id, t->piece + po);
        po += t->piece_len[id];
    }
    return HASS_OK;
}

// Token of each raw byte: SPM <0xNN>, BPE the byte's GPT-2 character; -1 if none.
static void find_byte_tokens(hass_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t l;
        if (t->kind == HASS_TOK_SPM) l = (size_t)snprintf(s, sizeof s, "<0x%02X>", b);
        else l = (size_t)hass_utf8_encode(hass_tok_gpt2_byte_cp(b), s);
        t->byte_id[b] = str_lookup(t, s, l);
    }
}

// BPE: decoded bytes of normal tokens -> id (first id wins).
static hass_err build_piece_hash(hass_tokenizer *t) {
    hass_err e = id_table_new(&t->piece_hash, &t->piece_cap, t->n_vocab);
    if (e) return e;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->type[id] != HASS_TOKEN_NORMAL) continue;
        const char *p = t->piece + t->piece_off[id];
        if (piece_lookup(t, p, t->piece_len[id]) >= 0) continue;
        id_table_put(t->piece_hash, t->piece_cap, p, t->piece_len[id], id);
    }
    return HASS_OK;
}

// Empty pair table of cap slots (a power of two).
static hass_err merges_alloc(hass_tokenizer *t, uint32_t cap) {
    t->merge_cap = cap;
    t->merges = malloc(cap * sizeof *t->merges);
    if (!t->merges) return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    for (uint32_t i = 0; i < cap; i++) t->merges[i].key = UINT64_MAX;
    return HASS_OK;
}

// Ids of rule s ("left right"): *a, *b and the joined *ab (-1 unknown); 0 when s has no
// separating space. *cat (*cat_cap bytes) is scratch, grown as needed; -1 when that fails.
static int merge_ids(const hass_tokenizer *t, const char *s, char **cat, size_t *cat_cap, int32_t *a,
                     int32_t *b, int32_t *ab) {
    const char *sp = strchr(s + (s[0] == ' ' ? 1 : 0), ' ');
    if (!sp) return 0;
    size_t la = (size_t)(sp - s), lb = strlen(sp + 1);
    *a = str_lookup(t, s, la);
    *b = str_lookup(t, sp + 1, lb);
    if (la + lb + 1 > *cat_cap) {
        *cat_cap = 2 * (la + lb + 1);
        char *c = realloc(*cat, *cat_cap);
        if (!c) return -1;
        *cat = c;
    }
    memcpy(*cat, s, la);
    memcpy(*cat + la, sp + 1, lb);
    *ab = str_lookup(t, *cat, la + lb);
    return 1;
}

// Rule r (a b -> ab): a pair slot for BPE (the first rule of a pair wins); for a
// SentencePiece-style tokenizer.json, the merge rank becomes ab's score.
static void merge_put(hass_tokenizer *t, int32_t r, int32_t a, int32_t b, int32_t ab) {
    if (t->kind == HASS_TOK_SPM) {
        if (t->score[ab] == -1e30f) t->score[ab] = -(float)r;
        return;
    }
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t m = t->merge_cap - 1, h = hash_pair(k) & m;
    while (t->merges[h].key != UINT64_MAX && t->merges[h].key != k) h = (h + 1) & m;
    if (t->merges[h].key == k) return;
    t->merges[h] = (merge_slot){k, r, ab};
    t->n_merges++;
}

// Pair table from the merge rules read (rules naming unknown tokens are skipped).
static hass_err build_merges(hass_tokenizer *t) {
    free(t->merges);
    hass_err e = merges_alloc(t, table_cap((uint64_t)t->n_merge_src));
    if (e) return e;
    char *cat = NULL;
    size_t cat_cap = 0;
    t->n_merges = 0;
    for (int32_t r = 0; r < t->n_merge_src; r++) {
        int32_t a, b, ab;
        int k = merge_ids(t, t->merge_src[r], &cat, &cat_cap, &a, &b, &ab);
        if (k < 0) { free(cat); return hass_seterr(HASS_ENOMEM, "tokenizer: out of memory"); }
        if (k == 0 || a < 0 || b < 0 || ab < 0) continue;
        merge_put(t, r, a, b, ab);
    }
    free(cat);
    return HASS_OK;
}

// Drop the merge rules read; a BPE vocabulary without any gets an empty pair table.
static hass_err drop_merge_src(hass_tokenizer *t) {
    for (int32_t r = 0; r < t->n_merge_src; r++) free(t->merge_src[r]);
    free(t->merge_src);
    t->merge_src = NULL;
    t->n_merge_src = 0;
    if (t->kind == HASS_TOK_BPE && !t->merges) return merges_alloc(t, 16);
    return HASS_OK;
}

// Compare special ids by text length, longest first (qsort_r with the tokenizer).
static int cmp_special(const void *a, const void *b, void *arg) {
    const hass_tokenizer *sort_tok = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_tok->text_len[x] != sort_tok->text_len[y])
        return sort_tok->text_len[x] > sort_tok->text_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

// Specials found in text (control/unknown: with parse_special; user-defined: always), longest
// first, and the set of their first bytes.
static hass_err build_specials(hass_tokenizer *t) {
    int32_t n = t->n_vocab;
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
    return HASS_OK;
}

// End-of-generation flags: EOS, and the non-normal tokens of the known end-of-turn names.
static hass_err mark_eog(hass_tokenizer *t) {
    int32_t n = t->n_vocab;
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
    return HASS_OK;
}

// crc32 continued over v as 4 little-endian bytes.
static uLong crc_u32le(uLong crc, uint32_t v) {
    unsigned char le[4];
    for (int i = 0; i < 4; i++) le[i] = (unsigned char)(v >> (8 * i));
    return crc32(crc, le, 4);
}

// The vocabulary fingerprint (its serialisation is at the top of tokenizer.h).
static void set_fingerprint(hass_tokenizer *t) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const char *kind = t->kind == HASS_TOK_SPM ? "spm" : "bpe";
    crc = crc32(crc, (const Bytef *)"hass-vocab-1\n", 13);
    crc = crc32(crc, (const Bytef *)kind, 3);
    crc = crc32(crc, (const Bytef *)"\n", 1);
    crc = crc_u32le(crc, (uint32_t)t->n_vocab);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        crc = crc_u32le(crc, t->text_len[id]);
        crc = crc32(crc, (const Bytef *)tok_str(t, id), t->text_len[id]);
    }
    t->fingerprint = (uint32_t)crc;
}

// Build the lookup tables, pieces, merges, specials and the fingerprint after loading.
hass_err hass_tok_finish(hass_tokenizer *t) {
    if (t->n_vocab <= 0) return hass_seterr(HASS_EFORMAT, "tokenizer: empty vocabulary");
    hass_err e;
    if ((e = build_str_hash(t)) || (e = build_pieces(t))) return e;
    find_byte_tokens(t);
    if (t->kind == HASS_TOK_BPE && (e = build_piece_hash(t))) return e;
    if (t->n_merge_src > 0 && (e = build_merges(t))) return e;
    if ((e = drop_merge_src(t)) || (e = build_specials(t)) || (e = mark_eog(t))) return e;
    set_fingerprint(t);
    return HASS_OK;
}

// ----------------------------------------------------------------------------------------------
// freeing and getters

void hass_tokenizer_free(hass_tokenizer *t) {
    if (!t) return;
    for (int32_t r = 0; r < t->n_merge_src; r++) free(t->merge_src[r]);
    free(t->merge_src);
    free(t->text); free(t->text_off); free(t->text_len); free(t->piece); free(t->piece_off);
    free(t->piece_len); free(t->score); free(t->type); free(t->eog); free(t->str_hash);
    free(t->piece_hash); free(t->merges); free(t->special); free(t->chat_template);
    free(t);
}

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

