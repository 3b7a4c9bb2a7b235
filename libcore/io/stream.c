// stream.c: record readers and writers for JSONL and binary streams, and the filter driver.
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Set up a reader.
void hass_stream_reader_init(hass_stream_reader *r, FILE *f, const char *name,
                             uint32_t expect_fp) {
    memset(r, 0, sizeof *r);
    r->f = f;
    r->name = name;
    r->expect_fp = expect_fp;
    hass_jsonl_reader_init(&r->jl, f, name);
}

// Free the reader's buffers.
void hass_stream_reader_free(hass_stream_reader *r) {
    if (!r) return;
    hass_jsonl_reader_free(&r->jl);
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

// Position text of the last record or error.
const char *hass_stream_where(const hass_stream_reader *r, char *buf, size_t n) {
    if (r->mode == HASS_STREAM_BIN && r->pos > 0)
        snprintf(buf, n, "%s:frame %lld", r->name, (long long)r->pos);
    else if (r->mode == HASS_STREAM_BIN) snprintf(buf, n, "%s:header", r->name);
    else snprintf(buf, n, "%s:%lld", r->name, (long long)r->pos);
    return buf;
}

// Fail the reader for good with the current message prefixed by the position.
static hass_err fail(hass_stream_reader *r, hass_err e, int fatal) {
    char where[600];
    hass_errprefix("%s", hass_stream_where(r, where, sizeof where));
    r->fatal = fatal;
    if (fatal) r->done = 1;
    return e;
}

// Decide the encoding from the first byte.
static hass_err detect(hass_stream_reader *r) {
    int c = getc(r->f);
    if (c == EOF) {
        r->done = 1;
        r->mode = HASS_STREAM_JSONL;
        if (ferror(r->f)) {
            r->fatal = 1;
            return hass_seterr(HASS_EIO, "%s: read error: %s", r->name, strerror(errno));
        }
        return HASS_OK;
    }
    ungetc(c, r->f);
    if (c == '{' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        r->mode = HASS_STREAM_JSONL;
        return HASS_OK;
    }
    if (c == 'H') {
        r->mode = HASS_STREAM_BIN;
        return HASS_OK;
    }
    r->done = 1;
    r->fatal = 1;
    return hass_seterr(HASS_EFORMAT,
                       "%s: input is neither JSONL (starts with '{') nor a hass binary stream "
                       "(starts with \"HASS\"): first byte 0x%02x",
                       r->name, c);
}

// Lower-case hex of n bytes as a new JSON string.
static json_t *hex_string(const uint8_t *p, uint32_t n) {
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * (size_t)n + 1);
    if (!s) return NULL;
    for (uint32_t i = 0; i < n; i++) s[2 * i] = digits[p[i] >> 4], s[2 * i + 1] = digits[p[i] & 15];
    s[2 * (size_t)n] = 0;
    json_t *j = json_stringn(s, 2 * (size_t)n);
    free(s);
    return j;
}

