// stream.h: record streams over stdio in either encoding (man/hass-format.5).
//
// A reader tells the encodings apart by the first byte of its input: '{' or whitespace is
// JSONL, "HASS" is a binary stream (frame.h), anything else is malformed input. Several binary
// streams may follow each other in one input (cat of shards). A record is a jansson object.
// Bad lines or frames are errors for that record only; the reader says where ("<stdin>:12",
// "<stdin>:frame 3") and goes on when it can (r->fatal says when it cannot).
//
// A writer emits compact JSONL by default or binary frames, flushing after each record unless
// asked to buffer. Frames of unknown type read from a binary input become pass-through records
// {"_hass_frame":{"type":T,"payload":"<hex>"}} that a binary writer turns back into the
// same frame, so every tool forwards what it does not understand.
#ifndef HASS_STREAM_H
#define HASS_STREAM_H

#include <jansson.h>

#include "frame.h"
#include "jsonl.h"

enum { HASS_STREAM_UNKNOWN = 0, HASS_STREAM_JSONL = 1, HASS_STREAM_BIN = 2 };

#define HASS_STREAM_PASS_KEY "_hass_frame"

typedef struct hass_stream_reader {
    FILE *f;                 // borrowed
    const char *name;        // "<stdin>" or the path (borrowed)
    int mode;                // HASS_STREAM_* (known after the first read)
    hass_jsonl_reader jl;    // JSONL state
    hass_frame_header hdr;   // binary: header of the current stream
    uint32_t expect_fp;      // vocabulary fingerprint the consumer needs (0 = any)
    int in_stream;           // binary: header read, END not yet seen
    int64_t n_frames;        // binary: frames read in the current stream
    int64_t frame_no;        // binary: frames read in the whole input (1-based position)
    uint8_t *buf;            // (cap) frame buffer, owned
    size_t cap;              // buffer capacity
    int64_t pos;             // line or frame number of the last record or error
    int fatal;               // the last error ended the input
    int done;                // nothing more to read
} hass_stream_reader;

typedef struct hass_stream_writer {
    FILE *f;                 // borrowed
    const char *name;        // "<stdout>" or the path (borrowed)
    int bin;                 // write binary frames
    int flush;               // flush after each record
    uint32_t vocab_fp;       // fingerprint written into the binary header
    uint32_t seq;            // next frame number
    int started;             // binary header written
    uint8_t *buf;            // (cap) encode buffer, owned
    size_t cap;              // buffer capacity
    int failed;              // a write failed; nothing more is written
    int epipe;               // ...because the reader went away (EPIPE)
    int64_t n_records;       // records written
    // When set, every record is offered to hold first; non-zero: it took the record (to write
    // it later itself, e.g. in input order) and nothing is written now.
    int (*hold)(void *ctx, const json_t *rec);
    void *hold_ctx;
    // When set, hass_stream_filter calls it while the next input record has not arrived yet
    // (reading it would block: a slow or interactive producer): non-zero: it did some work (e.g.
    // a decode step of the records in flight), ask again; 0: nothing to do, the read may wait.
    int (*idle)(void *ctx);
    void *idle_ctx;
} hass_stream_writer;

// Set up a reader over f (not owned). expect_fp: the vocabulary fingerprint the caller's token
// ids belong to (0 accepts any); a binary stream with another non-zero fingerprint is refused.
void hass_stream_reader_init(hass_stream_reader *r, FILE *f, const char *name,
                             uint32_t expect_fp);
// Free the reader's buffers (not the FILE).
void hass_stream_reader_free(hass_stream_reader *r);
// Read the next record: HASS_OK with *rec (new reference) or *rec = NULL at the end; an error
// leaves a message "<name>:<pos>: what" and sets r->fatal when reading cannot go on.
hass_err hass_stream_read(hass_stream_reader *r, json_t **rec);
// Position of the last record or error as text ("<stdin>:12" or "<stdin>:frame 3"), into buf.
const char *hass_stream_where(const hass_stream_reader *r, char *buf, size_t n);
// An error record: a copy of in (or {"line": N} / {"frame": N} when in is NULL) with
// "error": msg. New reference.
json_t *hass_stream_error_record(const hass_stream_reader *r, const json_t *in,
                                 const char *msg);
// Whether rec is a pass-through record (an unknown binary frame) that tools forward unchanged.
int hass_stream_is_passthrough(const json_t *rec);

// Set up a writer over f (not owned). bin: binary frames; flush: flush after each record.
void hass_stream_writer_init(hass_stream_writer *w, FILE *f, const char *name, int bin,
                             int flush, uint32_t vocab_fp);
// Write one record (pass-through records as their original frame in binary). HASS_EIO when
// the write fails; w->epipe tells a closed pipe apart.
hass_err hass_stream_write(hass_stream_writer *w, const json_t *rec);
// Finish the output: the binary header if nothing was written, the END frame, a flush.
hass_err hass_stream_writer_end(hass_stream_writer *w);
// Free the writer's buffer (not the FILE).
void hass_stream_writer_free(hass_stream_writer *w);
// Whether binary output to f must be refused: f is a terminal and force is not set.
int hass_stream_refuse_tty(FILE *f, int bin, int force);

// ----------------------------------------------------------------------------
// filter driver shared by the tools: read every record of every input, call fn on each good
// record, write what it returns, write an error record for each bad one, stop on a fatal read
// or write error.

// Turn one input record into its output record. Return HASS_OK with *out set, or an error with
// a message (the driver writes an error record for it, unless *out was set to one already).
// fn may write extra records itself through w (e.g. streaming deltas).
typedef hass_err (*hass_stream_fn)(void *ctx, const json_t *in, const char *where,
                                   hass_stream_writer *w, json_t **out);

typedef struct hass_stream_stats {
    int64_t n_in;       // records read (bad ones included)
    int64_t n_ok;       // records fn turned into output
    int64_t n_failed;   // error records written
    int exit_code;      // 0, or the exit code of the first failure (3 input, 1 runtime)
} hass_stream_stats;

// Records that already carry "error" (failed upstream) and pass-through records are written
// unchanged without calling fn; the former count as failures (exit code 1 unless set).
// Run fn over the inputs (paths; NULL or "-" is stdin; n_paths 0 means stdin). Returns
// HASS_OK when every input was read to its end and every write succeeded, else the error that
// stopped it (with a message; w->epipe for a closed pipe). Per-record failures only count in st.
hass_err hass_stream_filter(const char *const *paths, int n_paths, uint32_t expect_fp,
                            hass_stream_writer *w, hass_stream_fn fn, void *ctx,
                            hass_stream_stats *st);

#endif
