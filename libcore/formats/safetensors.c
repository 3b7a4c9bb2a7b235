// safetensors.c: mmapped, bounds-checked safetensors reader and atomic writer.
#include "safetensors.h"
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADER (100ull << 20) // 100 MiB of JSON header at most

struct hass_st {
    char *path;             // owned copy
    const uint8_t *map;     // whole file
    uint64_t size;          // file size
    json_t *header;         // parsed header (owns the name strings)
    int64_t n_tensors;
    hass_st_tensor *tensors; // (n_tensors)
    int64_t n_meta;
    const char **meta;      // (2 * n_meta) key, value pairs borrowed from header
};

static const char *DTYPE_NAMES[] = {"F32", "F16", "BF16", "F64", "I64",
                                    "I32", "I16", "I8",   "U8",  "BOOL"};
static const int DTYPE_SIZES[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

int hass_st_dtype_size(hass_st_dtype t) { return DTYPE_SIZES[t]; }
const char *hass_st_dtype_name(hass_st_dtype t) { return DTYPE_NAMES[t]; }

// dtype from its name; -1 if unknown.
static int dtype_from_name(const char *s) {
    for (int i = 0; i < (int)(sizeof DTYPE_NAMES / sizeof *DTYPE_NAMES); i++)
        if (!strcmp(s, DTYPE_NAMES[i])) return i;
    return -1;
}

// Check and fill one tensor entry of the header.
static hass_err parse_entry(hass_st *st, const char *name, json_t *v, const uint8_t *data,
                            uint64_t data_bytes, hass_st_tensor *t) {
    const char *p = st->path;
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) || json_array_size(off) != 2)
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': needs dtype, shape and data_offsets[2]", p, name);
    int d = dtype_from_name(json_string_value(dt));
    if (d < 0)
        return hass_seterr(HASS_EUNSUP, "%s: tensor '%s': unsupported dtype %s", p, name, json_string_value(dt));
    t->name = name;
    t->dtype = (hass_st_dtype)d;
    size_t nd = json_array_size(sh);
    if (nd > HASS_ST_MAX_DIMS) return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': %zu dims (max 8)", p, name, nd);
    t->n_dims = (int)nd;
    uint64_t n_el = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *x = json_array_get(sh, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > (1ll << 40))
            return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': bad shape[%zu]", p, name, i);
        t->shape[i] = json_integer_value(x);
        if (t->shape[i] && n_el > (1ull << 62) / (uint64_t)t->shape[i])
            return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': shape overflows", p, name);
        n_el *= (uint64_t)t->shape[i];
    }
    json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': bad data_offsets", p, name);
    uint64_t beg = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
    t->n_bytes = n_el * (uint64_t)DTYPE_SIZES[d];
    if (end - beg != t->n_bytes)
        return hass_seterr(HASS_EFORMAT,
                           "%s: tensor '%s': data_offsets span %llu bytes but the shape needs %llu",
                           p, name, (unsigned long long)(end - beg), (unsigned long long)t->n_bytes);
    if (end > data_bytes)
        return hass_seterr(HASS_EFORMAT,
                           "%s: tensor '%s': data [%llu, %llu) runs past the end of the file "
                           "(%llu data bytes): file truncated?",
                           p, name, (unsigned long long)beg, (unsigned long long)end,
                           (unsigned long long)data_bytes);
    t->data = data + beg;
    return HASS_OK;
}

// Parse the header and the tensor table.
static hass_err parse(hass_st *st) {
    if (st->size < 8) return hass_seterr(HASS_EFORMAT, "%s: file too short for a safetensors header", st->path);
    uint64_t hb = 0;
    for (int i = 7; i >= 0; i--) hb = hb << 8 | st->map[i];
    if (hb > st->size - 8 || hb > MAX_HEADER)
        return hass_seterr(HASS_EFORMAT, "%s: header length %llu exceeds the file (%llu bytes): "
                           "not a safetensors file or truncated",
                           st->path, (unsigned long long)hb, (unsigned long long)st->size);
    json_error_t je;
    st->header = json_loadb((const char *)st->map + 8, hb, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(st->header))
        return hass_seterr(HASS_EFORMAT, "%s: header is not a JSON object: %s", st->path,
                           st->header ? "wrong type" : je.text);
    uint64_t data_bytes = st->size - 8 - hb;
    size_t n = json_object_size(st->header);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->meta = calloc(2 * (n ? n : 1), sizeof *st->meta);
    if (!st->tensors || !st->meta) return hass_seterr(HASS_ENOMEM, "%s: out of memory", st->path);
    const char *key;
    json_t *v;
    json_object_foreach(st->header, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) return hass_seterr(HASS_EFORMAT, "%s: __metadata__ is not an object", st->path);
            size_t nm = json_object_size(v);
            const char **m = realloc(st->meta, 2 * (nm ? nm : 1) * sizeof *m);
            if (!m) return hass_seterr(HASS_ENOMEM, "%s: out of memory", st->path);
            st->meta = m;
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv))
                    return hass_seterr(HASS_EFORMAT, "%s: __metadata__ value of '%s' is not a string", st->path, mk);
                st->meta[2 * st->n_meta] = mk;
                st->meta[2 * st->n_meta + 1] = json_string_value(mv);
                st->n_meta++;
            }
            continue;
        }
        if (!json_is_object(v)) return hass_seterr(HASS_EFORMAT, "%s: tensor '%s' is not an object", st->path, key);
        hass_err e = parse_entry(st, key, v, st->map + 8 + hb, data_bytes, &st->tensors[st->n_tensors]);
        if (e) return e;
        st->n_tensors++;
    }
    return HASS_OK;
}

