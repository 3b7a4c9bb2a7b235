// hass-draft: the drafter as its own process, and the draft-head tool.
//   hass-draft -m M -d HEAD [FILE]: copy the token stream (JSONL) to stdout after a
//     {"type":"draft_channel",...} record that announces a Unix socket; hass-verify connects to
//     it and asks for trees (the back channel of DESIGN.md section 2, draft_remote.c).
//   --init-random DIR: a randomly initialised head for a target; --check HEAD: load and print.
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "draft_remote.h"
#include "head_drafter.h"
#include "shard.h"
#include "tokenizer.h"

static const char *PROG = "hass-draft";

// Copy in to stdout line by line, each flushed; the exit code: 1 when the reader went away
// (quietly) or the input failed (said), else 0.
static int copy_lines(FILE *in, const char *in_path) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, in)) > 0) {
        if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
            rc = HASS_EXIT_RUNTIME;
            break;
        }
    }
    free(line);
    if (!rc && ferror(in))
        rc = hass_cli_fail(HASS_EXIT_RUNTIME, "%s: read failed",
                           strcmp(in_path, "-") ? in_path : "<stdin>");
    return rc;
}

// The two-process drafter for the head at path: announce the back channel, copy the stream,
// serve; the exit code.
static int run_server(const hass_cli *cl, hass_model *m, const hass_tokenizer *tok,
                      const char *path, const char *in_path, int exact) {
    hass_err e;
    uint32_t tok_fp = hass_tokenizer_fingerprint(tok);
    hass_backend *b = hass_backend_new(m, cl->dev, &e); // the target's embedding and LM head
    hass_head_drafter *hd = b ? hass_head_drafter_open(path, b, tok_fp, 0, &cl->tree, exact, &e) : NULL;
    FILE *in = hd ? hass_cli_open_in(in_path) : NULL;
    if (hd && !in) e = HASS_EIO;
    hass_drafter dr = hd ? hass_head_drafter_iface(hd) : (hass_drafter){0};
    hass_remote_server *sv = in ? hass_remote_listen(&dr, hass_head_drafter_n_embd(hd), &cl->tree, &e) : NULL;
    int rc = 0;
    if (!sv) {
        rc = hass_cli_fail_err(e, "%s", hass_errmsg());
    } else {
        if (hass_remote_announce(sv, stdout, hass_model_fingerprint(m), tok_fp))
            rc = hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
        else
            rc = copy_lines(in, in_path);
        if (!rc && hass_remote_end(stdout)) rc = HASS_EXIT_RUNTIME; // the reader went away
        fclose(stdout); // the last record is out: hass-verify may finish
        if ((e = hass_remote_close(sv)) && !rc) rc = hass_cli_fail_err(e, "%s", hass_errmsg());
    }
    if (in && in != stdin) fclose(in);
    hass_head_drafter_free(hd);
    hass_backend_free(b);
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
           "      --threads N       CPU threads (0 = all cores, default)\n"
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

// --init-random, --check (and --pack): the head tools; the exit code.
static int head_tool(hass_model *m, const hass_tokenizer *tok, const char *init, const char *check,
                     const char *pack, int bias, int64_t seed, char **shards, int n_shards,
                     int64_t dvocab) {
    hass_err e;
    hass_head_target tg;
    hass_head_target_of(m, hass_tokenizer_fingerprint(tok), &tg);
    hass_head *h = init ? hass_head_random(&tg, bias, (uint64_t)seed, &e) : hass_head_load(check, &tg, &e);
    int code = 0;
    if (!h) {
        code = hass_cli_fail_err(e, "%s", hass_errmsg());
    } else if (init) {
        if ((e = hass_head_save(h, init, NULL))) code = hass_cli_fail_err(e, "%s", hass_errmsg());
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
        if (dvocab && (e = count_vocab(h, &tg, shards, n_shards, (int)dvocab)))
            code = hass_cli_fail_err(e, "%s", hass_errmsg());
        else if (pack && (e = hass_head_save_as(h, pack, NULL, 1)))
            code = hass_cli_fail_err(e, "%s", hass_errmsg());
        else if (pack)
            HASS_INFO("wrote %s as BF16 without the embedding to %s", check, pack);
    }
    hass_head_free(h);
    return code;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    enum { O_INIT = 256, O_CHECK, O_PACK, O_DVOCAB, O_NOBIAS, O_DEXACT };
    static const struct option opts[] = {
        {"draft", required_argument, 0, 'd'},     {"init-random", required_argument, 0, O_INIT},
        {"check", required_argument, 0, O_CHECK}, {"pack", required_argument, 0, O_PACK},
        {"draft-vocab", required_argument, 0, O_DVOCAB}, {"seed", required_argument, 0, 's'},
        {"no-bias", no_argument, 0, O_NOBIAS},    {"draft-exact", no_argument, 0, O_DEXACT},
        {0, 0, 0, 0}};
    hass_cli cl;
    hass_cli_init(&cl, PROG, usage,
                  HASS_CLI_MODEL | HASS_CLI_TREE | HASS_CLI_THREADS | HASS_CLI_DEVICE | HASS_CLI_F32,
                  opts, "d:s:");
    const char *check = NULL, *init = NULL, *serve = NULL, *pack = NULL;
    int64_t dvocab = 0, seed = 0;
    int c, rc, bias = 1, exact = 0;
    while ((c = getopt_long(argc, argv, cl.shortopts, cl.opts, NULL)) != -1) {
        switch (c) {
        case O_DEXACT: exact = 1; break;
        case 'd': serve = optarg; break;
        case O_CHECK: check = optarg; break;
        case O_PACK: pack = optarg; break;
        case O_DVOCAB:
            if ((rc = hass_cli_int(PROG, "--draft-vocab", optarg, 1, 1 << 24, &dvocab))) return rc;
            break;
        case O_INIT: init = optarg; break;
        case 's':
            if ((rc = hass_cli_int(PROG, "--seed", optarg, 0, INT64_MAX, &seed))) return rc;
            break;
        case O_NOBIAS: bias = 0; break;
        default:
            if ((rc = hass_cli_flag(&cl, c, optarg)) >= 0) return rc;
        }
    }
    if ((rc = hass_cli_need_model(&cl))) return rc;
    if (!init && !check && !serve)
        return hass_cli_usage_error(PROG, "nothing to do: -d HEAD, --init-random DIR or --check HEAD");
    if (!!init + !!check + !!serve > 1)
        return hass_cli_usage_error(PROG, "-d, --init-random and --check exclude each other");
    if (pack && !check) return hass_cli_usage_error(PROG, "--pack goes with --check HEAD");
    if (dvocab && (!pack || optind >= argc))
        return hass_cli_usage_error(PROG, "--draft-vocab N goes with --pack DIR and feature SHARDs");
    if (!dvocab && optind < argc - (serve ? 1 : 0))
        return hass_cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (serve && (rc = hass_cli_check_device(&cl))) return rc;
    hass_err e;
    hass_model *m = hass_cli_load_model(&cl, &e);
    if (!m) return hass_cli_fail_err(e, "%s", hass_errmsg());
    hass_tokenizer *tok = hass_tokenizer_load(cl.model, &e);
    if (!tok) {
        hass_model_free(m);
        return hass_cli_fail_err(e, "%s", hass_errmsg());
    }
    int code = serve ? run_server(&cl, m, tok, serve, optind < argc ? argv[optind] : "-", exact)
                     : head_tool(m, tok, init, check, pack, bias, seed, argv + optind,
                                 argc - optind, dvocab);
    hass_tokenizer_free(tok);
    hass_model_free(m);
    return code;
}
