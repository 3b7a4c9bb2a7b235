// tokenizer.h: LLaMA-family tokenizers: SentencePiece-style BPE with byte fallback (LLaMA-2,
// stories260K, Phi-3) and byte-level BPE with the pre-tokenizers of GPT-2, LLaMA-3, SmolLM2,
// StarCoder, Refact, MPT, Falcon, DeepSeek-Coder, DeepSeek-LLM (and Qwen2, untested).
//
// Sources (hass_tokenizer_load picks by path):
//   - a GGUF file (model or vocab-only): tokenizer.ggml.{model,pre,tokens,scores,token_type,
//     merges,bos_token_id,eos_token_id,unknown_token_id,padding_token_id,add_bos_token,
//     add_eos_token,add_space_prefix} and tokenizer.chat_template;
//   - a Hugging Face tokenizer.json (model.type BPE; byte-level or SentencePiece-style with
//     byte_fallback), plus tokenizer_config.json beside it for BOS/EOS and the chat template;
//   - a folder holding tokenizer.json, or GPT-2-style encoder.json + vocab.bpe (plus an optional
//     tokenizer_config.json whose added_tokens_decoder gives the special tokens, as for LLaMA-3);
//   - a SentencePiece tokenizer.model (protobuf ModelProto, BPE type: LLaMA-2), or a folder
//     holding only that.
//
// Encoding follows llama.cpp (whose vectors come from the HF tokenizers): special/control tokens
// are recognised in text only when parse_special is set; user-defined (non-special added) tokens
// always are. SentencePiece vocabularies replace ' ' by U+2581 and prepend one U+2581 to every
// text run that starts the input or follows a special token (add_space_prefix). Merges use a
// rank hash table and a binary heap (no quadratic rescans); decoding is a table lookup.
//
// Vocabulary fingerprint: crc32 (zlib) over the canonical serialisation
//   "hass-vocab-1\n" kind "\n" u32le(n_vocab) then for each id in order u32le(len) + the token's
//   stored string bytes (GGUF/tokenizer.json form: U+2581 for SPM spaces, GPT-2 byte-to-unicode
//   form for byte-level BPE, literal text for added/special tokens),
// where kind is "spm" or "bpe". Scores, types and merges are not included, so the same
// vocabulary read from GGUF or from tokenizer.json has the same fingerprint. Streams carry it;
// consumers compare it with hass_tokenizer_fingerprint() of their own model.
#ifndef HASS_TOKENIZER_H
#define HASS_TOKENIZER_H

#include <jansson.h>

#include "gguf.h"
#include "hass.h"

typedef struct hass_tokenizer hass_tokenizer;

// Token types (the GGUF token_type values).
enum {
    HASS_TOKEN_NORMAL = 1,
    HASS_TOKEN_UNKNOWN = 2,
    HASS_TOKEN_CONTROL = 3,
    HASS_TOKEN_USER_DEFINED = 4,
    HASS_TOKEN_UNUSED = 5,
    HASS_TOKEN_BYTE = 6,
};

// Tokenizer kinds.
enum { HASS_TOK_SPM = 1, HASS_TOK_BPE = 2 };

// add_bos values for hass_tokenizer_encode.
enum {
    HASS_BOS_NO = 0,     // never add BOS
    HASS_BOS_MODEL = 1,  // add BOS (and EOS) when the model says so (add_bos_token / add_eos_token)
    HASS_BOS_ALWAYS = 2, // add BOS whenever the vocabulary has one
};

// Load from a GGUF file, a tokenizer.json, a SentencePiece tokenizer.model, or a folder
// (tokenizer.json, encoder.json+vocab.bpe, or tokenizer.model; each with an optional
// tokenizer_config.json). NULL with *err and a message on failure.
hass_tokenizer *hass_tokenizer_load(const char *path, hass_err *err);
// Load from an open GGUF (tokenizer.ggml.* keys); the result does not borrow from g.
hass_tokenizer *hass_tokenizer_from_gguf(const hass_gguf *g, hass_err *err);
// Free; NULL is a no-op.
void hass_tokenizer_free(hass_tokenizer *t);

// Apply a Hugging Face tokenizer_config.json: added_tokens_decoder (special tokens), bos_token,
// eos_token, add_bos_token, chat_template. Called by the loaders when the file sits beside.
hass_err hass_tokenizer_apply_config(hass_tokenizer *t, const char *path);
// Override the pre-tokenizer by llama.cpp name ("gpt-2", "llama-bpe", "smollm", "starcoder",
// "refact", "mpt", "falcon", "qwen2", "default"); HASS_EINVAL for an unknown name.
hass_err hass_tokenizer_set_pre(hass_tokenizer *t, const char *name);

