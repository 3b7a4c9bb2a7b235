// chat.c: the four chat templates, written out in C to match their Jinja renderings exactly.
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"

static const struct { const char *alias, *name; } chat_names[] = {
    {"llama-2-chat", "llama-2-chat"}, {"llama2", "llama-2-chat"}, {"llama-2", "llama-2-chat"},
    {"llama-3", "llama-3"}, {"llama3", "llama-3"}, {"llama-3-instruct", "llama-3"},
    {"chatml", "chatml"}, {"smollm2", "chatml"}, {"vicuna", "vicuna"},
};

const char *hass_chat_canonical(const char *name) {
    for (size_t i = 0; i < sizeof chat_names / sizeof *chat_names; i++)
        if (!strcmp(chat_names[i].alias, name)) return chat_names[i].name;
    return NULL;
}

const char *hass_chat_names(void) { return "llama-2-chat, llama-3, chatml, vicuna"; }

const char *hass_chat_detect(const char *tmpl) {
    if (!tmpl) return NULL;
    if (strstr(tmpl, "<|im_start|>")) return "chatml";
    if (strstr(tmpl, "<|start_header_id|>")) return "llama-3";
    if (strstr(tmpl, "[INST]")) return "llama-2-chat";
    if (strstr(tmpl, "USER:") && strstr(tmpl, "ASSISTANT:")) return "vicuna";
    return NULL;
}

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

// Append n bytes.
static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *p = realloc(b->s, c);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = c;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

// Append a C string.
static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

