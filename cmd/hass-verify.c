// hass-verify: owns the target model and the decode loop. Without a drafter it decodes each
// token record autoregressively (the baseline); --inspect prints a model file's metadata.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "verify_batch.h"
#include "verify_record.h"
#include "verify_spec.h"
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
           "  -d, --draft HEAD      speculative decoding with a HASS/EAGLE draft head (directory\n"
           "                        with config.json + model.safetensors), in-process\n"
           "      --tree-total N    tree tokens verified per cycle, root included (default 60)\n"
           "      --tree-depth N    tree levels below the root (default 6)\n"
           "      --tree-topk N     children per expanded node and beam width (default 10)\n"
           "      --tree MODE       fixed (default) or auto: choose total/depth/top-k from the\n"
           "                        measured verify-cost curve and the acceptance so far;\n"
           "                        the start measurements are kept for the next run in\n"
           "                        $HASS_CACHE_DIR (default ~/.cache/hass; empty: none)\n"
           "      --draft-exact     keep the head's layer weights as loaded (default on a CPU:\n"
           "                        8-bit Q8_0, about half the drafting time, same output)\n"
           "      --metrics FILE    per-cycle/per-request metrics JSONL (see hass-stats(1))\n"
           "  -t, --temp T          temperature; 0 = greedy (default 0)\n"
           "      --top-k K         keep the K most likely tokens (0 = off, default)\n"
           "      --top-p P         keep the smallest set with mass P (1 = off, default)\n"
           "  -s, --seed N          base seed; each record's seed derives from it and the\n"
           "                        record's \"seed\", \"id\" or index (default 0)\n"
           "  -n, --max-new N       most tokens generated per record (default 256)\n"
           "      --stop STR        stop when the text contains STR (repeatable, up to %d)\n"
           "      --ignore-eos      do not stop at end-of-generation tokens\n"
           "      --margins         add \"margins\": top1 - top2 logit of every step (plain\n"
           "                        decoding only)\n"
           "  -c, --ctx N           context length: prompt + generation (default: the model's)\n"
           "      --device DEV      cuda, cpu or auto (default): where the target runs; auto =\n"
           "                        cuda when built with CUDA and a GPU is present\n"
           "      --threads N       CPU threads (0 = all cores, default)\n"
           "      --f32             f32 activations: no 8-bit activation rounding; slower;\n"
           "                        matches llama.cpp's F32 path\n"
           "      --stream          also write {\"type\":\"delta\",\"tokens\":[..]} per accepted token\n"
           "      --batch N         decode up to N records at once in one process (CPU; default\n"
           "                        1), plain or with --draft (in process): the same output as\n"
           "                        one at a time, in input order; memory grows with N x the\n"
           "                        context (one cache each) and, with --draft, N drafter states\n"
           "      --finish-order    with --batch: write records as they finish\n"
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
    if (!g) return hass_cli_fail_err(e, "%s", hass_errmsg());
    if (json) hass_gguf_print_json(g, stdout);
    else hass_gguf_print(g, stdout, full);
    hass_gguf_free(g);
    return fflush(stdout) == 0 ? 0 : hass_cli_fail(HASS_EXIT_RUNTIME, "write failed");
}

// The command line.
typedef struct args {
    hass_cli cl;             // the shared flags
    const char *insp, *draft, *metrics;
    int json, full, stream, tree_auto, draft_exact, finish_order;
    int64_t n_ctx, batch;
    hass_gen_cfg gen;        // sampling and stop conditions
    const char *stop[MAX_STOP];
    double t0;               // when loading began
} args;

// What the per-record callback needs.
typedef struct run_ctx {
    hass_gen *g;
    const hass_gen_cfg *cfg;
    int stream;
    int64_t index;        // records seen so far
    int64_t n_tokens;     // tokens generated
    double decode_ms;     // summed decode time
    int64_t n_decode;     // summed decode steps
    int64_t n_channels;   // hass-draft's control records (announcement, end): not decoded
    hass_progress prog;
    hass_model *m;          // borrowed
    hass_backend *b;        // borrowed: the target's device
    const hass_tokenizer *tok; // borrowed
    hass_verify_spec *sp;         // speculative state
    hass_verify_batch *vb;  // --batch N > 1: the batched run (else g decodes)
} run_ctx;

