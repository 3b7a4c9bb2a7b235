// trainrun.c: a whole training run: target, shards, split, recipe, the epoch loop, held-out
// evaluation, checkpoints and resume (hass-train).
#include "trainrun.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "draft.h"
#include "head.h"
#include "model.h"
#include "safetensors.h"
#include "shard.h"
#include "tokenizer.h"
#include "train.h"
#include "trainlog.h"

// One record: which shard, which record in it.
typedef struct {
    int shard;
    int64_t rec;
} recref;

struct hass_trainrun {
    hass_trainrun_cfg a;
    hass_model *m;
    hass_head_target tg;
    hass_train_dims dm;
    hass_train_opts o;
    hass_train *t;
    float *E, *W;       // (V, H) each: the target's embedding and LM head (W == E when tied)
    hass_shard **sh;    // (n_sh)
    int n_sh;
    recref *refs;       // (n_all): training records first, then the held-out ones
    int64_t n_all, n_train, n_test;
    uint32_t fp;        // target fingerprint
    char rec[2048];     // recipe
    // batch buffers
    hass_train_seq *seqs; // (batch)
    int32_t **ids;        // (batch) x (n_ctx)
    uint8_t **mask;       // (batch) x (n_ctx)
    float **feat;         // (batch) x (n_ctx, H)
    int n_ctx;
    char path_state[4200], path_model[4200], path_log[4200];
    FILE *log;
};

// Fill c with hass-train's defaults.
void hass_trainrun_defaults(hass_trainrun_cfg *c) {
    *c = (hass_trainrun_cfg){.stage = 1, .progress = -1, .epochs = 1, .batch = 16, .max_len = 2048,
                             .ckpt_every = 200, .topk = 10, .align = 3, .lr = -1, .topk_w = -1, .v_w = 1.0,
                             .p_w = 0.1, .noise = 0.2, .warmup_frac = 0.01, .clip = 0.5, .wd = 0.01,
                             .test_frac = 0.05};
}

