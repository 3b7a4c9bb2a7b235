// spec.h: the speculative decode loop (EAGLE-2 tree + HASS head), lossless at every temperature.
//
// Per request: prefill the target on the prompt; the root token is sampled from the last logits
// (the processor of sample.h; greedy at T = 0). Then per cycle: the drafter proposes a tree for
// the root (hass_drafter, in-process or remote), ONE target forward verifies every node (tree
// mask, positions L0 + depth), acceptance (accept.h) picks the path and the bonus token, the
// target KV is compacted to the path (hass_kv_commit), and the accepted nodes' target features
// go back to the drafter with their next tokens. A tree of one node (the root alone) is exactly
// one autoregressive step, so "no drafter" (the AR baseline, hass-verify's plain decoding) runs
// through the same loop: each cycle is then one single-token forward whose logits are sampled
// on the host (hass_sample_token), consuming the RNG exactly as plain sampling does.
//
// Tree budget: fixed (cfg.tree), or with cfg.tree_auto chosen from the measured verify-cost
// curve of this machine (target forward time for N = 1, 2, 4, ... tokens, measured at
// hass_spec_new) and the per-depth acceptance observed so far, re-evaluated every few cycles:
// it maximises expected tokens per second = E[accepted + 1] / (draft cost + verify cost(N)).
// Total 1 (plain decoding) is one of the candidates; pending pairs are caught up lazily when a
// tree is drafted again. The start measurements (~0.3-0.5 s on a 2-core CPU) can come from
// cfg.cost_cache, a small JSON file the caller keys to the setup (model, head, device, threads,
// tree limits): the output never depends on them, only the speed.
//
// Stepwise: hass_spec_generate is hass_spec_begin, then hass_spec_prepare (the next target
// forward's block: the prompt, then each cycle's drafted tree or plain step), the forward, and
// hass_spec_complete (the root's sampling, or acceptance, KV compaction, the drafter's feedback
// and the stop rules) until hass_spec_done, then hass_spec_end. A caller that forwards the blocks
// of several decoders in one pass (hass-verify --batch: hass_forward_batch over every record's
// block) drives the same two halves, so each record decodes exactly as it would alone.
//
// Stop: stop.h's rules (end-of-generation ids, stop ids, stop strings, max_new), applied token
// by token to what each cycle accepts (the rest of the cycle is dropped, so the output equals
// plain decoding's exactly at T = 0), and the context's end (finish "length").
#ifndef HASS_SPEC_H
#define HASS_SPEC_H

#include "accept.h"
#include "backend.h"
#include "draft.h"
#include "stop.h"

// A drafter: the in-process head (hass_drafter_local) or a remote process.
typedef struct hass_drafter {
    void *ctx;
    // New sequence.
    hass_err (*reset)(void *ctx);
    // Committed pairs (feature, next token) in position order.
    hass_err (*push)(void *ctx, const float *feats, const int32_t *next_tok, int m);
    // Build a tree for root into t (t->cfg chosen by the caller).
    hass_err (*tree)(void *ctx, int32_t root, hass_tree *t);
} hass_drafter;

// The in-process drafter over d (borrowed).
hass_drafter hass_drafter_local(hass_draft *d);

typedef struct hass_spec_cfg {
    hass_tree_cfg tree;  // fixed tree; also the largest tree when tree_auto
    int tree_auto;       // choose the tree from the cost profile and acceptance
    hass_sampler sampler;
    uint64_t seed;
    int n_ctx;           // target/draft context (<= 0: the model's)
    const char *cost_cache; // tree_auto: a file of this setup's start measurements, read when
                            // valid instead of measuring, else written after (NULL: measure)
} hass_spec_cfg;

// Per-cycle metrics.
typedef struct hass_spec_cycle {
    int n_acc;        // accepted draft tokens
    int tree_n;       // tree tokens verified (root included)
    int tree_depth;   // deepest level of the tree
    int cfg_total, cfg_levels, cfg_top_k; // the budget used this cycle
    double draft_ms;  // drafting (catch-up + expansion)
    double verify_ms; // target forward + acceptance + commit
} hass_spec_cycle;

typedef struct hass_spec_stats {
    int n_gen;           // tokens kept in the output
    int n_cycles;        // verification cycles after the prefill
    double prefill_ms;   // the prompt's forward and the root's sampling
    double total_ms;     // prefill + all cycles
    hass_spec_cycle *cycles; // (n_cycles) owned by the decoder, valid until the next call
    double decode_cpu_ms; // process CPU time (all threads) after the prefill (a drafter in
                          // another process not counted)
    hass_finish finish;  // why it ended (stop.h); HASS_FINISH_NONE: emit stopped it
    int stop_idx;        // the stop string that matched, -1 if none
} hass_spec_stats;

// Streaming callback: n > 0 new tokens kept by the stop rules; cyc is NULL for the root.
// Return non-zero to stop (the generation ends with HASS_FINISH_NONE).
typedef int (*hass_spec_emit)(void *ud, const int32_t *tok, int n, const hass_spec_cycle *cyc);

typedef struct hass_spec hass_spec;

// A decoder for target m with drafter dr (NULL: plain autoregressive decoding through the same
// loop). Measures the verify-cost curve when cfg->tree_auto.
hass_spec *hass_spec_new(hass_model *m, const hass_drafter *dr, const hass_spec_cfg *cfg,
                         hass_err *err);
