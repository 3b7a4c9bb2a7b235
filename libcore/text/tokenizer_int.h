// tokenizer_int.h: internal to libcore: the layout of a loaded tokenizer and what its files
// share. tokenizer.c holds the vocabulary store (building it, its lookup tables, the getters);
// the loaders are tokenizer_load.c (picks one by path), tokenizer_gguf.c, tokenizer_json.c
// (tokenizer.json, encoder.json + vocab.bpe, tokenizer_config.json) and tokenizer_proto.c
// (SentencePiece tokenizer.model); tokenizer_encode.c holds the SPM and BPE merges,
// tokenizer_pre.c the pre-tokenizers, tokenizer_decode.c the pieces and the detokenizer.
// The lookups used on every encoded byte are static inline here, so they inline as before.
#ifndef HASS_TOKENIZER_INT_H
#define HASS_TOKENIZER_INT_H

#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

// Pre-tokenizer rule sets (llama.cpp names in tokenizer_pre.c).
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
// lookups (inline: the encoder calls them for every symbol pair)

// FNV-1a hash of bytes.
static inline uint32_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

// Mix of a 64-bit pair key.
static inline uint32_t hash_pair(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33;
    return (uint32_t)k;
}

// realloc the array at *pp to n bytes; 0 on failure (*pp unchanged).
static inline int grow(void *pp, size_t n) {
    void **p = pp, *q = realloc(*p, n ? n : 1);
    if (!q) return 0;
    *p = q;
    return 1;
}

// Stored string of token id (NUL-terminated).
static inline const char *tok_str(const hass_tokenizer *t, int32_t id) { return t->text + t->text_off[id]; }

// Lookup in the stored-string table.
static inline int32_t str_lookup(const hass_tokenizer *t, const char *s, size_t n) {
    if (!t->str_hash) return -1;
    uint32_t m = t->str_cap - 1;
    for (uint32_t h = hash_bytes(s, n) & m;; h = (h + 1) & m) {
        int32_t id = t->str_hash[h];
        if (id < 0) return -1;
        if (t->text_len[id] == n && !memcmp(tok_str(t, id), s, n)) return id;
    }
}

// Lookup of a BPE normal token by its decoded bytes.
static inline int32_t piece_lookup(const hass_tokenizer *t, const void *s, size_t n) {
    if (!t->piece_hash) return -1;
    uint32_t m = t->piece_cap - 1;
    for (uint32_t h = hash_bytes(s, n) & m;; h = (h + 1) & m) {
        int32_t id = t->piece_hash[h];
        if (id < 0) return -1;
        if (t->piece_len[id] == n && !memcmp(t->piece + t->piece_off[id], s, n)) return id;
    }
}

// Merge table lookup: rank and merged id of the pair (a, b); 0 if no rule.
static inline int merge_lookup(const hass_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t m = t->merge_cap - 1;
    for (uint32_t h = hash_pair(k) & m;; h = (h + 1) & m) {
        if (t->merges[h].key == UINT64_MAX) return 0;
        if (t->merges[h].key == k) { *rank = t->merges[h].rank; *id = t->merges[h].id; return 1; }
    }
}

// ----------------------------------------------------------------------------------------------
// the vocabulary store (tokenizer.c)

// New empty tokenizer of a kind (HASS_TOK_*); NULL with *err on failure.
hass_tokenizer *hass_tok_new(int kind, hass_err *err);
// Grow the per-token arrays to n entries (new entries: empty, UNUSED).
hass_err hass_tok_resize(hass_tokenizer *t, int32_t n);
// Set the stored string of token id (copied).
hass_err hass_tok_set_text(hass_tokenizer *t, int32_t id, const char *s, size_t n);
// Add a merge rule "a b" (copied); hass_tok_finish turns the rules into the pair table.
hass_err hass_tok_add_merge(hass_tokenizer *t, const char *s, size_t n);
// Build the lookup tables, pieces, merges, specials and the fingerprint after loading (again
// after any change).
hass_err hass_tok_finish(hass_tokenizer *t);
// GPT-2 bytes_to_unicode: byte -> codepoint.
uint32_t hass_tok_gpt2_byte_cp(int b);
// GPT-2 unicode_to_bytes: codepoint -> byte, -1 if cp is not a mapped byte.
int hass_tok_gpt2_cp_byte(uint32_t cp);

// ----------------------------------------------------------------------------------------------
// loaders

// Read a whole file into a malloc'd NUL-terminated buffer (tokenizer_load.c).
hass_err hass_tok_read_file(const char *path, char **out, size_t *n);
// Load a Hugging Face tokenizer.json (model BPE) and the tokenizer_config.json beside it
// (tokenizer_json.c).
hass_tokenizer *hass_tok_load_tokenizer_json(const char *path, hass_err *err);
// Load GPT-2-style encoder.json + vocab.bpe (+ tokenizer_config.json) from a folder
// (tokenizer_json.c).
hass_tokenizer *hass_tok_load_encoder_json(const char *dir, hass_err *err);
// Load a SentencePiece BPE tokenizer.model (tokenizer_proto.c).
hass_tokenizer *hass_tok_load_spm_model(const char *path, hass_err *err);

// ----------------------------------------------------------------------------------------------
// encoding (tokenizer_encode.c, tokenizer_pre.c)

#define UF_IN 64 // set for every codepoint inside the piece (out of range reads as 0)

typedef struct heap_ent {
    float key;    // SPM: -score; BPE: rank
    int32_t pos;  // left symbol (tie-break: leftmost first)
    int32_t a, b; // BPE: ids of the pair; SPM: size in bytes (a)
} heap_ent;

// Workspace of one encode call.
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

// Byte-level BPE of one pre-tokenized piece (raw bytes p[0..n)) starting at byte off of the
// text (tokenizer_encode.c).
void hass_tok_bpe_word(const hass_tokenizer *t, enc_ws *w, const unsigned char *p, int32_t n, size_t off);
// Run pre-tokenizer stage `stage` of t over codepoints [a, b) of w (filled from text), then
// BPE each final piece (tokenizer_pre.c).
void hass_tok_pre_split(const hass_tokenizer *t, enc_ws *w, const char *text, int stage, int32_t a, int32_t b);

// ----------------------------------------------------------------------------------------------
// decoding (tokenizer_decode.c)

// Decoded bytes of token id into buf (>= 4 * its stored length); returns the length.
size_t hass_tok_decode_token(const hass_tokenizer *t, int32_t id, char *buf);

#endif
