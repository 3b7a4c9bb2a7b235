// tokenizer_encode.c: encoding: special tokens split the text into runs; a SentencePiece run
// is merged by bigram score (heap), a byte-level BPE run is pre-tokenized (tokenizer_pre.c)
// and each piece merged by rank (pair hash table + heap).
#include <limits.h>

#include "tokenizer_int.h"
#include "unicode.h"

// ----------------------------------------------------------------------------------------------
// workspace and heap

// Grow the symbol arrays to n symbols (heap 3n); sets w->oom on failure.
static int ws_reserve(enc_ws *w, size_t n) {
    if (n <= w->cap_sym) return !w->oom;
    size_t c = w->cap_sym ? w->cap_sym : 256;
    while (c < n) c *= 2;
    if (!grow(&w->sid, c * sizeof *w->sid) || !grow(&w->prev, c * sizeof *w->prev) ||
        !grow(&w->next, c * sizeof *w->next) || !grow(&w->start, c * sizeof *w->start) ||
        !grow(&w->heap, 3 * c * sizeof *w->heap)) {
        w->oom = 1;
        return 0;
    }
    w->cap_sym = c;
    return 1;
}

// Append one id starting at byte off of the text (counted even past n_max).
static void emit(enc_ws *w, int32_t id, size_t off) {
    if (w->n_out < w->n_max) {
        w->out[w->n_out] = id;
        if (w->offs) w->offs[w->n_out] = (int64_t)off;
    }
    w->n_out++;
}

// Heap order: smaller key first, then smaller pos.
static int heap_less(const heap_ent *x, const heap_ent *y) {
    return x->key < y->key || (x->key == y->key && x->pos < y->pos);
}