// The same on backend b (borrowed: outlives the decoder), e.g. the GPU (backend.h).
hass_spec *hass_spec_new_on(hass_backend *b, const hass_drafter *dr, const hass_spec_cfg *cfg,
                            hass_err *err);
// The same, with --tree auto's start measurements copied from costs_from (a decoder of the same
// setup that measured them; NULL: as hass_spec_new_on): decoders of a batch measure once.
hass_spec *hass_spec_new_shared(hass_backend *b, const hass_drafter *dr, const hass_spec_cfg *cfg,
                                const hass_spec *costs_from, hass_err *err);
void hass_spec_free(hass_spec *s);
// Generate after prompt until stop (borrowed) or the context ends it, into out (capacity
// stop->max_new, or n_ctx - n_prompt + 1 when that is less). margins (same capacity, may be
// NULL) gets the top1 - top2 logit of each kept token's step; only without a drafter (a cycle
// keeps no logits per step), else untouched. Returns the count or a negative hass_err (HASS_ERANGE
// for a prompt longer than the context). stats may be NULL; emit may be NULL.
int hass_spec_generate(hass_spec *s, const int32_t *prompt, int n_prompt, const hass_stop_cfg *stop,
                       int32_t *out, float *margins, hass_spec_stats *stats, hass_spec_emit emit,
                       void *ud);
// The block of the next target forward (hass_seq_forward_rows' arguments), owned by the decoder
// and valid until hass_spec_complete.
typedef struct hass_spec_block {
    hass_seq *seq;          // the decoder's sequence (the block is appended to it)
    hass_kv *kv;            // its CPU cache (for hass_forward_batch), NULL on another backend
    const int32_t *tok;     // (n)
    const int32_t *pos;     // (n) or NULL: base, base + 1, ...
    int n;
    const uint8_t *mask;    // (n, n) or NULL: causal
    const int *rows;        // (n_rows) the rows that get logits; NULL: all n (when logits)
    int n_rows;
    float *logits;          // (n_rows, or n when rows is NULL, V): the decoder's buffer, which the
                            // caller may point at its own of that shape; NULL: none wanted
    float *feats;           // (n, C) or NULL
} hass_spec_block;

// Begin a generation: hass_spec_generate's arguments and errors (prompt borrowed until
// hass_spec_end); nothing to end when it fails. It may be done at once (max_new 0).
hass_err hass_spec_begin(hass_spec *s, const int32_t *prompt, int n_prompt,
                         const hass_stop_cfg *stop, int32_t *out, float *margins,
                         hass_spec_emit emit, void *ud);
// Whether the generation begun has ended (then call hass_spec_end).
int hass_spec_done(const hass_spec *s);
// The block of the next forward into blk (a cycle's tree is drafted now). Errors: a drafter's
// (a droppable one's failure gives a plain step instead), out of memory.
hass_err hass_spec_prepare(hass_spec *s, hass_spec_block *blk);
// The forward of blk ran with result fe (returned when it failed): the root's sampling, or the
// cycle's acceptance, compaction, feedback and stop rules (emit is called from here).
hass_err hass_spec_complete(hass_spec *s, const hass_spec_block *blk, hass_err fe);
// End the generation begun, e being the first error of its calls (HASS_OK if none): returns
// hass_spec_generate's result (e, or the count with st filled when st is not NULL).
int hass_spec_end(hass_spec *s, hass_err e, hass_spec_stats *st);

// Write the metrics of one request as JSONL to f: one {"type":"cycle",...} record per cycle
// ("accepted", "tree", "depth", "budget": [total, depth, top_k], "draft_ms", "verify_ms"), then
// {"type":"request","generated","cycles","prefill_ms","total_ms"}; each carries id (borrowed,
// may be NULL). hass-stats(1) reads this. HASS_EIO when the write fails.
hass_err hass_spec_metrics_write(FILE *f, const void *id_json, const hass_spec_stats *st);

// Run the backend's one-off work of the first forwards (the CPU's weight packing, a GPU's kernel
// and library setup) on a dummy prompt now, so that it is not timed inside the first request.
hass_err hass_spec_warm_up(hass_spec *s);
// Whether the decoder has a drafter (else it decodes plainly).
int hass_spec_has_drafter(const hass_spec *s);
// Capacity of its context (the longest prompt + generation).
int hass_spec_ctx(const hass_spec *s);
// Whether a failed drafter call drops the drafter (for a remote one, whose process may die): the
// generation goes on by plain decoding instead of failing (the drafter knows it failed). Off by
// default.
void hass_spec_set_droppable(hass_spec *s, int on);
// Change the sampler of later calls.
void hass_spec_set_sampler(hass_spec *s, const hass_sampler *smp);
// Change the seed used by the next hass_spec_generate (each call re-seeds from it).
void hass_spec_set_seed(hass_spec *s, uint64_t seed);
// The tree budget currently chosen (for reports).
hass_tree_cfg hass_spec_current_tree(const hass_spec *s);
// Verify cost curve measured for --tree auto: n points of (tokens, ms). Returns n.
int hass_spec_cost_curve(const hass_spec *s, const int **n_tok, const double **ms);

#endif
