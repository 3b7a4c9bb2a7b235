// gguf.c: bounds-checked GGUF reader over a read-only mmap.
#include "gguf.h"
#include "mapfile.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Hard limits, checked before allocating.
#define MAX_KV (1u << 20)
#define MAX_TENSORS (1u << 20)
#define MAX_KEY 65535
#define MAX_ALIGN (1u << 20)

struct hass_gguf {
    char *path;              // owned copy
    const uint8_t *map;      // the whole file
    uint64_t size;           // file size
    uint32_t version;        // 1, 2 or 3
    uint64_t alignment;      // general.alignment or 32
    uint64_t data_off;       // start of the tensor data section
    int64_t n_kv;            // metadata count
    int64_t kv_cap;          // entries allocated (all freed, parsed or not)
    hass_gguf_kv *kv;        // (n_kv)
    int64_t n_tensors;       // tensor count
    hass_gguf_tensor *tensors; // (n_tensors)
    char *names;             // key and tensor name storage (NUL-terminated copies)
};

// Cursor over the map; every read checks the bytes left.
typedef struct cursor {
    const hass_gguf *g;
    uint64_t pos;
    const char *what; // field being read, for messages
} cursor;

// Fail with a message naming the file, offset and field.
static hass_err bad(cursor *c, const char *msg) {
    return hass_seterr(HASS_EFORMAT, "%s: offset %llu: %s: %s", c->g->path,
                       (unsigned long long)c->pos, c->what, msg);
}

// Take n bytes from the cursor, or fail if the file ends first.
static hass_err take(cursor *c, uint64_t n, const uint8_t **p) {
    if (n > c->g->size - c->pos) return bad(c, "file truncated");
    *p = c->g->map + c->pos;
    c->pos += n;
    return HASS_OK;
}

static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_u64(const uint8_t *p) { return rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32; }

// Read a u32.
static hass_err get_u32(cursor *c, uint32_t *v) {
    const uint8_t *p = NULL;
    hass_err e = take(c, 4, &p);
    if (!e) *v = rd_u32(p);
    return e;
}

// Read a count or length: u32 in v1, u64 later.
static hass_err get_count(cursor *c, uint64_t *v) {
    const uint8_t *p = NULL;
    int w = c->g->version == 1 ? 4 : 8;
    hass_err e = take(c, (uint64_t)w, &p);
    if (!e) *v = w == 4 ? rd_u32(p) : rd_u64(p);
    return e;
}

// Check the count v of `what`, read at offset at: over max (pass 0) or more entries of min_bytes
// each (pass 1) than the bytes after the counts can hold fails naming the count's own offset.
static hass_err check_count(const cursor *c, int pass, const char *what, uint64_t at, uint64_t v,
                            uint64_t max, uint64_t min_bytes) {
    if (pass == 0 ? v <= max : v <= (c->g->size - c->pos) / min_bytes) return HASS_OK;
    return hass_seterr(HASS_EFORMAT, "%s: offset %llu: %s: %llu is over the %s", c->g->path,
                       (unsigned long long)at, what, (unsigned long long)v,
                       pass == 0 ? "limit" : "entries the rest of the file can hold");
}

// Read a string (length + bytes) without copying.
static hass_err get_str(cursor *c, const uint8_t **s, uint64_t *len) {
    hass_err e = get_count(c, len);
    if (e) return e;
    if (*len > c->g->size - c->pos) return bad(c, "string length runs past the end of the file");
    return take(c, *len, s);
}

// Size of a scalar value type; 0 for STR/ARR/unknown.
static int vtype_size(uint32_t t) {
    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : 0;
}

const char *hass_gguf_vtype_name(int t) {
    static const char *nm[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                               "bool", "str", "arr", "u64", "i64", "f64"};
    return t >= 0 && t < 13 ? nm[t] : "?";
}

