// hass-train: trains a HASS draft head on feature shards of a target model (SPEC-HASS sections
// 3-5): S alignment steps, SmoothL1 + soft CE + top-K losses, AdamW with warmup/decay, clipping
// by value, uniform feature noise. Writes OUT/state.safetensors (resumable training state),
// OUT/model.safetensors + OUT/config.json (the head in the EAGLE/HASS layout), OUT/log.jsonl
// (losses and held-out accuracy) and OUT/curves.png (gnuplot, when installed). With --features it
// makes a feature shard from conversations instead. The work is libcore's (trainrun.h,
// trainfeat.h); this file maps flags to it and its errors to exit codes.
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "chat.h"
#include "cli.h"
#include "shard.h"
#include "train.h"
#include "trainfeat.h"
#include "trainrun.h"

static const char *PROG = "hass-train";

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL -o DIR [OPTIONS] SHARD...\n"
           "       %s -m MODEL --features SHARD [--template NAME] [--dtype f16|bf16] FILE...\n"
           "\n"
           "Train a HASS draft head for MODEL on feature shards (docs/TRAINING.md). With\n"
           "--features, make a shard instead: render the conversations of FILE (ShareGPT JSON or\n"
           "JSONL of messages) with the chat template, tokenize, mark the assistant tokens and\n"
           "store the target's post-norm features of every position.\n"
           "\n"
           "      --features SHARD   write a feature shard from conversation files\n"
           "      --template NAME    chat template: auto (the model's, default), chatml, llama-3,\n"
           "                         llama-2-chat, vicuna\n"
           "      --dtype T          feature storage: bf16 (default) or f16\n"
           "      --limit N          use at most N conversations\n"
           "  -m, --model FILE       target model (GGUF); its embedding and LM head stay frozen\n"
           "  -o, --out DIR          output folder (state, head, config, log, plot)\n"
           "      --stage N          1: top-K weight 0, lr 3e-5 (default); 2: top-K weight 1, lr 1e-5\n"
           "      --init FILE        start from these head weights (fresh optimiser; stage 2)\n"
           "      --resume           continue OUT/state.safetensors exactly where it stopped\n"
           "  -e, --epochs N         passes over the training split (1)\n"
           "  -b, --batch N          sequences per optimiser step (16)\n"
           "      --max-len N        truncate sequences to N positions (2048)\n"
           "      --lr X             peak learning rate (by stage)\n"
           "      --topk-w X         top-K loss weight (by stage)\n"
           "      --topk K           top-K size (10)\n"
           "      --v-w X            SmoothL1 weight (1.0)\n"
           "      --p-w X            soft cross-entropy weight (0.1)\n"
           "      --align-steps S    alignment steps (3)\n"
           "      --noise-std X      uniform feature noise std (0.2; 0 = off)\n"
           "      --noise-fixed      noise amplitude std, not std*512/L\n"
           "      --leaky            the reference code's leaky masked softmax (default: correct)\n"
           "      --warmup-frac X    warmup share of the optimiser steps (0.01)\n"
           "      --clip X           clip gradients by value (0.5)\n"
           "      --wd X             AdamW weight decay (0.01)\n"
           "      --test-frac X      held-out share, taken from the end (0.05)\n"
           "      --ckpt-every N     save the state every N optimiser steps (200; 0 = epochs only)\n"
           "      --stop-after N     stop (with a checkpoint) after N steps in this run\n"
           "      --threads N        CPU threads (all cores)\n"
           "      --f32              f32 activations: no 8-bit activation rounding; slower;\n"
           "                         matches llama.cpp's F32 path\n"
           "  -s, --seed N           seed of init, data order and noise (0)\n"
           "      --progress         progress and ETA on stderr even when not a terminal\n"
           "      --no-progress      no progress line\n"
           "  -v, --verbose          more messages on stderr\n"
           "  -q, --quiet            fewer messages on stderr\n"
           "  -h, --help             this help\n"
           "  -V, --version          version and build (cpu-only or cuda)\n"
           "\n"
           "Exit status: 0 ok, 1 runtime failure (I/O, disk full, loss not finite), 2 usage,\n"
           "3 malformed input (corrupt shard, shard for another target).\n",
           PROG, PROG);
}

typedef struct {
    const char *model, *out, *init, *features, *tmpl, *dtype;
    int64_t limit;
    int stage, resume, progress;
    int64_t epochs, batch, max_len, ckpt_every, stop_after, threads, topk, align;
    double lr, topk_w, v_w, p_w, noise, warmup_frac, clip, wd, test_frac;
    int noise_fixed, leaky, f32;
    uint64_t seed;
} args;

