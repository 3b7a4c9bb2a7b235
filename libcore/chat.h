// chat.h: chat templates rendered natively (no Jinja engine): llama-2-chat, llama-3 (instruct),
// ChatML (SmolLM2, Qwen) and vicuna (FastChat vicuna_v1.1). Each renders exactly what the real
// Jinja template renders (tests/data/chat_renderings.jsonl, made by tests/gen/gen_chat.py).
//
// Template names: "llama-2-chat" (alias "llama2"), "llama-3" ("llama3", "llama-3-instruct"),
// "chatml" ("smollm2"), "vicuna". NULL or "auto" detects the template from the model's template
// string (GGUF tokenizer.chat_template or tokenizer_config.json): <|im_start|> -> chatml,
// <|start_header_id|> -> llama-3, [INST] -> llama-2-chat, USER:/ASSISTANT: -> vicuna.
// ChatML takes its default system message (if any) from the model's template string.
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

#endif
