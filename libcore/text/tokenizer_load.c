// tokenizer_load.c: hass_tokenizer_load picks a loader by path (folder contents, magic bytes,
// file name), and the whole-file reader the loaders share.
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "tokenizer_int.h"

// Read a whole file into a malloc'd NUL-terminated buffer.
hass_err hass_tok_read_file(const char *path, char **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (len + 1 < cap) break;
        char *p = realloc(buf, cap * 2);
        if (!p) { free(buf); buf = NULL; break; }
        buf = p;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
    if (bad) { free(buf); return hass_seterr(HASS_EIO, "%s: read error", path); }
    buf[len] = 0;
    *out = buf;
    if (n) *n = len;
    return HASS_OK;
}

// The tokenizer of the GGUF file at path.
static hass_tokenizer *load_gguf(const char *path, hass_err *err) {
    hass_gguf *g = hass_gguf_open(path, err);
    if (!g) return NULL;
    hass_tokenizer *t = hass_tokenizer_from_gguf(g, err);
    hass_gguf_free(g);
    return t;
}

// Whether the first r bytes of a file may start a JSON text ('{', '[' or white space first).
static int json_start(const char *head, size_t r) {
    return r > 0 && (head[0] == '{' || head[0] == '[' || head[0] == ' ' || head[0] == '\t' ||
                     head[0] == '\n' || head[0] == '\r');
}

hass_tokenizer *hass_tokenizer_load(const char *path, hass_err *err) {
    struct stat st;
    if (stat(path, &st)) {
        *err = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char p[4096];
    if (S_ISDIR(st.st_mode)) {
        snprintf(p, sizeof p, "%s/tokenizer.json", path);
        if (!stat(p, &st)) return hass_tok_load_tokenizer_json(p, err);
        snprintf(p, sizeof p, "%s/encoder.json", path);
        if (!stat(p, &st)) return hass_tok_load_encoder_json(path, err);
        snprintf(p, sizeof p, "%s/tokenizer.model", path);
        if (!stat(p, &st)) return hass_tokenizer_load(p, err);
        *err = hass_seterr(HASS_EFORMAT, "%s: folder has no tokenizer.json, encoder.json + vocab.bpe or tokenizer.model", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) { *err = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno)); return NULL; }
    char magic[4] = {0};
    size_t r = fread(magic, 1, 4, f);
    fclose(f);
    if (r == 4 && !memcmp(magic, "GGUF", 4)) return load_gguf(path, err);
    if (r >= 1 && magic[0] == 0x0A) { // protobuf field 1, length-delimited: SentencePiece ModelProto
        hass_tokenizer *t = hass_tok_load_spm_model(path, err);
        snprintf(p, sizeof p, "%s", path);
        char *slash = strrchr(p, '/');
        snprintf(slash ? slash + 1 : p, sizeof p - (size_t)(slash ? slash + 1 - p : 0), "tokenizer_config.json");
        struct stat cst;
        if (t && !stat(p, &cst) && (*err = hass_tokenizer_apply_config(t, p))) { hass_tokenizer_free(t); return NULL; }
        return t;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strcmp(base, "encoder.json")) {
        snprintf(p, sizeof p, "%.*s", (int)(base - path), path);
        return hass_tok_load_encoder_json(p[0] ? p : ".", err);
    }
    // neither GGUF, protobuf nor JSON: the GGUF reader says what is wrong (empty file, bad magic)
    if (!json_start(magic, r)) return load_gguf(path, err);
    return hass_tok_load_tokenizer_json(path, err);
}
