// trainrun.h: a whole draft-head training run (hass-train, docs/TRAINING.md): load the target and
// its frozen embedding/LM head, open the feature shards, split off the held-out records, build
// the trainer (train.h) with the stage's recipe, then train for the epochs: a seeded data order
// per epoch, one optimiser step per batch, a "train" log line per step, a held-out evaluation at
// each epoch's end, checkpoints, exact resume. Writes into OUT: state.safetensors (training
// state), model.safetensors + config.json (the head, head.h), log.jsonl and the curves
// (trainlog.h). Notes, progress and the plan go to stderr.
//
// Typical use:
//   hass_trainrun_cfg c; hass_trainrun_defaults(&c); ...set c...
//   hass_trainrun *r = hass_trainrun_open(&c, shards, n_shards, &err);
//   err = hass_trainrun_run(r); hass_trainrun_free(r);
#ifndef HASS_TRAINRUN_H
#define HASS_TRAINRUN_H

#include "hass.h"

// What to train (hass-train's flags; hass_trainrun_defaults gives the defaults in brackets).
typedef struct hass_trainrun_cfg {
    const char *model; // target model (GGUF)
    const char *out;   // output folder
    const char *init;  // start from these head weights with a fresh optimiser (NULL: random)
    int stage;         // 1: top-K weight 0, lr 3e-5; 2: top-K weight 1, lr 1e-5 [1]
    int resume;        // continue OUT/state.safetensors exactly where it stopped
    int progress;      // progress line: 1 on, 0 off, -1 when stderr is a terminal [-1]
    int64_t epochs;    // passes over the training split [1]
    int64_t batch;     // sequences per optimiser step, 1..1024 [16]
    int64_t max_len;   // truncate sequences to this many positions [2048]
    int64_t ckpt_every; // save the state every N optimiser steps; 0 = at epoch ends only [200]
    int64_t stop_after; // stop with a checkpoint after N steps of this run; 0 = no [0]
    int64_t threads;   // CPU threads; 0 = all cores [0]
    int64_t topk;      // K of the top-K loss [10]
    int64_t align;     // alignment steps S [3]
    double lr;         // peak learning rate; < 0: by stage [-1]
    double topk_w;     // top-K loss weight; < 0: by stage [-1]
    double v_w;        // SmoothL1 weight [1.0]
    double p_w;        // soft cross-entropy weight [0.1]
    double noise;      // uniform feature noise std; 0 = off [0.2]
    double warmup_frac; // warmup share of the optimiser steps [0.01]
    double clip;       // clip gradients by value [0.5]
    double wd;         // AdamW weight decay [0.01]
    double test_frac;  // held-out share, taken from the end [0.05]
    int noise_fixed;   // 1: noise amplitude std, not std*512/L
    int leaky;         // 1: the reference code's leaky masked softmax
    int f32;           // 1: f32 activations in the target
    uint64_t seed;     // seed of init, data order and noise [0]
} hass_trainrun_cfg;

typedef struct hass_trainrun hass_trainrun;

// Fill c with the defaults (no model, out or init).
void hass_trainrun_defaults(hass_trainrun_cfg *c);
// Load the target, open the shards (borrowed paths), set up the trainer and print the data, head
// and plan notes. NULL with *err: the model's and shards' errors, HASS_EFORMAT (a target the
// trainer does not support, shards of another width, no training records), HASS_ENOMEM.
hass_trainrun *hass_trainrun_open(const hass_trainrun_cfg *c, const char *const *shards, int n_shards,
                                  hass_err *err);
// Train: make OUT, start from --init, a random head or (resume) the saved state, then run the
// steps to the end or to stop_after. HASS_EINVAL when resuming a state made with another recipe,
// HASS_ERANGE when a loss or gradient is not finite (the message says whether a checkpoint is
// kept), HASS_EIO for the log and checkpoints (the previous checkpoint stays intact), else the
// errors of the shards.
hass_err hass_trainrun_run(hass_trainrun *r);
// Free (NULL ok).
void hass_trainrun_free(hass_trainrun *r);
// The recipe string stored in checkpoints (borrowed; resume refuses another one).
const char *hass_trainrun_recipe(const hass_trainrun *r);

// Permutation of 0..n-1 for an epoch, from the seed (Fisher-Yates on a counter-based stream).
void hass_trainrun_shuffle(int64_t *perm, // (n)
                           int64_t n, uint64_t seed, int64_t epoch);

#endif
