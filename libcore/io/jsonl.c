// jsonl.c: JSON-lines reader/writer with line positions, size limits and error records.
#include "jsonl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// Set up a reader.
void hass_jsonl_reader_init(hass_jsonl_reader *r, FILE *f, const char *name) {
    memset(r, 0, sizeof *r);
    r->f = f;
    r->name = name;
    r->max_line = HASS_JSONL_MAX_LINE_DEFAULT;
}

// Free the buffer.
void hass_jsonl_reader_free(hass_jsonl_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

// Read one line into r->buf (NUL-terminated, newline stripped). Returns 1 for a line, 0 at EOF,
// -1 for a too-long line (rest of it skipped), -2 on a read error or out of memory.
static int read_line(hass_jsonl_reader *r, size_t *len) {
    size_t n = 0;
    int c, too_long = 0;
    if (r->eof) return 0;
    while ((c = getc(r->f)) != EOF) {
        if (c == '\n') break;
        if (too_long) continue;
        if (n + 1 >= r->cap) {
            if (n + 1 > r->max_line) {
                too_long = 1;
                continue;
            }
            size_t cap = r->cap ? r->cap * 2 : 4096;
            if (cap > r->max_line + 1) cap = r->max_line + 1;
            char *b = realloc(r->buf, cap);
            if (!b) return -2;
            r->buf = b;
            r->cap = cap;
        }
        r->buf[n++] = (char)c;
    }
    if (c == EOF) {
        if (ferror(r->f)) return -2;
        r->eof = 1;
        if (n == 0 && !too_long) return 0;
    }
    r->line++;
    if (too_long) return -1;
    if (n && r->buf[n - 1] == '\r') n--;
    if (r->buf) r->buf[n] = 0; // an empty first line comes before any buffer
    *len = n;
    return 1;
}

// Read the next record.
hass_err hass_jsonl_read(hass_jsonl_reader *r, json_t **obj) {
    *obj = NULL;
    for (;;) {
        size_t len = 0;
        int k = read_line(r, &len);
        if (k == 0) return HASS_OK;
        if (k == -1)
            return hass_seterr(HASS_ERANGE, "%s:%lld: line longer than %zu bytes", r->name,
                               (long long)r->line, r->max_line);
        if (k == -2)
            return hass_seterr(HASS_EIO, "%s:%lld: read error: %s", r->name,
                               (long long)r->line + 1, strerror(errno));
        size_t i = 0;
        while (i < len && (r->buf[i] == ' ' || r->buf[i] == '\t')) i++;
        if (i == len) continue; // blank line
        json_error_t je;
        json_t *v = json_loadb(r->buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        if (!v)
            return hass_seterr(HASS_EFORMAT, "%s:%lld: not JSON: %s (column %d)", r->name,
                               (long long)r->line, je.text, je.column);
        if (!json_is_object(v)) {
            json_decref(v);
            return hass_seterr(HASS_EFORMAT, "%s:%lld: record is not a JSON object", r->name,
                               (long long)r->line);
        }
        *obj = v;
        return HASS_OK;
    }
}

// Write one record as a compact line.
hass_err hass_jsonl_write(FILE *f, const json_t *obj, int flush) {
    if (json_dumpf(obj, f, JSON_COMPACT | JSON_REAL_PRECISION(9)) != 0 || putc('\n', f) == EOF ||
        (flush && fflush(f) != 0))
        return hass_seterr(HASS_EIO, "write failed: %s", strerror(errno));
    return HASS_OK;
}

// Copy of the input with "error" added, or a bare error record.
json_t *hass_jsonl_error_record(const json_t *in, const char *msg, int64_t line) {
    json_t *o = in ? json_deep_copy(in) : json_object();
    if (!in) json_object_set_new(o, "line", json_integer((json_int_t)line));
    json_object_set_new(o, "error", json_string(msg));
    return o;
}

// "id" as text for messages.
const char *hass_jsonl_id_str(const json_t *rec, char *buf, size_t n) {
    const json_t *id = rec ? json_object_get(rec, "id") : NULL;
    if (json_is_string(id)) snprintf(buf, n, "%s", json_string_value(id));
    else if (json_is_integer(id)) snprintf(buf, n, "%lld", (long long)json_integer_value(id));
    else snprintf(buf, n, "?");
    return buf;
}

// Read a bounded id array.
hass_err hass_jsonl_get_ids(const json_t *obj, const char *key, int64_t n_max, int32_t **ids,
                            int64_t *n) {
    *ids = NULL;
    *n = 0;
    const json_t *a = json_object_get(obj, key);
    if (!a) return hass_seterr(HASS_EFORMAT, "\"%s\" missing", key);
    if (!json_is_array(a)) return hass_seterr(HASS_EFORMAT, "\"%s\" is not an array", key);
    size_t m = json_array_size(a);
    int32_t *v = malloc((m ? m : 1) * sizeof *v);
    if (!v) return hass_seterr(HASS_ENOMEM, "out of memory for %zu ids", m);
    for (size_t i = 0; i < m; i++) {
        const json_t *x = json_array_get(a, i);
        if (!json_is_integer(x)) {
            free(v);
            return hass_seterr(HASS_EFORMAT, "\"%s\"[%zu] is not an integer", key, i);
        }
        json_int_t t = json_integer_value(x);
        if (t < 0 || t >= n_max) {
            free(v);
            return hass_seterr(HASS_ERANGE, "\"%s\"[%zu] = %lld is outside [0, %lld)", key, i,
                               (long long)t, (long long)n_max);
        }
        v[i] = (int32_t)t;
    }
    *ids = v;
    *n = (int64_t)m;
    return HASS_OK;
}

// Set an id array.
void hass_jsonl_set_ids(json_t *obj, const char *key, const int32_t *ids, int64_t n) {
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    json_object_set_new(obj, key, a);
}
