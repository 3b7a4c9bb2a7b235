// hass-train: trains a HASS draft head on feature shards of a target model (SPEC-HASS sections
// 3-5): S alignment steps, SmoothL1 + soft CE + top-K losses, AdamW with warmup/decay, clipping
// by value, uniform feature noise. Writes OUT/state.safetensors (resumable training state),
// OUT/model.safetensors + OUT/config.json (the head in the EAGLE/HASS layout), OUT/log.jsonl
// (losses and held-out accuracy) and OUT/curves.png (gnuplot, when installed).
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "chat.h"
#include "head.h"
#include "model.h"
#include "safetensors.h"
#include "shard.h"
#include "tokenizer.h"
#include "train.h"
#include "trainfeat.h"
#include "trainlog.h"

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

typedef struct {
    int shard;
    int64_t rec;
} recref;

// splitmix64 finaliser (data order).
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Permutation of 0..n-1 for an epoch (Fisher-Yates on a counter-based stream).
static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t key = mix(seed ^ mix(0x73687566ull + (uint64_t)epoch));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(mix(key + (uint64_t)i * 0x9E3779B97F4A7C15ull) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

// The recipe string stored in checkpoints and heads (resume refuses a different one).
static void recipe(char *buf, size_t n, const args *a, const hass_train_opts *o, int64_t n_train,
                   uint32_t fp) {
    snprintf(buf, n,
             "{\"target_fp\":\"%08x\",\"n_train\":%lld,\"epochs\":%lld,\"batch\":%lld,\"max_len\":%lld,"
             "\"align_steps\":%d,\"v_w\":%g,\"p_w\":%g,\"topk_w\":%g,\"topk\":%d,\"noise_std\":%g,"
             "\"noise\":\"%s\",\"attn_mask\":\"%s\",\"lr\":%g,\"betas\":[%g,%g],\"eps\":%g,\"wd\":%g,"
             "\"clip\":%g,\"warmup\":%lld,\"total\":%lld,\"seed\":%llu,\"stage\":%d}",
             fp, (long long)n_train, (long long)a->epochs, (long long)a->batch, (long long)a->max_len,
             o->n_align, o->v_w, o->p_w, o->topk_w, o->topk, o->noise_std,
             o->noise_per_len ? "uniform*512/L" : "uniform", o->leaky ? "leaky" : "masked", o->lr,
             o->beta1, o->beta2, o->eps, o->wd, o->clip, (long long)o->warmup, (long long)o->total,
             (unsigned long long)o->seed, a->stage);
}

typedef struct {
    args a;
    hass_model *m;
    hass_head_target tg;
    hass_train_dims dm;
    hass_train_opts o;
    hass_train *t;
    float *E, *W;
    hass_shard **sh;
    int n_sh;
    recref *refs;
    int64_t n_all, n_train, n_test;
    uint32_t fp;
    char rec[2048];
    // batch buffers
    hass_train_seq *seqs;
    int32_t **ids;
    uint8_t **mask;
    float **feat;
    int n_ctx;
    char path_state[4200], path_model[4200], path_log[4200];
    FILE *log;
} run;

// Load the records of a batch (indices into refs) into the sequence buffers.
static hass_err load_batch(run *r, const int64_t *idx, int n, int64_t epoch) {
    for (int b = 0; b < n; b++) {
        recref rf = r->refs[idx[b]];
        int len = hass_shard_read(r->sh[rf.shard], rf.rec, r->n_ctx, r->ids[b], r->mask[b], r->feat[b]);
        if (len < 0) return (hass_err)len;
        r->seqs[b] = (hass_train_seq){len, r->ids[b], r->feat[b], r->mask[b],
                                      hass_train_noise_key(r->o.seed, epoch, idx[b])};
    }
    return HASS_OK;
}

// Held-out evaluation: all test records, no noise; one "eval" log line.
static hass_err evaluate(run *r, int64_t epoch) {
    if (r->n_test == 0) return HASS_OK;
    hass_train_stats tot, st;
    memset(&tot, 0, sizeof tot);
    double sums[3 * HASS_TRAIN_MAX_ALIGN] = {0};
    int64_t idx[1024];
    for (int64_t i = 0; i < r->n_test; i += r->a.batch) {
        int n = (int)(r->n_test - i < r->a.batch ? r->n_test - i : r->a.batch);
        for (int b = 0; b < n; b++) idx[b] = r->n_train + i + b;
        hass_err e = load_batch(r, idx, n, 0);
        if (!e) e = hass_train_batch(r->t, r->E, r->W, r->seqs, n, 0, &st);
        if (e) return e;
        for (int s = 0; s < st.n_align; s++) {
            double nm = (double)st.n_mask + 1e-5;
            sums[3 * s] += st.vloss[s] * nm, sums[3 * s + 1] += st.ploss[s] * nm, sums[3 * s + 2] += st.kloss[s] * nm;
            tot.top1[s] += st.top1[s], tot.top3[s] += st.top3[s];
        }
        tot.n_mask += st.n_mask;
        tot.n_align = st.n_align;
    }
    double loss = 0, nm = tot.n_mask > 0 ? (double)tot.n_mask : 1;
    for (int s = 0; s < tot.n_align; s++)
        loss += (r->o.v_w * sums[3 * s] + r->o.p_w * sums[3 * s + 1] + r->o.topk_w * sums[3 * s + 2]) / nm;
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string("eval"));
    json_object_set_new(j, "step", json_integer(hass_train_step(r->t)));
    json_object_set_new(j, "epoch", json_integer(epoch));
    json_object_set_new(j, "loss", json_real(loss));
    json_object_set_new(j, "n_mask", json_integer(tot.n_mask));
    hass_trainlog_put_steps(j, &tot, tot.n_mask, sums);
    HASS_INFO("held-out after epoch %lld: loss %.4f, top-1 %.3f (step 0) .. %.3f (step %d), top-3 %.3f", (long long)epoch,
              loss, tot.top1[0] / nm, tot.top1[tot.n_align - 1] / nm, tot.n_align - 1, tot.top3[0] / nm);
    return hass_trainlog_line(r->log, r->path_log, j);
}

