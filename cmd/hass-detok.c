// hass-detok: adds "text" to JSONL records from their tokens ("generated" or "tokens"), UTF-8
// safe across token boundaries; --stream prints text live from hass-verify --stream deltas.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stream.h"
#include "tokenizer.h"

static const char *PROG = "hass-detok";

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL [OPTIONS] [FILE...]\n"
           "\n"
           "Turn the token ids of each JSONL record into text: reads \"generated\" when present,\n"
           "else \"tokens\" (or --field), adds \"text\" (or --text-key); other keys are kept.\n"
           "Records {\"type\":\"delta\",\"id\":..,\"tokens\":[..]} (hass-verify --stream) are decoded\n"
           "incrementally per id: each gets the text that became complete UTF-8 with it.\n"
           "\n"
           "  -m, --model PATH      GGUF, HF folder, tokenizer.json or encoder.json folder\n"
           "      --field KEY       read ids from KEY (default: \"generated\", else \"tokens\")\n"
           "      --text-key KEY    write the text to KEY (default \"text\")\n"
           "      --keep-special    keep the text of special tokens (<|im_end|>, </s>, ...)\n"
           "      --stream          print plain text to stdout as soon as it is valid UTF-8\n"
           "                        (deltas live, a newline after each finished record)\n"
           "  -o, --output FILE     write here instead of stdout\n"
           "      --bin             write binary frames (man hass-format)\n"
           "      --buffered        do not flush after each record\n"
           "  -f, --force           binary output to a terminal\n"
           "  -v, --verbose         more messages on stderr\n"
           "  -q, --quiet           fewer messages on stderr\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "SentencePiece models: decoding \"tokens\" removes the dummy-prefix space in front of the\n"
           "first text token, so detok(tokenize(x)) == x; \"generated\" ids and deltas continue a\n"
           "prompt and keep their leading space.\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 some record was malformed.\n",
           PROG);
}

// Incremental state of one stream id.
typedef struct live {
    char *id;      // record id as JSON text
    hass_detok d;  // pending bytes
} live;

typedef struct ctx {
    hass_tokenizer *t;
    const char *field, *text_key;
    int keep_special, stream;
    FILE *out;     // --stream text output
    live *lv;
    int n_lv, cap_lv;
} ctx;

// State for a record id (created on first use); NULL on allocation failure.
static live *live_get(ctx *c, const json_t *rec, int create) {
    char *id = json_dumps(json_object_get(rec, "id") ? json_object_get(rec, "id") : json_null(), JSON_ENCODE_ANY | JSON_COMPACT);
    if (!id) return NULL;
    for (int i = 0; i < c->n_lv; i++)
        if (!strcmp(c->lv[i].id, id)) { free(id); return &c->lv[i]; }
    if (!create) { free(id); return NULL; }
    if (c->n_lv == c->cap_lv) {
        int cap = c->cap_lv ? 2 * c->cap_lv : 8;
        live *p = realloc(c->lv, (size_t)cap * sizeof *p);
        if (!p) { free(id); return NULL; }
        c->lv = p;
        c->cap_lv = cap;
    }
    live *l = &c->lv[c->n_lv++];
    l->id = id;
    hass_detok_init(&l->d, c->t, c->keep_special);
    l->d.at_start = 0; // deltas continue a prompt
    return l;
}

// Drop the state of an id.
static void live_drop(ctx *c, live *l) {
    free(l->id);
    *l = c->lv[--c->n_lv];
}

// Decode one record.
static hass_err detok_record(void *vc, const json_t *in, const char *where, hass_stream_writer *w, json_t **out) {
    ctx *c = vc;
    (void)where;
    (void)w;
    const char *type = json_string_value(json_object_get(in, "type"));
    int delta = type && !strcmp(type, "delta");
    const char *key = c->field ? c->field : json_object_get(in, "generated") ? "generated" : "tokens";
    if (delta && !c->field) key = "tokens";
    int32_t *ids;
    int64_t n;
    hass_err e = hass_jsonl_get_ids(in, key, hass_tokenizer_n_vocab(c->t), &ids, &n);
    if (e) return e;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    live *l = live_get(c, in, delta);
    if (delta) {
        if (!l) { free(ids); return hass_seterr(HASS_ENOMEM, "out of memory"); }
        for (int64_t i = 0; i < n && !e; i++) e = hass_detok_push(&l->d, ids[i], &buf, &len, &cap);
        if (!e && !buf && !(buf = calloc(1, 1))) e = hass_seterr(HASS_ENOMEM, "out of memory");
    } else if (l && c->stream) {
        // the final record after deltas: print what is still pending
        e = hass_detok_flush(&l->d, &buf, &len, &cap);
        live_drop(c, l);
    } else {
        if (l) live_drop(c, l);
        // generated ids continue the prompt: keep their leading space (SentencePiece)
        if (!strcmp(key, "generated")) e = hass_tokenizer_decode_continuation(c->t, ids, n, c->keep_special, &buf, &len);
        else e = hass_tokenizer_decode(c->t, ids, n, c->keep_special, &buf, &len);
    }
    free(ids);
    if (e) { free(buf); return e; }
    if (c->stream) {
        if (fwrite(buf, 1, len, c->out) != len || (!delta && fputc('\n', c->out) == EOF) || fflush(c->out)) {
            free(buf);
            return hass_seterr(HASS_EIO, "write failed: %s", strerror(errno));
        }
        free(buf);
        return HASS_OK; // nothing goes through the record writer
    }
    *out = json_deep_copy(in);
    json_object_set_new(*out, c->text_key, json_stringn(buf, len));
    free(buf);
    return HASS_OK;
}

