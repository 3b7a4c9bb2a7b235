// convo.h: conversations for draft-head training data (SPEC-HASS section 3, pitfall 15).
//
// Records: ShareGPT {"conversations": [{"from": "human"|"gpt"|"system"|..., "value": "..."}]}
// or {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}. A file holds a JSON
// array of records (ShareGPT .json) or one record per line (JSONL).
//
// Normalising (hass_convo_messages): human/user -> user, gpt/chatgpt/bard/bing/assistant/model
// -> assistant, system stays; a leading system message is kept; after it, turns before the
// first user turn are dropped (as the reference does); then roles must alternate user,
// assistant, ... (HASS asserts this; we reject the record with the reason). Empty records and
// records without an assistant reply are rejected.
//
// Rendering and the loss mask: the conversation is rendered with the target's chat template by
// a caller-supplied renderer (hass_chat_render of chat.h). The assistant span
// of reply k is found by rendering the prefix before it with the generation prompt (the span
// starts at its end) and the conversation up to and including reply k (the span ends at its end,
// trailing whitespace excluded, so the end-of-turn token such as <|im_end|> is inside). The
// whole text is tokenized once, exactly as the decoder tokenizes prompts, and a token's mask is
// 1 when its bytes (from the token pieces) overlap an assistant span.
#ifndef HASS_CONVO_H
#define HASS_CONVO_H

#include <jansson.h>

#include "hass.h"
#include "tokenizer.h"

// Render messages (a JSON array of {"role","content"}) to text; *out malloc'd.
typedef hass_err (*hass_convo_render_fn)(void *ctx, const json_t *messages,
                                         int add_generation_prompt, char **out);

// Normalised messages of a record (new reference), or NULL with *why set to a static reason.
json_t *hass_convo_messages(const json_t *rec, const char **why);

// Call fn(ctx, index, record) for every record of a file (JSON array or JSONL); a non-zero
// return from fn stops the walk and is returned. HASS_EFORMAT (file:line) for bad JSON.
typedef int (*hass_convo_fn)(void *ctx, int64_t idx, json_t *rec);
hass_err hass_convo_read(const char *path, hass_convo_fn fn, void *ctx);

// Render messages and find the assistant spans: *text (malloc'd, *len bytes), spans (malloc'd,
// 2 * *n_spans byte offsets [begin, end)). HASS_EFORMAT when the template does not render
// prefixes consistently (a prefix is not a prefix of the full text).
hass_err hass_convo_render(hass_convo_render_fn render, void *rctx, const json_t *messages,
                           char **text, size_t *len, size_t **spans, int *n_spans);

// Tokenize text (special tokens parsed; BOS as the model asks) and mark tokens overlapping the
// spans: *ids and *mask malloc'd, *n tokens. HASS_EUNSUP when the token pieces do not
// reproduce the text (then offsets are unknown).
hass_err hass_convo_tokens(const hass_tokenizer *t, const char *text, size_t len,
                           const size_t *spans, int n_spans, int32_t **ids, uint8_t **mask,
                           int64_t *n);

#endif