// A channel announcement from hass-draft: connect (two-process mode). The record itself is
// consumed (no output) unless it fails.
static hass_err on_channel(run_ctx *c, const json_t *in, json_t **out) {
    hass_verify_spec *sp = c->sp;
    *out = NULL;
    if (sp->spec) {
        HASS_INFO("draft channel ignored: a drafter is already in use");
        return HASS_OK;
    }
    hass_tree_cfg tc = sp->tc;
    hass_err e;
    sp->remote = hass_remote_from_announcement(in, hass_model_fingerprint(c->m),
                                               hass_tokenizer_fingerprint(c->tok),
                                               hass_model_config(c->m)->n_embd,
                                               hass_gen_vocab(c->g), hass_remote_timeout_ms(),
                                               &tc, &e);
    if (!sp->remote) return e;
    hass_drafter dr = hass_remote_drafter(sp->remote);
    hass_spec_cfg sc = {tc, sp->tree_auto, {0.f, 0, 1.f}, 0, hass_gen_ctx(c->g), NULL};
    sp->spec = hass_spec_new_on(c->b, &dr, &sc, &e);
    if (!sp->spec) return e;
    hass_spec_set_droppable(sp->spec, 1); // hass-draft dying mid-record: it goes on plainly
    hass_gen_set_spec(c->g, sp->spec, sp->metrics);
    if (c->cfg->margins) HASS_INFO("--margins: not written while a drafter is connected");
    HASS_INFO("draft channel %s: tree total %d, depth %d, top-k %d", hass_remote_path(sp->remote),
              tc.n_total, tc.levels, tc.top_k);
    return HASS_OK;
}

// hass-draft's end of the channel: every record that passed through it is decoded. Close the
// channel (hass-draft waits for that to exit) and decode what follows plainly.
static void on_channel_end(run_ctx *c) {
    hass_verify_spec *sp = c->sp;
    if (!sp->remote) return; // no channel, or a drafter of this process
    hass_gen_set_spec(c->g, NULL, sp->metrics);
    hass_spec_free(sp->spec);
    hass_remote_free(sp->remote);
    sp->spec = NULL;
    sp->remote = NULL;
}

// After the stream: a channel never ended means hass-draft died, and the records it held died
// with it. The exit code: 0, or 1 (said).
static int channel_check(const hass_verify_spec *sp) {
    if (!sp->remote && sp->n_lost)
        return hass_cli_fail(HASS_EXIT_RUNTIME, "draft channel: the drafter was lost; %lld records "
                             "were decoded without it (\"draft\":\"lost\")", (long long)sp->n_lost);
    if (!sp->remote) return 0;
    return hass_cli_fail(HASS_EXIT_RUNTIME, "draft channel %s: the stream ended without "
                         "hass-draft's end of the channel: hass-draft died, and records that "
                         "passed through it may be lost", hass_remote_path(sp->remote));
}

// Add a decoded record's tokens and decode time to the run's counts (NULL: it failed).
static void count(void *ctx, const json_t *out) {
    run_ctx *c = ctx;
    if (!out) return;
    const json_t *t = json_object_get(out, "timing");
    c->n_tokens += (int64_t)json_array_size(json_object_get(out, "generated"));
    c->decode_ms += json_real_value(json_object_get(t, "decode_ms"));
    double tps = json_real_value(json_object_get(t, "tok_s"));
    c->n_decode += (int64_t)(tps * json_real_value(json_object_get(t, "decode_ms")) / 1e3 + 0.5);
}