// Run every record of every input through detok_record. Like hass_stream_filter, but delta
// records reach detok_record too (the filter forwards them unchanged). Returns HASS_OK unless
// reading or writing had to stop; per-record failures count in st.
static hass_err run_inputs(char **paths, int n_paths, ctx *c, hass_stream_writer *w, hass_stream_stats *st) {
    static char *std_in[] = {"-"};
    if (n_paths == 0) paths = std_in, n_paths = 1;
    memset(st, 0, sizeof *st);
    char where[600];
    for (int i = 0; i < n_paths; i++) {
        int is_stdin = !strcmp(paths[i], "-");
        FILE *f = is_stdin ? stdin : fopen(paths[i], "rb");
        if (!f) {
            HASS_ERROR("%s: %s", paths[i], strerror(errno));
            st->n_failed++;
            st->exit_code = st->exit_code ? st->exit_code : HASS_EXIT_RUNTIME;
            continue;
        }
        hass_stream_reader r;
        hass_stream_reader_init(&r, f, is_stdin ? "<stdin>" : paths[i], hass_tokenizer_fingerprint(c->t));
        hass_err stop = HASS_OK;
        for (;;) {
            json_t *in = NULL, *out = NULL;
            hass_err e = hass_stream_read(&r, &in);
            if (!e && !in) break;
            st->n_in++;
            if (e) {
                HASS_ERROR("%s", hass_errmsg());
                out = hass_stream_error_record(&r, NULL, hass_errmsg());
            } else if (json_object_get(in, "error") || hass_stream_is_passthrough(in)) {
                if (json_object_get(in, "error")) e = HASS_EINVAL; // failed upstream: forwarded, counted
                out = json_incref(in);
            } else if ((e = detok_record(c, in, hass_stream_where(&r, where, sizeof where), w, &out))) {
                hass_errprefix("%s", where);
                HASS_ERROR("%s", hass_errmsg());
                out = hass_stream_error_record(&r, in, hass_errmsg());
            } else {
                st->n_ok++;
            }
            if (e) {
                st->n_failed++;
                if (!st->exit_code) st->exit_code = hass_record_exit_code(e);
            }
            json_decref(in);
            hass_err we = out ? hass_stream_write(w, out) : HASS_OK;
            json_decref(out);
            if (we) { stop = we; break; }
            if (r.fatal) { if (e == HASS_EIO) stop = e; break; }
        }
        hass_stream_reader_free(&r);
        if (!is_stdin) fclose(f);
        if (stop) return stop;
    }
    return HASS_OK;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    enum { O_FIELD = 256, O_TKEY, O_KEEP, O_STREAM };
    static const struct option opts[] = {
        {"field", required_argument, 0, O_FIELD}, {"text-key", required_argument, 0, O_TKEY},
        {"keep-special", no_argument, 0, O_KEEP}, {"stream", no_argument, 0, O_STREAM},
        {0, 0, 0, 0}};
    hass_cli cl;
    hass_cli_init(&cl, PROG, usage, HASS_CLI_MODEL | HASS_CLI_OUTPUT, opts, "");
    ctx c = {.text_key = "text"};
    int ch, rc;
    while ((ch = getopt_long(argc, argv, cl.shortopts, cl.opts, NULL)) != -1) {
        switch (ch) {
        case O_FIELD: c.field = optarg; break;
        case O_TKEY: c.text_key = optarg; break;
        case O_KEEP: c.keep_special = 1; break;
        case O_STREAM: c.stream = 1; break;
        default:
            if ((rc = hass_cli_flag(&cl, ch, optarg)) >= 0) return rc;
        }
    }
    if ((rc = hass_cli_need_model(&cl))) return rc;
    const char *outpath = cl.output;
    if (c.stream && cl.bin) return hass_cli_usage_error(PROG, "--stream prints text; it excludes --bin");
    hass_err e;
    c.t = hass_tokenizer_load(cl.model, &e);
    if (!c.t) return hass_cli_fail_err(e, "%s", hass_errmsg());
    FILE *out = hass_cli_open_output(&cl);
    if (!out || (rc = hass_cli_refuse_tty(&cl, out))) {
        hass_tokenizer_free(c.t);
        return out ? rc : HASS_EXIT_RUNTIME;
    }
    c.out = out;
    // --stream: records go nowhere (error records too: their messages are on stderr)
    FILE *sink = c.stream ? fopen("/dev/null", "wb") : out;
    if (!sink) { hass_tokenizer_free(c.t); return hass_cli_fail(HASS_EXIT_RUNTIME, "/dev/null: %s", strerror(errno)); }
    hass_stream_writer w;
    hass_stream_writer_init(&w, sink, outpath, cl.bin, !cl.buffered, hass_tokenizer_fingerprint(c.t));
    hass_stream_stats st;
    e = run_inputs(argv + optind, argc - optind, &c, &w, &st);
    if (!e) e = hass_stream_writer_end(&w);
    int epipe = w.epipe;
    hass_stream_writer_free(&w);
    for (int i = 0; i < c.n_lv; i++) free(c.lv[i].id);
    free(c.lv);
    hass_tokenizer_free(c.t);
    if (sink != out) fclose(sink);
    if (out != stdout && fclose(out) != 0 && !e) e = hass_seterr(HASS_EIO, "%s: close failed: %s", outpath, strerror(errno));
    if (e) {
        if (epipe) return HASS_EXIT_RUNTIME;
        return hass_cli_fail_err(e, "%s", hass_errmsg());
    }
    if (st.n_failed) HASS_WARN("%lld of %lld records failed", (long long)st.n_failed, (long long)st.n_in);
    return st.exit_code;
}
