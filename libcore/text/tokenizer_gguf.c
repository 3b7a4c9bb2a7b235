// tokenizer_gguf.c: the tokenizer of a GGUF file (tokenizer.ggml.* keys and
// tokenizer.chat_template).
#include <string.h>

#include "tokenizer_int.h"

hass_tokenizer *hass_tokenizer_from_gguf(const hass_gguf *g, hass_err *err) {
    const char *path = hass_gguf_path(g);
    const char *model;
    uint64_t model_len;
    if (hass_gguf_get_str(g, "tokenizer.ggml.model", &model, &model_len)) {
        *err = hass_seterr(HASS_EFORMAT, "%s: no tokenizer (tokenizer.ggml.model missing)", path);
        return NULL;
    }
    int kind;
    if (model_len == 5 && !memcmp(model, "llama", 5)) kind = HASS_TOK_SPM;
    else if (model_len == 4 && !memcmp(model, "gpt2", 4)) kind = HASS_TOK_BPE;
    else {
        *err = hass_seterr(HASS_EUNSUP, "%s: tokenizer.ggml.model '%.*s' is not supported (llama, gpt2)",
                           path, (int)model_len, model);
        return NULL;
    }
    const hass_gguf_kv *toks = hass_gguf_find(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != HASS_GGUF_ARR || toks->atype != HASS_GGUF_STR || toks->n == 0 ||
        toks->n > INT32_MAX) {
        *err = hass_seterr(HASS_EFORMAT, "%s: tokenizer.ggml.tokens missing or not a string array", path);
        return NULL;
    }
    hass_tokenizer *t = hass_tok_new(kind, err);
    if (!t) return NULL;
    hass_err e = hass_tok_resize(t, (int32_t)toks->n);
    const hass_gguf_kv *sc = hass_gguf_find(g, "tokenizer.ggml.scores");
    const hass_gguf_kv *ty = hass_gguf_find(g, "tokenizer.ggml.token_type");
    if (sc && (sc->type != HASS_GGUF_ARR || sc->n != toks->n)) sc = NULL;
    if (ty && (ty->type != HASS_GGUF_ARR || ty->n != toks->n)) ty = NULL;
    for (uint64_t i = 0; !e && i < toks->n; i++) {
        uint64_t l;
        const char *s = hass_gguf_arr_str(toks, i, &l);
        e = hass_tok_set_text(t, (int32_t)i, s ? s : "", s ? l : 0);
        t->score[i] = sc ? (float)hass_gguf_arr_num(sc, i) : 0.0f;
        double tt = ty ? hass_gguf_arr_num(ty, i) : HASS_TOKEN_NORMAL; // any number type: range first
        t->type[i] = (uint8_t)(tt >= 1 && tt <= 6 ? (int)tt : HASS_TOKEN_NORMAL);
    }
    const hass_gguf_kv *mg = hass_gguf_find(g, "tokenizer.ggml.merges");
    if (!e && kind == HASS_TOK_BPE) {
        if (!mg || mg->type != HASS_GGUF_ARR || mg->atype != HASS_GGUF_STR) {
            e = hass_seterr(HASS_EFORMAT, "%s: byte-level BPE without tokenizer.ggml.merges", path);
        } else {
            for (uint64_t i = 0; !e && i < mg->n; i++) {
                uint64_t l;
                const char *s = hass_gguf_arr_str(mg, i, &l);
                if (s) e = hass_tok_add_merge(t, s, l);
            }
        }
    }
    int64_t v;
    int b;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v) && v >= 0 && v < t->n_vocab) t->bos = (int32_t)v;
    else if (kind == HASS_TOK_SPM && t->n_vocab > 1) t->bos = 1;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &v) && v >= 0 && v < t->n_vocab) t->eos = (int32_t)v;
    else if (kind == HASS_TOK_SPM && t->n_vocab > 2) t->eos = 2;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.unknown_token_id", &v) && v >= 0 && v < t->n_vocab) t->unk = (int32_t)v;
    else if (kind == HASS_TOK_SPM) t->unk = 0;
    if (!hass_gguf_get_i64(g, "tokenizer.ggml.padding_token_id", &v) && v >= 0 && v < t->n_vocab) t->pad = (int32_t)v;
    const char *pre;
    uint64_t pre_len;
    if (!e && kind == HASS_TOK_BPE && !hass_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pre_len)) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(pre_len < 63 ? pre_len : 63), pre);
        if (hass_tokenizer_set_pre(t, name)) {
            HASS_WARN("%s: pre-tokenizer '%s' is not known; using the GPT-2 rules", path, name);
            hass_tokenizer_set_pre(t, "gpt-2");
        }
    }
    if (t->pre == PRE_LLAMA3) t->add_bos = 1;
    if (!hass_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (!hass_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (!hass_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;
    const char *ct;
    uint64_t ct_len;
    if (!e && !hass_gguf_get_str(g, "tokenizer.chat_template", &ct, &ct_len)) {
        t->chat_template = malloc(ct_len + 1);
        if (!t->chat_template) e = hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
        else { memcpy(t->chat_template, ct, ct_len); t->chat_template[ct_len] = 0; }
    }
    if (!e) e = hass_tok_finish(t);
    if (e) {
        hass_tokenizer_free(t);
        *err = e;
        return NULL;
    }
    return t;
}
