// hass-cat: converts record streams between JSONL and binary frames, lists and tests them.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stream.h"

static const char *PROG = "hass-cat";

// Full help on stdout.
static void usage(void) {
    printf("usage: %s [OPTIONS] [FILE...]\n"
           "\n"
           "Copy hass record streams (JSONL or binary, told apart by their first bytes) to\n"
           "JSONL, or to binary frames with --bin; list or test their frames.\n"
           "\n"
           "      --bin             write binary frames (default: JSONL)\n"
           "      --vocab-fp HEX    vocabulary fingerprint for the binary header (default:\n"
           "                        the input's, else 0 = unknown)\n"
           "  -l, --list            print the header and one line per frame (or record)\n"
           "      --test            check the inputs (framing, CRC, JSON); write nothing\n"
           "  -o, --output FILE     write to FILE instead of stdout\n"
           "  -f, --force           write binary to a terminal\n"
           "      --buffered        do not flush after each record\n"
           "  -v, --verbose         more messages on stderr (repeatable)\n"
           "  -q, --quiet           fewer messages on stderr (repeatable)\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 malformed input.\n"
           "See hass-cat(1) and hass-format(5).\n",
           PROG);
}

// The identity filter: every record is copied.
static hass_err copy_record(void *ctx, const json_t *in, const char *where, hass_stream_writer *w,
                            json_t **out) {
    *out = json_incref((json_t *)in);
    return HASS_OK;
}

// Name of a frame type.
static const char *type_name(uint32_t t) {
    return t == HASS_FRAME_RECORD ? "RECORD" : t == HASS_FRAME_END ? "END" : "other";
}

// Print one line per frame of a binary input, or counts of a JSONL input; exit code.
static int list_one(FILE *f, const char *name, FILE *out) {
    int c = getc(f);
    if (c == EOF) {
        fprintf(out, "%s: empty\n", name);
        return 0;
    }
    ungetc(c, f);
    if (c != 'H') {
        hass_stream_reader r;
        hass_stream_reader_init(&r, f, name, 0);
        int64_t n = 0, bad = 0;
        json_t *rec;
        hass_err e;
        while (!r.done) {
            if ((e = hass_stream_read(&r, &rec))) {
                bad++;
                HASS_ERROR("%s", hass_errmsg());
                if (r.fatal) break;
            } else if (rec) {
                n++;
                json_decref(rec);
            }
        }
        fprintf(out, "%s: jsonl, %lld records, %lld bad lines\n", name, (long long)n,
                (long long)bad);
        hass_stream_reader_free(&r);
        return bad ? 3 : 0;
    }
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t frame_no = 0, n_streams = 0, in_frames = 0; // in_frames: of the current stream
    int rc = 0, in_stream = 0;
    for (;;) {
        if (!in_stream) {
            if ((c = getc(f)) == EOF) break;
            ungetc(c, f);
            hass_frame_header h;
            if (hass_frame_read_header(f, 0, &h)) {
                HASS_ERROR("%s:header: %s", name, hass_errmsg());
                rc = 3;
                break;
            }
            fprintf(out, "%s: stream %lld: version %u, header %u bytes, vocab_fp %08x, flags %u\n",
                    name, (long long)++n_streams, h.version, h.header_bytes, h.vocab_fp, h.flags);
            in_stream = 1;
            in_frames = 0;
        }
        hass_frame fr;
        int resync;
        hass_err e = hass_frame_read(f, &fr, &buf, &cap, &resync);
        frame_no++, in_frames++;
        if (!e && fr.type == 0) {
            HASS_ERROR("%s: truncated stream: no END frame", name);
            rc = 3;
            break;
        }
        if (e && !resync) {
            HASS_ERROR("%s:frame %lld: %s", name, (long long)frame_no, hass_errmsg());
            rc = 3;
            break;
        }
        fprintf(out, "frame %lld seq %u type %u %s %u bytes crc %s\n", (long long)frame_no,
                fr.seq, fr.type, type_name(fr.type), fr.n_bytes, e ? "BAD" : "ok");
        if (e) rc = 3;
        if (!e && fr.type == HASS_FRAME_END) {
            if (hass_frame_check_end(&fr, in_frames - 1)) {
                HASS_ERROR("%s:frame %lld: %s", name, (long long)frame_no, hass_errmsg());
                rc = 3;
            }
            in_stream = 0;
        }
    }
    free(buf);
    return rc;
}

