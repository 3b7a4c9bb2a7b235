// gen_batch.h: generation of several records at once (hass-verify --batch N), plain or
// speculative.
//
// Up to n_slots records are in flight, each with its own decoder (spec.h: its KV cache, sampler
// stream seeded as hass_gen_run seeds it, stop rules and output; with a drafter, its own drafter
// state and tree). Each step runs every record's half cycle of spec.h (hass_spec_prepare: the
// prompt of a record added since the last step, a plain step's token, or a cycle's tree, drafted
// now, one record after another) and then ONE multi-sequence forward (forward.h,
// hass_forward_batch) over all their blocks, each under its own mask, the logits of every block
// in one LM-head matmul; then each record completes its cycle (hass_spec_complete: sampling or
// acceptance, KV compaction, the drafter's feedback, the stop rules). A record that ends frees
// its slot at once for the next one (continuous batching). The cycle is spec.c's own and by the
// engine's batch invariance every forward row is bit-identical to forwarding the record alone,
// so every record's tokens (and margins) are those of hass_gen_run decoding it alone with the
// same decoder settings: plain decoding at any temperature, speculative decoding with a fixed
// tree at any temperature (seeded), and with --tree auto at T = 0 (at T > 0 the trees, so the
// draws, follow the timings).
//
// --tree auto: the start measurements (verify-cost curve, drafter costs) are made once, by slot
// 0's decoder (or read from the cost cache), and copied to the others; each slot then tracks its
// own acceptance and chooses its own budget.
//
// Memory: n_slots decoders, each with a cache of n_ctx entries (allocated at the start; pages
// are touched only as records fill them) and its buffers; with a drafter, n_slots drafter states
// (each its own draft cache of n_ctx positions and converted copy of the head's layer: the
// head's tensors are loaded once); plus the scratch and logits of the largest step (n_slots
// blocks of up to the tree's total rows).
#ifndef HASS_GEN_BATCH_H
#define HASS_GEN_BATCH_H

#include "gen.h"
#include "head_drafter.h"

typedef struct hass_gen_batch hass_gen_batch;

// A record that ended: e (HASS_OK, or why it failed: an emit error, a drafter's error, a failed
// forward) and its result (out valid during the call only; st too: its decoder's statistics
// with the cycles, NULL when it failed); rec is the pointer given to hass_gen_batch_add.
typedef void (*hass_gen_done_fn)(void *ctx, void *rec, hass_err e, const hass_gen_out *out,
                                 const hass_spec_stats *st);

// Batched generation for model m (borrowed, CPU engine) with n_slots slots of n_ctx entries
// each (<= 0: the model's training context, as hass_gen_new); tok as in hass_gen_new. Plain
// decoding until hass_gen_batch_set_draft.
hass_gen_batch *hass_gen_batch_new(hass_model *m, const hass_tokenizer *tok, int n_slots,
                                   int n_ctx, hass_err *err);
// Decode speculatively with the CPU drafter hd (borrowed: outlives the batch) and forks of it
// (hass_head_drafter_fork, one more per slot, owned), under sc's tree settings (its sampler,
// seed and n_ctx are ignored: each record's and the batch's are used). No record may be in
// flight. On failure the batch stays as it was (plain).
hass_err hass_gen_batch_set_draft(hass_gen_batch *b, hass_head_drafter *hd, const hass_spec_cfg *sc);
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
