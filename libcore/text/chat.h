// chat.h: chat templates rendered natively (no Jinja engine): llama-2-chat, llama-3 (instruct),
// ChatML (SmolLM2, Qwen) and vicuna (FastChat vicuna_v1.1). Each renders exactly what the real
// Jinja template renders (tests/data/chat_renderings.jsonl, made by tests/gen/gen_chat.py).
//
// Template names: "llama-2-chat" (alias "llama2"), "llama-3" ("llama3", "llama-3-instruct"),
// "chatml" ("smollm2"), "vicuna". NULL or "auto" detects the template from the model's template
// string (GGUF tokenizer.chat_template or tokenizer_config.json): <|im_start|> -> chatml,
// <|start_header_id|> -> llama-3, [INST] -> llama-2-chat, USER:/ASSISTANT: -> vicuna.
// ChatML takes the system turn the model's template writes when the messages start with no
// system message from the template string itself: the first literal "<|im_start|>system..."
// output on the template's path for no tools and a first message that is not a system one
// (Qwen2.5's "You are Qwen, ...", SmolLM2's "You are a helpful AI assistant named SmolLM, ...").
#ifndef HASS_CHAT_H
#define HASS_CHAT_H

#include <jansson.h>

#include "hass.h"
#include "tokenizer.h"

// Canonical name of a template name or alias, NULL if unknown.
const char *hass_chat_canonical(const char *name);
// Template name detected from a Jinja template string, NULL if none matches.
const char *hass_chat_detect(const char *tmpl);
// Known template names, comma-separated (for messages and --help).
const char *hass_chat_names(void);

// Render messages (JSON array of {"role", "content"} objects) with a template (name, alias, or
// NULL/"auto" for the model's). add_generation_prompt appends the assistant header where the
// template has one. *out is malloc'd, NUL-terminated. Errors: HASS_EINVAL for an unknown name
// or a model without a recognisable template; HASS_EFORMAT for bad messages or roles that do
// not alternate (llama-2-chat), with a message saying which message and why.
hass_err hass_chat_render(const hass_tokenizer *t, const char *template_name, const json_t *messages,
                          int add_generation_prompt, char **out);

// Byte range of one assistant turn in a rendering: the message's content (as the template
// writes it: trimmed for llama-3 and llama-2-chat) through the end-of-turn marker that follows it
// (<|im_end|>, <|eot_id|>, " </s>", "</s>"). For training loss masks.
typedef struct hass_chat_span {
    size_t start, end;   // [start, end) in the rendered text
    int64_t message;     // index into messages
} hass_chat_span;

// hass_chat_render, and *spans (malloc'd, *n_spans entries; NULL when none) gets the assistant
// turns' byte ranges.
hass_err hass_chat_render_spans(const hass_tokenizer *t, const char *template_name, const json_t *messages,
                                int add_generation_prompt, char **out, hass_chat_span **spans,
                                int64_t *n_spans);

// What a rendering takes from the model (hass_chat_render_spans fills it from the tokenizer).
typedef struct hass_chat_model {
    const char *tmpl;                  // its Jinja template string, NULL if none
    const char *bos, *eos;             // BOS / EOS token texts (n_bos, n_eos bytes); NULL: "<s>", "</s>"
    size_t n_bos, n_eos;
    const char *begin_of_text;         // "<|begin_of_text|>" if the vocabulary has it (llama-3's BOS), else NULL
    size_t n_begin_of_text;
} hass_chat_model;

// hass_chat_render_spans from the model's template string and token texts, without a tokenizer.
hass_err hass_chat_render_model(const hass_chat_model *m, const char *template_name, const json_t *messages,
                                int add_generation_prompt, char **out, hass_chat_span **spans,
                                int64_t *n_spans);

// Loss mask from spans: mask[k] = 1 when token k's bytes [offs[k], offs[k+1]) (the last token
// ends at text_len) overlap an assistant span, else 0. offs from hass_tokenizer_encode_offsets.
void hass_chat_span_mask(const hass_chat_span *spans, int64_t n_spans, const int64_t *offs, int64_t n_tok,
                         size_t text_len, uint8_t *mask);

#endif
