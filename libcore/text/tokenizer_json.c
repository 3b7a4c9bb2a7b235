// tokenizer_json.c: Hugging Face files: tokenizer.json (model BPE), GPT-2-style encoder.json +
// vocab.bpe, and the tokenizer_config.json beside either (special tokens, BOS/EOS, template).
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer_int.h"

// Parse a JSON file.
static json_t *load_json(const char *path, hass_err *err) {
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_ANY, &je);
    if (!j) {
        FILE *f = fopen(path, "rb");
        if (!f) *err = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
        else { fclose(f); *err = hass_seterr(HASS_EFORMAT, "%s:%d: %s", path, je.line, je.text); }
    }
    return j;
}

// Text of a token entry that is a string or {"content": string}.
static const char *token_content(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

// Add or set an added token: id, text, special flag.
static hass_err add_token(hass_tokenizer *t, int64_t id, const char *s, size_t n, int special) {
    if (id < 0 || id >= (1 << 24)) return hass_seterr(HASS_EFORMAT, "added token id %lld out of range", (long long)id);
    hass_err e = hass_tok_resize(t, (int32_t)id + 1);
    if (e) return e;
    if (t->text_len[id] != n || memcmp(tok_str(t, (int32_t)id), s, n)) e = hass_tok_set_text(t, (int32_t)id, s, n);
    t->type[id] = special ? HASS_TOKEN_CONTROL : HASS_TOKEN_USER_DEFINED;
    return e;
}

hass_err hass_tokenizer_apply_config(hass_tokenizer *t, const char *path) {
    hass_err e = HASS_OK;
    json_t *j = load_json(path, &e);
    if (!j) return e;
    if (!json_is_object(j)) {
        json_decref(j);
        return hass_seterr(HASS_EFORMAT, "%s: not a JSON object", path);
    }
    json_t *atd = json_object_get(j, "added_tokens_decoder");
    const char *key;
    json_t *val;
    json_object_foreach(atd, key, val) {
        const char *s = token_content(val);
        char *end;
        long long id = strtoll(key, &end, 10);
        if (!s || *end) continue;
        e = add_token(t, id, s, strlen(s), json_is_true(json_object_get(val, "special")));
        if (e) break;
    }
    if (!e) e = hass_tok_finish(t);
    const char *bos = token_content(json_object_get(j, "bos_token"));
    const char *eos = token_content(json_object_get(j, "eos_token"));
    if (!e && bos) {
        int32_t id = str_lookup(t, bos, strlen(bos));
        if (id >= 0) t->bos = id;
        if (!strcmp(bos, "<|begin_of_text|>") && t->kind == HASS_TOK_BPE && t->pre == PRE_GPT2) {
            hass_tokenizer_set_pre(t, "llama-bpe"); // LLaMA-3 vocabulary in GPT-2 files
            t->add_bos = 1;
        }
    }
    if (!e && eos) {
        int32_t id = str_lookup(t, eos, strlen(eos));
        if (id >= 0) t->eos = id;
    }
    json_t *ab = json_object_get(j, "add_bos_token");
    if (json_is_boolean(ab)) t->add_bos = json_is_true(ab);
    json_t *ct = json_object_get(j, "chat_template");
    const char *cts = json_string_value(ct);
    if (json_is_array(ct)) { // [{"name": "default", "template": "..."}]
        size_t i;
        json_array_foreach(ct, i, val) {
            const char *nm = json_string_value(json_object_get(val, "name"));
            if (nm && !strcmp(nm, "default")) cts = json_string_value(json_object_get(val, "template"));
        }
    }
    if (!e && cts) {
        free(t->chat_template);
        t->chat_template = strdup(cts);
        if (!t->chat_template) e = hass_seterr(HASS_ENOMEM, "tokenizer: out of memory");
    }
    if (!e) e = hass_tok_finish(t); // eos may have changed
    json_decref(j);
    return e;
}

// Load GPT-2-style encoder.json + vocab.bpe from a folder.
hass_tokenizer *hass_tok_load_encoder_json(const char *dir, hass_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    json_t *enc = load_json(path, err);
    if (!enc) return NULL;
    if (!json_is_object(enc)) {
        json_decref(enc);
        *err = hass_seterr(HASS_EFORMAT, "%s: not a JSON object", path);
        return NULL;
    }
    hass_tokenizer *t = hass_tok_new(HASS_TOK_BPE, err);
    if (!t) { json_decref(enc); return NULL; }
    hass_err e = HASS_OK;
    const char *key;
    json_t *val;
    int64_t max_id = -1;
    json_object_foreach(enc, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24)) {
            e = hass_seterr(HASS_EFORMAT, "%s: id of \"%s\" is not a token id", path, key);
            break;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    if (!e && max_id < 0) e = hass_seterr(HASS_EFORMAT, "%s: empty vocabulary", path);
    if (!e) e = hass_tok_resize(t, (int32_t)max_id + 1);
    if (!e) {
        json_object_foreach(enc, key, val) {
            int32_t id = (int32_t)json_integer_value(val);
            e = hass_tok_set_text(t, id, key, strlen(key));
            t->type[id] = HASS_TOKEN_NORMAL;
            if (e) break;
        }
    }
    json_decref(enc);
    char *bpe = NULL;
    size_t bpe_len = 0;
    if (!e) {
        snprintf(path, sizeof path, "%s/vocab.bpe", dir);
        e = hass_tok_read_file(path, &bpe, &bpe_len);
    }
    for (size_t i = 0; !e && i < bpe_len;) {
        size_t j = i;
        while (j < bpe_len && bpe[j] != '\n') j++;
        size_t l = j;
        if (l > i && bpe[l - 1] == '\r') l--;
        if (l > i && !(i == 0 && !strncmp(bpe, "#version", 8))) e = hass_tok_add_merge(t, bpe + i, l - i);
        i = j + 1;
    }
    free(bpe);
    if (!e) e = hass_tok_finish(t);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    struct stat st;
    if (!e && !stat(path, &st)) e = hass_tokenizer_apply_config(t, path);
    if (e) { hass_tokenizer_free(t); *err = e; return NULL; }
    return t;
}

// Whether a tokenizer.json pre-tokenizer/normalizer tree contains a node of type ty (and, when
// pat is given, a Split whose regex contains pat).
static int json_has(const json_t *node, const char *ty, const char *pat) {
    if (!node || json_is_null(node)) return 0;
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) if (json_has(v, ty, pat)) return 1;
        return 0;
    }
    if (!json_is_object(node)) return 0;
    const char *t = json_string_value(json_object_get(node, "type"));
    if (t && !strcmp(t, ty)) {
        if (!pat) return 1;
        const char *re = json_string_value(json_object_get(json_object_get(node, "pattern"), "Regex"));
        if (re && strstr(re, pat)) return 1;
    }
    const char *subs[] = {"pretokenizers", "normalizers", "decoders"};
    for (int i = 0; i < 3; i++)
        if (json_has(json_object_get(node, subs[i]), ty, pat)) return 1;
    return 0;
}