// Parse the command line into a; returns -1 to go on, else an exit code.
static int parse(int argc, char **argv, args *a) {
    enum { O_STAGE = 256, O_INIT, O_RESUME, O_MAXLEN, O_LR, O_TOPKW, O_TOPK, O_VW, O_PW, O_ALIGN, O_NOISE,
           O_NFIXED, O_LEAKY, O_WARM, O_CLIP, O_WD, O_TEST, O_CKPT, O_STOP, O_FEAT, O_TMPL, O_DTYPE, O_LIMIT };
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},
        {"stage", required_argument, 0, O_STAGE}, {"init", required_argument, 0, O_INIT},
        {"resume", no_argument, 0, O_RESUME}, {"epochs", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'}, {"max-len", required_argument, 0, O_MAXLEN},
        {"lr", required_argument, 0, O_LR}, {"topk-w", required_argument, 0, O_TOPKW},
        {"topk", required_argument, 0, O_TOPK}, {"v-w", required_argument, 0, O_VW},
        {"p-w", required_argument, 0, O_PW}, {"align-steps", required_argument, 0, O_ALIGN},
        {"noise-std", required_argument, 0, O_NOISE}, {"noise-fixed", no_argument, 0, O_NFIXED},
        {"leaky", no_argument, 0, O_LEAKY}, {"warmup-frac", required_argument, 0, O_WARM},
        {"clip", required_argument, 0, O_CLIP}, {"wd", required_argument, 0, O_WD},
        {"test-frac", required_argument, 0, O_TEST}, {"ckpt-every", required_argument, 0, O_CKPT},
        {"stop-after", required_argument, 0, O_STOP},
        {"features", required_argument, 0, O_FEAT}, {"template", required_argument, 0, O_TMPL},
        {"dtype", required_argument, 0, O_DTYPE}, {"limit", required_argument, 0, O_LIMIT},
        {"seed", required_argument, 0, 's'}, {0, 0, 0, 0}};
    hass_cli cl;
    hass_cli_init(&cl, PROG, usage, HASS_CLI_MODEL | HASS_CLI_THREADS | HASS_CLI_F32 | HASS_CLI_PROGRESS,
                  opts, "o:e:b:s:");
    cl.threads_lo = 1, cl.threads_hi = 4096;
    int c, rc = 0;
    int64_t iv;
    while ((c = getopt_long(argc, argv, cl.shortopts, cl.opts, NULL)) != -1 && !rc) {
        switch (c) {
        case 'o': a->out = optarg; break;
        case O_STAGE: rc = hass_cli_int(PROG, "--stage", optarg, 1, 2, &iv); a->stage = (int)iv; break;
        case O_INIT: a->init = optarg; break;
        case O_RESUME: a->resume = 1; break;
        case 'e': rc = hass_cli_int(PROG, "--epochs", optarg, 1, 100000, &a->epochs); break;
        case 'b': rc = hass_cli_int(PROG, "--batch", optarg, 1, 1024, &a->batch); break;
        case O_MAXLEN: rc = hass_cli_int(PROG, "--max-len", optarg, 2, HASS_SHARD_MAX_LEN, &a->max_len); break;
        case O_LR: rc = hass_cli_real(PROG, "--lr", optarg, 0, 10, &a->lr); break;
        case O_TOPKW: rc = hass_cli_real(PROG, "--topk-w", optarg, 0, 1e6, &a->topk_w); break;
        case O_TOPK: rc = hass_cli_int(PROG, "--topk", optarg, 1, HASS_TRAIN_MAX_TOPK, &a->topk); break;
        case O_VW: rc = hass_cli_real(PROG, "--v-w", optarg, 0, 1e6, &a->v_w); break;
        case O_PW: rc = hass_cli_real(PROG, "--p-w", optarg, 0, 1e6, &a->p_w); break;
        case O_ALIGN: rc = hass_cli_int(PROG, "--align-steps", optarg, 1, HASS_TRAIN_MAX_ALIGN, &a->align); break;
        case O_NOISE: rc = hass_cli_real(PROG, "--noise-std", optarg, 0, 100, &a->noise); break;
        case O_NFIXED: a->noise_fixed = 1; break;
        case O_LEAKY: a->leaky = 1; break;
        case O_WARM: rc = hass_cli_real(PROG, "--warmup-frac", optarg, 0, 1, &a->warmup_frac); break;
        case O_CLIP: rc = hass_cli_real(PROG, "--clip", optarg, 0, 1e9, &a->clip); break;
        case O_WD: rc = hass_cli_real(PROG, "--wd", optarg, 0, 1, &a->wd); break;
        case O_TEST: rc = hass_cli_real(PROG, "--test-frac", optarg, 0, 0.9, &a->test_frac); break;
        case O_CKPT: rc = hass_cli_int(PROG, "--ckpt-every", optarg, 0, INT64_MAX, &a->ckpt_every); break;
        case O_STOP: rc = hass_cli_int(PROG, "--stop-after", optarg, 1, INT64_MAX, &a->stop_after); break;
        case 's': rc = hass_cli_int(PROG, "--seed", optarg, 0, INT64_MAX, &iv); a->seed = (uint64_t)iv; break;
        case O_FEAT: a->features = optarg; break;
        case O_TMPL: a->tmpl = optarg; break;
        case O_DTYPE: a->dtype = optarg; break;
        case O_LIMIT: rc = hass_cli_int(PROG, "--limit", optarg, 1, INT64_MAX, &a->limit); break;
        default:
            if ((rc = hass_cli_flag(&cl, c, optarg)) >= 0) return rc;
            rc = 0;
        }
    }
    a->model = cl.model, a->threads = cl.threads, a->f32 = cl.f32, a->progress = cl.progress;
    if (rc || (rc = hass_cli_need_model(&cl))) return rc;
    if (a->dtype && strcmp(a->dtype, "f16") && strcmp(a->dtype, "bf16"))
        return hass_cli_usage_error(PROG, "--dtype: f16 or bf16, not '%s'", a->dtype);
    if (a->tmpl && strcmp(a->tmpl, "auto") && !hass_chat_canonical(a->tmpl))
        return hass_cli_usage_error(PROG, "--template: unknown '%s' (%s, or auto)", a->tmpl, hass_chat_names());
    if (a->features) {
        if (optind >= argc) return hass_cli_usage_error(PROG, "no conversation files given");
        return -1;
    }
    if (!a->out) return hass_cli_usage_error(PROG, "-o DIR is required");
    if (optind >= argc) return hass_cli_usage_error(PROG, "no feature shards given");
    if (a->resume && a->init) return hass_cli_usage_error(PROG, "--resume and --init exclude each other");
    return -1;
}

