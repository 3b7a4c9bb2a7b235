// hass-verify: owns the target model and the decode loop. Without a drafter it decodes each
// token record autoregressively (the baseline); --inspect prints a model file's metadata.
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "gen.h"
#include "gguf.h"

static const char *PROG = "hass-verify";

#define MAX_STOP 16

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL [OPTIONS] [FILE...]\n"
           "       %s --inspect MODEL [--json] [--full]\n"
           "\n"
           "Decode each token record of the input (JSONL or binary, \"tokens\") with the target\n"
           "model and write it back with \"generated\", \"finish\" and \"timing\".\n"
           "\n"
           "  -m, --model FILE      target model (GGUF)\n"
           "  -t, --temp T          temperature; 0 = greedy (default 0)\n"
           "      --top-k K         keep the K most likely tokens (0 = off, default)\n"
           "      --top-p P         keep the smallest set with mass P (1 = off, default)\n"
           "  -s, --seed N          base seed; each record's seed derives from it and the\n"
           "                        record's \"seed\", \"id\" or index (default 0)\n"
           "  -n, --max-new N       most tokens generated per record (default 256)\n"
           "      --stop STR        stop when the text contains STR (repeatable, up to %d)\n"
           "      --ignore-eos      do not stop at end-of-generation tokens\n"
           "      --margins         add \"margins\": top1 - top2 logit of every step\n"
           "  -c, --ctx N           context length: prompt + generation (default: the model's)\n"
           "      --threads N       CPU threads (default: all cores)\n"
           "      --stream          also write {\"type\":\"delta\",\"tokens\":[..]} per accepted token\n"
           "      --bin             write binary frames (default: JSONL)\n"
           "  -o, --output FILE     write to FILE instead of stdout\n"
           "  -f, --force           write binary to a terminal\n"
           "      --buffered        do not flush after each record\n"
           "      --progress        progress on stderr even when it is not a terminal\n"
           "      --no-progress     no progress line\n"
           "      --inspect FILE    print the header, metadata and tensor table of a GGUF file\n"
           "      --json            with --inspect: one JSON object per line\n"
           "      --full            with --inspect: print whole arrays\n"
           "  -v, --verbose         more messages on stderr (repeatable)\n"
           "  -q, --quiet           fewer messages on stderr (repeatable)\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 malformed input, 4 no device.\n"
           "See hass-verify(1), hass-format(5) and hass(7).\n",
           PROG, PROG, MAX_STOP);
}

// Print a GGUF file's metadata; exit code.
static int inspect(const char *path, int json, int full) {
    hass_err e;
    hass_gguf *g = hass_gguf_open(path, &e);
    if (!g) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    if (json) hass_gguf_print_json(g, stdout);
    else hass_gguf_print(g, stdout, full);
    hass_gguf_free(g);
    return fflush(stdout) == 0 ? 0 : hass_cli_fail(HASS_EXIT_RUNTIME, "write failed");
}

// What the per-record callback needs.
typedef struct run_ctx {
    hass_gen *g;
    hass_gen_cfg cfg;
    int stream;
    int64_t index;        // records seen so far
    int64_t n_tokens;     // tokens generated
    double decode_ms;     // summed decode time
    int64_t n_decode;     // summed decode steps
    hass_progress prog;
} run_ctx;