// Decode one record.
static hass_err on_record(void *ctx, const json_t *in, const char *where, hass_stream_writer *w,
                          json_t **out) {
    run_ctx *c = ctx;
    if (hass_remote_is_announcement(in) && c->vb) { // hass-draft gives up when nobody connects
        c->n_channels++;
        *out = NULL;
        HASS_WARN("%s: draft channel ignored: the two-process drafter needs --batch 1 (--batch "
                  "drafts in process: --draft)", where);
        return HASS_OK;
    }
    if (hass_remote_is_announcement(in)) {
        c->n_channels++;
        return on_channel(c, in, out);
    }
    if (hass_remote_is_end(in)) {
        c->n_channels++;
        *out = NULL;
        on_channel_end(c);
        return HASS_OK;
    }
    if (c->vb) { // decoded in a later step, counted then (count)
        hass_err e = hass_verify_batch_record(c->vb, in, where, c->index++, out);
        hass_progress_update(&c->prog, c->index);
        return e;
    }
    hass_err e = hass_verify_record(c->g, c->cfg, in, where, c->index, c->stream, w, out);
    hass_verify_spec *sp = c->sp;
    if (sp->remote && hass_remote_dead(sp->remote)) { // lost: this record ended plainly
        if (!sp->lost)
            HASS_WARN("%s: %s; decoding on without the drafter", where,
                      hass_remote_why(sp->remote));
        sp->lost = 1;
        hass_gen_set_spec(c->g, NULL, sp->metrics);
        if (!e && json_object_get(*out, "generated")) {
            json_object_set_new(*out, "draft", json_string("lost"));
            sp->n_lost++;
        }
    }
    c->index++;
    if (!e) count(c, *out);
    hass_progress_update(&c->prog, c->index);
    return e;
}

// Parse the command line into a: -1 to go on, else the exit code.
static int parse(int argc, char **argv, args *a) {
    enum { O_TOPK = 256, O_TOPP, O_STOP, O_IGN, O_STREAM, O_MARGINS, O_TREE, O_METRICS, O_DEXACT,
           O_BATCH, O_FORDER };
    static const struct option opts[] = {
        {"inspect", required_argument, 0, 'I'},  {"json", no_argument, 0, 'J'},
        {"full", no_argument, 0, 'F'},           {"temp", required_argument, 0, 't'},
        {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"seed", required_argument, 0, 's'},     {"max-new", required_argument, 0, 'n'},
        {"stop", required_argument, 0, O_STOP},  {"ignore-eos", no_argument, 0, O_IGN},
        {"ctx", required_argument, 0, 'c'},      {"stream", no_argument, 0, O_STREAM},
        {"draft", required_argument, 0, 'd'},    {"margins", no_argument, 0, O_MARGINS},
        {"tree", required_argument, 0, O_TREE},  {"metrics", required_argument, 0, O_METRICS},
        {"draft-exact", no_argument, 0, O_DEXACT}, {"batch", required_argument, 0, O_BATCH},
        {"finish-order", no_argument, 0, O_FORDER}, {0, 0, 0, 0}};
    hass_cli_init(&a->cl, PROG, usage,
                  HASS_CLI_MODEL | HASS_CLI_OUTPUT | HASS_CLI_THREADS | HASS_CLI_DEVICE |
                      HASS_CLI_F32 | HASS_CLI_PROGRESS | HASS_CLI_TREE,
                  opts, "t:s:n:c:d:");
    a->gen = (hass_gen_cfg){.sampler = {0.f, 0, 1.f}, .max_new = 256, .stop = a->stop};
    a->batch = 1;
    int c, rc;
    int64_t v;
    double x;
    while ((c = getopt_long(argc, argv, a->cl.shortopts, a->cl.opts, NULL)) != -1) {
        switch (c) {
        case 'I': a->insp = optarg; break;
        case 'J': a->json = 1; break;
        case 'F': a->full = 1; break;
        case 't':
            if ((rc = hass_cli_real(PROG, "--temp", optarg, 0, 100, &x))) return rc;
            a->gen.sampler.temp = (float)x;
            break;
        case O_TOPK:
            if ((rc = hass_cli_int(PROG, "--top-k", optarg, 0, INT32_MAX, &v))) return rc;
            a->gen.sampler.top_k = (int)v;
            break;
        case O_TOPP:
            if ((rc = hass_cli_real(PROG, "--top-p", optarg, 0, 1, &x))) return rc;
            a->gen.sampler.top_p = (float)x;
            break;
        case 's':
            if ((rc = hass_cli_int(PROG, "--seed", optarg, 0, INT64_MAX, &v))) return rc;
            a->gen.seed = (uint64_t)v;
            break;
        case 'n':
            if ((rc = hass_cli_int(PROG, "--max-new", optarg, 0, 1 << 24, &v))) return rc;
            a->gen.max_new = (int)v;
            break;
        case O_STOP:
            if (a->gen.n_stop == MAX_STOP)
                return hass_cli_usage_error(PROG, "--stop: at most %d stop strings", MAX_STOP);
            if (!*optarg) return hass_cli_usage_error(PROG, "--stop: empty string");
            a->stop[a->gen.n_stop++] = optarg;
            break;
        case O_IGN: a->gen.ignore_eos = 1; break;
        case O_MARGINS: a->gen.margins = 1; break;
        case 'c':
            if ((rc = hass_cli_int(PROG, "--ctx", optarg, 1, 1 << 24, &a->n_ctx))) return rc;
            break;
        case O_STREAM: a->stream = 1; break;
        case 'd': a->draft = optarg; break;
        case O_TREE:
            if (!strcmp(optarg, "auto")) a->tree_auto = 1;
            else if (!strcmp(optarg, "fixed")) a->tree_auto = 0;
            else return hass_cli_usage_error(PROG, "--tree: 'auto' or 'fixed', not '%s'", optarg);
            break;
        case O_METRICS: a->metrics = optarg; break;
        case O_DEXACT: a->draft_exact = 1; break;
        case O_BATCH:
            if ((rc = hass_cli_int(PROG, "--batch", optarg, 1, 1024, &a->batch))) return rc;
            break;
        case O_FORDER: a->finish_order = 1; break;
        default:
            if ((rc = hass_cli_flag(&a->cl, c, optarg)) >= 0) return rc;
        }
    }
    if (a->insp) return inspect(a->insp, a->json, a->full);
    if ((rc = hass_cli_need_model(&a->cl))) return rc;
    if (a->gen.margins && a->draft)
        return hass_cli_usage_error(PROG, "--margins: plain decoding only (a verify cycle keeps no "
                                          "logits per step); drop --draft");
    return hass_cli_check_device(&a->cl) ? HASS_EXIT_DEVICE : -1;
}

