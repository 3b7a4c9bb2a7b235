// train.h: one HASS draft-head training step on the CPU: S alignment steps over a batch of
// sequences (SPEC-HASS sections 4-5), gradient accumulation, clipping by value, AdamW with the
// linear warmup/decay schedule, and the seeded uniform feature noise.
//
// Dimensions: H n_embd, nh/nkv query/KV heads, d = H/nh, I n_ff, V n_vocab, L sequence length,
// S alignment steps. One sequence is processed at a time (no padding): with the correct masked
// softmax padding changes nothing, and the loss normalisation sum(m) runs over the whole batch
// as in the reference. The leaky variant takes the batch's longest length as its padded length.
//
// Typical use:
//   hass_train *t = hass_train_new(&dims, &opts, n_ctx, &err);
//   init weights in hass_train_weights(t)
//   per optimiser step: hass_train_zero_grad(t); hass_train_batch(t, ..., 1, &st); hass_train_update(t, &st);
#ifndef HASS_TRAIN_H
#define HASS_TRAIN_H

#include "hass.h"

#define HASS_TRAIN_MAX_ALIGN 8 // most alignment steps S
#define HASS_TRAIN_MAX_TOPK 64 // largest K of the top-K term

// Shapes of the draft head (one LLaMA layer without input norm, plus fc).
typedef struct hass_train_dims {
    int n_embd;       // H
    int n_head;       // nh
    int n_head_kv;    // nkv (divides nh)
    int n_ff;         // I
    int n_vocab;      // V
    int fc_bias;      // 1: fc has a bias (EAGLE/HASS default)
    float rope_theta; // RoPE base (the target's)
    float norm_eps;   // post-attention RMSNorm eps
} hass_train_dims;

// The trainable tensors, as views into one flat buffer of hass_tparams_count() floats, in the
// order listed here (the same order as hass_tparams_name()).
typedef struct hass_tparams {
    float *fc_w;   // (H, 2H): columns [0,H) act on the embedding, [H,2H) on the feature
    float *fc_b;   // (H), NULL without fc bias
    float *wq;     // (nh*d, H)
    float *wk;     // (nkv*d, H)
    float *wv;     // (nkv*d, H)
    float *wo;     // (H, nh*d)
    float *w_gate; // (I, H)
    float *w_up;   // (I, H)
    float *w_down; // (H, I)
    float *norm;   // (H) post_attention_layernorm
} hass_tparams;

#define HASS_TPARAMS_N 10

// Number of floats of all trainable tensors.
size_t hass_tparams_count(const hass_train_dims *dm);
// Point p's tensors into data (hass_tparams_count floats).
void hass_tparams_view(hass_tparams *p, const hass_train_dims *dm, float *data);
// Tensor i of the fixed order: EAGLE checkpoint name, pointer in p, rows and columns (a
// vector has rows 1). Returns NULL for an absent tensor (fc.bias without bias) or i out of range.
const char *hass_tparams_tensor(const hass_tparams *p, const hass_train_dims *dm, int i,
                                float **ptr, int *rows, int *cols);

// Recipe of SPEC-HASS section 4 (defaults from hass_train_opts_default).
typedef struct hass_train_opts {
    int n_align;        // S alignment steps (3)
    float v_w;          // SmoothL1 weight (1.0)
    float p_w;          // soft-CE weight (0.1)
    float topk_w;       // top-K weight w (0 in stage 1, 1 in stage 2)
    int topk;           // K (10)
    float noise_std;    // uniform noise std (0.2); 0 disables
    int noise_per_len;  // 1: amplitude std*512/L (the reference's shape[1] quirk); 0: amplitude std
    int leaky;          // 1: the reference's leaky masked softmax; 0: correct masked softmax
    float lr;           // peak learning rate (3e-5)
    float beta1, beta2; // AdamW betas (0.9, 0.95)
    float eps;          // AdamW eps (1e-8)
    float wd;           // weight decay on every tensor (0.01)
    float clip;         // clip gradients by value (0.5); 0 disables
    int64_t warmup;     // warmup optimiser steps W
    int64_t total;      // total optimiser steps T (linear decay to 0 at T)
    uint64_t seed;      // noise seed
} hass_train_opts;

// Fill o with the HASS defaults (stage 1: topk_w 0; warmup 0 and total 0 mean constant lr).
void hass_train_opts_default(hass_train_opts *o);
// Learning rate of optimiser step `step` (0-based): linear warmup from 0 over W steps, then
// linear decay to 0 at T (get_linear_schedule_with_warmup; step 0 gets 0 when W > 0). T = 0:
// constant lr after warmup.
float hass_train_lr(const hass_train_opts *o, int64_t step);

