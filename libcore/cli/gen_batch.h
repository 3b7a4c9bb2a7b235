// gen_batch.h: plain generation of several records at once (hass-verify --batch N).
//
// Up to n_slots records are in flight, each with its own KV cache, sampler stream (seeded as
// hass_gen_run seeds it), stop rules and output. Each step is ONE multi-sequence forward
// (forward.h, hass_forward_batch): the prompts of the records added since the last step
// (each prefilled in one block) and one decode row of every running record; the LM head runs
// on the one row per record that is sampled. A record that ends frees its slot at once for the
// next one (continuous batching). By the engine's batch invariance every record's tokens (and
// margins) are bit-identical to hass_gen_run's plain decoding of it alone, at any temperature.
//
// Memory: n_slots caches of n_ctx entries each (reserved at the start; pages are touched only
// as records fill them) plus the scratch of the largest step.
#ifndef HASS_GEN_BATCH_H
#define HASS_GEN_BATCH_H

#include "gen.h"

typedef struct hass_gen_batch hass_gen_batch;

// A record that ended: e (HASS_OK, or why it failed: an emit error, or a failed forward) and
// its result (out valid during the call only); rec is the pointer given to hass_gen_batch_add.
typedef void (*hass_gen_done_fn)(void *ctx, void *rec, hass_err e, const hass_gen_out *out);

// Batched generation for model m (borrowed, CPU engine) with n_slots slots of n_ctx entries
// each (<= 0: the model's training context, as hass_gen_new); tok as in hass_gen_new.
hass_gen_batch *hass_gen_batch_new(hass_model *m, const hass_tokenizer *tok, int n_slots,
                                   int n_ctx, hass_err *err);
// Free; NULL is a no-op.
void hass_gen_batch_free(hass_gen_batch *b);
// Capacity of each cache (the longest prompt + generation).
int hass_gen_batch_ctx(const hass_gen_batch *b);
// Records in flight (added, not yet reported).
int hass_gen_batch_running(const hass_gen_batch *b);
// Whether a slot is free for hass_gen_batch_add.
int hass_gen_batch_has_room(const hass_gen_batch *b);
// Start a record in a free slot: hass_gen_run's arguments (prompt copied, cfg's stop strings
// and tokenizer borrowed until the record is reported). The prompt is checked as hass_gen_run
// checks it, with the same errors (nothing is started then); HASS_EINVAL when no slot is free.
// It runs from the next step; emit gets its kept tokens one at a time as they come.
hass_err hass_gen_batch_add(hass_gen_batch *b, const hass_gen_cfg *cfg, uint64_t seed,
                            const int32_t *prompt, int n_prompt, hass_gen_emit_fn emit,
                            void *ectx, void *rec);
// One step of every record in flight (one forward); done is called for each record that ends
// in it, in slot order. A record that fails is reported with its error; the others go on.
void hass_gen_batch_step(hass_gen_batch *b, hass_gen_done_fn done, void *ctx);

#endif