// Load a Hugging Face tokenizer.json (model BPE).
hass_tokenizer *hass_tok_load_tokenizer_json(const char *path, hass_err *err) {
    json_t *j = load_json(path, err);
    if (!j) return NULL;
    json_t *model = json_object_get(j, "model");
    const char *mt = json_string_value(json_object_get(model, "type"));
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    if (!mt || strcmp(mt, "BPE") || !json_is_object(vocab) || !json_is_array(merges)) {
        *err = hass_seterr(HASS_EUNSUP, "%s: model type %s is not supported (BPE with vocab and merges)",
                           path, mt ? mt : "(missing)");
        json_decref(j);
        return NULL;
    }
    json_t *norm = json_object_get(j, "normalizer"), *pret = json_object_get(j, "pre_tokenizer");
    int spm = json_is_true(json_object_get(model, "byte_fallback")) || json_has(pret, "Metaspace", NULL) ||
              json_has(norm, "Prepend", NULL);
    hass_tokenizer *t = hass_tok_new(spm ? HASS_TOK_SPM : HASS_TOK_BPE, err);
    if (!t) { json_decref(j); return NULL; }
    hass_err e = HASS_OK;
    const char *key;
    json_t *val;
    int64_t max_id = -1;
    json_object_foreach(vocab, key, val) {
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    json_t *added = json_object_get(j, "added_tokens");
    size_t i;
    json_array_foreach(added, i, val) {
        if (json_integer_value(json_object_get(val, "id")) > max_id) max_id = json_integer_value(json_object_get(val, "id"));
    }
    if (max_id < 0 || max_id >= (1 << 24)) e = hass_seterr(HASS_EFORMAT, "%s: bad vocabulary size", path);
    if (!e) e = hass_tok_resize(t, (int32_t)max_id + 1);
    json_object_foreach(vocab, key, val) {
        if (e) break;
        int64_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0) { e = hass_seterr(HASS_EFORMAT, "%s: bad id of \"%s\"", path, key); break; }
        e = hass_tok_set_text(t, (int32_t)id, key, strlen(key));
        t->type[id] = HASS_TOKEN_NORMAL;
        t->score[id] = -1e30f;
        unsigned bv;
        if (spm && strlen(key) == 6 && sscanf(key, "<0x%2X>", &bv) == 1) t->type[id] = HASS_TOKEN_BYTE;
    }
    json_array_foreach(merges, i, val) {
        if (e) break;
        if (json_is_string(val)) e = hass_tok_add_merge(t, json_string_value(val), json_string_length(val));
        else if (json_is_array(val) && json_array_size(val) == 2) {
            const char *a = json_string_value(json_array_get(val, 0)), *b = json_string_value(json_array_get(val, 1));
            if (!a || !b) continue;
            size_t la = strlen(a), lb = strlen(b);
            char *s = malloc(la + lb + 2);
            if (!s) { e = hass_seterr(HASS_ENOMEM, "tokenizer: out of memory"); break; }
            memcpy(s, a, la); s[la] = ' '; memcpy(s + la + 1, b, lb);
            e = hass_tok_add_merge(t, s, la + lb + 1);
            free(s);
        }
    }
    json_array_foreach(added, i, val) {
        if (e) break;
        const char *s = json_string_value(json_object_get(val, "content"));
        if (s) e = add_token(t, json_integer_value(json_object_get(val, "id")), s, strlen(s),
                             json_is_true(json_object_get(val, "special")));
    }
    if (!e && !spm) {
        if (json_has(pret, "Split", "\\p{N}{1,3}")) hass_tokenizer_set_pre(t, "llama-bpe");
        else if (json_has(pret, "Split", "\\p{N}|")) hass_tokenizer_set_pre(t, "qwen2");
        else if (json_has(pret, "Digits", NULL)) hass_tokenizer_set_pre(t, "smollm");
        else hass_tokenizer_set_pre(t, "gpt-2");
        json_t *im = json_object_get(model, "ignore_merges");
        if (json_is_boolean(im)) t->ignore_merges = json_is_true(im);
        t->add_bos = 0;
    }
    if (spm) {
        t->add_space_prefix = json_has(norm, "Prepend", NULL) ||
                              json_is_true(json_object_get(pret, "add_prefix_space")) ||
                              (json_has(pret, "Metaspace", NULL) && !json_has(norm, "Replace", NULL));
        const char *ps = json_string_value(json_object_get(pret, "prepend_scheme"));
        if (ps && !strcmp(ps, "never")) t->add_space_prefix = 0;
    }
    if (!e) e = hass_tok_finish(t);
    if (!e) {
        // defaults before the config: <s>/</s>/<unk> by name
        int32_t id;
        if ((id = str_lookup(t, "<s>", 3)) >= 0) t->bos = id;
        if ((id = str_lookup(t, "</s>", 4)) >= 0) t->eos = id;
        if ((id = str_lookup(t, "<unk>", 5)) >= 0) t->unk = id;
        const char *unk = json_string_value(json_object_get(model, "unk_token"));
        if (unk && (id = str_lookup(t, unk, strlen(unk))) >= 0) t->unk = id;
    }
    json_decref(j); // after the last use of model (it lives inside j)
    // tokenizer_config.json beside it
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", path);
    char *slash = strrchr(cfg, '/');
    snprintf(slash ? slash + 1 : cfg, sizeof cfg - (size_t)(slash ? slash + 1 - cfg : 0), "tokenizer_config.json");
    struct stat st;
    if (!e && !stat(cfg, &st)) e = hass_tokenizer_apply_config(t, cfg);
    if (!e) e = hass_tok_finish(t);
    if (e) { hass_tokenizer_free(t); *err = e; return NULL; }
    return t;
}

