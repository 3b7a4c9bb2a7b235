// stop.c: the stop rules of a generation (see stop.h).
#include "stop.h"

#include <stdlib.h>
#include <string.h>

// Name of a finish reason.
const char *hass_finish_name(hass_finish f) {
    switch (f) {
    case HASS_FINISH_EOS: return "eos";
    case HASS_FINISH_LENGTH: return "length";
    case HASS_FINISH_STOP: return "stop";
    default: return "none";
    }
}

// Start a stop tracker.
void hass_stop_init(hass_stop *s, const hass_stop_cfg *cfg) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->stop_idx = -1;
}

// Free the tracker's text.
void hass_stop_free(hass_stop *s) {
    if (!s) return;
    free(s->text);
    s->text = NULL;
    s->len = s->cap = 0;
}

// Whether needle (n bytes) occurs in hay (h bytes).
static int contains(const char *hay, size_t h, const char *needle, size_t n) {
    if (n == 0 || n > h) return 0;
    return memmem(hay, h, needle, n) != NULL;
}

// Whether id is one of the stop ids.
static int is_stop_id(const hass_stop_cfg *c, int32_t id) {
    for (int i = 0; i < c->n_ids; i++)
        if (c->ids[i] == id) return 1;
    return 0;
}

// Append the bytes of kept token id to the text; the index of a stop string that now appears in
// it, or -1. A stop string can only newly appear in a window ending at the new bytes.
static int text_push(hass_stop *s, int32_t id) {
    const hass_stop_cfg *c = s->cfg;
    size_t plen = 0;
    const char *p = hass_tokenizer_piece(c->tok, id, &plen);
    size_t old = s->len;
    if (p && plen) {
        if (s->len + plen > s->cap) {
            size_t cap = s->cap ? s->cap : 256;
            while (cap < s->len + plen) cap *= 2;
            char *b = realloc(s->text, cap);
            if (b) s->text = b, s->cap = cap;
        }
        if (s->len + plen <= s->cap) memcpy(s->text + s->len, p, plen), s->len += plen;
    }
    for (int i = 0; i < c->n_strs && s->len > old; i++) {
        size_t n = strlen(c->strs[i]);
        size_t from = old >= n ? old - n + 1 : 0;
        if (contains(s->text + from, s->len - from, c->strs[i], n)) return i;
    }
    return -1;
}

// Offer the next token to the tracker.
hass_finish hass_stop_push(hass_stop *s, int32_t id, int *keep) {
    const hass_stop_cfg *c = s->cfg;
    *keep = 0;
    if (!c->ignore_eos && c->tok && hass_tokenizer_is_eog(c->tok, id))
        return s->finish = HASS_FINISH_EOS;
    *keep = 1;
    s->n_gen++;
    if (c->n_ids && is_stop_id(c, id)) return s->finish = HASS_FINISH_STOP;
    if (c->n_strs && c->tok && (s->stop_idx = text_push(s, id)) >= 0)
        return s->finish = HASS_FINISH_STOP;
    if (s->n_gen >= c->max_new) return s->finish = HASS_FINISH_LENGTH;
    return HASS_FINISH_NONE;
}