// Read the next record of a binary input.
static hass_err read_bin(hass_stream_reader *r, json_t **rec) {
    for (;;) {
        if (!r->in_stream) {
            int c = getc(r->f);
            if (c == EOF) {
                r->done = 1;
                return HASS_OK;
            }
            ungetc(c, r->f);
            r->pos = 0;
            hass_err e = hass_frame_read_header(r->f, 0, &r->hdr);
            if (e) return fail(r, e, 1);
            if (r->expect_fp && r->hdr.vocab_fp && r->hdr.vocab_fp != r->expect_fp)
                return fail(r,
                            hass_seterr(HASS_EVOCAB,
                                        "stream vocab fingerprint %08x differs from the model's "
                                        "%08x; tokenize with the same vocabulary",
                                        r->hdr.vocab_fp, r->expect_fp),
                            1);
            r->in_stream = 1;
            r->n_frames = 0;
        }
        hass_frame fr;
        int resync = 0;
        r->pos = ++r->frame_no;
        hass_err e = hass_frame_read(r->f, &fr, &r->buf, &r->cap, &resync);
        if (e) {
            r->n_frames++;
            return fail(r, e, !resync);
        }
        if (fr.type == 0) {
            r->frame_no--;
            return fail(r,
                        hass_seterr(HASS_EFORMAT,
                                    "truncated stream: input ended after %lld frames without "
                                    "an END frame",
                                    (long long)r->n_frames),
                        1);
        }
        if (fr.seq != (uint32_t)r->n_frames)
            HASS_WARN("%s:frame %lld: sequence number %u, expected %lld (frames lost?)", r->name,
                      (long long)r->pos, fr.seq, (long long)r->n_frames);
        r->n_frames++;
        if (fr.type == HASS_FRAME_END) {
            r->in_stream = 0; // a wrong count is an error; the next stream may still follow
            if ((e = hass_frame_check_end(&fr, r->n_frames - 1))) return fail(r, e, 0);
            continue;
        }
        if (fr.type == HASS_FRAME_RECORD) {
            e = hass_frame_decode_record(fr.payload, fr.n_bytes, rec);
            return e ? fail(r, e, 0) : HASS_OK;
        }
        json_t *hex = hex_string(fr.payload, fr.n_bytes);
        if (!hex) return fail(r, hass_seterr(HASS_ENOMEM, "out of memory"), 1);
        *rec = json_pack("{s:{s:I,s:o}}", HASS_STREAM_PASS_KEY, "type", (json_int_t)fr.type,
                         "payload", hex);
        return HASS_OK;
    }
}

// Read the next record.
hass_err hass_stream_read(hass_stream_reader *r, json_t **rec) {
    *rec = NULL;
    r->fatal = 0;
    if (r->done) return HASS_OK;
    if (r->mode == HASS_STREAM_UNKNOWN) {
        hass_err e = detect(r);
        if (e || r->done) return e;
    }
    if (r->mode == HASS_STREAM_BIN) return read_bin(r, rec);
    hass_err e = hass_jsonl_read(&r->jl, rec);
    r->pos = r->jl.line;
    if (e == HASS_EIO) r->fatal = 1, r->done = 1;
    if (!e && !*rec) r->done = 1;
    return e;
}

// An error record for input in (or a bare one at the reader's position).
json_t *hass_stream_error_record(const hass_stream_reader *r, const json_t *in,
                                 const char *msg) {
    json_t *o = in ? json_deep_copy(in) : json_object();
    if (!in)
        json_object_set_new(o, r->mode == HASS_STREAM_BIN ? "frame" : "line",
                            json_integer((json_int_t)r->pos));
    json_object_set_new(o, "error", json_string(msg));
    return o;
}

// Whether rec is a pass-through record.
int hass_stream_is_passthrough(const json_t *rec) {
    return json_object_get(rec, HASS_STREAM_PASS_KEY) != NULL;
}

// Set up a writer.
void hass_stream_writer_init(hass_stream_writer *w, FILE *f, const char *name, int bin,
                             int flush, uint32_t vocab_fp) {
    memset(w, 0, sizeof *w);
    w->f = f;
    w->name = name;
    w->bin = bin;
    w->flush = flush;
    w->vocab_fp = vocab_fp;
}

// Free the encode buffer.
void hass_stream_writer_free(hass_stream_writer *w) {
    if (!w) return;
    free(w->buf);
    w->buf = NULL;
    w->cap = 0;
}

// Mark the writer failed after a write error and return HASS_EIO with a message.
static hass_err wfail(hass_stream_writer *w) {
    int err = errno;
    w->failed = 1;
    if (err == EPIPE) w->epipe = 1;
    return hass_seterr(HASS_EIO, "%s: write failed: %s", w->name, strerror(err));
}