// The training run the flags ask for.
static hass_trainrun_cfg train_cfg(const args *a) {
    return (hass_trainrun_cfg){
        .model = a->model, .out = a->out, .init = a->init, .stage = a->stage, .resume = a->resume,
        .progress = a->progress, .epochs = a->epochs, .batch = a->batch, .max_len = a->max_len,
        .ckpt_every = a->ckpt_every, .stop_after = a->stop_after, .threads = a->threads, .topk = a->topk,
        .align = a->align, .lr = a->lr, .topk_w = a->topk_w, .v_w = a->v_w, .p_w = a->p_w, .noise = a->noise,
        .warmup_frac = a->warmup_frac, .clip = a->clip, .wd = a->wd, .test_frac = a->test_frac,
        .noise_fixed = a->noise_fixed, .leaky = a->leaky, .f32 = a->f32, .seed = a->seed};
}

// Make a feature shard from the conversation files argv[optind..]; returns the exit code.
static int run_features(const args *a, int argc, char **argv) {
    hass_features_cfg c = {.model = a->model, .out = a->features, .tmpl = a->tmpl, .dtype = a->dtype,
                           .limit = a->limit, .max_len = a->max_len, .threads = (int)a->threads,
                           .f32 = a->f32, .progress = a->progress};
    hass_err e = hass_features_make(&c, (const char *const *)argv + optind, argc - optind);
    return e ? hass_cli_fail_err(e, "%s", hass_errmsg()) : 0;
}

// Train on the shards argv[optind..]; returns the exit code.
static int run_train(const args *a, int argc, char **argv) {
    hass_trainrun_cfg c = train_cfg(a);
    hass_err e;
    hass_trainrun *r = hass_trainrun_open(&c, (const char *const *)argv + optind, argc - optind, &e);
    if (r) e = hass_trainrun_run(r);
    hass_trainrun_free(r);
    return e ? hass_cli_fail_err(e, "%s", hass_errmsg()) : 0;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    signal(SIGXFSZ, SIG_IGN); // a file-size limit shows up as a write error, like a full disk
    args a = {.stage = 1, .progress = -1, .epochs = 1, .batch = 16, .max_len = 2048, .ckpt_every = 200,
              .topk = 10, .align = 3, .lr = -1, .topk_w = -1, .v_w = 1.0, .p_w = 0.1, .noise = 0.2,
              .warmup_frac = 0.01, .clip = 0.5, .wd = 0.01, .test_frac = 0.05};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
#ifdef _OPENMP
    if (a.threads) omp_set_num_threads((int)a.threads);
#endif
    return a.features ? run_features(&a, argc, argv) : run_train(&a, argc, argv);
}