// Open and validate a file.
hass_st *hass_st_open(const char *path, hass_err *err) {
    hass_st *st = calloc(1, sizeof *st);
    hass_err e = HASS_OK;
    if (!st || !(st->path = strdup(path))) {
        free(st);
        *err = hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    if ((e = hass_file_map(path, &st->map, &st->size))) goto fail;
    if ((e = parse(st))) goto fail;
    *err = HASS_OK;
    return st;
fail:
    hass_st_free(st);
    *err = e;
    return NULL;
}

// Release everything.
void hass_st_free(hass_st *st) {
    if (!st) return;
    hass_file_unmap(st->map, st->size);
    json_decref(st->header);
    free(st->tensors);
    free(st->meta);
    free(st->path);
    free(st);
}

const char *hass_st_path(const hass_st *st) { return st->path; }
int64_t hass_st_n_tensors(const hass_st *st) { return st->n_tensors; }
const hass_st_tensor *hass_st_tensor_at(const hass_st *st, int64_t i) { return &st->tensors[i]; }
int64_t hass_st_n_meta(const hass_st *st) { return st->n_meta; }

// Tensor by name (linear; heads and shards hold at most a few hundred).
const hass_st_tensor *hass_st_find(const hass_st *st, const char *name) {
    for (int64_t i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

// Metadata value by key.
const char *hass_st_meta(const hass_st *st, const char *key) {
    for (int64_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[2 * i], key)) return st->meta[2 * i + 1];
    return NULL;
}

// Metadata entry i.
void hass_st_meta_at(const hass_st *st, int64_t i, const char **key, const char **value) {
    *key = st->meta[2 * i];
    *value = st->meta[2 * i + 1];
}

// Write all of buf to fd; HASS_EIO with the path on failure.
static hass_err write_all(int fd, const void *buf, size_t n, const char *path) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return hass_seterr(HASS_EIO, "%s: write: %s", path, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return HASS_OK;
}

// Build the JSON header for the tensors; returns a malloc'd string padded to a multiple of 8.
static char *build_header(const hass_st_tensor *t, int n, const char *const *meta, size_t *len) {
    json_t *h = json_object();
    if (meta && meta[0]) {
        json_t *m = json_object();
        for (int i = 0; meta[i] && meta[i + 1]; i += 2) json_object_set_new(m, meta[i], json_string(meta[i + 1]));
        json_object_set_new(h, "__metadata__", m);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        json_t *sh = json_array();
        for (int d = 0; d < t[i].n_dims; d++) json_array_append_new(sh, json_integer(t[i].shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", DTYPE_NAMES[t[i].dtype], "shape", sh,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + t[i].n_bytes));
        json_object_set_new(h, t[i].name, e);
        off += t[i].n_bytes;
    }
    char *s = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!s) return NULL;
    size_t l = strlen(s), padded = (l + 7) / 8 * 8;
    char *r = realloc(s, padded + 1);
    if (!r) {
        free(s);
        return NULL;
    }
    memset(r + l, ' ', padded - l);
    r[padded] = 0;
    *len = padded;
    return r;
}

// Write a safetensors file atomically.
hass_err hass_st_write(const char *path, const hass_st_tensor *tensors, int n_tensors,
                       const char *const *meta) {
    for (int i = 0; i < n_tensors; i++) {
        uint64_t n_el = 1;
        for (int d = 0; d < tensors[i].n_dims; d++) n_el *= (uint64_t)tensors[i].shape[d];
        if (n_el * (uint64_t)DTYPE_SIZES[tensors[i].dtype] != tensors[i].n_bytes)
            return hass_seterr(HASS_EINVAL, "%s: tensor '%s': n_bytes %llu disagrees with its shape",
                               path, tensors[i].name, (unsigned long long)tensors[i].n_bytes);
    }
    size_t hl = 0;
    char *hdr = build_header(tensors, n_tensors, meta, &hl);
    if (!hdr) return hass_seterr(HASS_ENOMEM, "%s: out of memory for the header", path);
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp) {
        free(hdr);
        return hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, pl + 32, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    hass_err e = HASS_OK;
    if (fd < 0) {
        e = hass_seterr(HASS_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    if ((e = write_all(fd, len8, 8, tmp)) || (e = write_all(fd, hdr, hl, tmp))) goto out;
    for (int i = 0; i < n_tensors && !e; i++) e = write_all(fd, tensors[i].data, tensors[i].n_bytes, tmp);
    if (e) goto out;
    if (fsync(fd) != 0) {
        e = hass_seterr(HASS_EIO, "%s: fsync: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        e = hass_seterr(HASS_EIO, "%s: close: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) e = hass_seterr(HASS_EIO, "%s: rename: %s", path, strerror(errno));
out:
    if (fd >= 0) close(fd);
    if (e) unlink(tmp);
    free(tmp);
    free(hdr);
    return e;
}
