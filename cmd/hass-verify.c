// hass-verify: owns the target model and the decode loop. Without a drafter it decodes each
// token record autoregressively (the baseline); --inspect prints a model file's metadata.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "cli.h"
#include "gpu.h"
#include "cuda_draft.h"
#include "draft.h"
#include "draft_remote.h"
#include "verify_record.h"
#include "head.h"
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
           "      --threads N       CPU threads (default: all cores)\n"
           "      --f32             f32 activations: no 8-bit activation rounding; slower;\n"
           "                        matches llama.cpp's F32 path\n"
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

// Speculative decoding state of the run (all owned).
typedef struct spec_state {
    hass_head *head;
    hass_draft *draft;
    hass_cuda_draft *cdraft; // the head on the GPU (--device cuda)
    hass_remote *remote; // two-process mode: the back channel to hass-draft
    hass_spec *spec;
    FILE *metrics;
    hass_tree_cfg tc;    // tree flags
    int tree_auto;
} spec_state;

// The --tree auto cost cache file of this setup (hass_cli_cache_file): keyed by what the
// measured costs depend on: the target, the head file, the device (and GPU), threads and
// kernels, the drafter's precision, the tree limits and the context. NULL: measure every run.
static char *cost_cache(hass_backend *b, const char *draft, const hass_tree_cfg *tc, int n_ctx,
                        int exact) {
    char head[PATH_MAX], st_path[PATH_MAX + 32], key[PATH_MAX + 512], gpu[256] = "";
    struct stat st = {0};
#ifdef HASS_WITH_CUDA
    if (b->dev == HASS_DEVICE_CUDA && hass_cuda_device_name(gpu, sizeof gpu)) gpu[0] = 0;
#endif
    if (!realpath(draft, head)) return NULL;
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", head);
    if (stat(st_path, &st)) return NULL;
    snprintf(key, sizeof key, "%08x|%s|%lld|%lld|%s %s|%d|%s|%d|%d,%d,%d|%d",
             (unsigned)hass_model_fingerprint(b->m), head, (long long)st.st_size,
             (long long)st.st_mtime, hass_device_name(b->dev), gpu, hass_model_threads(b->m),
             hass_kernel_path(), exact, tc->n_total, tc->levels, tc->top_k, n_ctx);
    return hass_cli_cache_file("tree-auto", key);
}

// Load the head (checked against the target), the drafter and the decoder; the exit code.
static int spec_setup(spec_state *sp, hass_backend *b, const hass_tokenizer *tok, const char *draft,
                      const hass_tree_cfg *tc, int tree_auto, const char *metrics, int n_ctx,
                      int exact) {
    hass_err e;
    if (metrics) {
        sp->metrics = fopen(metrics, "w");
        if (!sp->metrics)
            return hass_cli_fail(HASS_EXIT_RUNTIME, "%s: %s", metrics, strerror(errno));
    }
    if (!draft) return 0;
    hass_model *m = b->m;
    hass_head_target tg;
    hass_head_target_of(m, hass_tokenizer_fingerprint(tok), &tg);
    sp->head = hass_head_load(draft, &tg, &e);
    if (!sp->head) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    hass_drafter dr;
#ifdef HASS_WITH_CUDA
    if (b->dev == HASS_DEVICE_CUDA) {
        sp->cdraft = hass_cuda_draft_new(sp->head, b, n_ctx, tc, &e);
        if (!sp->cdraft) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
        dr = hass_drafter_cuda(sp->cdraft);
    } else
#endif
    {
        sp->draft = hass_draft_new(sp->head, m, n_ctx, tc, &e);
        if (!sp->draft) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
        if (!exact && (e = hass_draft_quantize(sp->draft))) {
            if (e != HASS_EUNSUP) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
            HASS_INFO("%s; the drafter stays exact", hass_errmsg());
        }
        dr = hass_drafter_local(sp->draft);
    }
    char *cache = tree_auto ? cost_cache(b, draft, tc, n_ctx, exact) : NULL;
    hass_spec_cfg sc = {*tc, tree_auto, {0.f, 0, 1.f}, 0, n_ctx, cache};
    sp->spec = hass_spec_new_on(b, &dr, &sc, &e);
    free(cache);
    if (!sp->spec) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    hass_tree_cfg cur = hass_spec_current_tree(sp->spec);
    HASS_INFO("draft head %s: tree %s, total %d, depth %d, top-k %d", draft,
              tree_auto ? "auto" : "fixed", cur.n_total, cur.levels, cur.top_k);
    return 0;
}

// Free the speculative state; non-zero when closing the metrics file failed.
static int spec_teardown(spec_state *sp) {
    int bad = sp->metrics && fclose(sp->metrics) != 0;
    hass_spec_free(sp->spec);
    hass_remote_free(sp->remote);
    hass_draft_free(sp->draft);
#ifdef HASS_WITH_CUDA
    hass_cuda_draft_free(sp->cdraft);
#endif
    hass_head_free(sp->head);
    memset(sp, 0, sizeof *sp);
    return bad;
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
    int64_t n_channels;   // hass-draft's channel announcements (read, but not records to decode)
    hass_progress prog;
    hass_model *m;          // borrowed
    hass_backend *b;        // borrowed: the target's device
    const hass_tokenizer *tok; // borrowed
    spec_state *sp;         // speculative state
} run_ctx;