int32_t hass_tokenizer_n_vocab(const hass_tokenizer *t);
// HASS_TOK_SPM or HASS_TOK_BPE.
int hass_tokenizer_kind(const hass_tokenizer *t);
// Pre-tokenizer name (llama.cpp spelling), borrowed.
const char *hass_tokenizer_pre(const hass_tokenizer *t);
// BOS / EOS ids, -1 if none.
int32_t hass_tokenizer_bos(const hass_tokenizer *t);
int32_t hass_tokenizer_eos(const hass_tokenizer *t);
// Whether the model asks for BOS in front of a prompt (add_bos_token).
int hass_tokenizer_add_bos(const hass_tokenizer *t);
// Whether id ends a generation: EOS, EOT, <|im_end|>, <|eot_id|>, <|endoftext|>, </s>...
int hass_tokenizer_is_eog(const hass_tokenizer *t, int32_t id);
// Token type (HASS_TOKEN_*), 0 for an id out of range.
int hass_tokenizer_token_type(const hass_tokenizer *t, int32_t id);
// Whether id is a special token (control, unknown or unused): dropped by detok unless kept.
int hass_tokenizer_is_special(const hass_tokenizer *t, int32_t id);
// Stored string of a token (GGUF form), borrowed; NULL for an id out of range.
const char *hass_tokenizer_text(const hass_tokenizer *t, int32_t id, size_t *len);
// Id of a token by its stored string, -1 if none.
int32_t hass_tokenizer_find(const hass_tokenizer *t, const char *text, size_t len);
// Chat template string of the model (GGUF tokenizer.chat_template or tokenizer_config.json),
// borrowed; NULL if none.
const char *hass_tokenizer_chat_template(const hass_tokenizer *t);
// crc32 fingerprint of the vocabulary (see the top of this header).
uint32_t hass_tokenizer_fingerprint(const hass_tokenizer *t);

// Encode len bytes of text (UTF-8; invalid bytes are encoded as their own byte) into ids.
// add_bos: HASS_BOS_*; parse_special: recognise control-token strings in the text.
// Returns the number of ids, or -(number needed) when n_max is too small (llama_tokenize style);
// ids may be NULL when n_max is 0. On allocation failure returns INT64_MIN.
int64_t hass_tokenizer_encode(const hass_tokenizer *t, const char *text, size_t len, int add_bos,
                              int parse_special, int32_t *ids, int64_t n_max);
// Same, and offs[k] (n_max entries; may be NULL) gets the byte offset in text where token k
// starts: BOS 0, EOS len, a special token its match, the SentencePiece dummy prefix the
// character after it. Use it to map byte spans (e.g. hass_chat_render_spans) to token masks.
int64_t hass_tokenizer_encode_offsets(const hass_tokenizer *t, const char *text, size_t len,
                                      int add_bos, int parse_special, int32_t *ids, int64_t *offs,
                                      int64_t n_max);
// Same as hass_tokenizer_encode into a malloc'd array (*ids, *n); HASS_ENOMEM on failure.
hass_err hass_tokenizer_encode_alloc(const hass_tokenizer *t, const char *text, size_t len,
                                     int add_bos, int parse_special, int32_t **ids, int64_t *n);

// Bytes of a token as text (SPM: U+2581 -> ' ', <0xNN> -> that byte; byte-level BPE: bytes
// before the GPT-2 unicode mapping; special tokens: their literal text), borrowed; NULL out of
// range. The bytes need not be valid UTF-8 on their own.
const char *hass_tokenizer_piece(const hass_tokenizer *t, int32_t id, size_t *len);

// Incremental, UTF-8-safe detokenizer: feed ids, get text as soon as it is valid UTF-8.
// SentencePiece leading-space rule: with add_space_prefix, the first text piece of a sequence
// loses one leading space (the dummy prefix the encoder added), so detok(encode(x)) == x.
typedef struct hass_detok {
    const hass_tokenizer *t; // borrowed
    int keep_special;        // emit the text of special tokens
    int at_start;            // no text emitted yet (SPM leading space still to strip)
    char pending[8];         // bytes of an unfinished UTF-8 sequence
    int n_pending;
} hass_detok;

// Start a detokenizer over t at the start of a sequence (set d->at_start = 0 for a continuation).
void hass_detok_init(hass_detok *d, const hass_tokenizer *t, int keep_special);
// Append the text of id to *buf (realloc'd; *len/*cap track it): only complete, valid UTF-8 is
// appended (invalid bytes become U+FFFD); an unfinished sequence waits in d. HASS_ERANGE for an
// id out of range, HASS_ENOMEM.
hass_err hass_detok_push(hass_detok *d, int32_t id, char **buf, size_t *len, size_t *cap);
// Flush what is pending (an unfinished sequence becomes U+FFFD) and reset to the start state.
hass_err hass_detok_flush(hass_detok *d, char **buf, size_t *len, size_t *cap);
// Whole-sequence decode into a malloc'd NUL-terminated string (valid UTF-8); ids start a
// sequence (the SPM leading-space rule applies).
hass_err hass_tokenizer_decode(const hass_tokenizer *t, const int32_t *ids, int64_t n,
                               int keep_special, char **out, size_t *out_len);
// Same for ids that continue a sequence (generated tokens): no leading space is removed.
hass_err hass_tokenizer_decode_continuation(const hass_tokenizer *t, const int32_t *ids, int64_t n,
                                            int keep_special, char **out, size_t *out_len);

#endif