// The decoder of the run: the batched one (--batch N > 1, writing through w) or the one-at-a-time
// one, and the speculative state (the metrics file; the drafter, without --batch); the exit code.
static int setup(const args *a, run_ctx *c, hass_verify_spec *sp, hass_stream_writer *w) {
    hass_err e;
    int rc = 0;
    hass_verify_spec_opts so = {a->draft, a->draft_exact, a->tree_auto, a->metrics};
    if (a->batch > 1) {
        if (c->b->dev != HASS_DEVICE_CPU)
            return hass_cli_usage_error(PROG, "--batch: the CPU engine only; add --device cpu");
        if ((rc = hass_verify_spec_metrics(sp, a->metrics))) return rc;
        hass_verify_batch_cfg bc = {(int)a->batch, (int)a->n_ctx, a->stream, a->finish_order,
                                    &a->gen, sp->metrics, count, c};
        c->vb = hass_verify_batch_new(c->m, c->tok, &bc, w, &e);
        if (!c->vb) return hass_cli_fail_err(e, "%s", hass_errmsg());
        HASS_INFO("loaded %s in %.0f ms (batch %lld, context %d each)", a->cl.model,
                  1e3 * (hass_now() - a->t0), (long long)a->batch, hass_verify_batch_ctx(c->vb));
        int n_ctx = hass_verify_batch_ctx(c->vb);
        return a->draft ? hass_verify_spec_setup(sp, c->b, c->tok, &so, n_ctx, c->vb) : 0;
    }
    c->g = hass_gen_new_on(c->b, c->tok, (int)a->n_ctx, &e);
    if (!c->g) return hass_cli_fail_err(e, "%s", hass_errmsg());
    HASS_INFO("loaded %s in %.0f ms (context %d)", a->cl.model, 1e3 * (hass_now() - a->t0),
              hass_gen_ctx(c->g));
    if (a->draft || a->metrics) {
        if ((rc = hass_verify_spec_setup(sp, c->b, c->tok, &so, hass_gen_ctx(c->g), NULL)))
            return rc;
        hass_gen_set_spec(c->g, sp->spec, sp->metrics);
    }
    return 0;
}