// Noise key of sample `idx` in epoch `epoch` (counter-based: resuming needs no RNG state).
uint64_t hass_train_noise_key(uint64_t seed, int64_t epoch, int64_t idx);
// x += (u - 0.5) * amp elementwise with u ~ U[0,1) from key, amp = std*512/L (per_len) or std.
void hass_train_noise(float *x, // (L, H)
                      int L, int H, float std, int per_len, uint64_t key);

// One conversation as stored by the feature dump (SPEC-HASS section 3).
typedef struct hass_train_seq {
    int n;                 // L
    const int32_t *ids;    // (L) tokens x_0..x_{L-1}
    const float *feat;     // (L, H) post-norm target features f_0..f_{L-1}
    const uint8_t *mask;   // (L) stored loss mask (1 on assistant tokens); the last slot is ignored
    uint64_t noise_key;    // from hass_train_noise_key (training only)
} hass_train_seq;

// What one batch measured. Losses are normalised as in the reference: sum over masked positions
// of the per-position loss / (sum(m) + 1e-5), one value per alignment step.
typedef struct hass_train_stats {
    int n_align;                           // S
    double vloss[HASS_TRAIN_MAX_ALIGN];    // SmoothL1
    double ploss[HASS_TRAIN_MAX_ALIGN];    // soft CE
    double kloss[HASS_TRAIN_MAX_ALIGN];    // top-K soft CE
    int64_t top1[HASS_TRAIN_MAX_ALIGN];    // masked positions whose draft argmax = target argmax
    int64_t top3[HASS_TRAIN_MAX_ALIGN];    // ... target argmax within the draft top 3
    double loss;                           // sum_s v_w v + p_w p + topk_w k (what is minimised)
    int64_t n_mask;                        // sum(m) over the batch
    int64_t n_tok;                         // positions in the batch
    float lr;                              // lr of the last update (hass_train_update)
    double grad_absmax;                    // largest |gradient| before clipping (update)
    int64_t n_clipped;                     // gradient entries clipped (update)
} hass_train_stats;

typedef struct hass_train hass_train;

// Trainer for sequences of up to n_ctx positions; weights start at zero (fill them).
hass_train *hass_train_new(const hass_train_dims *dm, const hass_train_opts *o, int n_ctx,
                           hass_err *err);
void hass_train_free(hass_train *t);
// Borrowed views of the weights, gradients and AdamW moments (m, v).
hass_tparams *hass_train_weights(hass_train *t);
hass_tparams *hass_train_grads(hass_train *t);
// Flat buffers (hass_tparams_count floats): 0 weights, 1 grads, 2 AdamW m, 3 AdamW v.
float *hass_train_buf(hass_train *t, int which);
size_t hass_train_n_params(const hass_train *t);
// Optimiser steps done (the schedule position); settable for resuming.
int64_t hass_train_step(const hass_train *t);
void hass_train_set_step(hass_train *t, int64_t step);
// The options in use (borrowed; may be edited between steps, e.g. for stage 2).
hass_train_opts *hass_train_options(hass_train *t);

// Zero the gradients.
void hass_train_zero_grad(hass_train *t);
// Forward (and with train=1 noise + backward, gradients added to the gradient buffer) of the S
// alignment steps over n_seq sequences. embed and head are the frozen target matrices (the same
// pointer for tied embeddings). HASS_ERANGE when a loss is not finite, HASS_EINVAL for a
// sequence longer than n_ctx or a token outside the vocabulary.
hass_err hass_train_batch(hass_train *t,
                          const float *embed, // (V, H)
                          const float *head,  // (V, H)
                          const hass_train_seq *seqs, int n_seq, int train,
                          hass_train_stats *st);
// Clip the gradients by value, apply AdamW at the scheduled lr, advance the step. HASS_ERANGE
// (weights untouched) when a gradient is not finite.
hass_err hass_train_update(hass_train *t, hass_train_stats *st);

// ---- weights on disk ---------------------------------------------------------------------------

struct hass_st;

// Write the full training state (weights, AdamW m and v, step; names "weight.<t>", "adam_m.<t>",
// "adam_v.<t>", F32) atomically to path, with extra metadata pairs (key, value, ..., NULL).
hass_err hass_train_save_state(hass_train *t, const char *path, const char *const *meta);
// Load a state written by hass_train_save_state from an open safetensors file: weights, and with
// with_optimizer also m, v and the step. Shapes must match the trainer's dims (HASS_EFORMAT
// naming the tensor otherwise). Heads in the EAGLE layout load through head.h.
hass_err hass_train_load(hass_train *t, const struct hass_st *st, int with_optimizer);

#endif
