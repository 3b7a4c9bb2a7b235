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

// ---- default system turn: found by walking the template's if/for structure (not a Jinja engine)
//
// A ChatML template may write a system turn of its own when the messages start with none
// (SmolLM2: inside the loop under "loop.first and messages[0]['role'] != 'system'"; Qwen2.5:
// before the loop, in the else branches of "if tools" and "if messages[0]['role'] == 'system'").
// The walk decides the conditions it knows under the assumptions of such a rendering (no tools,
// the first message is not a system one, the first pass of the loop over messages) and returns
// the first literal output on that path that opens a system turn. Anything it cannot decide on
// the way to one gives no default.

// Three-valued truth of a condition: false, true, or not decidable by the walk.
typedef enum { TRI_F, TRI_T, TRI_U } tri;

// Logical not, and, or over tri.
static tri tri_not(tri a) { return a == TRI_U ? TRI_U : a == TRI_T ? TRI_F : TRI_T; }
static tri tri_and(tri a, tri b) { return a == TRI_F || b == TRI_F ? TRI_F : a == TRI_T && b == TRI_T ? TRI_T : TRI_U; }
static tri tri_or(tri a, tri b) { return tri_not(tri_and(tri_not(a), tri_not(b))); }

// Cursor over a tag's inner text [p, e); bad is set on syntax the walk does not read.
typedef struct jcur {
    const char *p, *e;
    int bad;
} jcur;

// Skip white space.
static void jc_ws(jcur *c) {
    while (c->p < c->e && strchr(" \t\r\n", *c->p)) c->p++;
}

// Whether ch can be part of a name.
static int jc_idch(char ch) { return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'); }

// Consume keyword w if it comes next as a whole word.
static int jc_word(jcur *c, const char *w) {
    jc_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->e - c->p) < n || memcmp(c->p, w, n) || (c->p + n < c->e && jc_idch(c->p[n]))) return 0;
    c->p += n;
    return 1;
}

// Consume symbol s if it comes next.
static int jc_sym(jcur *c, const char *s) {
    jc_ws(c);
    size_t n = strlen(s);
    if ((size_t)(c->e - c->p) < n || memcmp(c->p, s, n)) return 0;
    c->p += n;
    return 1;
}