// Value of one hex digit, or -1.
static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Turn a pass-through record back into its frame type and raw payload in w->buf.
static hass_err unhex_passthrough(hass_stream_writer *w, const json_t *rec, uint32_t *type,
                                  uint32_t *n) {
    const json_t *p = json_object_get(rec, HASS_STREAM_PASS_KEY);
    const json_t *t = json_object_get(p, "type"), *h = json_object_get(p, "payload");
    if (!json_is_integer(t) || json_integer_value(t) <= 0 || json_integer_value(t) > UINT32_MAX ||
        !json_is_string(h) || json_string_length(h) % 2)
        return hass_seterr(HASS_EFORMAT, "bad \"%s\" record", HASS_STREAM_PASS_KEY);
    size_t len = json_string_length(h) / 2;
    if (len > HASS_FRAME_MAX_PAYLOAD)
        return hass_seterr(HASS_ERANGE, "\"%s\" payload over the frame limit",
                           HASS_STREAM_PASS_KEY);
    if (w->cap < len + 1) {
        uint8_t *b = realloc(w->buf, len + 1);
        if (!b) return hass_seterr(HASS_ENOMEM, "out of memory");
        w->buf = b, w->cap = len + 1;
    }
    const char *s = json_string_value(h);
    for (size_t i = 0; i < len; i++) {
        int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
        if (a < 0 || b < 0)
            return hass_seterr(HASS_EFORMAT, "bad hex in \"%s\" payload", HASS_STREAM_PASS_KEY);
        w->buf[i] = (uint8_t)(a << 4 | b);
    }
    *type = (uint32_t)json_integer_value(t);
    *n = (uint32_t)len;
    return HASS_OK;
}

// Write the binary header once.
static hass_err start_bin(hass_stream_writer *w) {
    if (w->started) return HASS_OK;
    if (hass_frame_write_header(w->f, w->vocab_fp, 0)) return wfail(w);
    w->started = 1;
    return HASS_OK;
}

// Write one record.
hass_err hass_stream_write(hass_stream_writer *w, const json_t *rec) {
    if (w->failed) return hass_seterr(HASS_EIO, "%s: output already failed", w->name);
    if (w->hold && w->hold(w->hold_ctx, rec)) return w->failed ? HASS_EIO : HASS_OK;
    if (!w->bin) {
        if (hass_jsonl_write(w->f, rec, w->flush)) return wfail(w);
        w->n_records++;
        return HASS_OK;
    }
    hass_err e = start_bin(w);
    if (e) return e;
    uint32_t type = HASS_FRAME_RECORD, n = 0;
    e = hass_stream_is_passthrough(rec) ? unhex_passthrough(w, rec, &type, &n)
                                        : hass_frame_encode_record(rec, &w->buf, &w->cap, &n);
    if (e) return e;
    errno = 0;
    e = hass_frame_write(w->f, type, w->seq, w->buf, n);
    if (e == HASS_EIO || (w->flush && fflush(w->f) != 0)) return wfail(w);
    if (e) return e;
    w->seq++;
    w->n_records++;
    return HASS_OK;
}

// Finish the output with an END frame (binary) and a flush.
hass_err hass_stream_writer_end(hass_stream_writer *w) {
    if (w->failed) return hass_seterr(HASS_EIO, "%s: output already failed", w->name);
    if (w->bin) {
        uint8_t p[4];
        uint32_t n = w->seq;
        p[0] = (uint8_t)n, p[1] = (uint8_t)(n >> 8), p[2] = (uint8_t)(n >> 16), p[3] = (uint8_t)(n >> 24);
        if (start_bin(w) || hass_frame_write(w->f, HASS_FRAME_END, w->seq, p, 4)) return wfail(w);
        w->seq++;
    }
    if (fflush(w->f) != 0) return wfail(w);
    return HASS_OK;
}

// Whether binary output to a terminal must be refused.
int hass_stream_refuse_tty(FILE *f, int bin, int force) {
    return bin && !force && isatty(fileno(f));
}

// Note the first failure's exit code.
static void note_failure(hass_stream_stats *st, int code) {
    st->n_failed++;
    if (!st->exit_code) st->exit_code = code;
}