// splitmix64 finaliser (data order).
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Permutation of 0..n-1 for an epoch (Fisher-Yates on a counter-based stream).
void hass_trainrun_shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t key = mix(seed ^ mix(0x73687566ull + (uint64_t)epoch));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(mix(key + (uint64_t)i * 0x9E3779B97F4A7C15ull) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

// The recipe string stored in checkpoints and heads (resume refuses a different one).
static void recipe(char *buf, size_t n, const hass_trainrun_cfg *a, const hass_train_opts *o, int64_t n_train,
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

// The recipe string of this run.
const char *hass_trainrun_recipe(const hass_trainrun *r) { return r->rec; }

// Re-word the current message as pre + message + post under code (the message is copied first).
static hass_err reword(hass_err code, const char *pre, const char *post) {
    char *msg = strdup(hass_errmsg());
    hass_err e = hass_seterr(code, "%s%s%s", pre, msg ? msg : "", post);
    free(msg);
    return e;
}

// Load the records of a batch (indices into refs) into the sequence buffers.
static hass_err load_batch(hass_trainrun *r, const int64_t *idx, int n, int64_t epoch) {
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
static hass_err evaluate(hass_trainrun *r, int64_t epoch) {
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

// A hass_head whose weights point at the trainer's, with this run's metadata.
static void head_view(hass_trainrun *r, hass_head *h) {
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
static void head_copy_in(hass_trainrun *r, const hass_head *h) {
    hass_head v;
    head_view(r, &v);
    size_t H = (size_t)r->dm.n_embd, q = H, kv = (size_t)r->dm.n_head_kv * (H / r->dm.n_head), I = (size_t)r->dm.n_ff;
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

// Save the training state (and with head=1 the head + config) for position (epoch, batch).
static hass_err checkpoint(hass_trainrun *r, int64_t epoch, int64_t next_batch, int head) {
    char se[32], sb[32], fp[16], seed[32];
    snprintf(se, sizeof se, "%lld", (long long)epoch);
    snprintf(sb, sizeof sb, "%lld", (long long)next_batch);
    snprintf(fp, sizeof fp, "%08x", r->fp);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->o.seed);
    const char *meta[] = {"hass.epoch", se, "hass.batch", sb, "hass.recipe", r->rec, "hass.target_fp", fp,
                          "hass.seed", seed, NULL};
    hass_err e = hass_train_save_state(r->t, r->path_state, meta);
    if (e || !head) return e;
    hass_head h;
    head_view(r, &h);
    return hass_head_save(&h, r->a.out, r->E); // config.json + model.safetensors with embed_tokens.weight
}

// Load the target model, its f32 embedding/head and identity.
static hass_err load_target(hass_trainrun *r) {
    hass_err e;
    if (!(r->m = hass_model_load(r->a.model, (int)r->a.threads, &e))) return e;
    if (r->a.f32) hass_model_set_precision(r->m, HASS_PREC_F32);
    const hass_model_cfg *c = hass_model_config(r->m);
    if (c->head_dim * c->n_head != c->n_embd || c->qkv_bias)
        return hass_seterr(HASS_EFORMAT, "%s: head_dim %d x %d heads != n_embd %d or q/k/v bias: not supported "
                           "for training", r->a.model, c->head_dim, c->n_head, c->n_embd);
    if ((e = hass_shard_target_mats(r->m, &r->E, &r->W))) return e;
    r->dm = (hass_train_dims){.n_embd = c->n_embd, .n_head = c->n_head, .n_head_kv = c->n_head_kv, .n_ff = c->n_ff,
                              .n_vocab = c->n_vocab, .fc_bias = 1, .rope_theta = c->rope_theta,
                              .norm_eps = c->norm_eps};
    r->fp = hass_model_fingerprint(r->m);
    hass_tokenizer *tk = hass_tokenizer_load(r->a.model, &e);
    hass_head_target_of(r->m, tk ? hass_tokenizer_fingerprint(tk) : 0, &r->tg);
    r->tg.n_ctx_train = (int)r->a.max_len;
    if (!tk) HASS_WARN("no tokenizer in %s (%s): the head records no tokenizer fingerprint", r->a.model, hass_errmsg());
    hass_tokenizer_free(tk);
    return HASS_OK;
}

// Open the shards, check them against the target and index their records; *max_rec gets the
// longest record.
static hass_err open_shards(hass_trainrun *r, const char *const *paths, int n, int *max_rec) {
    hass_err e;
    int H = r->dm.n_embd, V = r->dm.n_vocab;
    r->n_sh = n;
    if (!(r->sh = calloc((size_t)n, sizeof *r->sh))) return hass_seterr(HASS_ENOMEM, "out of memory");
    *max_rec = 1;
    for (int i = 0; i < n; i++) {
        if (!(r->sh[i] = hass_shard_open(paths[i], r->fp, &e))) return e;
        if (hass_shard_n_embd(r->sh[i]) != H || hass_shard_n_vocab(r->sh[i]) != V)
            return hass_seterr(HASS_EFORMAT, "%s: features of width %d / vocab %d, the model has %d / %d", paths[i],
                               hass_shard_n_embd(r->sh[i]), hass_shard_n_vocab(r->sh[i]), H, V);
        r->n_all += hass_shard_n_seq(r->sh[i]);
        for (int64_t k = 0; k < hass_shard_n_seq(r->sh[i]); k++)
            if (hass_shard_len(r->sh[i], k) > *max_rec) *max_rec = hass_shard_len(r->sh[i], k);
    }
    if (!(r->refs = malloc(sizeof(recref) * (size_t)(r->n_all ? r->n_all : 1))))
        return hass_seterr(HASS_ENOMEM, "out of memory");
    int64_t q = 0;
    for (int i = 0; i < r->n_sh; i++)
        for (int64_t k = 0; k < hass_shard_n_seq(r->sh[i]); k++) r->refs[q++] = (recref){i, k};
    return HASS_OK;
}

// The trainer's options from the configuration and the stage (total steps from the split).
static void set_opts(hass_trainrun *r) {
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
}

// The batch buffers: batch sequences of n_ctx positions.
static hass_err alloc_batch(hass_trainrun *r) {
    size_t B = (size_t)r->a.batch;
    r->seqs = calloc(B, sizeof *r->seqs), r->ids = calloc(B, sizeof *r->ids);
    r->mask = calloc(B, sizeof *r->mask), r->feat = calloc(B, sizeof *r->feat);
    int ok = r->seqs && r->ids && r->mask && r->feat;
    for (size_t b = 0; ok && b < B; b++) {
        r->ids[b] = malloc(sizeof(int32_t) * r->n_ctx), r->mask[b] = malloc((size_t)r->n_ctx);
        r->feat[b] = malloc(sizeof(float) * (size_t)r->n_ctx * r->dm.n_embd);
        ok = r->ids[b] && r->mask[b] && r->feat[b];
    }
    return ok ? HASS_OK : hass_seterr(HASS_ENOMEM, "out of memory for the batch buffers");
}

// Say what the run will do: the data split, the head, the plan.
static void print_plan(const hass_trainrun *r, int64_t n_tok_train, int64_t n_tok_test) {
    const hass_train_opts *o = &r->o;
    int H = r->dm.n_embd, V = r->dm.n_vocab, nh = r->dm.n_head;
    int64_t per_epoch = (r->n_train + r->a.batch - 1) / r->a.batch;
    double att_mib = 2.0 * nh * (double)r->n_ctx * r->n_ctx * 4 / 1048576.0;
    hass_trainlog_note("data: %lld training records (%lld positions), %lld held out (%lld positions), %d shard(s)",
                       (long long)r->n_train, (long long)n_tok_train, (long long)r->n_test, (long long)n_tok_test,
                       r->n_sh);
    hass_trainlog_note("head: H %d, heads %d/%d, ff %d, vocab %d: %zu trainable parameters; n_ctx %d (attention "
                       "scratch %.0f MiB)", H, nh, r->dm.n_head_kv, r->dm.n_ff, V, hass_train_n_params(r->t),
                       r->n_ctx, att_mib);
    hass_trainlog_note("plan: %lld epoch(s) x %lld steps of %lld sequences = %lld optimiser steps, warmup %lld, lr %g, "
                       "top-K weight %g, S %d, %s softmax", (long long)r->a.epochs, (long long)per_epoch,
                       (long long)r->a.batch, (long long)o->total, (long long)o->warmup, o->lr, o->topk_w,
                       o->n_align, o->leaky ? "leaky" : "masked");
}

// Open the model and shards, split the records, set up the trainer and the batch buffers.
static hass_err setup(hass_trainrun *r, const char *const *shards, int n_shards) {
    int max_rec = 1;
    if (r->a.batch < 1 || r->a.batch > 1024)
        return hass_seterr(HASS_EINVAL, "batch %lld: 1 to 1024 sequences", (long long)r->a.batch);
    hass_err e = load_target(r);
    if (!e) e = open_shards(r, shards, n_shards, &max_rec);
    if (e) return e;
    int64_t n_tok_train = 0, n_tok_test = 0;
    r->n_train = (int64_t)floor((double)r->n_all * (1.0 - r->a.test_frac) + 1e-9);
    r->n_test = r->n_all - r->n_train;
    if (r->n_train < 1) return hass_seterr(HASS_EFORMAT, "no training records (%lld in all)", (long long)r->n_all);
    for (int64_t i = 0; i < r->n_all; i++) {
        int l = hass_shard_len(r->sh[r->refs[i].shard], r->refs[i].rec);
        l = l < r->a.max_len ? l : (int)r->a.max_len;
        if (i < r->n_train) n_tok_train += l; else n_tok_test += l;
    }
    r->n_ctx = max_rec < r->a.max_len ? max_rec : (int)r->a.max_len;
    set_opts(r);
    recipe(r->rec, sizeof r->rec, &r->a, &r->o, r->n_train, r->fp);
    if (!(r->t = hass_train_new(&r->dm, &r->o, r->n_ctx, &e))) return e;
    if ((e = alloc_batch(r))) return e;
    print_plan(r, n_tok_train, n_tok_test);
    return HASS_OK;
}

// Open a run: target, shards, split, trainer.
hass_trainrun *hass_trainrun_open(const hass_trainrun_cfg *c, const char *const *shards, int n_shards,
                                  hass_err *err) {
    hass_trainrun *r = calloc(1, sizeof *r);
    if (!r) {
        *err = hass_seterr(HASS_ENOMEM, "out of memory");
        return NULL;
    }
    r->a = *c;
    snprintf(r->path_state, sizeof r->path_state, "%s/state.safetensors", c->out);
    snprintf(r->path_model, sizeof r->path_model, "%s/model.safetensors", c->out);
    snprintf(r->path_log, sizeof r->path_log, "%s/log.jsonl", c->out);
    if ((*err = setup(r, shards, n_shards))) {
        hass_trainrun_free(r);
        return NULL;
    }
    return r;
}

// Resume from OUT/state.safetensors: same recipe, weights, optimiser, step and data position;
// the log loses the lines of steps after the checkpoint.
static hass_err resume(hass_trainrun *r, int64_t *epoch0, int64_t *batch0) {
    hass_err e;
    hass_st *st = hass_st_open(r->path_state, &e);
    if (!st) {
        hass_errprefix("--resume");
        return e;
    }
    const char *rs = hass_st_meta(st, "hass.recipe"), *se = hass_st_meta(st, "hass.epoch"),
               *sb = hass_st_meta(st, "hass.batch");
    if (!rs || strcmp(rs, r->rec)) {
        e = hass_seterr(HASS_EINVAL, "--resume: %s was made with another recipe or data:\n  stored: %s\n  now:    %s",
                        r->path_state, rs ? rs : "(none)", r->rec);
        hass_st_free(st);
        return e;
    }
    e = hass_train_load(r->t, st, 1);
    if (!e && (!se || !sb || hass_parse_i64(se, 0, INT64_MAX, epoch0) || hass_parse_i64(sb, 0, INT64_MAX, batch0)))
        e = hass_seterr(HASS_EFORMAT, "%s: hass.epoch/hass.batch metadata missing", r->path_state);
    hass_st_free(st);
    if (e) {
        hass_errprefix("--resume");
        return e;
    }
    if ((e = hass_trainlog_truncate(r->path_log, hass_train_step(r->t)))) return e;
    hass_trainlog_note("resuming at step %lld (epoch %lld, batch %lld)", (long long)hass_train_step(r->t),
                       (long long)*epoch0, (long long)*batch0);
    return HASS_OK;
}

// Make OUT, load the starting weights (resume, --init or random), open the log for appending.
static hass_err start(hass_trainrun *r, int64_t *epoch0, int64_t *batch0) {
    hass_err e;
    if (mkdir(r->a.out, 0755) != 0 && errno != EEXIST) return hass_seterr(HASS_EIO, "%s: %s", r->a.out, strerror(errno));
    if (r->a.resume) {
        if ((e = resume(r, epoch0, batch0))) return e;
    } else {
        hass_head *h = r->a.init ? hass_head_load(r->a.init, &r->tg, &e) : hass_head_random(&r->tg, 1, r->o.seed, &e);
        if (!h) {
            if (r->a.init) hass_errprefix("--init");
            return e;
        }
        head_copy_in(r, h);
        hass_head_free(h);
        unlink(r->path_log);
    }
    if (!(r->log = fopen(r->path_log, "a"))) return hass_seterr(HASS_EIO, "%s: %s", r->path_log, strerror(errno));
    return HASS_OK;
}

// One optimiser step on the records idx[0..n) of epoch ep; a loss that is not finite says
// whether a checkpoint is kept.
static hass_err train_step(hass_trainrun *r, const int64_t *idx, int n, int64_t ep, hass_train_stats *st) {
    hass_train_zero_grad(r->t);
    hass_err e = load_batch(r, idx, n, ep);
    if (!e) e = hass_train_batch(r->t, r->E, r->W, r->seqs, n, 1, st);
    if (!e) e = hass_train_update(r->t, st);
    if (e != HASS_ERANGE) return e;
    char post[4300];
    if (access(r->path_state, F_OK) == 0)
        snprintf(post, sizeof post, "; stopped, the last good checkpoint %s is kept", r->path_state);
    else snprintf(post, sizeof post, "; stopped before the first checkpoint (none written)");
    return reword(e, "", post);
}

// The "train" log line of a step.
static hass_err log_step(hass_trainrun *r, int64_t ep, const hass_train_stats *st) {
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string("train"));
    json_object_set_new(j, "step", json_integer(hass_train_step(r->t)));
    json_object_set_new(j, "epoch", json_integer(ep));
    json_object_set_new(j, "lr", json_real(st->lr));
    json_object_set_new(j, "loss", json_real(st->loss));
    json_object_set_new(j, "n_mask", json_integer(st->n_mask));
    json_object_set_new(j, "grad_absmax", json_real(st->grad_absmax));
    json_object_set_new(j, "clipped", json_integer(st->n_clipped));
    hass_trainlog_put_steps(j, st, st->n_mask, NULL);
    return hass_trainlog_line(r->log, r->path_log, j);
}

// After step bi of epoch ep: evaluate at the epoch's end, checkpoint when due, plot.
static hass_err after_step(hass_trainrun *r, int64_t ep, int64_t bi, int last, int stop) {
    hass_err e;
    int64_t step = hass_train_step(r->t);
    if (last && (e = evaluate(r, ep))) {
        hass_errprefix("held-out evaluation");
        return e;
    }
    if (last || stop || (r->a.ckpt_every && step % r->a.ckpt_every == 0)) {
        int64_t ne = last ? ep + 1 : ep, nb = last ? 0 : bi + 1;
        if ((e = checkpoint(r, ne, nb, last || stop)))
            return reword(hass_exit_code(e) == 1 ? e : HASS_EIO, "checkpoint: ", " (the previous checkpoint is intact)");
    }
    if (last) hass_trainlog_plot(r->a.out);
    return HASS_OK;
}

// The training loop.
hass_err hass_trainrun_run(hass_trainrun *r) {
    int64_t epoch0 = 0, batch0 = 0;
    hass_err e = start(r, &epoch0, &batch0);
    if (e) return e;
    int64_t per_epoch = (r->n_train + r->a.batch - 1) / r->a.batch, done_run = 0, idx[1024];
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)r->n_train); // (n_train)
    if (!perm) return hass_seterr(HASS_ENOMEM, "out of memory");
    hass_progress pg; // counts the steps of this run (a rate over resumed steps would be wrong)
    int64_t step_start = hass_train_step(r->t), step = step_start;
    hass_progress_init(&pg, "steps", r->o.total - step_start, r->a.progress);
    double t0 = hass_now();
    int stop = 0;
    for (int64_t ep = epoch0; ep < r->a.epochs && !e && !stop; ep++) {
        hass_trainrun_shuffle(perm, r->n_train, r->o.seed, ep);
        for (int64_t bi = ep == epoch0 ? batch0 : 0; bi < per_epoch && !e && !stop; bi++) {
            int n = (int)(r->n_train - bi * r->a.batch < r->a.batch ? r->n_train - bi * r->a.batch : r->a.batch);
            for (int b = 0; b < n; b++) idx[b] = perm[bi * r->a.batch + b];
            hass_train_stats st;
            if ((e = train_step(r, idx, n, ep, &st))) {
                hass_progress_end(&pg, hass_train_step(r->t) - step_start);
                break;
            }
            if ((e = log_step(r, ep, &st))) break;
            done_run++;
            step = hass_train_step(r->t);
            if (hass_verbosity >= 3 && !pg.enabled) {
                double el = hass_now() - t0, eta = el / (double)(step - step_start) * (double)(r->o.total - step);
                HASS_INFO("step %lld/%lld loss %.4f lr %.3g (eta %.0fs)", (long long)step, (long long)r->o.total,
                          st.loss, st.lr, eta);
            }
            hass_progress_update(&pg, step - step_start);
            stop = r->a.stop_after && done_run >= r->a.stop_after;
            e = after_step(r, ep, bi, bi + 1 == per_epoch, stop);
        }
    }
    free(perm);
    if (e) return e;
    hass_progress_end(&pg, hass_train_step(r->t) - step_start);
    if (stop)
        hass_trainlog_note("stopped after %lld step(s) at step %lld; continue with --resume", (long long)done_run,
                           (long long)step);
    else hass_trainlog_note("done: %lld steps, head in %s", (long long)hass_train_step(r->t), r->path_model);
    return HASS_OK;
}

// Free a run.
void hass_trainrun_free(hass_trainrun *r) {
    if (!r) return;
    if (r->log) fclose(r->log);
    hass_train_free(r->t);
    for (int i = 0; r->sh && i < r->n_sh; i++) hass_shard_free(r->sh[i]);
    for (int64_t b = 0; r->ids && r->mask && r->feat && b < r->a.batch; b++)
        free(r->ids[b]), free(r->mask[b]), free(r->feat[b]);
    free(r->sh), free(r->refs), free(r->seqs), free(r->ids), free(r->mask), free(r->feat);
    if (r->E) hass_shard_mats_free(r->E, r->W);
    hass_model_free(r->m);
    free(r);
}