// Decode a Jinja string literal at the cursor into b (escapes \n \t \r \\ \' \"); 0 if there is
// none or it uses an escape the walk does not decode.
static int jc_string(jcur *c, sbuf *b) {
    jc_ws(c);
    if (c->p >= c->e || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    for (; c->p < c->e && *c->p != q; c->p++) {
        if (*c->p != '\\') { sb_add(b, c->p, 1); continue; }
        if (++c->p >= c->e) return 0;
        const char *from = "nrt\\'\"", *to = "\n\r\t\\'\"", *k = strchr(from, *c->p);
        if (!k || !*c->p) return 0;
        sb_add(b, to + (k - from), 1);
    }
    if (c->p >= c->e) return 0;
    c->p++;
    return 1;
}

// One operand written canonically into o: a name with .attr / ['attr'] / [index] suffixes
// (messages[0]['role'] and messages[0].role both as "messages[0].role"), a string as 'text', or
// a number. Other syntax (calls, filters, arithmetic) sets bad.
static void jc_operand(jcur *c, sbuf *o) {
    jc_ws(c);
    if (c->p < c->e && (*c->p == '\'' || *c->p == '"')) {
        sb_puts(o, "'");
        if (!jc_string(c, o)) c->bad = 1;
        sb_puts(o, "'");
        return;
    }
    const char *a = c->p;
    while (c->p < c->e && jc_idch(*c->p)) c->p++;
    if (c->p == a) { c->bad = 1; return; }
    sb_add(o, a, (size_t)(c->p - a));
    for (;;) {
        if (c->p < c->e && *c->p == '.') {
            a = ++c->p;
            while (c->p < c->e && jc_idch(*c->p)) c->p++;
            sb_puts(o, ".");
            sb_add(o, a, (size_t)(c->p - a));
        } else if (c->p < c->e && *c->p == '[') {
            c->p++;
            jc_ws(c);
            if (c->p < c->e && (*c->p == '\'' || *c->p == '"')) {
                sb_puts(o, ".");
                if (!jc_string(c, o)) c->bad = 1;
            } else {
                a = c->p;
                while (c->p < c->e && *c->p >= '0' && *c->p <= '9') c->p++;
                sb_puts(o, "[");
                sb_add(o, a, (size_t)(c->p - a));
                sb_puts(o, "]");
            }
            if (!jc_sym(c, "]")) { c->bad = 1; return; }
        } else {
            return;
        }
    }
}

// What the walk knows: the truth of operand x alone (op NULL), of "x == y" / "x != y", or of
// "x is [not] test" (op "is", y the test name).
static tri jc_fact(const char *x, const char *op, const char *y) {
    if (!op) {
        if (!strcmp(x, "tools") || !strcmp(x, "documents")) return TRI_F; // passed as None
        if (!strcmp(x, "true") || !strcmp(x, "True") || !strcmp(x, "false") || !strcmp(x, "False"))
            return x[0] == 't' || x[0] == 'T' ? TRI_T : TRI_F;
        return !strcmp(x, "loop.first") ? TRI_T : TRI_U;
    }
    if (!strcmp(op, "is")) {
        if (strcmp(x, "tools") && strcmp(x, "documents")) return TRI_U;
        return !strcmp(y, "none") || !strcmp(y, "defined") ? TRI_T : TRI_U;
    }
    tri eq = TRI_U;
    if (!strcmp(x, "messages[0].role") && !strcmp(y, "'system'")) eq = TRI_F;
    if ((!strcmp(x, "loop.index0") && !strcmp(y, "0")) || (!strcmp(x, "loop.index") && !strcmp(y, "1"))) eq = TRI_T;
    return !strcmp(op, "==") ? eq : tri_not(eq);
}

static tri jc_or(jcur *c);

// A comparison, a test, a bare operand or a parenthesised condition.
static tri jc_cmp(jcur *c) {
    if (jc_sym(c, "(")) {
        tri v = jc_or(c);
        if (!jc_sym(c, ")")) c->bad = 1;
        return v;
    }
    sbuf x = {0}, y = {0};
    jc_operand(c, &x);
    tri v;
    if (jc_sym(c, "==")) {
        jc_operand(c, &y);
        v = jc_fact(x.s ? x.s : "", "==", y.s ? y.s : "");
    } else if (jc_sym(c, "!=")) {
        jc_operand(c, &y);
        v = jc_fact(x.s ? x.s : "", "!=", y.s ? y.s : "");
    } else if (jc_word(c, "is")) {
        int neg = jc_word(c, "not");
        jc_operand(c, &y);
        v = jc_fact(x.s ? x.s : "", "is", y.s ? y.s : "");
        if (neg) v = tri_not(v);
    } else {
        v = jc_fact(x.s ? x.s : "", NULL, NULL);
    }
    c->bad |= x.oom | y.oom;
    free(x.s);
    free(y.s);
    return v;
}

// not-expression, and-expression, or-expression (Jinja's precedence).
static tri jc_not(jcur *c) { return jc_word(c, "not") ? tri_not(jc_not(c)) : jc_cmp(c); }

static tri jc_and(jcur *c) {
    tri v = jc_not(c);
    while (!c->bad && jc_word(c, "and")) v = tri_and(v, jc_not(c));
    return v;
}

static tri jc_or(jcur *c) {
    tri v = jc_and(c);
    while (!c->bad && jc_word(c, "or")) v = tri_or(v, jc_and(c));
    return v;
}

// Truth of the condition text [p, e) under the walk's assumptions; TRI_U if it has syntax the walk
// does not read.
static tri jc_cond(const char *p, const char *e) {
    jcur c = {p, e, 0};
    tri v = jc_or(&c);
    jc_ws(&c);
    return c.bad || c.p != c.e ? TRI_U : v;
}

// Next tag at or after p: *kind '%' (statement) or '{' (output), its text [*a, *e) without the
// delimiters and white-space marks (-, +). Skips comments and respects quotes. Returns the position
// after the tag, NULL when there is none (or it is not closed).
static const char *jj_tag(const char *p, char *kind, const char **a, const char **e) {
    for (; (p = strchr(p, '{')); p++) {
        if (p[1] == '#') {
            if (!(p = strstr(p + 2, "#}"))) return NULL;
            continue;
        }
        if (p[1] != '%' && p[1] != '{') continue;
        char close = p[1] == '%' ? '%' : '}', quote = 0;
        const char *q = p + 2;
        for (; *q && (quote || q[0] != close || q[1] != '}'); q++) {
            if (quote && *q == '\\' && q[1]) q++;
            else if (quote && *q == quote) quote = 0;
            else if (!quote && (*q == '\'' || *q == '"')) quote = *q;
        }
        if (!*q) return NULL;
        *kind = p[1];
        *a = p + 2;
        *e = q;
        if (*a < *e && (**a == '-' || **a == '+')) (*a)++;
        if (*e > *a && ((*e)[-1] == '-' || (*e)[-1] == '+')) (*e)--;
        while (*e > *a && strchr(" \t\r\n", (*e)[-1])) (*e)--;
        return q + 2;
    }
    return NULL;
}

// Value of an output expression made only of string literals joined by + or ~, into b; 0 if it
// is anything else.
static int jc_literal(const char *p, const char *e, sbuf *b) {
    jcur c = {p, e, 0};
    do {
        if (!jc_string(&c, b)) return 0;
    } while (jc_sym(&c, "+") || jc_sym(&c, "~"));
    jc_ws(&c);
    return c.p == c.e && !b->oom;
}

// Whether [p, e) contains the string w.
static int jj_has(const char *p, const char *e, const char *w) {
    size_t n = strlen(w);
    for (; p + n <= e; p++)
        if (!memcmp(p, w, n)) return 1;
    return 0;
}

enum { JJ_DEPTH = 64 };

// One open block of the walk: whether its current branch runs, and whether an earlier one did.
typedef struct jframe {
    tri here, taken;
} jframe;

// Update the block stack for statement [a, e); 0 when the walk must give up (unbalanced blocks,
// too deep, raw text).
static int jj_statement(const char *a, const char *e, jframe *st, int *depth) {
    jcur c = {a, e, 0};
    static const char *const ends[] = {"endif", "endfor", "endmacro", "endcall", "endfilter", "endset", "endgeneration"};
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++)
        if (jc_word(&c, ends[i])) return *depth > 0 ? ((*depth)--, 1) : 0;
    int is_else = 0;
    if (jc_word(&c, "elif") || (is_else = jc_word(&c, "else"))) {
        if (*depth == 0) return 0;
        jframe *f = &st[*depth - 1];
        tri cond = is_else ? TRI_T : jc_cond(c.p, e);
        f->here = tri_and(tri_not(f->taken), cond);
        f->taken = tri_or(f->taken, cond);
        return 1;
    }
    if (jc_word(&c, "raw")) return 0;
    jframe f;
    if (jc_word(&c, "if")) {
        tri v = jc_cond(c.p, e);
        f = (jframe){v, v};
    } else if (jc_word(&c, "for")) { // the loop over the messages runs (its first pass); others: unknown
        tri v = e - c.p > 12 && !memcmp(e - 12, " in messages", 12) ? TRI_T : TRI_U;
        f = (jframe){v, v};
    } else if (jc_word(&c, "macro") || (jc_word(&c, "set") && !memchr(c.p, '=', (size_t)(e - c.p)))) {
        f = (jframe){TRI_F, TRI_F}; // a definition, or a block captured into a variable
    } else if (jc_word(&c, "call")) {
        f = (jframe){TRI_U, TRI_U};
    } else if (jc_word(&c, "filter") || jc_word(&c, "generation")) {
        f = (jframe){TRI_T, TRI_T};
    } else {
        return 1; // set x = ..., break, continue, do, ...: no block
    }
    if (*depth == JJ_DEPTH) return 0;
    st[(*depth)++] = f;
    return 1;
}

