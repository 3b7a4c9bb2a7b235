// jsonl.h: JSON-lines records over stdio (jansson), with <file>:<line> positions on errors.
//
// A record is one compact JSON object per line. Readers keep every key they do not use, so a
// tool passes unknown keys through. A line that is not a JSON object, or is longer than the
// limit, is an error for that line only: the reader skips it, says where and why, and goes on.
#ifndef HASS_JSONL_H
#define HASS_JSONL_H

#include <jansson.h>

#include "hass.h"

#define HASS_JSONL_MAX_LINE_DEFAULT (64u << 20) // 64 MiB

typedef struct hass_jsonl_reader {
    FILE *f;            // borrowed
    const char *name;   // "<stdin>" or the path (borrowed)
    int64_t line;       // number of the line last read (1-based)
    size_t max_line;    // longest accepted line in bytes
    char *buf;          // (cap) line buffer, owned
    size_t cap;         // buffer capacity
    int eof;            // no more lines
} hass_jsonl_reader;

// Set up a reader over f (not owned); name is used in messages.
void hass_jsonl_reader_init(hass_jsonl_reader *r, FILE *f, const char *name);
// Free the line buffer.
void hass_jsonl_reader_free(hass_jsonl_reader *r);

// Read the next record. Returns HASS_OK with *obj set (new reference; caller decrefs), or
// HASS_OK with *obj = NULL at end of input, or an error for this line (HASS_EFORMAT for bad JSON
// or not an object, HASS_ERANGE for an over-long line, HASS_EIO for a read error) with the
// message "<name>:<line>: ...". Blank lines are skipped. After a line error, reading goes on.
hass_err hass_jsonl_read(hass_jsonl_reader *r, json_t **obj);

// Write obj as one compact line; flush if asked. HASS_EIO when the write fails (EPIPE too).
hass_err hass_jsonl_write(FILE *f, const json_t *obj, int flush);

// An error record for input record `in` (borrowed; may be NULL when the line did not parse):
// a copy of `in` with "error": msg added, or {"error": msg, "line": line} without it.
json_t *hass_jsonl_error_record(const json_t *in, const char *msg, int64_t line);

// Borrowed "id" of a record as text for messages ("?" when absent), into buf.
const char *hass_jsonl_id_str(const json_t *rec, char *buf, size_t n);

// Read an array of integers in [0, n_max) from key of obj into a malloc'd buffer.
// HASS_EFORMAT with a message naming the key and index on any bad element.
hass_err hass_jsonl_get_ids(const json_t *obj, const char *key, int64_t n_max, int32_t **ids,
                            int64_t *n);

// Set key of obj to an array of the n ids.
void hass_jsonl_set_ids(json_t *obj, const char *key, const int32_t *ids, int64_t n);

#endif
