// gen.h: generation: one prompt to generated tokens, plainly or speculatively, under a run's
// sampler, seed and stop rules.
//
// A hass_gen is the decode loop of spec.h without a drafter (plain, autoregressive decoding: it
// owns that decoder and its cache) and, when set, a speculative decoder to use instead. Both
// stop by stop.h's rules (end-of-generation token, --max-new, a stop string, a full context),
// so a record's tokens do not depend on which one ran (at T = 0; at T > 0 on the seed).
#ifndef HASS_GEN_H
#define HASS_GEN_H

#include <stdio.h>

#include "backend.h"
#include "model.h"
#include "sample.h"
#include "spec.h"
#include "stop.h"
#include "tokenizer.h"

// Settings of a generation run.
typedef struct hass_gen_cfg {
    hass_sampler sampler;     // temperature, top-k, top-p (temp <= 0: greedy)
    uint64_t seed;            // base seed of the run (--seed)
    int max_new;              // most tokens generated per record (--max-new)
    int ignore_eos;           // keep going past end-of-generation tokens
    int margins;              // record the top1 - top2 logit margin of every step
    const char *const *stop;  // (n_stop) stop strings (borrowed)
    int n_stop;
} hass_gen_cfg;

// Result of one generation; tokens are owned by the hass_gen and valid until its next run.
typedef struct hass_gen_out {
    const int32_t *tokens;  // (n_tokens) generated ids
    const float *margins;   // (n_tokens) top1 - top2 logit at each step (cfg->margins), or NULL
                            // (also NULL with a speculative decoder: no per-step logits)
    int n_tokens;
    hass_finish finish;
    int stop_idx;           // which stop string matched (-1: none)
    int n_prompt;
    double prefill_ms;      // prompt forward and the first sample
    double decode_ms;       // the steps or cycles after it
    double decode_cpu_ms;   // process CPU time (all threads) of those steps or cycles (a drafter
                            // in another process not counted)
    int n_decode;           // number of those steps or cycles
} hass_gen_out;

typedef struct hass_gen hass_gen;

// Generation state for model m (borrowed) with a cache of n_ctx entries (<= 0: the model's
// training context). tok (borrowed, may be NULL) gives end-of-generation ids and piece bytes.
hass_gen *hass_gen_new(hass_model *m, const hass_tokenizer *tok, int n_ctx, hass_err *err);
// The same on backend b (borrowed: outlives the hass_gen), e.g. the GPU (backend.h).
hass_gen *hass_gen_new_on(hass_backend *b, const hass_tokenizer *tok, int n_ctx, hass_err *err);
// Free; NULL is a no-op.
void hass_gen_free(hass_gen *g);
// Capacity of the cache (the longest prompt + generation).
int hass_gen_ctx(const hass_gen *g);
// Size of the target's vocabulary (prompt ids are below it).
int hass_gen_vocab(const hass_gen *g);
// Decode speculatively with s (borrowed; NULL: plain decoding again); its sampler and seed are
// replaced by each run's. metrics (borrowed, may be NULL): where hass_gen_write_metrics writes.
void hass_gen_set_spec(hass_gen *g, hass_spec *s, FILE *metrics);

// Called with each chunk of accepted tokens as soon as it is known (streaming).
typedef hass_err (*hass_gen_emit_fn)(void *ctx, const int32_t *ids, int n);

// Prefill prompt and decode until a stop condition; seed is this record's sampler seed; emit
// (may be NULL) gets the kept tokens one at a time.
// HASS_ERANGE for an empty prompt, a prompt longer than the context or an id out of range.
hass_err hass_gen_run(hass_gen *g, const hass_gen_cfg *cfg, uint64_t seed,
                      const int32_t *prompt, int n_prompt, hass_gen_emit_fn emit, void *ectx,
                      hass_gen_out *out);

// The prompt checks of hass_gen_run: HASS_ERANGE for an empty prompt, one longer than n_ctx or
// an id outside [0, n_vocab).
hass_err hass_gen_check_prompt(int n_ctx, int n_vocab, const int32_t *prompt, int n_prompt);

// The metrics of the last run r (hass_spec_metrics_write) under id (a json_t, borrowed, may be
// NULL) to the file of hass_gen_set_spec, if any: per-cycle and request records of speculative
// decoding, the request record alone of plain decoding.
hass_err hass_gen_write_metrics(hass_gen *g, const void *id_json, const hass_gen_out *r);

#endif
