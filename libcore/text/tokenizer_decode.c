// tokenizer_decode.c: decoding: the bytes of each token (built once into the piece table) and
// the UTF-8-safe incremental detokenizer.
#include "tokenizer_int.h"
#include "unicode.h"

// ----------------------------------------------------------------------------------------------
// token bytes

// Decoded bytes of token id into buf (>= 4 * text_len bytes); returns the length.
size_t hass_tok_decode_token(const hass_tokenizer *t, int32_t id, char *buf) {
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
        int b = l > 0 ? hass_tok_gpt2_cp_byte(cp) : -1;
        if (b >= 0) { buf[o++] = (char)b; i += (size_t)l; }
        else if (l > 0) { memcpy(buf + o, s + i, (size_t)l); o += (size_t)l; i += (size_t)l; }
        else buf[o++] = s[i++];
    }
    return o;
}

const char *hass_tokenizer_piece(const hass_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->piece_len[id];
    return t->piece + t->piece_off[id];
}

// ----------------------------------------------------------------------------------------------
// the detokenizer

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
    size_t n = 0; // set by hass_tokenizer_piece: id is in range
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