// Block size and bytes per block of a ggml type; 0 when unknown.
static void type_block(int type, int *blk, int *bytes) {
    *blk = 1;
    switch (type) {
    case HASS_GGML_F32: *bytes = 4; return;
    case HASS_GGML_F16: *bytes = 2; return;
    case HASS_GGML_BF16: *bytes = 2; return;
    case HASS_GGML_I8: *bytes = 1; return;
    case HASS_GGML_I16: *bytes = 2; return;
    case HASS_GGML_I32: *bytes = 4; return;
    case HASS_GGML_I64: *bytes = 8; return;
    case HASS_GGML_F64: *bytes = 8; return;
    case HASS_GGML_Q4_0: *blk = 32; *bytes = 18; return;
    case HASS_GGML_Q4_1: *blk = 32; *bytes = 20; return;
    case HASS_GGML_Q5_0: *blk = 32; *bytes = 22; return;
    case HASS_GGML_Q5_1: *blk = 32; *bytes = 24; return;
    case HASS_GGML_Q8_0: *blk = 32; *bytes = 34; return;
    case HASS_GGML_Q8_1: *blk = 32; *bytes = 36; return;
    case HASS_GGML_Q2_K: *blk = 256; *bytes = 84; return;
    case HASS_GGML_Q3_K: *blk = 256; *bytes = 110; return;
    case HASS_GGML_Q4_K: *blk = 256; *bytes = 144; return;
    case HASS_GGML_Q5_K: *blk = 256; *bytes = 176; return;
    case HASS_GGML_Q6_K: *blk = 256; *bytes = 210; return;
    case HASS_GGML_Q8_K: *blk = 256; *bytes = 292; return;
    default: *bytes = 0; return;
    }
}

const char *hass_ggml_type_name(int type) {
    switch (type) {
    case HASS_GGML_F32: return "F32";
    case HASS_GGML_F16: return "F16";
    case HASS_GGML_BF16: return "BF16";
    case HASS_GGML_Q4_0: return "Q4_0";
    case HASS_GGML_Q4_1: return "Q4_1";
    case HASS_GGML_Q5_0: return "Q5_0";
    case HASS_GGML_Q5_1: return "Q5_1";
    case HASS_GGML_Q8_0: return "Q8_0";
    case HASS_GGML_Q8_1: return "Q8_1";
    case HASS_GGML_Q2_K: return "Q2_K";
    case HASS_GGML_Q3_K: return "Q3_K";
    case HASS_GGML_Q4_K: return "Q4_K";
    case HASS_GGML_Q5_K: return "Q5_K";
    case HASS_GGML_Q6_K: return "Q6_K";
    case HASS_GGML_Q8_K: return "Q8_K";
    case HASS_GGML_I8: return "I8";
    case HASS_GGML_I16: return "I16";
    case HASS_GGML_I32: return "I32";
    case HASS_GGML_I64: return "I64";
    case HASS_GGML_F64: return "F64";
    default: return "?";
    }
}

// Bytes of one row of n elements.
uint64_t hass_ggml_row_bytes(int type, int64_t n) {
    int blk, bytes;
    type_block(type, &blk, &bytes);
    if (!bytes || n < 0 || n % blk) return 0;
    return (uint64_t)(n / blk) * (uint64_t)bytes;
}

// Parse one metadata value of type t at the cursor into kv.
static hass_err parse_value(cursor *c, uint32_t t, hass_gguf_kv *kv) {
    kv->type = (hass_gguf_vtype)t;
    kv->n = 1;
    kv->len_bytes = c->g->version == 1 ? 4 : 8;
    if (t == HASS_GGUF_STR) return get_str(c, &kv->data, &kv->n);
    if (t != HASS_GGUF_ARR) {
        int sz = vtype_size(t);
        if (!sz) return bad(c, "unknown value type");
        return take(c, (uint64_t)sz, &kv->data);
    }
    uint32_t at;
    hass_err e = get_u32(c, &at);
    if (!e) e = get_count(c, &kv->n);
    if (e) return e;
    kv->atype = (hass_gguf_vtype)at;
    if (at == HASS_GGUF_ARR) return bad(c, "nested arrays are not supported");
    if (at == HASS_GGUF_STR) {
        // each element takes at least its length field: bound n before allocating
        uint64_t w = c->g->version == 1 ? 4 : 8;
        if (kv->n > (c->g->size - c->pos) / w) return bad(c, "array length runs past the end");
        kv->str_off = malloc((kv->n ? kv->n : 1) * sizeof *kv->str_off);
        if (!kv->str_off) return hass_seterr(HASS_ENOMEM, "%s: out of memory", c->g->path);
        kv->data = c->g->map + c->pos;
        for (uint64_t i = 0; i < kv->n; i++) {
            kv->str_off[i] = (uint64_t)(c->g->map + c->pos - kv->data);
            const uint8_t *s;
            uint64_t len;
            if ((e = get_str(c, &s, &len))) return e;
        }
        return HASS_OK;
    }
    int sz = vtype_size(at);
    if (!sz) return bad(c, "unknown array element type");
    if (kv->n > (c->g->size - c->pos) / (uint64_t)sz) return bad(c, "array runs past the end");
    return take(c, kv->n * (uint64_t)sz, &kv->data);
}