// The system turn a ChatML template writes when the messages start with no system message (the
// literal text, "<|im_start|>system\n...<|im_end|>\n"); NULL if it writes none or the walk cannot
// tell.
static char *chatml_default_system(const char *tmpl) {
    jframe st[JJ_DEPTH];
    int depth = 0;
    char kind;
    const char *a, *e;
    for (const char *p = tmpl; p && (p = jj_tag(p, &kind, &a, &e));) {
        if (kind == '%') {
            if (!jj_statement(a, e, st, &depth)) return NULL;
            continue;
        }
        tri path = TRI_T;
        for (int i = 0; i < depth; i++) path = tri_and(path, st[i].here);
        if (path == TRI_F) continue;
        sbuf lit = {0};
        int is_lit = jc_literal(a, e, &lit);
        if (is_lit && lit.s && !strncmp(lit.s, "<|im_start|>system", 18) && strstr(lit.s, "<|im_end|>") && path == TRI_T)
            return lit.s;
        free(lit.s);
        // a system turn we cannot decide or read, or the messages' own turns: no default
        if (jj_has(a, e, "<|im_start|>system") || (path == TRI_T && jj_has(a, e, "message"))) return NULL;
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
    hass_chat_model m = {0};
    if (t) {
        m.tmpl = hass_tokenizer_chat_template(t);
        m.bos = hass_tokenizer_text(t, hass_tokenizer_bos(t), &m.n_bos);
        m.eos = hass_tokenizer_text(t, hass_tokenizer_eos(t), &m.n_eos);
        int32_t bot = hass_tokenizer_find(t, "<|begin_of_text|>", 17);
        if (bot >= 0) m.begin_of_text = hass_tokenizer_text(t, bot, &m.n_begin_of_text);
    }
    return hass_chat_render_model(&m, template_name, messages, add_generation_prompt, out, spans, n_spans);
}

hass_err hass_chat_render_model(const hass_chat_model *model, const char *template_name, const json_t *messages,
                                int add_generation_prompt, char **out, hass_chat_span **spans, int64_t *n_spans) {
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
    const char *model_tmpl = model->tmpl;
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
    size_t nb = model->bos ? model->n_bos : 3, ne = model->eos ? model->n_eos : 4;
    const char *bos = model->bos ? model->bos : "<s>", *eos = model->eos ? model->eos : "</s>";
    sbuf b = {0};
    hass_err err = HASS_OK;
    if (!strcmp(name, "chatml")) {
        char *def = n > 0 && strcmp(ROLE(0), "system") && hass_chat_detect(model_tmpl) &&
                    !strcmp(hass_chat_detect(model_tmpl), "chatml") ? chatml_default_system(model_tmpl) : NULL;
        if (def) sb_puts(&b, def);
        free(def);
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
        const char *bos3 = model->begin_of_text ? model->begin_of_text : bos;
        size_t nb3 = model->begin_of_text ? model->n_begin_of_text : nb;
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