// A {"type":"draft_channel"} record from hass-draft: check it and connect (two-process mode).
// The record itself is consumed (no output) unless it fails.
static hass_err on_channel(run_ctx *c, const json_t *in, json_t **out) {
    spec_state *sp = c->sp;
    *out = NULL;
    if (sp->spec) {
        HASS_INFO("draft channel ignored: a drafter is already in use");
        return HASS_OK;
    }
    char tf[16], kf[16];
    snprintf(tf, sizeof tf, "%08x", hass_model_fingerprint(c->m));
    snprintf(kf, sizeof kf, "%08x", hass_tokenizer_fingerprint(c->tok));
    const char *rtf = json_string_value(json_object_get(in, "target_fp"));
    const char *rkf = json_string_value(json_object_get(in, "tokenizer_fp"));
    const char *path = json_string_value(json_object_get(in, "socket"));
    if (!path) return hass_seterr(HASS_EFORMAT, "draft channel: \"socket\" missing");
    if (!rtf || strcmp(rtf, tf) || !rkf || strcmp(rkf, kf))
        return hass_seterr(HASS_EVOCAB, "draft channel: the drafter runs target %s / tokenizer %s, "
                                        "this is %s / %s", rtf ? rtf : "?", rkf ? rkf : "?", tf, kf);
    hass_tree_cfg tc = sp->tc;
    json_t *tr = json_object_get(in, "tree");
    int lim[3] = {(int)json_integer_value(json_object_get(tr, "total")),
                  (int)json_integer_value(json_object_get(tr, "depth")),
                  (int)json_integer_value(json_object_get(tr, "topk"))};
    if (lim[0] > 0 && tc.n_total > lim[0]) tc.n_total = lim[0];
    if (lim[1] > 0 && tc.levels > lim[1]) tc.levels = lim[1];
    if (lim[2] > 0 && tc.top_k > lim[2]) tc.top_k = lim[2];
    hass_err e;
    sp->remote = hass_remote_connect(path, hass_model_config(c->m)->n_embd, 30000, &e);
    if (!sp->remote) return e;
    hass_drafter dr = hass_remote_drafter(sp->remote);
    hass_spec_cfg sc = {tc, sp->tree_auto, {0.f, 0, 1.f}, 0, hass_gen_ctx(c->g), NULL};
    sp->spec = hass_spec_new_on(c->b, &dr, &sc, &e);
    if (!sp->spec) return e;
    hass_gen_set_spec(c->g, sp->spec, sp->metrics);
    if (c->cfg.margins) HASS_INFO("--margins: not written while a drafter is connected");
    HASS_INFO("draft channel %s: tree total %d, depth %d, top-k %d", path, tc.n_total, tc.levels,
              tc.top_k);
    return HASS_OK;
}