// --list over all inputs; exit code.
static int list_all(char **paths, int n, FILE *out) {
    int rc = 0;
    static char *std_in[] = {"-"};
    if (n == 0) paths = std_in, n = 1;
    for (int i = 0; i < n; i++) {
        int is_stdin = !strcmp(paths[i], "-");
        FILE *f = is_stdin ? stdin : fopen(paths[i], "rb");
        if (!f) {
            hass_cli_fail(1, "%s: %s", paths[i], strerror(errno));
            if (!rc) rc = 1;
            continue;
        }
        int k = list_one(f, is_stdin ? "<stdin>" : paths[i], out);
        if (k && !rc) rc = k;
        if (!is_stdin) fclose(f);
    }
    return rc;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    enum { O_FP = 256 };
    static const struct option opts[] = {
        {"vocab-fp", required_argument, 0, O_FP}, {"list", no_argument, 0, 'l'},
        {"test", no_argument, 0, 't'},            {0, 0, 0, 0}};
    hass_cli cl;
    hass_cli_init(&cl, PROG, usage, HASS_CLI_OUTPUT, opts, "l");
    int list = 0, test = 0, c, rc;
    uint32_t fp = 0;
    while ((c = getopt_long(argc, argv, cl.shortopts, cl.opts, NULL)) != -1) {
        switch (c) {
        case O_FP: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 16);
            if (errno || *end || !*optarg || v > UINT32_MAX)
                return hass_cli_usage_error(PROG, "--vocab-fp: '%s' is not a 32-bit hex number",
                                            optarg);
            fp = (uint32_t)v;
            break;
        }
        case 'l': list = 1; break;
        case 't': test = 1; break;
        default:
            if ((rc = hass_cli_flag(&cl, c, optarg)) >= 0) return rc;
        }
    }
    const char *outpath = cl.output;
    if (list && test) return hass_cli_usage_error(PROG, "--list and --test exclude each other");
    FILE *out = test ? NULL : hass_cli_open_output(&cl);
    if (!test && !out) return HASS_EXIT_RUNTIME;
    if (list) {
        rc = list_all(argv + optind, argc - optind, out);
        if (fflush(out) != 0 || (out != stdout && fclose(out) != 0))
            return hass_cli_fail(HASS_EXIT_RUNTIME, "%s: write failed", outpath);
        return rc;
    }
    if (!test && (rc = hass_cli_refuse_tty(&cl, out))) return rc;
    FILE *sink = test ? fopen("/dev/null", "wb") : out;
    if (!sink) return hass_cli_fail(HASS_EXIT_RUNTIME, "/dev/null: %s", strerror(errno));
    hass_stream_writer w;
    hass_stream_writer_init(&w, sink, test ? "/dev/null" : outpath, cl.bin, !cl.buffered && !test,
                            fp);
    hass_stream_stats st;
    hass_err e = hass_stream_filter((const char *const *)argv + optind, argc - optind, 0, &w,
                                    copy_record, NULL, &st);
    if (!e) e = hass_stream_writer_end(&w);
    int epipe = w.epipe;
    hass_stream_writer_free(&w);
    if (sink != stdout && fclose(sink) != 0 && !e)
        e = hass_seterr(HASS_EIO, "%s: close failed: %s", outpath, strerror(errno));
    if (e) {
        if (epipe) return HASS_EXIT_RUNTIME; // the reader went away: end quietly
        return hass_cli_fail_err(e, "%s", hass_errmsg());
    }
    if (test && !st.exit_code)
        HASS_INFO("%lld records ok", (long long)st.n_ok);
    return st.exit_code;
}
