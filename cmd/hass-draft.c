// hass-draft: the drafter as its own process, and the draft-head tool.
//   hass-draft -m M -d HEAD [FILE]: copy the token stream (JSONL) to stdout after a
//     {"type":"draft_channel",...} record that announces a Unix socket; hass-verify connects to
//     it and asks for trees (the back channel of DESIGN.md section 2, draft_remote.c).
//   --init-random DIR: a randomly initialised head for a target; --check HEAD: load and print.
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "cuda_draft.h"
#include "draft.h"
#include "draft_remote.h"
#include "head.h"
#include "shard.h"
#include "jsonl.h"
#include "tokenizer.h"

static const char *PROG = "hass-draft";

// What the server thread needs.
typedef struct server {
    int lfd;               // listening socket
    hass_drafter dr;       // the drafter (in-process head on the CPU or the GPU)
    int C;                 // feature width
    hass_tree_cfg max;     // largest tree served
    atomic_int input_done; // the stream ended: stop waiting for a client that never came
    hass_err result;       // how serving ended
    char msg[512];         // its message
} server;

// Accept one client (or give up once the input is done and nobody came) and serve it.
static void *serve_thread(void *arg) {
    server *sv = arg;
    int waited_after_eof = 0;
    for (;;) {
        struct pollfd pf = {sv->lfd, POLLIN, 0};
        int r = poll(&pf, 1, 200);
        if (r > 0) break;
        if (atomic_load(&sv->input_done) && ++waited_after_eof > 50) return NULL; // 10 s
    }
    int fd = accept(sv->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    sv->result = hass_remote_serve_drafter(fd, &sv->dr, sv->C, &sv->max);
    if (sv->result) snprintf(sv->msg, sizeof sv->msg, "%s", hass_errmsg());
    close(fd);
    return NULL;
}

// Free run_server's drafter (CPU d or CUDA cd, either may be NULL) and its backend.
static void free_drafters(hass_draft *d, void *cd, hass_backend *b) {
    hass_draft_free(d);
#ifdef HASS_WITH_CUDA
    hass_cuda_draft_free(cd);
#else
    (void)cd;
#endif
    hass_backend_free(b);
}

// The two-process drafter: announce, copy the stream, serve; the exit code.
static int run_server(hass_model *m, const hass_tokenizer *tok, hass_head *h,
                      const hass_tree_cfg *max, const char *in_path, hass_device dev, int exact) {
    hass_err e;
    hass_draft *d = NULL;
    hass_backend *b = hass_backend_new(m, dev, &e); // the target's embedding and LM head
    server sv = {0};
    void *cd = NULL; // hass_cuda_draft in CUDA builds
#ifdef HASS_WITH_CUDA
    if (b && b->dev == HASS_DEVICE_CUDA && (cd = hass_cuda_draft_new(h, b, 0, max, &e)))
        sv.dr = hass_drafter_cuda(cd);
#endif
    if (b && b->dev == HASS_DEVICE_CPU && (d = hass_draft_new(h, m, 0, max, &e))) {
        sv.dr = hass_drafter_local(d);
        if (!exact && (e = hass_draft_quantize(d))) {
            if (e != HASS_EUNSUP) sv.dr.ctx = NULL;
            else HASS_INFO("%s; the drafter stays exact", hass_errmsg());
        }
    }
    FILE *in = sv.dr.ctx ? hass_cli_open_in(in_path) : NULL;
    if (!in) {
        int code = sv.dr.ctx ? HASS_EXIT_RUNTIME : hass_exit_code(e);
        free_drafters(d, cd, b);
        return hass_cli_fail(code, "%s", hass_errmsg());
    }
    sv.C = h->n_embd;
    sv.max = *max;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    const char *tmp = getenv("TMPDIR");
    snprintf(a.sun_path, sizeof a.sun_path, "%s/hass-draft.%d.sock", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    unlink(a.sun_path);
    sv.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (sv.lfd < 0 || bind(sv.lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(sv.lfd, 1) != 0) {
        int err = errno;
        if (in != stdin) fclose(in);
        free_drafters(d, cd, b);
        return hass_cli_fail(HASS_EXIT_RUNTIME, "%s: %s", a.sun_path, strerror(err));
    }
    hass_head_target tg;
    hass_head_target_of(m, hass_tokenizer_fingerprint(tok), &tg);
    char tf[16], kf[16];
    snprintf(tf, sizeof tf, "%08x", tg.fingerprint);
    snprintf(kf, sizeof kf, "%08x", tg.tok_fingerprint);
    json_t *ann = json_pack("{s:s,s:i,s:s,s:s,s:s,s:{s:i,s:i,s:i}}", "type", "draft_channel",
                            "proto", 1, "socket", a.sun_path, "target_fp", tf, "tokenizer_fp", kf,
                            "tree", "total", max->n_total, "depth", max->levels, "topk", max->top_k);
    hass_err we = hass_jsonl_write(stdout, ann, 1);
    json_decref(ann);
    pthread_t th;
    int started = !we && pthread_create(&th, NULL, serve_thread, &sv) == 0;
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!we && (n = getline(&line, &cap, in)) > 0) {
        if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
            rc = HASS_EXIT_RUNTIME; // the reader went away
            break;
        }
    }
    free(line);
    if (we) rc = hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    fclose(stdout); // the last record is out: hass-verify may finish
    atomic_store(&sv.input_done, 1);
    if (started) pthread_join(th, NULL);
    close(sv.lfd);
    unlink(a.sun_path);
    if (in != stdin) fclose(in);
    free_drafters(d, cd, b);
    if (sv.result && !rc) rc = hass_cli_fail(hass_exit_code(sv.result), "%s", sv.msg);
    return rc;
}

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL -d HEAD [OPTIONS] [FILE...]\n"
           "       %s -m MODEL --init-random DIR [--seed N] [--no-bias]\n"
           "       %s -m MODEL --check HEAD [--pack DIR [--draft-vocab N SHARD...]]\n"
           "\n"
           "Draft heads (HASS/EAGLE layout: config.json + model.safetensors) for a target model.\n"
           "\n"
           "  -m, --model FILE      target model (GGUF or Hugging Face directory)\n"
           "      --init-random DIR write a randomly initialised head for the target into DIR\n"
           "                        (PyTorch-default init, seeded; records the target's and the\n"
           "                        tokenizer's fingerprints so another target refuses it)\n"
           "  -s, --seed N          seed of --init-random (default 0)\n"
           "      --no-bias         --init-random without fc.bias (like EAGLE's LLaMA-3 heads)\n"
           "      --check HEAD      load HEAD against the target and print its configuration\n"
           "      --device DEV      cuda, cpu or auto (default): where -d runs the head; auto =\n"
           "                        cuda when built with CUDA and a GPU is present\n"
           "      --pack DIR        with --check: also write HEAD into DIR compactly (BF16\n"
           "                        weights, no embedding: the target's is used), as shipped\n"
           "      --draft-vocab N   with --pack: the head drafts only the N tokens most frequent\n"
           "                        among the assistant tokens of the feature SHARDs (its LM-head\n"
           "                        product shrinks V/N times; output stays exact)\n"
           "  -d, --draft HEAD      run the drafter for HEAD as its own process: copy the JSONL\n"
           "                        token stream (FILE or stdin) to stdout after a record that\n"
           "                        announces its back channel; pipe into hass-verify -m MODEL\n"
           "      --draft-exact     keep the head's layer weights as loaded (default on a CPU:\n"
           "                        8-bit Q8_0, about half the drafting time, same output)\n"
           "      --tree-total N    largest tree served (default 60)\n"
           "      --tree-depth N    (default 6)\n"
           "      --tree-topk N     (default 10)\n"
           "      --threads N       CPU threads (default: all cores)\n"
           "      --f32             f32 activations: no 8-bit activation rounding; slower;\n"
           "                        matches llama.cpp's F32 path\n"
           "  -v, --verbose         more messages on stderr\n"
           "  -q, --quiet           fewer messages on stderr\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "In-process speculative decoding: hass-verify -m MODEL --draft HEAD.\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 malformed input (a head that does\n"
           "not fit the target), 4 --device cuda without a device.\n",
           PROG, PROG, PROG);
}