// --batch: decode what is still in flight and write what is held; its late failures join st.
static hass_err batch_end(run_ctx *c, hass_stream_stats *st) {
    if (!c->vb) return HASS_OK;
    hass_verify_batch_stats bs;
    hass_err e = hass_verify_batch_finish(c->vb, &bs);
    st->n_ok -= bs.n_failed;
    st->n_failed += bs.n_failed;
    if (!st->exit_code) st->exit_code = bs.exit_code;
    return e;
}

// Decode the inputs into out with the loaded target; the exit code.
static int run(const args *a, char **files, int n_files, FILE *out, hass_model *m,
               hass_tokenizer *tok, hass_backend *b) {
    hass_err e;
    run_ctx rc_ = {.cfg = &a->gen, .stream = a->stream, .m = m, .b = b, .tok = tok};
    hass_verify_spec sp = {.tc = a->cl.tree, .tree_auto = a->tree_auto};
    rc_.sp = &sp;
    const char *outpath = a->cl.output;
    uint32_t fp = hass_tokenizer_fingerprint(tok);
    hass_stream_writer w;
    hass_stream_writer_init(&w, out, strcmp(outpath, "-") ? outpath : "<stdout>", a->cl.bin,
                            !a->cl.buffered, fp);
    int src = setup(a, &rc_, &sp, &w);
    if (src) {
        hass_verify_batch_free(rc_.vb); // before the drafter its slots fork
        hass_verify_spec_teardown(&sp);
        hass_gen_free(rc_.g);
        hass_stream_writer_free(&w);
        return src;
    }
    hass_progress_init(&rc_.prog, "records", 0, a->cl.progress);
    double t_run = hass_now();
    hass_stream_stats st;
    e = hass_stream_filter((const char *const *)files, n_files, fp, &w, on_record, &rc_, &st);
    hass_err be = batch_end(&rc_, &st);
    if (!e) e = be;
    if (!e) e = hass_stream_writer_end(&w);
    t_run = hass_now() - t_run;
    hass_progress_end(&rc_.prog, rc_.index);
    int chan = e ? 0 : channel_check(&sp);
    int epipe = w.epipe;
    hass_verify_batch_free(rc_.vb);
    hass_stream_writer_free(&w);
    if (out != stdout && fclose(out) != 0 && !e)
        e = hass_seterr(HASS_EIO, "%s: close failed: %s", outpath, strerror(errno));
    if (a->batch > 1) // records overlap: the rate is the whole run's
        HASS_INFO("%lld records (%lld failed), %lld tokens generated, %.1f tok/s overall",
                  (long long)(st.n_in - rc_.n_channels), (long long)st.n_failed,
                  (long long)rc_.n_tokens, t_run > 0 ? (double)rc_.n_tokens / t_run : 0.0);
    else
        HASS_INFO("%lld records (%lld failed), %lld tokens generated, %.1f tok/s decode",
                  (long long)(st.n_in - rc_.n_channels), (long long)st.n_failed,
                  (long long)rc_.n_tokens,
                  rc_.decode_ms > 0 ? 1e3 * (double)rc_.n_decode / rc_.decode_ms : 0.0);
    hass_gen_free(rc_.g);
    if (hass_verify_spec_teardown(&sp) && !e) e = hass_seterr(HASS_EIO, "%s: write failed", a->metrics);
    if (!e) return st.exit_code ? st.exit_code : chan;
    if (epipe) return HASS_EXIT_RUNTIME; // the reader went away: end quietly
    return hass_cli_fail_err(e, "%s", hass_errmsg());
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    static args a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    // Output first: an unwritable -o fails before the model loads.
    FILE *out = hass_cli_open_output(&a.cl);
    if (!out) return HASS_EXIT_RUNTIME;
    if ((rc = hass_cli_refuse_tty(&a.cl, out))) return rc;
    hass_err e;
    a.t0 = hass_now();
    hass_model *m = hass_cli_load_model(&a.cl, &e);
    hass_tokenizer *tok = m ? hass_tokenizer_load(a.cl.model, &e) : NULL;
    hass_backend *b = tok ? hass_backend_new(m, a.cl.dev, &e) : NULL;
    rc = b ? run(&a, argv + optind, argc - optind, out, m, tok, b) : hass_cli_fail_err(e, "%s", hass_errmsg());
    hass_backend_free(b);
    hass_tokenizer_free(tok);
    hass_model_free(m);
    return rc;
}