// Point a hass_head's weights at the trainer's (w -> h) or copy a head into the trainer.
static void head_view(run *r, hass_head *h) {
    hass_tparams *w = hass_train_weights(r->t);
    memset(h, 0, sizeof *h);
    h->n_embd = r->dm.n_embd, h->n_vocab = r->dm.n_vocab, h->n_head = r->dm.n_head;
    h->n_head_kv = r->dm.n_head_kv, h->head_dim = r->dm.n_embd / r->dm.n_head, h->n_ff = r->dm.n_ff;
    h->rope_theta = r->dm.rope_theta, h->norm_eps = r->dm.norm_eps, h->has_bias = 1, h->has_meta = 1;
    h->target_fp = r->tg.fingerprint, h->tok_fp = r->tg.tok_fingerprint, h->n_ctx_train = r->n_ctx;
    snprintf(h->recipe, sizeof h->recipe, "hass-train stage %d: S %d, v_w %g, p_w %g, topk %d w %g, lr %g, %lld steps, seed %llu",
             r->a.stage, r->o.n_align, r->o.v_w, r->o.p_w, r->o.topk, r->o.topk_w, r->o.lr,
             (long long)hass_train_step(r->t), (unsigned long long)r->o.seed);
    snprintf(h->attn_mask, sizeof h->attn_mask, "%s", r->o.leaky ? "leaky" : "correct");
    h->fc_w = w->fc_w, h->fc_b = w->fc_b, h->wq = w->wq, h->wk = w->wk, h->wv = w->wv, h->wo = w->wo;
    h->w_gate = w->w_gate, h->w_up = w->w_up, h->w_down = w->w_down, h->post_norm = w->norm;
}

// Copy the weights of a loaded or random head into the trainer (a head without fc bias gets 0).
static void head_copy_in(run *r, const hass_head *h) {
    hass_head v;
    head_view(r, &v);
    size_t H = (size_t)r->dm.n_embd, hd = H, q = H, kv = (size_t)r->dm.n_head_kv * (H / r->dm.n_head), I = (size_t)r->dm.n_ff;
    (void)hd;
    memcpy(v.fc_w, h->fc_w, sizeof(float) * H * 2 * H);
    if (h->fc_b) memcpy(v.fc_b, h->fc_b, sizeof(float) * H);
    else memset(v.fc_b, 0, sizeof(float) * H);
    memcpy(v.wq, h->wq, sizeof(float) * q * H);
    memcpy(v.wk, h->wk, sizeof(float) * kv * H);
    memcpy(v.wv, h->wv, sizeof(float) * kv * H);
    memcpy(v.wo, h->wo, sizeof(float) * H * q);
    memcpy(v.w_gate, h->w_gate, sizeof(float) * I * H);
    memcpy(v.w_up, h->w_up, sizeof(float) * I * H);
    memcpy(v.w_down, h->w_down, sizeof(float) * H * I);
    memcpy(v.post_norm, h->post_norm, sizeof(float) * H);
}