// Give h a draft vocabulary of the n ids most frequent among the assistant (masked) tokens of
// the shards; reports the share of those tokens it covers.
static hass_err count_vocab(hass_head *h, const hass_head_target *tg, char **paths, int n_paths, int n) {
    int64_t *cnt = calloc((size_t)h->n_vocab, sizeof(int64_t)), total = 0;
    int32_t *ids = NULL;
    uint8_t *mask = NULL;
    hass_err e = cnt ? HASS_OK : hass_seterr(HASS_ENOMEM, "out of memory");
    for (int p = 0; !e && p < n_paths; p++) {
        hass_shard *sh = hass_shard_open(paths[p], tg->fingerprint, &e);
        if (!sh) break;
        for (int64_t i = 0; !e && i < hass_shard_n_seq(sh); i++) {
            int len = hass_shard_len(sh, i);
            int32_t *ni = realloc(ids, sizeof(int32_t) * (size_t)len);
            uint8_t *nm = ni ? realloc(mask, (size_t)len) : NULL;
            if (ni) ids = ni;
            if (!nm) {
                e = hass_seterr(HASS_ENOMEM, "out of memory");
                break;
            }
            mask = nm;
            int got = hass_shard_read(sh, i, len, ids, mask, NULL);
            if (got < 0) e = got;
            for (int j = 0; j < got; j++)
                if (mask[j] && ids[j] >= 0 && ids[j] < h->n_vocab) cnt[ids[j]]++, total++;
        }
        hass_shard_free(sh);
    }
    if (!e && (e = hass_head_set_dvocab(h, cnt, n)) == HASS_OK && h->dvocab) {
        int64_t cov = 0;
        for (int i = 0; i < h->n_dvocab; i++) cov += cnt[h->dvocab[i]];
        HASS_INFO("draft vocabulary: %d of %d ids, covering %.2f%% of %lld assistant tokens",
                  h->n_dvocab, h->n_vocab, total ? 100.0 * cov / total : 0.0, (long long)total);
    }
    free(cnt), free(ids), free(mask);
    return e;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    enum { O_INIT = 256, O_CHECK, O_PACK, O_DVOCAB, O_NOBIAS, O_TTOTAL, O_TDEPTH, O_TTOPK, O_THR, O_F32,
           O_DEVICE, O_DEXACT };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"draft", required_argument, 0, 'd'},
        {"init-random", required_argument, 0, O_INIT}, {"check", required_argument, 0, O_CHECK},
        {"pack", required_argument, 0, O_PACK}, {"draft-vocab", required_argument, 0, O_DVOCAB},
        {"seed", required_argument, 0, 's'},      {"no-bias", no_argument, 0, O_NOBIAS},
        {"tree-total", required_argument, 0, O_TTOTAL}, {"tree-depth", required_argument, 0, O_TDEPTH},
        {"tree-topk", required_argument, 0, O_TTOPK}, {"threads", required_argument, 0, O_THR},
        {"device", required_argument, 0, O_DEVICE}, {"draft-exact", no_argument, 0, O_DEXACT},
        {"f32", no_argument, 0, O_F32},
        {"verbose", no_argument, 0, 'v'},         {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},            {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    const char *model = NULL, *check = NULL, *init = NULL, *serve = NULL, *pack = NULL;
    int64_t dvocab = 0;
    int64_t seed = 0, threads = 0;
    hass_tree_cfg tree = {60, 6, 10};
    int c, rc, bias = 1, f32 = 0, exact = 0;
    hass_device dev = HASS_DEVICE_AUTO, got;
    while ((c = getopt_long(argc, argv, "m:d:s:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case O_F32: f32 = 1; break;
        case O_DEXACT: exact = 1; break;
        case 'm': model = optarg; break;
        case 'd': serve = optarg; break;
        case O_CHECK: check = optarg; break;
        case O_PACK: pack = optarg; break;
        case O_DVOCAB:
            if (hass_cli_int(PROG, "--draft-vocab", optarg, 1, 1 << 24, &dvocab)) return 2;
            break;
        case O_TTOTAL:
        case O_TDEPTH:
        case O_TTOPK:
            if ((rc = hass_tree_flag(PROG, c - O_TTOTAL, optarg, &tree))) return rc;
            break;
        case O_THR:
            if ((rc = hass_cli_int(PROG, "--threads", optarg, 0, 1024, &threads))) return rc;
            break;
        case O_INIT: init = optarg; break;
        case 's':
            if ((rc = hass_cli_int(PROG, "--seed", optarg, 0, INT64_MAX, &seed))) return rc;
            break;
        case O_NOBIAS: bias = 0; break;
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
    if (!model) return hass_cli_usage_error(PROG, "-m MODEL is required");
    if (!init && !check && !serve)
        return hass_cli_usage_error(PROG, "nothing to do: -d HEAD, --init-random DIR or --check HEAD");
    if (!!init + !!check + !!serve > 1)
        return hass_cli_usage_error(PROG, "-d, --init-random and --check exclude each other");
    if (pack && !check) return hass_cli_usage_error(PROG, "--pack goes with --check HEAD");
    if (dvocab && (!pack || optind >= argc))
        return hass_cli_usage_error(PROG, "--draft-vocab N goes with --pack DIR and feature SHARDs");
    if (!dvocab && optind < argc - (serve ? 1 : 0))
        return hass_cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (serve && hass_device_resolve(dev, &got))
        return hass_cli_fail(HASS_EXIT_DEVICE, "%s", hass_errmsg());
    hass_err e;
    hass_model *m = hass_model_load(model, (int)threads, &e);
    if (!m) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    if (f32) hass_model_set_precision(m, HASS_PREC_F32);
    hass_tokenizer *tok = hass_tokenizer_load(model, &e);
    if (!tok) {
        hass_model_free(m);
        return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    }
    hass_head_target tg;
    hass_head_target_of(m, hass_tokenizer_fingerprint(tok), &tg);
    hass_head *h = init ? hass_head_random(&tg, bias, (uint64_t)seed, &e)
                        : hass_head_load(serve ? serve : check, &tg, &e);
    int code = 0;
    if (h && serve) {
        code = run_server(m, tok, h, &tree, optind < argc ? argv[optind] : "-", dev, exact);
    } else if (!h) {
        code = hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    } else if (init) {
        if ((e = hass_head_save(h, init, NULL))) code = hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
        else HASS_INFO("wrote a random head (seed %lld) to %s", (long long)seed, init);
    } else {
        printf("hidden %d vocab %d heads %d/%d head_dim %d ff %d rope_theta %g eps %g bias %s\n",
               h->n_embd, h->n_vocab, h->n_head, h->n_head_kv, h->head_dim, h->n_ff,
               (double)h->rope_theta, (double)h->norm_eps, h->has_bias ? "yes" : "no");
        if (h->has_meta)
            printf("target %08x tokenizer %08x n_ctx_train %d attn_mask %s recipe %s\n", h->target_fp,
                   h->tok_fp, h->n_ctx_train, h->attn_mask, h->recipe);
        else
            printf("no hass metadata (public head)\n");
        if (dvocab && (e = count_vocab(h, &tg, argv + optind, argc - optind, (int)dvocab)))
            code = hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
        else if (pack && (e = hass_head_save_as(h, pack, NULL, 1)))
            code = hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
        else if (pack)
            HASS_INFO("wrote %s as BF16 without the embedding to %s", check, pack);
    }
    hass_head_free(h);
    hass_tokenizer_free(tok);
    hass_model_free(m);
    return code;
}