// Copy a name into the reader's storage (names are NUL-terminated there).
static const char *keep_name(hass_gguf *g, uint64_t *used, const uint8_t *s, uint64_t len) {
    char *d = g->names + *used;
    memcpy(d, s, len);
    d[len] = 0;
    *used += len + 1;
    return d;
}

// Compare tensors by name (for the duplicate check).
static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const hass_gguf_tensor *const *)a)->name,
                  (*(const hass_gguf_tensor *const *)b)->name);
}

// Parse and check the tensor infos; needs g->data_off to be set afterwards.
static hass_err parse_tensor(cursor *c, hass_gguf *g, hass_gguf_tensor *t, uint64_t *used) {
    const uint8_t *s;
    uint64_t len;
    c->what = "tensor name";
    hass_err e = get_str(c, &s, &len);
    if (e) return e;
    if (len > MAX_KEY) return bad(c, "name too long");
    t->name = keep_name(g, used, s, len);
    c->what = t->name;
    if ((e = get_u32(c, &t->n_dims))) return e;
    if (t->n_dims < 1 || t->n_dims > HASS_GGUF_MAX_DIMS) return bad(c, "n_dims not in 1..4");
    uint64_t n_el = 1;
    for (int d = 0; d < HASS_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((e = get_count(c, &ne))) return e;
        if (ne == 0 || ne > (1ull << 40) || n_el > (1ull << 62) / ne)
            return bad(c, "dimension out of range");
        t->ne[d] = (int64_t)ne;
        n_el *= ne;
    }
    uint32_t type;
    if ((e = get_u32(c, &type))) return e;
    t->type = (hass_ggml_type)type;
    uint64_t rb = hass_ggml_row_bytes((int)type, t->ne[0]);
    if (!rb) {
        if (!hass_ggml_row_bytes((int)type, 256))
            return hass_seterr(HASS_EUNSUP, "%s: tensor '%s': unsupported ggml type %u", g->path,
                               t->name, type);
        int blk, bytes;
        type_block((int)type, &blk, &bytes);
        char msg[96];
        snprintf(msg, sizeof msg, "row length %lld is not a multiple of %s's block of %d values",
                 (long long)t->ne[0], hass_ggml_type_name((int)type), blk);
        return bad(c, msg);
    }
    t->n_bytes = rb * (n_el / (uint64_t)t->ne[0]);
    const uint8_t *p = NULL;
    if ((e = take(c, 8, &p))) return e;
    t->offset = rd_u64(p);
    return HASS_OK;
}