// Write the head (config.json + model.safetensors with embed_tokens.weight) into OUT.
static hass_err export_head(run *r) {
    hass_head h;
    head_view(r, &h);
    return hass_head_save(&h, r->a.out, r->E);
}

// Save the training state (and with head=1 the head + config) for position (epoch, batch).
static hass_err checkpoint(run *r, int64_t epoch, int64_t next_batch, int head) {
    char se[32], sb[32], fp[16], seed[32];
    snprintf(se, sizeof se, "%lld", (long long)epoch);
    snprintf(sb, sizeof sb, "%lld", (long long)next_batch);
    snprintf(fp, sizeof fp, "%08x", r->fp);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->o.seed);
    const char *meta[] = {"hass.epoch", se, "hass.batch", sb, "hass.recipe", r->rec, "hass.target_fp", fp,
                          "hass.seed", seed, NULL};
    hass_err e = hass_train_save_state(r->t, r->path_state, meta);
    if (e || !head) return e;
    return export_head(r);
}

// Parse the command line into a; returns -1 to go on, else an exit code.
static int parse(int argc, char **argv, args *a) {
    enum { O_STAGE = 256, O_INIT, O_RESUME, O_MAXLEN, O_LR, O_TOPKW, O_TOPK, O_VW, O_PW, O_ALIGN, O_NOISE,
           O_NFIXED, O_LEAKY, O_WARM, O_CLIP, O_WD, O_TEST, O_CKPT, O_STOP, O_THREADS, O_PROG, O_NOPROG, O_FEAT, O_TMPL, O_DTYPE, O_LIMIT, O_F32 };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'},
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
        {"stop-after", required_argument, 0, O_STOP}, {"threads", required_argument, 0, O_THREADS},
        {"features", required_argument, 0, O_FEAT}, {"template", required_argument, 0, O_TMPL},
        {"dtype", required_argument, 0, O_DTYPE}, {"limit", required_argument, 0, O_LIMIT},
        {"f32", no_argument, 0, O_F32},
        {"seed", required_argument, 0, 's'}, {"progress", no_argument, 0, O_PROG},
        {"no-progress", no_argument, 0, O_NOPROG}, {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c, rc = 0;
    int64_t iv;
    while ((c = getopt_long(argc, argv, "m:o:e:b:s:vqhV", opts, NULL)) != -1 && !rc) {
        switch (c) {
        case 'm': a->model = optarg; break;
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
        case O_F32: a->f32 = 1; break;
        case O_WARM: rc = hass_cli_real(PROG, "--warmup-frac", optarg, 0, 1, &a->warmup_frac); break;
        case O_CLIP: rc = hass_cli_real(PROG, "--clip", optarg, 0, 1e9, &a->clip); break;
        case O_WD: rc = hass_cli_real(PROG, "--wd", optarg, 0, 1, &a->wd); break;
        case O_TEST: rc = hass_cli_real(PROG, "--test-frac", optarg, 0, 0.9, &a->test_frac); break;
        case O_CKPT: rc = hass_cli_int(PROG, "--ckpt-every", optarg, 0, INT64_MAX, &a->ckpt_every); break;
        case O_STOP: rc = hass_cli_int(PROG, "--stop-after", optarg, 1, INT64_MAX, &a->stop_after); break;
        case O_THREADS: rc = hass_cli_int(PROG, "--threads", optarg, 1, 4096, &a->threads); break;
        case 's': rc = hass_cli_int(PROG, "--seed", optarg, 0, INT64_MAX, &iv); a->seed = (uint64_t)iv; break;
        case O_FEAT: a->features = optarg; break;
        case O_TMPL: a->tmpl = optarg; break;
        case O_DTYPE: a->dtype = optarg; break;
        case O_LIMIT: rc = hass_cli_int(PROG, "--limit", optarg, 1, INT64_MAX, &a->limit); break;
        case O_PROG: a->progress = 1; break;
        case O_NOPROG: a->progress = 0; break;
        case 'v': hass_verbosity++; break;
        case 'q': hass_verbosity--; break;
        case 'h': usage(); return 0;
        case 'V': hass_cli_version(stdout, PROG); return 0;
        default: return hass_cli_usage_error(PROG, "unknown option");
        }
    }
    if (rc) return rc;
    if (!a->model) return hass_cli_usage_error(PROG, "-m MODEL is required");
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

// Load the target model, its f32 embedding/head and identity; returns an exit code or -1.
static int load_target(run *r) {
    hass_err e;
    if (!(r->m = hass_model_load(r->a.model, (int)r->a.threads, &e)))
        return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    if (r->a.f32) hass_model_set_precision(r->m, HASS_PREC_F32);
    const hass_model_cfg *c = hass_model_config(r->m);
    if (c->head_dim * c->n_head != c->n_embd || c->qkv_bias)
        return hass_cli_fail(HASS_EXIT_INPUT, "%s: head_dim %d x %d heads != n_embd %d or q/k/v bias: not supported "
                             "for training", r->a.model, c->head_dim, c->n_head, c->n_embd);
    if ((e = hass_shard_target_mats(r->m, &r->E, &r->W))) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    r->dm = (hass_train_dims){.n_embd = c->n_embd, .n_head = c->n_head, .n_head_kv = c->n_head_kv, .n_ff = c->n_ff,
                              .n_vocab = c->n_vocab, .fc_bias = 1, .rope_theta = c->rope_theta,
                              .norm_eps = c->norm_eps};
    r->fp = hass_model_fingerprint(r->m);
    hass_tokenizer *tk = hass_tokenizer_load(r->a.model, &e);
    r->tg = (hass_head_target){c->n_embd, c->n_vocab, c->n_head, c->n_head_kv, c->head_dim, c->n_ff,
                               c->rope_theta, c->norm_eps, (int)r->a.max_len, r->fp,
                               tk ? hass_tokenizer_fingerprint(tk) : 0};
    if (!tk) HASS_WARN("no tokenizer in %s (%s): the head records no tokenizer fingerprint", r->a.model, hass_errmsg());
    hass_tokenizer_free(tk);
    return -1;
}

// Open the model and shards, set up the trainer; returns an exit code or -1 to go on.
static int setup(run *r, int argc, char **argv) {
    hass_err e;
    int rc = load_target(r);
    if (rc >= 0) return rc;
    int H = r->dm.n_embd, V = r->dm.n_vocab, nh = r->dm.n_head;
    r->n_sh = argc - optind;
    r->sh = calloc((size_t)r->n_sh, sizeof *r->sh);
    int max_rec = 1;
    for (int i = 0; i < r->n_sh; i++) {
        if (!(r->sh[i] = hass_shard_open(argv[optind + i], r->fp, &e)))
            return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
        if (hass_shard_n_embd(r->sh[i]) != H || hass_shard_n_vocab(r->sh[i]) != V)
            return hass_cli_fail(HASS_EXIT_INPUT, "%s: features of width %d / vocab %d, the model has %d / %d",
                                 argv[optind + i], hass_shard_n_embd(r->sh[i]), hass_shard_n_vocab(r->sh[i]), H, V);
        r->n_all += hass_shard_n_seq(r->sh[i]);
        for (int64_t k = 0; k < hass_shard_n_seq(r->sh[i]); k++)
            if (hass_shard_len(r->sh[i], k) > max_rec) max_rec = hass_shard_len(r->sh[i], k);
    }
    r->refs = malloc(sizeof(recref) * (size_t)(r->n_all ? r->n_all : 1));
    int64_t q = 0, n_tok_train = 0, n_tok_test = 0;
    for (int i = 0; i < r->n_sh; i++)
        for (int64_t k = 0; k < hass_shard_n_seq(r->sh[i]); k++) r->refs[q++] = (recref){i, k};
    r->n_train = (int64_t)floor((double)r->n_all * (1.0 - r->a.test_frac) + 1e-9);
    r->n_test = r->n_all - r->n_train;
    if (r->n_train < 1) return hass_cli_fail(HASS_EXIT_INPUT, "no training records (%lld in all)", (long long)r->n_all);
    for (int64_t i = 0; i < r->n_all; i++) {
        int l = hass_shard_len(r->sh[r->refs[i].shard], r->refs[i].rec);
        l = l < r->a.max_len ? l : (int)r->a.max_len;
        if (i < r->n_train) n_tok_train += l; else n_tok_test += l;
    }
    r->n_ctx = max_rec < r->a.max_len ? max_rec : (int)r->a.max_len;
    // options
    hass_train_opts *o = &r->o;
    hass_train_opts_default(o);
    o->n_align = (int)r->a.align, o->v_w = (float)r->a.v_w, o->p_w = (float)r->a.p_w, o->topk = (int)r->a.topk;
    o->topk_w = (float)(r->a.topk_w >= 0 ? r->a.topk_w : r->a.stage == 2 ? 1.0 : 0.0);
    o->lr = (float)(r->a.lr >= 0 ? r->a.lr : r->a.stage == 2 ? 1e-5 : 3e-5);
    o->noise_std = (float)r->a.noise, o->noise_per_len = !r->a.noise_fixed, o->leaky = r->a.leaky;
    o->clip = (float)r->a.clip, o->wd = (float)r->a.wd, o->seed = r->a.seed;
    int64_t per_epoch = (r->n_train + r->a.batch - 1) / r->a.batch;
    o->total = per_epoch * r->a.epochs;
    o->warmup = (int64_t)((double)o->total * r->a.warmup_frac);
    recipe(r->rec, sizeof r->rec, &r->a, o, r->n_train, r->fp);
    if (!(r->t = hass_train_new(&r->dm, o, r->n_ctx, &e))) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    size_t B = (size_t)r->a.batch;
    r->seqs = calloc(B, sizeof *r->seqs), r->ids = calloc(B, sizeof *r->ids);
    r->mask = calloc(B, sizeof *r->mask), r->feat = calloc(B, sizeof *r->feat);
    for (size_t b = 0; b < B; b++) {
        r->ids[b] = malloc(sizeof(int32_t) * r->n_ctx), r->mask[b] = malloc((size_t)r->n_ctx);
        r->feat[b] = malloc(sizeof(float) * (size_t)r->n_ctx * H);
        if (!r->feat[b]) return hass_cli_fail(HASS_EXIT_RUNTIME, "out of memory for the batch buffers");
    }
    double att_mib = 2.0 * nh * (double)r->n_ctx * r->n_ctx * 4 / 1048576.0;
    hass_trainlog_note("data: %lld training records (%lld positions), %lld held out (%lld positions), %d shard(s)",
              (long long)r->n_train, (long long)n_tok_train, (long long)r->n_test, (long long)n_tok_test, r->n_sh);
    hass_trainlog_note("head: H %d, heads %d/%d, ff %d, vocab %d: %zu trainable parameters; n_ctx %d (attention scratch "
              "%.0f MiB)", H, nh, r->dm.n_head_kv, r->dm.n_ff, V, hass_train_n_params(r->t), r->n_ctx, att_mib);
    hass_trainlog_note("plan: %lld epoch(s) x %lld steps of %lld sequences = %lld optimiser steps, warmup %lld, lr %g, "
              "top-K weight %g, S %d, %s softmax", (long long)r->a.epochs, (long long)per_epoch,
              (long long)r->a.batch, (long long)o->total, (long long)o->warmup, o->lr, o->topk_w, o->n_align,
              o->leaky ? "leaky" : "masked");
    return -1;
}

// The training loop; returns the exit code.
static int train_loop(run *r) {
    hass_err e;
    int64_t epoch0 = 0, batch0 = 0;
    if (mkdir(r->a.out, 0755) != 0 && errno != EEXIST)
        return hass_cli_fail(HASS_EXIT_RUNTIME, "%s: %s", r->a.out, strerror(errno));
    if (r->a.resume) {
        hass_st *st = hass_st_open(r->path_state, &e);
        if (!st) return hass_cli_fail(hass_exit_code(e), "--resume: %s", hass_errmsg());
        const char *rs = hass_st_meta(st, "hass.recipe"), *se = hass_st_meta(st, "hass.epoch"),
                   *sb = hass_st_meta(st, "hass.batch");
        if (!rs || strcmp(rs, r->rec)) {
            int rc = hass_cli_fail(HASS_EXIT_USAGE, "--resume: %s was made with another recipe or data:\n  stored: %s\n  now:    %s",
                                   r->path_state, rs ? rs : "(none)", r->rec);
            hass_st_free(st);
            return rc;
        }
        e = hass_train_load(r->t, st, 1);
        if (!e && (!se || !sb || hass_parse_i64(se, 0, INT64_MAX, &epoch0) || hass_parse_i64(sb, 0, INT64_MAX, &batch0)))
            e = hass_seterr(HASS_EFORMAT, "%s: hass.epoch/hass.batch metadata missing", r->path_state);
        hass_st_free(st);
        if (e) return hass_cli_fail(hass_exit_code(e), "--resume: %s", hass_errmsg());
        if ((e = hass_trainlog_truncate(r->path_log, hass_train_step(r->t))))
            return hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
        hass_trainlog_note("resuming at step %lld (epoch %lld, batch %lld)", (long long)hass_train_step(r->t),
                  (long long)epoch0, (long long)batch0);
    } else {
        hass_head *h = r->a.init ? hass_head_load(r->a.init, &r->tg, &e) : hass_head_random(&r->tg, 1, r->o.seed, &e);
        if (!h) return hass_cli_fail(hass_exit_code(e), "%s%s", r->a.init ? "--init: " : "", hass_errmsg());
        head_copy_in(r, h);
        hass_head_free(h);
        unlink(r->path_log);
    }
    if (!(r->log = fopen(r->path_log, "a"))) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s: %s", r->path_log, strerror(errno));
    int64_t per_epoch = (r->n_train + r->a.batch - 1) / r->a.batch, done_run = 0;
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)r->n_train), idx[1024];
    hass_progress pg; // counts the steps of this run (a rate over resumed steps would be wrong)
    int64_t step_start = hass_train_step(r->t);
    hass_progress_init(&pg, "steps", r->o.total - step_start, r->a.progress);
    double t0 = hass_now();
    int rc = 0;
    for (int64_t ep = epoch0; ep < r->a.epochs && !rc; ep++) {
        shuffle(perm, r->n_train, r->o.seed, ep);
        for (int64_t bi = ep == epoch0 ? batch0 : 0; bi < per_epoch; bi++) {
            int n = (int)(r->n_train - bi * r->a.batch < r->a.batch ? r->n_train - bi * r->a.batch : r->a.batch);
            for (int b = 0; b < n; b++) idx[b] = perm[bi * r->a.batch + b];
            hass_train_stats st;
            hass_train_zero_grad(r->t);
            e = load_batch(r, idx, n, ep);
            if (!e) e = hass_train_batch(r->t, r->E, r->W, r->seqs, n, 1, &st);
            if (!e) e = hass_train_update(r->t, &st);
            if (e) {
                hass_progress_end(&pg, hass_train_step(r->t) - step_start);
                if (e == HASS_ERANGE && access(r->path_state, F_OK) == 0)
                    rc = hass_cli_fail(HASS_EXIT_RUNTIME, "%s; stopped, the last good checkpoint %s is kept",
                                       hass_errmsg(), r->path_state);
                else if (e == HASS_ERANGE)
                    rc = hass_cli_fail(HASS_EXIT_RUNTIME, "%s; stopped before the first checkpoint (none written)",
                                       hass_errmsg());
                else
                    rc = hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
                break;
            }
            json_t *j = json_object();
            json_object_set_new(j, "type", json_string("train"));
            json_object_set_new(j, "step", json_integer(hass_train_step(r->t)));
            json_object_set_new(j, "epoch", json_integer(ep));
            json_object_set_new(j, "lr", json_real(st.lr));
            json_object_set_new(j, "loss", json_real(st.loss));
            json_object_set_new(j, "n_mask", json_integer(st.n_mask));
            json_object_set_new(j, "grad_absmax", json_real(st.grad_absmax));
            json_object_set_new(j, "clipped", json_integer(st.n_clipped));
            hass_trainlog_put_steps(j, &st, st.n_mask, NULL);
            if ((e = hass_trainlog_line(r->log, r->path_log, j))) {
                rc = hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
                break;
            }
            done_run++;
            int64_t step = hass_train_step(r->t);
            if (hass_verbosity >= 3 && !pg.enabled) {
                double el = hass_now() - t0, eta = el / (double)(step - step_start) * (double)(r->o.total - step);
                HASS_INFO("step %lld/%lld loss %.4f lr %.3g (eta %.0fs)", (long long)step, (long long)r->o.total,
                          st.loss, st.lr, eta);
            }
            hass_progress_update(&pg, step - step_start);
            int last = bi + 1 == per_epoch;
            int stop = r->a.stop_after && done_run >= r->a.stop_after;
            if (last) {
                if ((e = evaluate(r, ep))) {
                    rc = hass_cli_fail(hass_exit_code(e), "held-out evaluation: %s", hass_errmsg());
                    break;
                }
            }
            if (last || stop || (r->a.ckpt_every && step % r->a.ckpt_every == 0)) {
                int64_t ne = last ? ep + 1 : ep, nb = last ? 0 : bi + 1;
                if ((e = checkpoint(r, ne, nb, last || stop))) {
                    rc = hass_cli_fail(HASS_EXIT_RUNTIME, "checkpoint: %s (the previous checkpoint is intact)",
                                       hass_errmsg());
                    break;
                }
            }
            if (last) hass_trainlog_plot(r->a.out);
            if (stop) {
                hass_progress_end(&pg, step - step_start);
                hass_trainlog_note("stopped after %lld step(s) at step %lld; continue with --resume", (long long)done_run,
                          (long long)step);
                free(perm);
                return 0;
            }
        }
    }
    if (!rc) hass_progress_end(&pg, hass_train_step(r->t) - step_start);
    free(perm);
    if (!rc) hass_trainlog_note("done: %lld steps, head in %s", (long long)hass_train_step(r->t), r->path_model);
    return rc;
}