// Python str.isspace() for one codepoint (what Jinja's trim and str.strip() remove).
static int py_space(uint32_t cp) { return hass_unicode_is_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

// Append s[0..n) without leading/trailing Python white space.
static void sb_add_stripped(sbuf *b, const char *s, size_t n) {
    size_t a = 0, e = n;
    while (a < e) {
        uint32_t cp;
        int l = hass_utf8_decode((const unsigned char *)s + a, e - a, &cp);
        if (l < 0 || !py_space(cp)) break;
        a += (size_t)l;
    }
    while (e > a) { // step back over one codepoint
        size_t k = e - 1;
        while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        uint32_t cp;
        int l = hass_utf8_decode((const unsigned char *)s + k, e - k, &cp);
        if (l < 0 || (size_t)l != e - k || !py_space(cp)) break;
        e = k;
    }
    sb_add(b, s + a, e - a);
}

// Text of a special token, or a fallback.
static const char *tok_text(const hass_tokenizer *t, int32_t id, const char *fallback, size_t *n) {
    const char *s = t && id >= 0 ? hass_tokenizer_text(t, id, n) : NULL;
    if (!s) { s = fallback; *n = strlen(fallback); }
    return s;
}

// ChatML default system message from the model's template (the literal text after
// "<|im_start|>system\n" up to "<|im_end|>"), unescaping \n; NULL if none.
static char *chatml_default_system(const char *tmpl) {
    if (!tmpl) return NULL;
    const char *keys[] = {"<|im_start|>system\n", "<|im_start|>system\\n"};
    for (int k = 0; k < 2; k++) {
        const char *p = strstr(tmpl, keys[k]);
        if (!p) continue;
        p += strlen(keys[k]);
        const char *e = strstr(p, "<|im_end|>");
        if (!e || e == p) return NULL;
        for (const char *q = p; q < e; q++)
            if (*q == '\'' || *q == '"' || *q == '{' || *q == '}') return NULL; // not a literal
        char *out = strndup(p, strcspn(p, "<")), *o = out; // the text up to "<|im_end|>"
        if (!out) return NULL;
        for (const char *q = out; *q; q++) { // unescape \n in place
            if (q[0] == '\\' && q[1] == 'n') { *o++ = '\n'; q++; }
            else *o++ = *q;
        }
        *o = 0;
        return out;
    }
    return NULL;
}

hass_err hass_chat_render(const hass_tokenizer *t, const char *template_name, const json_t *messages,
                          int add_generation_prompt, char **out) {
    return hass_chat_render_spans(t, template_name, messages, add_generation_prompt, out, NULL, NULL);
}

hass_err hass_chat_render_spans(const hass_tokenizer *t, const char *template_name, const json_t *messages,
                                int add_generation_prompt, char **out, hass_chat_span **spans,
                                int64_t *n_spans) {
    hass_chat_span *sp = NULL;
    int64_t n_sp = 0;
    size_t at = 0;
#define SPAN_BEGIN() (at = b.n)
#define SPAN_END(i)                                                                            \
    do {                                                                                       \
        hass_chat_span *q_ = realloc(sp, (size_t)(n_sp + 1) * sizeof *sp);                     \
        if (!q_) { b.oom = 1; break; }                                                         \
        sp = q_;                                                                               \
        sp[n_sp++] = (hass_chat_span){at, b.n, (int64_t)(i)};                                   \
    } while (0)
    const char *model_tmpl = t ? hass_tokenizer_chat_template(t) : NULL;
    const char *name;
    if (!template_name || !strcmp(template_name, "auto")) {
        name = hass_chat_detect(model_tmpl);
        if (!name)
            return hass_seterr(HASS_EINVAL, model_tmpl ? "the model's chat template is not one we know (%s); choose one by name"
                                                       : "the model has no chat template; choose one by name (%s)",
                               hass_chat_names());
    } else {
        name = hass_chat_canonical(template_name);
        if (!name)
            return hass_seterr(HASS_EINVAL, "unknown chat template '%s' (known: %s)", template_name, hass_chat_names());
    }
    if (!json_is_array(messages)) return hass_seterr(HASS_EFORMAT, "\"messages\" is not an array");
    size_t n = json_array_size(messages);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(messages, i);
        if (!json_is_object(m)) return hass_seterr(HASS_EFORMAT, "messages[%zu] is not an object", i);
        if (!json_is_string(json_object_get(m, "role")))
            return hass_seterr(HASS_EFORMAT, "messages[%zu]: \"role\" missing or not a string", i);
        if (!json_is_string(json_object_get(m, "content")))
            return hass_seterr(HASS_EFORMAT, "messages[%zu]: \"content\" missing or not a string", i);
    }
#define ROLE(i) json_string_value(json_object_get(json_array_get(messages, i), "role"))
#define CONTENT(i) json_string_value(json_object_get(json_array_get(messages, i), "content"))
#define CLEN(i) json_string_length(json_object_get(json_array_get(messages, i), "content"))
    size_t nb, ne;
    const char *bos = tok_text(t, t ? hass_tokenizer_bos(t) : -1, "<s>", &nb);
    const char *eos = tok_text(t, t ? hass_tokenizer_eos(t) : -1, "</s>", &ne);
    sbuf b = {0};
    hass_err err = HASS_OK;
    if (!strcmp(name, "chatml")) {
        char *def = n > 0 && strcmp(ROLE(0), "system") && hass_chat_detect(model_tmpl) &&
                    !strcmp(hass_chat_detect(model_tmpl), "chatml") ? chatml_default_system(model_tmpl) : NULL;
        if (def) {
            sb_puts(&b, "<|im_start|>system\n");
            sb_puts(&b, def);
            sb_puts(&b, "<|im_end|>\n");
            free(def);
        }
        for (size_t i = 0; i < n; i++) {
            sb_puts(&b, "<|im_start|>");
            sb_puts(&b, ROLE(i));
            sb_puts(&b, "\n");
            int asst = !strcmp(ROLE(i), "assistant");
            if (asst) SPAN_BEGIN();
            sb_add(&b, CONTENT(i), CLEN(i));
            sb_puts(&b, "<|im_end|>");
            if (asst) SPAN_END(i);
            sb_puts(&b, "\n");
        }
        if (add_generation_prompt) sb_puts(&b, "<|im_start|>assistant\n");
    } else if (!strcmp(name, "llama-3")) {
        size_t nb3;
        int32_t bid = t ? hass_tokenizer_find(t, "<|begin_of_text|>", 17) : -1;
        const char *bos3 = bid >= 0 ? tok_text(t, bid, "", &nb3) : (nb3 = nb, bos);
        for (size_t i = 0; i < n; i++) {
            if (i == 0) sb_add(&b, bos3, nb3);
            sb_puts(&b, "<|start_header_id|>");
            sb_puts(&b, ROLE(i));
            sb_puts(&b, "<|end_header_id|>\n\n");
            int asst = !strcmp(ROLE(i), "assistant");
            if (asst) SPAN_BEGIN();
            sb_add_stripped(&b, CONTENT(i), CLEN(i));
            sb_puts(&b, "<|eot_id|>");
            if (asst) SPAN_END(i);
        }
        if (add_generation_prompt) sb_puts(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    } else if (!strcmp(name, "llama-2-chat")) {
        size_t first = n > 0 && !strcmp(ROLE(0), "system") ? 1 : 0;
        for (size_t i = first; i < n; i++) {
            size_t k = i - first;
            int is_user = !strcmp(ROLE(i), "user");
            if (is_user != (k % 2 == 0)) {
                err = hass_seterr(HASS_EFORMAT, "messages[%zu]: llama-2-chat roles must alternate user/assistant/user/...", i);
                break;
            }
            sbuf c = {0};
            if (k == 0 && first) {
                sb_puts(&c, "<<SYS>>\n");
                sb_add(&c, CONTENT(0), CLEN(0));
                sb_puts(&c, "\n<</SYS>>\n\n");
            }
            sb_add(&c, CONTENT(i), CLEN(i));
            if (is_user) {
                sb_add(&b, bos, nb);
                sb_puts(&b, "[INST] ");
                sb_add_stripped(&b, c.s ? c.s : "", c.n);
                sb_puts(&b, " [/INST]");
            } else if (!strcmp(ROLE(i), "assistant")) {
                sb_puts(&b, " ");
                SPAN_BEGIN();
                sb_add_stripped(&b, c.s ? c.s : "", c.n);
                sb_puts(&b, " ");
                sb_add(&b, eos, ne);
                SPAN_END(i);
            }
            b.oom |= c.oom;
            free(c.s);
        }
    } else { // vicuna (FastChat vicuna_v1.1)
        size_t first = n > 0 && !strcmp(ROLE(0), "system") ? 1 : 0;
        if (first) sb_add(&b, CONTENT(0), CLEN(0));
        else sb_puts(&b, "A chat between a curious user and an artificial intelligence assistant. The assistant "
                         "gives helpful, detailed, and polite answers to the user's questions.");
        sb_puts(&b, " ");
        for (size_t i = first; i < n; i++) {
            if (!strcmp(ROLE(i), "user")) {
                sb_puts(&b, "USER: ");
                sb_add(&b, CONTENT(i), CLEN(i));
                sb_puts(&b, " ");
            } else if (!strcmp(ROLE(i), "assistant")) {
                sb_puts(&b, "ASSISTANT: ");
                SPAN_BEGIN();
                sb_add(&b, CONTENT(i), CLEN(i));
                sb_add(&b, eos, ne);
                SPAN_END(i);
            }
        }
        if (add_generation_prompt) sb_puts(&b, "ASSISTANT:");
    }
#undef ROLE
#undef CONTENT
#undef CLEN
    if (!err && b.oom) err = hass_seterr(HASS_ENOMEM, "chat: out of memory");
    if (!err && !b.s) sb_add(&b, "", 0);
    if (!err && b.oom) err = hass_seterr(HASS_ENOMEM, "chat: out of memory");
#undef SPAN_BEGIN
#undef SPAN_END
    if (err) { free(b.s); free(sp); return err; }
    *out = b.s;
    if (spans) { *spans = sp; *n_spans = n_sp; }
    else free(sp);
    return HASS_OK;
}

void hass_chat_span_mask(const hass_chat_span *spans, int64_t n_spans, const int64_t *offs, int64_t n_tok,
                         size_t text_len, uint8_t *mask) {
    for (int64_t k = 0; k < n_tok; k++) {
        size_t a = (size_t)offs[k], e = k + 1 < n_tok ? (size_t)offs[k + 1] : text_len;
        mask[k] = 0;
        for (int64_t j = 0; j < n_spans && !mask[k]; j++) mask[k] = a < e && a < spans[j].end && e > spans[j].start;
    }
}