// Parse the whole file; fills g.
static hass_err parse(hass_gguf *g) {
    cursor c = {g, 0, "header"};
    hass_err e;
    if (g->size < 4 || memcmp(g->map, "GGUF", 4) != 0) {
        if (g->size >= 4 && memcmp(g->map, "FUGG", 4) == 0)
            return hass_seterr(HASS_EFORMAT, "%s: big-endian GGUF is not supported", g->path);
        return hass_seterr(HASS_EFORMAT, "%s: not a GGUF file (bad magic)", g->path);
    }
    c.pos = 4;
    if ((e = get_u32(&c, &g->version))) return e;
    if (g->version < 1 || g->version > 3)
        return hass_seterr(HASS_EVERSION, "%s: GGUF version %u (this reader knows 1..3)", g->path,
                           g->version);
    uint64_t n_t, n_kv, at_kv;
    c.what = "tensor count";
    if ((e = get_count(&c, &n_t))) return e;
    c.what = "kv count";
    at_kv = c.pos;
    if ((e = get_count(&c, &n_kv))) return e;
    // limits first, then the file: a tensor info takes at least 24 bytes, a key/value 9
    for (int pass = 0; pass < 2; pass++)
        if ((e = check_count(&c, pass, "tensor count", 8, n_t, MAX_TENSORS, 24)) ||
            (e = check_count(&c, pass, "kv count", at_kv, n_kv, MAX_KV, 9)))
            return e;
    // names are copied; their total is bounded by the file size
    g->names = malloc(g->size + n_kv + n_t + 1);
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->kv_cap = g->kv ? (int64_t)n_kv : 0;
    g->tensors = calloc(n_t ? n_t : 1, sizeof *g->tensors);
    if (!g->names || !g->kv || !g->tensors) return hass_seterr(HASS_ENOMEM, "%s: out of memory", g->path);
    uint64_t used = 0;
    for (uint64_t i = 0; i < n_kv; i++, g->n_kv++) {
        const uint8_t *s;
        uint64_t len;
        uint32_t t;
        c.what = "metadata key";
        if ((e = get_str(&c, &s, &len))) return e;
        if (len > MAX_KEY) return bad(&c, "key too long");
        g->kv[i].key = keep_name(g, &used, s, len);
        c.what = g->kv[i].key;
        if ((e = get_u32(&c, &t))) return e;
        if ((e = parse_value(&c, t, &g->kv[i]))) return e;
    }
    g->alignment = 32;
    const hass_gguf_kv *al = hass_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != HASS_GGUF_U32) return hass_seterr(HASS_EFORMAT, "%s: general.alignment is not u32", g->path);
        g->alignment = rd_u32(al->data);
        if (!g->alignment || (g->alignment & (g->alignment - 1)) || g->alignment > MAX_ALIGN)
            return hass_seterr(HASS_EFORMAT, "%s: general.alignment %llu is not a power of two",
                               g->path, (unsigned long long)g->alignment);
    }
    for (uint64_t i = 0; i < n_t; i++, g->n_tensors++)
        if ((e = parse_tensor(&c, g, &g->tensors[i], &used))) return e;
    g->data_off = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (n_t && g->data_off > g->size)
        return hass_seterr(HASS_EFORMAT, "%s: file truncated before the tensor data", g->path);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        hass_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return hass_seterr(HASS_EFORMAT, "%s: tensor '%s': offset %llu is not aligned to %llu",
                               g->path, t->name, (unsigned long long)t->offset,
                               (unsigned long long)g->alignment);
        uint64_t avail = g->size - g->data_off;
        if (t->offset > avail || t->n_bytes > avail - t->offset)
            return hass_seterr(HASS_EFORMAT,
                               "%s: tensor '%s': data [%llu, +%llu) runs past the end of the file "
                               "(%llu data bytes): file truncated?",
                               g->path, t->name, (unsigned long long)t->offset,
                               (unsigned long long)t->n_bytes, (unsigned long long)avail);
        t->data = g->map + g->data_off + t->offset;
    }
    // duplicate names
    if (g->n_tensors > 1) {
        const hass_gguf_tensor **s = malloc((size_t)g->n_tensors * sizeof *s);
        if (!s) return hass_seterr(HASS_ENOMEM, "%s: out of memory", g->path);
        for (int64_t i = 0; i < g->n_tensors; i++) s[i] = &g->tensors[i];
        qsort(s, (size_t)g->n_tensors, sizeof *s, cmp_name);
        for (int64_t i = 1; i < g->n_tensors; i++)
            if (!strcmp(s[i]->name, s[i - 1]->name)) {
                e = hass_seterr(HASS_EFORMAT, "%s: tensor '%s' appears twice", g->path, s[i]->name);
                free(s);
                return e;
            }
        free(s);
    }
    return HASS_OK;
}