// Make a feature shard from the conversation files argv[optind..]; returns the exit code.
static int run_features(const args *a, int argc, char **argv) {
    hass_features_cfg c = {.model = a->model, .out = a->features, .tmpl = a->tmpl, .dtype = a->dtype,
                           .limit = a->limit, .max_len = a->max_len, .threads = (int)a->threads,
                           .f32 = a->f32, .progress = a->progress};
    hass_err e = hass_features_make(&c, (const char *const *)argv + optind, argc - optind);
    return e ? hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg()) : 0;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    signal(SIGXFSZ, SIG_IGN); // a file-size limit shows up as a write error, like a full disk
    run r;
    memset(&r, 0, sizeof r);
    r.a = (args){.stage = 1, .progress = -1, .epochs = 1, .batch = 16, .max_len = 2048, .ckpt_every = 200,
                 .topk = 10, .align = 3, .lr = -1, .topk_w = -1, .v_w = 1.0, .p_w = 0.1, .noise = 0.2,
                 .warmup_frac = 0.01, .clip = 0.5, .wd = 0.01, .test_frac = 0.05};
    int rc = parse(argc, argv, &r.a);
    if (rc >= 0) return rc;
#ifdef _OPENMP
    if (r.a.threads) omp_set_num_threads((int)r.a.threads);
#endif
    if (r.a.features) return run_features(&r.a, argc, argv);
    snprintf(r.path_state, sizeof r.path_state, "%s/state.safetensors", r.a.out);
    snprintf(r.path_model, sizeof r.path_model, "%s/model.safetensors", r.a.out);
    snprintf(r.path_log, sizeof r.path_log, "%s/log.jsonl", r.a.out);
    rc = setup(&r, argc, argv);
    if (rc < 0) rc = train_loop(&r);
    if (r.log) fclose(r.log);
    hass_train_free(r.t);
    for (int i = 0; i < r.n_sh; i++) hass_shard_free(r.sh[i]);
    for (int64_t b = 0; r.feat && b < r.a.batch; b++) free(r.ids[b]), free(r.mask[b]), free(r.feat[b]);
    free(r.sh), free(r.refs), free(r.seqs), free(r.ids), free(r.mask), free(r.feat);
    if (r.E) hass_shard_mats_free(r.E, r.W);
    hass_model_free(r.m);
    return rc;
}