// Decode one record.
static hass_err on_record(void *ctx, const json_t *in, const char *where, hass_stream_writer *w,
                          json_t **out) {
    run_ctx *c = ctx;
    const char *type = json_string_value(json_object_get(in, "type"));
    if (type && !strcmp(type, "draft_channel")) {
        c->n_channels++;
        return on_channel(c, in, out);
    }
    hass_err e = hass_verify_record(c->g, &c->cfg, in, where, c->index, c->stream, w, out);
    if (e && c->sp->remote && hass_remote_dead(c->sp->remote)) {
        // the drafter process is gone: finish this record and the rest by plain decoding
        HASS_WARN("%s; decoding on without the drafter", hass_errmsg());
        hass_gen_set_spec(c->g, NULL, c->sp->metrics);
        json_decref(*out);
        *out = NULL;
        e = hass_verify_record(c->g, &c->cfg, in, where, c->index, c->stream, w, out);
        if (!e) json_object_set_new(*out, "draft", json_string("lost"));
    }
    c->index++;
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
           O_MARGINS, O_TTOTAL, O_TDEPTH, O_TTOPK, O_TREE, O_METRICS, O_F32, O_DEVICE, O_DEXACT };
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
        {"tree-total", required_argument, 0, O_TTOTAL}, {"tree-depth", required_argument, 0, O_TDEPTH},
        {"tree-topk", required_argument, 0, O_TTOPK}, {"tree", required_argument, 0, O_TREE},
        {"metrics", required_argument, 0, O_METRICS}, {"f32", no_argument, 0, O_F32},
        {"device", required_argument, 0, O_DEVICE}, {"draft-exact", no_argument, 0, O_DEXACT},
        {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},        {0, 0, 0, 0}};
    const char *model = NULL, *insp = NULL, *outpath = "-", *stop[MAX_STOP];
    int json = 0, full = 0, c, stream = 0, bin = 0, force = 0, buffered = 0, progress = -1;
    int n_stop = 0, ignore_eos = 0, margins = 0, f32 = 0;
    int64_t top_k = 0, seed = 0, max_new = 256, n_ctx = 0, threads = 0;
    hass_tree_cfg tree = {60, 6, 10};
    int tree_auto = 0, draft_exact = 0;
    hass_device dev = HASS_DEVICE_AUTO;
    const char *draft = NULL, *metrics_path = NULL;
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
        case O_F32: f32 = 1; break;
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
        case 'd': draft = optarg; break;
        case O_TTOTAL:
        case O_TDEPTH:
        case O_TTOPK:
            if ((rc = hass_tree_flag(PROG, c - O_TTOTAL, optarg, &tree))) return rc;
            break;
        case O_TREE:
            if (!strcmp(optarg, "auto")) tree_auto = 1;
            else if (!strcmp(optarg, "fixed")) tree_auto = 0;
            else return hass_cli_usage_error(PROG, "--tree: 'auto' or 'fixed', not '%s'", optarg);
            break;
        case O_METRICS: metrics_path = optarg; break;
        case O_DEXACT: draft_exact = 1; break;
        case O_DEVICE:
            if (hass_device_parse(optarg, &dev))
                return hass_cli_usage_error(PROG, "--device: %s", hass_errmsg());
            break;
        case 'v': hass_verbosity++; break;
        case 'q': hass_verbosity--; break;
        case 'h': usage(); return 0;
        case 'V': hass_cli_version(stdout, PROG); return 0;
        default: return hass_cli_usage_error(PROG, "unknown option");
        }
    }
    if (insp) return inspect(insp, json, full);
    if (!model) return hass_cli_usage_error(PROG, "-m MODEL is required");
    if (margins && draft)
        return hass_cli_usage_error(PROG, "--margins: plain decoding only (a verify cycle keeps no "
                                          "logits per step); drop --draft");
    hass_device got; // checked before the model loads; hass_backend_new resolves again
    if (hass_device_resolve(dev, &got)) return hass_cli_fail(HASS_EXIT_DEVICE, "%s", hass_errmsg());

    // Output first: an unwritable -o fails before the model loads.
    FILE *out = hass_cli_open_out(outpath);
    if (!out) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    if (hass_stream_refuse_tty(out, bin, force))
        return hass_cli_fail(HASS_EXIT_USAGE, "stdout is a terminal; pipe it, use -o or -f");

    hass_err e;
    double t0 = hass_now();
    hass_model *m = hass_model_load(model, (int)threads, &e);
    if (!m) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    if (f32) hass_model_set_precision(m, HASS_PREC_F32);
    hass_tokenizer *tok = hass_tokenizer_load(model, &e);
    if (!tok) {
        hass_model_free(m);
        return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    }
    run_ctx rc_ = {0};
    hass_backend *b = hass_backend_new(m, dev, &e);
    rc_.g = b ? hass_gen_new_on(b, tok, (int)n_ctx, &e) : NULL;
    if (!rc_.g) {
        hass_backend_free(b);
        hass_tokenizer_free(tok);
        hass_model_free(m);
        return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    }
    HASS_INFO("loaded %s in %.0f ms (context %d)", model, 1e3 * (hass_now() - t0),
              hass_gen_ctx(rc_.g));
    spec_state sp = {0};
    sp.tc = tree;
    sp.tree_auto = tree_auto;
    rc_.m = m;
    rc_.b = b;
    rc_.tok = tok;
    rc_.sp = &sp;
    if (draft || metrics_path) {
        hass_tree_cfg tc = sp.tc;
        int src = spec_setup(&sp, b, tok, draft, &tc, tree_auto, metrics_path, hass_gen_ctx(rc_.g),
                             draft_exact);
        if (src) {
            spec_teardown(&sp);
            hass_gen_free(rc_.g);
            hass_backend_free(b);
            hass_tokenizer_free(tok);
            hass_model_free(m);
            return src;
        }
        hass_gen_set_spec(rc_.g, sp.spec, sp.metrics);
    }
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
              (long long)(st.n_in - rc_.n_channels), (long long)st.n_failed, (long long)rc_.n_tokens,
              rc_.decode_ms > 0 ? 1e3 * (double)rc_.n_decode / rc_.decode_ms : 0.0);
    hass_gen_free(rc_.g);
    if (spec_teardown(&sp) && !e) e = hass_seterr(HASS_EIO, "%s: write failed", metrics_path);
    hass_backend_free(b);
    hass_tokenizer_free(tok);
    hass_model_free(m);
    if (e) {
        if (epipe) return HASS_EXIT_RUNTIME; // the reader went away: end quietly
        return hass_cli_fail(hass_exit_code(e) == 3 ? 3 : HASS_EXIT_RUNTIME, "%s",
                             hass_errmsg());
    }
    return st.exit_code;
}