// Open, map and validate a GGUF file.
hass_gguf *hass_gguf_open(const char *path, hass_err *err) {
    hass_gguf *g = calloc(1, sizeof *g);
    hass_err e = HASS_OK;
    if (!g || !(g->path = strdup(path))) {
        free(g);
        *err = hass_seterr(HASS_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    if ((e = hass_file_map(path, &g->map, &g->size))) goto fail;
    if ((e = parse(g))) goto fail;
    *err = HASS_OK;
    return g;
fail:
    hass_gguf_free(g);
    *err = e;
    return NULL;
}

// Release everything.
void hass_gguf_free(hass_gguf *g) {
    if (!g) return;
    hass_file_unmap(g->map, g->size);
    for (int64_t i = 0; i < g->kv_cap; i++) free(g->kv[i].str_off);
    free(g->kv);
    free(g->tensors);
    free(g->names);
    free(g->path);
    free(g);
}

uint32_t hass_gguf_version(const hass_gguf *g) { return g->version; }
const char *hass_gguf_path(const hass_gguf *g) { return g->path; }
uint64_t hass_gguf_file_bytes(const hass_gguf *g) { return g->size; }
uint64_t hass_gguf_alignment(const hass_gguf *g) { return g->alignment; }
int64_t hass_gguf_n_kv(const hass_gguf *g) { return g->n_kv; }
const hass_gguf_kv *hass_gguf_kv_at(const hass_gguf *g, int64_t i) { return &g->kv[i]; }
int64_t hass_gguf_n_tensors(const hass_gguf *g) { return g->n_tensors; }
const hass_gguf_tensor *hass_gguf_tensor_at(const hass_gguf *g, int64_t i) { return &g->tensors[i]; }

// Linear search over the keys (a few dozen).
const hass_gguf_kv *hass_gguf_find(const hass_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

void hass_gguf_drop(const hass_gguf *g, const void *p, uint64_t n) {
    const uint8_t *q = p;
    if (g && q >= g->map && n <= g->size && (uint64_t)(q - g->map) <= g->size - n) hass_file_map_drop(q, n);
}

// Linear search over the tensors (a few hundred; called at load only).
const hass_gguf_tensor *hass_gguf_find_tensor(const hass_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

// Decode a scalar of an integer type; returns 0 if the type is not an integer.
static int scalar_int(hass_gguf_vtype t, const uint8_t *p, int64_t *v, int *neg_ok) {
    *neg_ok = 1;
    switch (t) {
    case HASS_GGUF_U8: *v = p[0]; return 1;
    case HASS_GGUF_I8: *v = (int8_t)p[0]; return 1;
    case HASS_GGUF_U16: *v = (uint16_t)(p[0] | p[1] << 8); return 1;
    case HASS_GGUF_I16: *v = (int16_t)(p[0] | p[1] << 8); return 1;
    case HASS_GGUF_U32: *v = rd_u32(p); return 1;
    case HASS_GGUF_I32: *v = (int32_t)rd_u32(p); return 1;
    case HASS_GGUF_U64: {
        uint64_t u = rd_u64(p);
        *v = (int64_t)u;
        *neg_ok = u <= INT64_MAX;
        return 1;
    }
    case HASS_GGUF_I64: *v = (int64_t)rd_u64(p); return 1;
    case HASS_GGUF_BOOL: *v = p[0]; return 1;
    default: return 0;
    }
}

// Integer metadata value.
hass_err hass_gguf_get_i64(const hass_gguf *g, const char *key, int64_t *out) {
    const hass_gguf_kv *kv = hass_gguf_find(g, key);
    if (!kv) return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' missing", g->path, key);
    int ok;
    if (!scalar_int(kv->type, kv->data, out, &ok) || !ok)
        return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' is %s, not an integer", g->path,
                           key, hass_gguf_vtype_name(kv->type));
    return HASS_OK;
}

// Float metadata value (f32 or f64).
hass_err hass_gguf_get_f32(const hass_gguf *g, const char *key, float *out) {
    const hass_gguf_kv *kv = hass_gguf_find(g, key);
    if (!kv) return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' missing", g->path, key);
    if (kv->type == HASS_GGUF_F32) {
        uint32_t u = rd_u32(kv->data);
        memcpy(out, &u, 4);
    } else if (kv->type == HASS_GGUF_F64) {
        uint64_t u = rd_u64(kv->data);
        double d;
        memcpy(&d, &u, 8);
        *out = (float)d;
    } else {
        return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' is %s, not a float", g->path, key,
                           hass_gguf_vtype_name(kv->type));
    }
    return HASS_OK;
}

// Boolean metadata value.
hass_err hass_gguf_get_bool(const hass_gguf *g, const char *key, int *out) {
    const hass_gguf_kv *kv = hass_gguf_find(g, key);
    if (!kv) return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' missing", g->path, key);
    if (kv->type != HASS_GGUF_BOOL)
        return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' is %s, not bool", g->path, key,
                           hass_gguf_vtype_name(kv->type));
    *out = kv->data[0] != 0;
    return HASS_OK;
}

// String metadata value.
hass_err hass_gguf_get_str(const hass_gguf *g, const char *key, const char **s, uint64_t *len) {
    const hass_gguf_kv *kv = hass_gguf_find(g, key);
    if (!kv) return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' missing", g->path, key);
    if (kv->type != HASS_GGUF_STR)
        return hass_seterr(HASS_EFORMAT, "%s: metadata key '%s' is %s, not a string", g->path,
                           key, hass_gguf_vtype_name(kv->type));
    *s = (const char *)kv->data;
    *len = kv->n;
    return HASS_OK;
}

// Element i of a string array.
const char *hass_gguf_arr_str(const hass_gguf_kv *kv, uint64_t i, uint64_t *len) {
    HASS_ASSERT(kv->type == HASS_GGUF_ARR && kv->atype == HASS_GGUF_STR && i < kv->n);
    const uint8_t *p = kv->data + kv->str_off[i];
    int lw = kv->len_bytes;
    *len = lw == 4 ? rd_u32(p) : rd_u64(p);
    return (const char *)p + lw;
}

// Element i of a numeric array as double.
double hass_gguf_arr_num(const hass_gguf_kv *kv, uint64_t i) {
    HASS_ASSERT(kv->type == HASS_GGUF_ARR && i < kv->n);
    int sz = vtype_size(kv->atype);
    const uint8_t *p = kv->data + i * (uint64_t)sz;
    if (kv->atype == HASS_GGUF_F32) {
        float f;
        uint32_t u = rd_u32(p);
        memcpy(&f, &u, 4);
        return f;
    }
    if (kv->atype == HASS_GGUF_F64) {
        double d;
        uint64_t u = rd_u64(p);
        memcpy(&d, &u, 8);
        return d;
    }
    int64_t v;
    int ok;
    if (!scalar_int(kv->atype, p, &v, &ok)) return 0;
    return kv->atype == HASS_GGUF_U64 ? (double)(uint64_t)v : (double)v;
}

// Write a string with non-printable bytes escaped.
static void print_escaped(FILE *out, const char *s, uint64_t n, uint64_t max) {
    fputc('"', out);
    for (uint64_t i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", out);
        else if (ch < 0x20 || ch == 0x7f) fprintf(out, "\\x%02x", ch);
        else fputc(ch, out);
    }
    if (n > max) fputs("...", out);
    fputc('"', out);
}

// Write one scalar/array element value as text.
static void print_elem(FILE *out, const hass_gguf_kv *kv, uint64_t i) {
    if (kv->atype == HASS_GGUF_STR) {
        uint64_t len;
        const char *s = hass_gguf_arr_str(kv, i, &len);
        print_escaped(out, s, len, 64);
    } else if (kv->atype == HASS_GGUF_F32 || kv->atype == HASS_GGUF_F64) {
        fprintf(out, "%.9g", hass_gguf_arr_num(kv, i));
    } else {
        fprintf(out, "%.0f", hass_gguf_arr_num(kv, i));
    }
}

// Write one metadata value as text.
static void print_value(FILE *out, const hass_gguf_kv *kv, int full) {
    if (kv->type == HASS_GGUF_STR) {
        print_escaped(out, (const char *)kv->data, kv->n, full ? UINT64_MAX : 200);
    } else if (kv->type == HASS_GGUF_ARR) {
        uint64_t show = full ? kv->n : (kv->n < 8 ? kv->n : 8);
        fprintf(out, "[%s x %llu] [", hass_gguf_vtype_name(kv->atype), (unsigned long long)kv->n);
        for (uint64_t i = 0; i < show; i++) {
            if (i) fputs(", ", out);
            print_elem(out, kv, i);
        }
        fputs(show < kv->n ? ", ...]" : "]", out);
    } else {
        hass_gguf_kv one = *kv;
        one.type = HASS_GGUF_ARR;
        one.atype = kv->type;
        one.n = 1;
        print_elem(out, &one, 0);
    }
}

// Print header, metadata and tensor table as text.
void hass_gguf_print(const hass_gguf *g, FILE *out, int full_arrays) {
    fprintf(out, "file: %s\nversion: %u\nsize: %llu bytes\nalignment: %llu\nkv: %lld\ntensors: %lld\n",
            g->path, g->version, (unsigned long long)g->size, (unsigned long long)g->alignment,
            (long long)g->n_kv, (long long)g->n_tensors);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const hass_gguf_kv *kv = &g->kv[i];
        fprintf(out, "%-40s %-4s ", kv->key, hass_gguf_vtype_name(kv->type));
        print_value(out, kv, full_arrays);
        fputc('\n', out);
    }
    uint64_t total = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const hass_gguf_tensor *t = &g->tensors[i];
        fprintf(out, "tensor %-40s %-5s [", t->name, hass_ggml_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++) fprintf(out, d ? ", %lld" : "%lld", (long long)t->ne[d]);
        fprintf(out, "] %llu bytes @ %llu\n", (unsigned long long)t->n_bytes,
                (unsigned long long)t->offset);
        total += t->n_bytes;
    }
    fprintf(out, "tensor data: %llu bytes\n", (unsigned long long)total);
}

