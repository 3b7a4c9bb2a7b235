// tokenizer_proto.c: a SentencePiece tokenizer.model (protobuf ModelProto; BPE models only).
#include <string.h>

#include "tokenizer_int.h"

// A protobuf message being read: the bytes left.
typedef struct pb {
    const uint8_t *p, *end;
} pb;

// Read a varint; 0 on truncation.
static int pb_varint(pb *b, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) return 1;
    }
    return 0;
}

// Read a field key and, for length-delimited fields, its bounds; skip nothing. 0 at the end or
// on malformed input (*bad set).
static int pb_field(pb *b, uint32_t *field, uint32_t *wire, pb *sub, uint64_t *val, int *bad) {
    uint64_t k;
    if (b->p >= b->end) return 0;
    if (!pb_varint(b, &k)) { *bad = 1; return 0; }
    *field = (uint32_t)(k >> 3);
    *wire = (uint32_t)(k & 7);
    switch (*wire) {
    case 0: if (!pb_varint(b, val)) { *bad = 1; return 0; } return 1;
    case 1: if (b->end - b->p < 8) { *bad = 1; return 0; } memcpy(val, b->p, 8); b->p += 8; return 1;
    case 5: {
        if (b->end - b->p < 4) { *bad = 1; return 0; }
        uint32_t u;
        memcpy(&u, b->p, 4);
        *val = u;
        b->p += 4;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (!pb_varint(b, &n) || n > (uint64_t)(b->end - b->p)) { *bad = 1; return 0; }
        sub->p = b->p;
        sub->end = b->p + n;
        b->p += n;
        return 1;
    }
    default: *bad = 1; return 0;
    }
}

// Load a SentencePiece BPE tokenizer.model.
hass_tokenizer *hass_tok_load_spm_model(const char *path, hass_err *err) {
    char *data;
    size_t n;
    hass_err e = hass_tok_read_file(path, &data, &n);
    if (e) { *err = e; return NULL; }
    hass_tokenizer *t = hass_tok_new(HASS_TOK_SPM, err);
    if (!t) { free(data); return NULL; }
    pb b = {(const uint8_t *)data, (const uint8_t *)data + n}, sub;
    uint32_t field, wire;
    uint64_t val;
    int bad = 0, model_type = 2, add_prefix = 1;
    int64_t ids[4] = {0, 1, 2, -1}; // unk, bos, eos, pad
    int32_t n_tok = 0;
    while (!e && pb_field(&b, &field, &wire, &sub, &val, &bad)) {
        if (field == 1 && wire == 2) { // SentencePiece
            pb s = sub, x;
            const char *piece = "";
            size_t plen = 0;
            float score = 0;
            int type = HASS_TOKEN_NORMAL;
            while (pb_field(&s, &field, &wire, &x, &val, &bad)) {
                if (field == 1 && wire == 2) { piece = (const char *)x.p; plen = (size_t)(x.end - x.p); }
                else if (field == 2 && wire == 5) { uint32_t u = (uint32_t)val; memcpy(&score, &u, 4); }
                else if (field == 3 && wire == 0) type = (int)val;
            }
            if (!(e = hass_tok_resize(t, n_tok + 1)) && !(e = hass_tok_set_text(t, n_tok, piece, plen))) {
                t->score[n_tok] = score;
                t->type[n_tok] = (uint8_t)(type >= 1 && type <= 6 ? type : HASS_TOKEN_NORMAL);
                n_tok++;
            }
        } else if (field == 2 && wire == 2) { // TrainerSpec
            pb s = sub, x;
            while (pb_field(&s, &field, &wire, &x, &val, &bad)) {
                if (wire != 0) continue;
                if (field == 3) model_type = (int)val;
                else if (field >= 40 && field <= 43) ids[field - 40] = (int64_t)(int32_t)(uint32_t)val;
            }
        } else if (field == 3 && wire == 2) { // NormalizerSpec
            pb s = sub, x;
            while (pb_field(&s, &field, &wire, &x, &val, &bad))
                if (field == 3 && wire == 0) add_prefix = val != 0;
        }
    }
    free(data);
    if (!e && (bad || n_tok == 0)) e = hass_seterr(HASS_EFORMAT, "%s: not a SentencePiece model (bad protobuf)", path);
    if (!e && model_type != 2)
        e = hass_seterr(HASS_EUNSUP, "%s: SentencePiece model type %d is not supported (BPE only)", path, model_type);
    if (!e) {
        t->add_space_prefix = add_prefix;
        t->unk = ids[0] >= 0 && ids[0] < n_tok ? (int32_t)ids[0] : -1;
        t->bos = ids[1] >= 0 && ids[1] < n_tok ? (int32_t)ids[1] : -1;
        t->eos = ids[2] >= 0 && ids[2] < n_tok ? (int32_t)ids[2] : -1;
        t->pad = ids[3] >= 0 && ids[3] < n_tok ? (int32_t)ids[3] : -1;
        e = hass_tok_finish(t);
    }
    if (e) { hass_tokenizer_free(t); *err = e; return NULL; }
    return t;
}
