// convo.c: conversation records -> rendered text, assistant spans, tokens and loss mask (see
// convo.h).
#include "convo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// Role of a ShareGPT "from" or "role" value: 0 system, 1 user, 2 assistant, -1 unknown.
static int role_of(const char *r) {
    static const char *user[] = {"human", "user"};
    static const char *asst[] = {"gpt", "chatgpt", "bard", "bing", "assistant", "model"};
    if (!strcmp(r, "system")) return 0;
    for (size_t i = 0; i < sizeof user / sizeof *user; i++)
        if (!strcmp(r, user[i])) return 1;
    for (size_t i = 0; i < sizeof asst / sizeof *asst; i++)
        if (!strcmp(r, asst[i])) return 2;
    return -1;
}

// Normalised {"role","content"} array of a record.
json_t *hass_convo_messages(const json_t *rec, const char **why) {
    static const char *names[] = {"system", "user", "assistant"};
    const json_t *arr = json_object_get(rec, "conversations");
    const char *rk = "from", *ck = "value";
    if (!arr) arr = json_object_get(rec, "messages"), rk = "role", ck = "content";
    if (!json_is_array(arr)) {
        *why = "no \"conversations\" or \"messages\" array";
        return NULL;
    }
    json_t *out = json_array();
    int want = 1; // next expected role once started (1 user, 2 assistant)
    int started = 0, n_asst = 0;
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m) {
        const char *r = json_string_value(json_object_get(m, rk));
        const char *c = json_string_value(json_object_get(m, ck));
        if (!r || !c) {
            *why = "a message lacks its role or text";
            goto bad;
        }
        int ro = role_of(r);
        if (ro < 0) {
            *why = "unknown role";
            goto bad;
        }
        if (ro == 0) {
            if (i != 0) {
                *why = "a system message after the first";
                goto bad;
            }
        } else if (!started) {
            if (ro != 1) continue; // drop turns before the first user turn
            started = 1;
        }
        if (ro != 0) {
            if (ro != want) {
                *why = "roles do not alternate user/assistant";
                goto bad;
            }
            want = 3 - want;
            n_asst += ro == 2;
        }
        json_array_append_new(out, json_pack("{s:s,s:s}", "role", names[ro], "content", c));
    }
    if (n_asst == 0) {
        *why = "no assistant reply";
        goto bad;
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

// Walk a JSON array file or a JSONL file.
hass_err hass_convo_read(const char *path, hass_convo_fn fn, void *ctx) {
    FILE *f = fopen(path, "rb");
    if (!f) return hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\r' || c == '\t') {}
    if (c == '[') { // one JSON array
        rewind(f);
        json_error_t je;
        json_t *root = json_loadf(f, 0, &je);
        fclose(f);
        if (!json_is_array(root)) {
            json_decref(root);
            return hass_seterr(HASS_EFORMAT, "%s:%d: %s", path, je.line, root ? "not an array" : je.text);
        }
        size_t i;
        json_t *rec;
        int rc = 0;
        json_array_foreach(root, i, rec) if ((rc = fn(ctx, (int64_t)i, rec))) break;
        json_decref(root);
        return (hass_err)rc;
    }
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t lineno = 0, idx = 0;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n == 0 || strspn(line, " \t\r\n") == (size_t)n) continue;
        json_error_t je;
        json_t *rec = json_loadb(line, (size_t)n, 0, &je);
        if (!rec) {
            rc = hass_seterr(HASS_EFORMAT, "%s:%lld: %s", path, (long long)lineno, je.text);
            break;
        }
        rc = fn(ctx, idx++, rec);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return (hass_err)rc;
}

// Render, then find each assistant reply's span by rendering prefixes.
hass_err hass_convo_render(hass_convo_render_fn render, void *rctx, const json_t *messages, char **text,
                           size_t *len, size_t **spans, int *n_spans) {
    *text = NULL, *spans = NULL, *n_spans = 0;
    hass_err e = render(rctx, messages, 0, text);
    if (e) return e;
    *len = strlen(*text);
    size_t n = json_array_size(messages);
    *spans = malloc(sizeof(size_t) * 2 * (n ? n : 1));
    json_t *pre = json_array();
    if (!*spans || !pre) {
        json_decref(pre);
        return hass_seterr(HASS_ENOMEM, "hass_convo_render: out of memory");
    }
    for (size_t k = 0; k < n && !e; k++) {
        json_t *m = json_array_get(messages, k);
        if (!strcmp(json_string_value(json_object_get(m, "role")), "assistant")) {
            char *a = NULL, *b = NULL;
            e = render(rctx, pre, 1, &a);
            json_array_append(pre, m);
            if (!e) e = render(rctx, pre, 0, &b);
            if (!e) {
                size_t la = strlen(a), lb = strlen(b);
                if (la > lb || lb > *len || memcmp(a, b, la) || memcmp(b, *text, lb))
                    e = hass_seterr(HASS_EFORMAT, "message %zu: the chat template does not render prefixes "
                                    "consistently; cannot locate the assistant reply", k);
                while (lb > la && strchr(" \t\r\n", b[lb - 1])) lb--;
                (*spans)[2 * *n_spans] = la, (*spans)[2 * *n_spans + 1] = lb;
                (*n_spans)++;
            }
            free(a), free(b);
        } else {
            json_array_append(pre, m);
        }
    }
    json_decref(pre);
    if (e) {
        free(*text), free(*spans);
        *text = NULL, *spans = NULL;
    }
    return e;
}

// Tokenize and mark tokens whose byte range overlaps a span.
hass_err hass_convo_tokens(const hass_tokenizer *t, const char *text, size_t len, const size_t *spans,
                           int n_spans, int32_t **ids, uint8_t **mask, int64_t *n) {
    *ids = NULL, *mask = NULL;
    hass_err e = hass_tokenizer_encode_alloc(t, text, len, HASS_BOS_MODEL, 1, ids, n);
    if (e) return e;
    if (!(*mask = calloc((size_t)(*n ? *n : 1), 1))) {
        free(*ids);
        return hass_seterr(HASS_ENOMEM, "hass_convo_tokens: out of memory");
    }
    int64_t first = 0;
    size_t off = 0;
    if (*n > 0 && hass_tokenizer_add_bos(t) && (*ids)[0] == hass_tokenizer_bos(t)) first = 1; // BOS: not in text
    for (int64_t i = first; i < *n; i++) {
        size_t pl;
        const char *p = hass_tokenizer_piece(t, (*ids)[i], &pl);
        if (i == first && pl > 0 && p[0] == ' ' && (len == 0 || text[0] != ' ') &&
            hass_tokenizer_kind(t) == HASS_TOK_SPM)
            p++, pl--; // SentencePiece dummy prefix
        if (!p || off + pl > len || memcmp(text + off, p, pl)) {
            free(*ids), free(*mask);
            *ids = NULL, *mask = NULL;
            return hass_seterr(HASS_EUNSUP, "token %lld does not reproduce the text at byte %zu; no offsets for "
                               "the loss mask", (long long)i, off);
        }
        for (int s = 0; s < n_spans; s++)
            if (off < spans[2 * s + 1] && off + pl > spans[2 * s]) (*mask)[i] = 1;
        off += pl;
    }
    return HASS_OK;
}