// JSON value of a metadata entry (arrays of more than 64 elements abbreviated to a count).
static json_t *kv_json(const hass_gguf_kv *kv) {
    hass_gguf_kv one = *kv;
    if (kv->type == HASS_GGUF_STR) return json_stringn_nocheck((const char *)kv->data, kv->n);
    if (kv->type != HASS_GGUF_ARR) {
        one.type = HASS_GGUF_ARR;
        one.atype = kv->type;
        one.n = 1;
    }
    uint64_t show = one.n < 64 ? one.n : 64;
    json_t *a = json_array();
    for (uint64_t i = 0; i < show; i++) {
        json_t *v;
        if (one.atype == HASS_GGUF_STR) {
            uint64_t len;
            const char *s = hass_gguf_arr_str(&one, i, &len);
            v = json_stringn_nocheck(s, len);
        } else if (one.atype == HASS_GGUF_F32 || one.atype == HASS_GGUF_F64) {
            v = json_real(hass_gguf_arr_num(&one, i));
        } else if (one.atype == HASS_GGUF_BOOL) {
            v = json_boolean(hass_gguf_arr_num(&one, i) != 0);
        } else {
            v = json_integer((json_int_t)hass_gguf_arr_num(&one, i));
        }
        json_array_append_new(a, v);
    }
    if (kv->type == HASS_GGUF_ARR) return a;
    json_t *v = json_incref(json_array_get(a, 0));
    json_decref(a);
    return v;
}