// Whether reading f can go on without waiting: bytes in its buffer, or its descriptor readable
// (data, end of file or an error). Without glibc's buffer fields: always (reads may wait).
static int input_ready(FILE *f) {
#ifdef __GLIBC__
    if (f->_IO_read_ptr < f->_IO_read_end) return 1;
    struct pollfd pf = {fileno(f), POLLIN, 0};
    return poll(&pf, 1, 0) != 0;
#else
    (void)f;
    return 1;
#endif
}

// Run the records of one open input through fn.
static hass_err filter_one(hass_stream_reader *r, hass_stream_writer *w, hass_stream_fn fn,
                           void *ctx, hass_stream_stats *st) {
    char where[600];
    for (;;) {
        json_t *in = NULL, *out = NULL;
        while (w->idle && !input_ready(r->f) && w->idle(w->idle_ctx)) {}
        hass_err e = hass_stream_read(r, &in);
        if (e) {
            HASS_ERROR("%s", hass_errmsg());
            st->n_in++;
            note_failure(st, hass_record_exit_code(e));
            if (r->fatal && e == HASS_EIO) return e;
            json_t *er = hass_stream_error_record(r, NULL, hass_errmsg());
            hass_err we = hass_stream_write(w, er);
            json_decref(er);
            if (we) return we;
            if (r->fatal) return HASS_OK; // counted; the input ends here
            continue;
        }
        if (!in) return HASS_OK;
        st->n_in++;
        if (r->mode == HASS_STREAM_BIN && w->bin && !w->started && !w->vocab_fp)
            w->vocab_fp = r->hdr.vocab_fp; // carry the input's fingerprint over
        const json_t *uerr = json_object_get(in, "error");
        int upstream_error = uerr && !json_is_null(uerr);
        if (upstream_error) note_failure(st, 1); // failed upstream: forwarded, still counted
        if (upstream_error || hass_stream_is_passthrough(in)) {
            e = hass_stream_write(w, in);
            json_decref(in);
            if (e) return e;
            continue;
        }
        hass_stream_where(r, where, sizeof where);
        e = fn(ctx, in, where, w, &out);
        if (w->failed) {
            json_decref(in);
            json_decref(out);
            return HASS_EIO;
        }
        if (e) {
            if (!out) {
                hass_errprefix("%s", where);
                out = hass_stream_error_record(r, in, hass_errmsg());
            }
            HASS_ERROR("%s", json_string_value(json_object_get(out, "error")));
            note_failure(st, hass_record_exit_code(e));
        } else {
            st->n_ok++;
        }
        json_decref(in);
        e = out ? hass_stream_write(w, out) : HASS_OK;
        json_decref(out);
        if (e) return e;
    }
}

// Run fn over every input.
hass_err hass_stream_filter(const char *const *paths, int n_paths, uint32_t expect_fp,
                            hass_stream_writer *w, hass_stream_fn fn, void *ctx,
                            hass_stream_stats *st) {
    memset(st, 0, sizeof *st);
    static const char *const std_in[] = {"-"};
    if (n_paths == 0) paths = std_in, n_paths = 1;
    for (int i = 0; i < n_paths; i++) {
        const char *p = paths[i] ? paths[i] : "-";
        int is_stdin = !strcmp(p, "-");
        FILE *f = is_stdin ? stdin : fopen(p, "rb");
        if (!f) {
            hass_seterr(HASS_EIO, "%s: %s", p, strerror(errno));
            HASS_ERROR("%s", hass_errmsg());
            note_failure(st, 1);
            continue;
        }
        hass_stream_reader r;
        hass_stream_reader_init(&r, f, is_stdin ? "<stdin>" : p, expect_fp);
        hass_err e = filter_one(&r, w, fn, ctx, st);
        hass_stream_reader_free(&r);
        if (!is_stdin) fclose(f);
        if (e) return e;
    }
    return HASS_OK;
}