// Decode one record.
static hass_err on_record(void *ctx, const json_t *in, const char *where, hass_stream_writer *w,
                          json_t **out) {
    run_ctx *c = ctx;
    hass_err e = hass_gen_record(c->g, &c->cfg, in, where, c->index++, c->stream, w, out);
    if (!e) {
        const json_t *t = json_object_get(*out, "timing");
        c->n_tokens += (int64_t)json_array_size(json_object_get(*out, "generated"));
        c->decode_ms += json_real_value(json_object_get(t, "decode_ms"));
        double tps = json_real_value(json_object_get(t, "tok_s"));
        c->n_decode += (int64_t)(tps * json_real_value(json_object_get(t, "decode_ms")) / 1e3 + 0.5);
    }
    hass_progress_update(&c->prog, c->index);
    return e;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    enum { O_TOPK = 256, O_TOPP, O_STOP, O_IGN, O_THR, O_STREAM, O_BIN, O_BUF, O_PROG, O_NOPROG,
           O_MARGINS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},    {"inspect", required_argument, 0, 'I'},
        {"json", no_argument, 0, 'J'},           {"full", no_argument, 0, 'F'},
        {"temp", required_argument, 0, 't'},     {"top-k", required_argument, 0, O_TOPK},
        {"top-p", required_argument, 0, O_TOPP}, {"seed", required_argument, 0, 's'},
        {"max-new", required_argument, 0, 'n'},  {"stop", required_argument, 0, O_STOP},
        {"ignore-eos", no_argument, 0, O_IGN},   {"ctx", required_argument, 0, 'c'},
        {"threads", required_argument, 0, O_THR}, {"stream", no_argument, 0, O_STREAM},
        {"bin", no_argument, 0, O_BIN},          {"output", required_argument, 0, 'o'},
        {"force", no_argument, 0, 'f'},          {"buffered", no_argument, 0, O_BUF},
        {"progress", no_argument, 0, O_PROG},    {"no-progress", no_argument, 0, O_NOPROG},
        {"draft", required_argument, 0, 'd'},    {"margins", no_argument, 0, O_MARGINS},
        {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},        {0, 0, 0, 0}};
    const char *model = NULL, *insp = NULL, *outpath = "-", *stop[MAX_STOP];
    int json = 0, full = 0, c, stream = 0, bin = 0, force = 0, buffered = 0, progress = -1;
    int n_stop = 0, ignore_eos = 0, margins = 0;
    int64_t top_k = 0, seed = 0, max_new = 256, n_ctx = 0, threads = 0;
    double temp = 0, top_p = 1;
    int rc;
    while ((c = getopt_long(argc, argv, "m:t:s:n:c:o:d:fvqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'I': insp = optarg; break;
        case 'J': json = 1; break;
        case 'F': full = 1; break;
        case 't':
            if ((rc = hass_cli_real(PROG, "--temp", optarg, 0, 100, &temp))) return rc;
            break;
        case O_TOPK:
            if ((rc = hass_cli_int(PROG, "--top-k", optarg, 0, INT32_MAX, &top_k))) return rc;
            break;
        case O_TOPP:
            if ((rc = hass_cli_real(PROG, "--top-p", optarg, 0, 1, &top_p))) return rc;
            break;
        case 's':
            if ((rc = hass_cli_int(PROG, "--seed", optarg, 0, INT64_MAX, &seed))) return rc;
            break;
        case 'n':
            if ((rc = hass_cli_int(PROG, "--max-new", optarg, 0, 1 << 24, &max_new))) return rc;
            break;
        case O_STOP:
            if (n_stop == MAX_STOP)
                return hass_cli_usage_error(PROG, "--stop: at most %d stop strings", MAX_STOP);
            if (!*optarg) return hass_cli_usage_error(PROG, "--stop: empty string");
            stop[n_stop++] = optarg;
            break;
        case O_IGN: ignore_eos = 1; break;
        case O_MARGINS: margins = 1; break;
        case 'c':
            if ((rc = hass_cli_int(PROG, "--ctx", optarg, 1, 1 << 24, &n_ctx))) return rc;
            break;
        case O_THR:
            if ((rc = hass_cli_int(PROG, "--threads", optarg, 0, 1024, &threads))) return rc;
            break;
        case O_STREAM: stream = 1; break;
        case O_BIN: bin = 1; break;
        case 'o': outpath = optarg; break;
        case 'f': force = 1; break;
        case O_BUF: buffered = 1; break;
        case O_PROG: progress = 1; break;
        case O_NOPROG: progress = 0; break;
        case 'd':
            return hass_cli_usage_error(PROG, "--draft: speculative decoding is not built yet "
                                              "in this version");
        case 'v': hass_verbosity++; break;
        case 'q': hass_verbosity--; break;
        case 'h': usage(); return 0;
        case 'V': hass_cli_version(stdout, PROG); return 0;
        default: return hass_cli_usage_error(PROG, "unknown option");
        }
    }
    if (insp) return inspect(insp, json, full);
    if (!model) return hass_cli_usage_error(PROG, "-m MODEL is required");

    // Output first: an unwritable -o fails before the model loads.
    FILE *out = hass_cli_open_out(outpath);
    if (!out) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    if (hass_stream_refuse_tty(out, bin, force))
        return hass_cli_fail(HASS_EXIT_USAGE, "stdout is a terminal; pipe it, use -o or -f");

    hass_err e;
    double t0 = hass_now();
    hass_model *m = hass_model_load(model, (int)threads, &e);
    if (!m) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    hass_tokenizer *tok = hass_tokenizer_load(model, &e);
    if (!tok) {
        hass_model_free(m);
        return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    }
    run_ctx rc_ = {0};
    rc_.g = hass_gen_new(m, tok, (int)n_ctx, &e);
    if (!rc_.g) {
        hass_tokenizer_free(tok);
        hass_model_free(m);
        return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    }
    HASS_INFO("loaded %s in %.0f ms (context %d)", model, 1e3 * (hass_now() - t0),
              hass_gen_ctx(rc_.g));
    rc_.cfg.sampler.temp = (float)temp;
    rc_.cfg.sampler.top_k = (int)top_k;
    rc_.cfg.sampler.top_p = (float)top_p;
    rc_.cfg.seed = (uint64_t)seed;
    rc_.cfg.max_new = (int)max_new;
    rc_.cfg.ignore_eos = ignore_eos;
    rc_.cfg.margins = margins;
    rc_.cfg.stop = stop;
    rc_.cfg.n_stop = n_stop;
    rc_.stream = stream;
    hass_progress_init(&rc_.prog, "records", 0, progress);

    uint32_t fp = hass_tokenizer_fingerprint(tok);
    hass_stream_writer w;
    hass_stream_writer_init(&w, out, strcmp(outpath, "-") ? outpath : "<stdout>", bin, !buffered,
                            fp);
    hass_stream_stats st;
    e = hass_stream_filter((const char *const *)argv + optind, argc - optind, fp, &w, on_record,
                           &rc_, &st);
    if (!e) e = hass_stream_writer_end(&w);
    hass_progress_end(&rc_.prog, rc_.index);
    int epipe = w.epipe;
    hass_stream_writer_free(&w);
    if (out != stdout && fclose(out) != 0 && !e)
        e = hass_seterr(HASS_EIO, "%s: close failed: %s", outpath, strerror(errno));
    HASS_INFO("%lld records (%lld failed), %lld tokens generated, %.1f tok/s decode",
              (long long)st.n_in, (long long)st.n_failed, (long long)rc_.n_tokens,
              rc_.decode_ms > 0 ? 1e3 * (double)rc_.n_decode / rc_.decode_ms : 0.0);
    hass_gen_free(rc_.g);
    hass_tokenizer_free(tok);
    hass_model_free(m);
    if (e) {
        if (epipe) return HASS_EXIT_RUNTIME; // the reader went away: end quietly
        return hass_cli_fail(hass_exit_code(e) == 3 ? 3 : HASS_EXIT_RUNTIME, "%s",
                             hass_errmsg());
    }
    return st.exit_code;
}