// Print the file as JSON lines.
void hass_gguf_print_json(const hass_gguf *g, FILE *out) {
    json_t *h = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I}", "type", "gguf", "file", g->path,
                          "version", (int)g->version, "size", (json_int_t)g->size, "alignment",
                          (json_int_t)g->alignment, "n_kv", (json_int_t)g->n_kv, "n_tensors",
                          (json_int_t)g->n_tensors);
    json_dumpf(h, out, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
    fputc('\n', out);
    json_decref(h);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const hass_gguf_kv *kv = &g->kv[i];
        json_t *o = json_pack("{s:s, s:s, s:o}", "type", "kv", "key", kv->key, "value", kv_json(kv));
        json_object_set_new(o, "vtype", json_string(hass_gguf_vtype_name(kv->type)));
        if (kv->type == HASS_GGUF_ARR) {
            json_object_set_new(o, "atype", json_string(hass_gguf_vtype_name(kv->atype)));
            json_object_set_new(o, "n", json_integer((json_int_t)kv->n));
        }
        json_dumpf(o, out, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
        fputc('\n', out);
        json_decref(o);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const hass_gguf_tensor *t = &g->tensors[i];
        json_t *ne = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(ne, json_integer(t->ne[d]));
        json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I}", "type", "tensor", "name", t->name,
                              "dtype", hass_ggml_type_name(t->type), "ne", ne, "offset",
                              (json_int_t)t->offset, "bytes", (json_int_t)t->n_bytes);
        json_dumpf(o, out, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
        fputc('\n', out);
        json_decref(o);
    }
}