// Push onto the workspace heap.
static void heap_push(enc_ws *w, heap_ent e) {
    int32_t i = w->n_heap++;
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (!heap_less(&e, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

// Pop the smallest entry.
static heap_ent heap_pop(enc_ws *w) {
    heap_ent top = w->heap[0], last = w->heap[--w->n_heap];
    int32_t i = 0, n = w->n_heap;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!heap_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

// ----------------------------------------------------------------------------------------------
// merging: byte-level BPE by rank, SentencePiece by score

// Queue the BPE pair (l, r) if a merge rule exists.
static void bpe_try(const hass_tokenizer *t, enc_ws *w, int32_t l, int32_t r) {
    int32_t rank, id;
    if (w->sid[l] < 0 || w->sid[r] < 0) return;
    if (merge_lookup(t, w->sid[l], w->sid[r], &rank, &id))
        heap_push(w, (heap_ent){(float)rank, l, w->sid[l], w->sid[r]});
}

// Byte-level BPE of one pre-tokenized piece (raw bytes p[0..n)).
void hass_tok_bpe_word(const hass_tokenizer *t, enc_ws *w, const unsigned char *p, int32_t n, size_t off) {
    if (n <= 0) return;
    if (t->ignore_merges || n == 1) {
        int32_t id = piece_lookup(t, p, (size_t)n);
        if (id >= 0) { emit(w, id, off); return; }
    }
    if (!ws_reserve(w, (size_t)n)) return;
    for (int32_t i = 0; i < n; i++) {
        w->sid[i] = t->byte_id[p[i]];
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < n ? i + 1 : -1;
    }
    w->n_heap = 0;
    for (int32_t i = 0; i + 1 < n; i++) bpe_try(t, w, i, i + 1);
    while (w->n_heap > 0) {
        heap_ent e = heap_pop(w);
        int32_t l = e.pos, r = w->next[l];
        if (r < 0 || w->sid[l] != e.a || w->sid[r] != e.b) continue; // stale
        int32_t rank, id = -1; // always found: bpe_try queued the pair because a rule exists
        merge_lookup(t, e.a, e.b, &rank, &id);
        w->sid[l] = id;
        w->sid[r] = -2;
        w->next[l] = w->next[r];
        if (w->next[l] >= 0) w->prev[w->next[l]] = l;
        if (w->prev[l] >= 0) bpe_try(t, w, w->prev[l], l);
        if (w->next[l] >= 0) bpe_try(t, w, l, w->next[l]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        if (w->sid[i] >= 0) emit(w, w->sid[i], off + (size_t)i);
        else if (t->unk >= 0) emit(w, t->unk, off + (size_t)i);
    }
}

// Whether id may be produced from text by SentencePiece merges.
static int spm_mergeable(const hass_tokenizer *t, int32_t id) {
    return id >= 0 && (t->type[id] == HASS_TOKEN_NORMAL || t->type[id] == HASS_TOKEN_USER_DEFINED);
}

// Queue the SPM bigram (l, r) if the joined text is a token.
static void spm_try(const hass_tokenizer *t, enc_ws *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t id = str_lookup(t, w->buf + w->start[l], (size_t)(w->sid[l] + w->sid[r]));
    if (!spm_mergeable(t, id)) return;
    heap_push(w, (heap_ent){-t->score[id], l, w->sid[l] + w->sid[r], 0});
}

// SentencePiece BPE of w->buf[0..n) (spaces already U+2581, prefix added).
static void spm_run(const hass_tokenizer *t, enc_ws *w, int32_t n) {
    int32_t ns = 0;
    if (!ws_reserve(w, (size_t)n + 1)) return;
    for (int32_t i = 0; i < n;) {
        uint32_t cp;
        int l = hass_utf8_decode((const unsigned char *)w->buf + i, (size_t)(n - i), &cp);
        if (l < 0) l = 1;
        w->start[ns] = i;
        w->sid[ns] = l; // length in bytes
        w->prev[ns] = ns - 1;
        w->next[ns] = -1;
        if (ns > 0) w->next[ns - 1] = ns;
        ns++;
        i += l;
    }
    if (ns == 0) return;
    w->n_heap = 0;
    for (int32_t i = 0; i + 1 < ns; i++) spm_try(t, w, i, i + 1);
    while (w->n_heap > 0) {
        heap_ent e = heap_pop(w);
        int32_t l = e.pos, r = w->next[l];
        if (r < 0 || w->sid[l] == 0 || w->sid[r] == 0 || w->sid[l] + w->sid[r] != e.a) continue;
        w->sid[l] += w->sid[r];
        w->sid[r] = 0;
        w->next[l] = w->next[r];
        if (w->next[l] >= 0) w->prev[w->next[l]] = l;
        spm_try(t, w, w->prev[l], l);
        spm_try(t, w, l, w->next[l]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        const char *s = w->buf + w->start[i];
        int32_t id = str_lookup(t, s, (size_t)w->sid[i]);
        if (spm_mergeable(t, id) || (id >= 0 && w->sid[i] > 0 && t->type[id] != HASS_TOKEN_CONTROL &&
                                     t->type[id] != HASS_TOKEN_BYTE && t->type[id] != HASS_TOKEN_UNKNOWN)) {
            emit(w, id, w->run_off + (size_t)w->bmap[w->start[i]]);
            continue;
        }
        for (int32_t k = 0; k < w->sid[i]; k++) { // byte fallback
            int32_t b = t->byte_id[(unsigned char)s[k]];
            size_t o = w->run_off + (size_t)w->bmap[w->start[i] + k];
            if (b >= 0) emit(w, b, o);
            else if (t->unk >= 0) emit(w, t->unk, o);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// runs and the public entry points

// Encode one run of plain text (no specials inside).
static void encode_run(const hass_tokenizer *t, enc_ws *w, const char *s, size_t n, int space_prefix) {
    if (t->kind == HASS_TOK_SPM) {
        int32_t o = 0;
        if (3 * n + 4 > w->cap_buf) {
            if (!grow(&w->buf, 3 * n + 4) || !grow(&w->bmap, (3 * n + 4) * sizeof *w->bmap)) { w->oom = 1; return; }
            w->cap_buf = 3 * n + 4;
        }
        if (space_prefix) { // the dummy prefix belongs to the first character
            memcpy(w->buf, "\xE2\x96\x81", 3);
            w->bmap[0] = w->bmap[1] = w->bmap[2] = 0;
            o = 3;
        }
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') {
                memcpy(w->buf + o, "\xE2\x96\x81", 3);
                w->bmap[o] = w->bmap[o + 1] = w->bmap[o + 2] = (int32_t)i;
                o += 3;
            } else {
                w->bmap[o] = (int32_t)i;
                w->buf[o++] = s[i];
            }
        }
        spm_run(t, w, o);
        return;
    }
    int32_t nc = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = hass_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        unsigned f;
        if (l < 0) { l = 1; f = 0; cp = 0xFFFD; } // invalid byte: its own "other" unit
        else f = hass_unicode_flags(cp);
        w->cp[nc] = cp;
        w->fl[nc] = (uint8_t)(f | UF_IN);
        w->off[nc] = (uint32_t)i;
        nc++;
        i += (size_t)l;
    }
    w->off[nc] = (uint32_t)n;
    hass_tok_pre_split(t, w, s, 0, 0, nc);
}

// Special token starting at s (n bytes left), longest first; -1 if none.
static int32_t special_at(const hass_tokenizer *t, const char *s, size_t n, int parse_special) {
    if (!t->special_first[(unsigned char)s[0]]) return -1;
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        size_t l = t->text_len[id];
        if (l > n || tok_str(t, id)[0] != s[0] || memcmp(tok_str(t, id), s, l)) continue;
        if (!parse_special && t->type[id] != HASS_TOKEN_USER_DEFINED) continue;
        return id;
    }
    return -1;
}

int64_t hass_tokenizer_encode(const hass_tokenizer *t, const char *text, size_t len, int add_bos,
                              int parse_special, int32_t *ids, int64_t n_max) {
    return hass_tokenizer_encode_offsets(t, text, len, add_bos, parse_special, ids, NULL, n_max);
}

int64_t hass_tokenizer_encode_offsets(const hass_tokenizer *t, const char *text, size_t len, int add_bos,
                                      int parse_special, int32_t *ids, int64_t *offs, int64_t n_max) {
    if (len > (size_t)INT32_MAX / 4) return INT64_MIN;
    enc_ws w = {0};
    size_t nb = t->kind == HASS_TOK_BPE ? len + 1 : 1;
    w.cp = malloc(nb * sizeof *w.cp);
    w.off = malloc((nb + 1) * sizeof *w.off);
    w.fl = malloc(nb);
    w.out = ids;
    w.offs = offs;
    w.n_max = ids ? n_max : 0;
    int64_t ret = INT64_MIN;
    if (!w.cp || !w.off || !w.fl) goto out;
    int bos = add_bos == HASS_BOS_ALWAYS || (add_bos == HASS_BOS_MODEL && t->add_bos);
    if (bos && t->bos >= 0) emit(&w, t->bos, 0);
    int prev_special = 1; // SPM: a run after the start or a special token gets the dummy prefix
    size_t run = 0;
    for (size_t i = 0; i <= len;) {
        int32_t sp = i < len && t->n_special ? special_at(t, text + i, len - i, parse_special) : -1;
        if (i < len && sp < 0) { i++; continue; }
        if (i > run) {
            w.run_off = run;
            encode_run(t, &w, text + run, i - run, t->add_space_prefix && prev_special);
            prev_special = 0;
        }
        if (sp < 0) break;
        emit(&w, sp, i);
        prev_special = 1;
        i += t->text_len[sp];
        run = i;
    }
    if (bos && t->add_eos && add_bos == HASS_BOS_MODEL && t->eos >= 0) emit(&w, t->eos, len);
    if (w.oom) goto out;
    ret = w.n_out <= n_max || (!ids && n_max == 0 && w.n_out == 0) ? w.n_out : -w.n_out;
out:
    free(w.cp); free(w.off); free(w.fl); free(w.sid); free(w.prev); free(w.next); free(w.start);
    free(w.heap); free(w.buf); free(w.bmap);
    return ret;
}

hass_err hass_tokenizer_encode_alloc(const hass_tokenizer *t, const char *text, size_t len,
                                     int add_bos, int parse_special, int32_t **ids, int64_t *n) {
    int64_t cap = (int64_t)len + 8;
    int32_t *buf = malloc((size_t)cap * sizeof *buf);
    if (!buf) return hass_seterr(HASS_ENOMEM, "tokenize: out of memory");
    int64_t r = hass_tokenizer_encode(t, text, len, add_bos, parse_special, buf, cap);
    if (r < 0 && r != INT64_MIN) { // more ids than bytes (dummy prefixes after many specials)
        cap = -r;
        free(buf);
        buf = malloc((size_t)cap * sizeof *buf);
        r = buf ? hass_tokenizer_encode(t, text, len, add_bos, parse_special, buf, cap) : INT64_MIN;
    }
    if (r < 0) {
        free(buf);
        return hass_seterr(HASS_ENOMEM, "tokenize: out of memory");
    }
    *ids = buf;
    *n = r;
    return HASS_OK;
}
