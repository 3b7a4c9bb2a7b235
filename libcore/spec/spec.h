// spec.h: the speculative decode loop (EAGLE-2 tree + HASS head), lossless at every temperature.
//
// Per request: prefill the target on the prompt; the root token is sampled from the last logits
// (the processor of sample.h; greedy at T = 0). Then per cycle: the drafter proposes a tree for
// the root (hass_drafter, in-process or remote), ONE target forward verifies every node (tree
// mask, positions L0 + depth), acceptance (accept.h) picks the path and the bonus token, the
// target KV is compacted to the path (hass_kv_commit), and the accepted nodes' target features
// go back to the drafter with their next tokens. A tree of one node (the root alone) is exactly
// one autoregressive step, so "no drafter" (AR baseline) runs through the same loop and at T > 0
// consumes the RNG the same way as plain sampling.
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
// Stop: after the first token in stop_ids, or after max_new tokens (the output is cut there, so
// the result equals plain decoding's exactly at T = 0), or at the context limit.
#ifndef HASS_SPEC_H
#define HASS_SPEC_H

#include "accept.h"
#include "backend.h"
#include "draft.h"

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
    int n_gen;           // tokens produced (root included)
    int n_cycles;        // verification cycles after the prefill
    double prefill_ms;
    double total_ms;     // prefill + all cycles
    hass_spec_cycle *cycles; // (n_cycles) owned by the decoder, valid until the next call
} hass_spec_stats;

// Streaming callback: n new tokens (after stop/limit trimming); cyc is NULL for the root.
// Return non-zero to stop.
typedef int (*hass_spec_emit)(void *ud, const int32_t *tok, int n, const hass_spec_cycle *cyc);

typedef struct hass_spec hass_spec;

// A decoder for target m with drafter dr (NULL: plain autoregressive decoding through the same
// loop). Measures the verify-cost curve when cfg->tree_auto.
hass_spec *hass_spec_new(hass_model *m, const hass_drafter *dr, const hass_spec_cfg *cfg,
                         hass_err *err);
// The same on backend b (borrowed: outlives the decoder), e.g. the GPU (backend.h).
hass_spec *hass_spec_new_on(hass_backend *b, const hass_drafter *dr, const hass_spec_cfg *cfg,
                            hass_err *err);
void hass_spec_free(hass_spec *s);
// Generate up to max_new tokens after prompt into out (capacity max_new). Returns the count or
// a negative hass_err. stats may be NULL; emit may be NULL.
int hass_spec_generate(hass_spec *s, const int32_t *prompt, int n_prompt, int max_new,
                       const int32_t *stop_ids, int n_stop, int32_t *out, hass_spec_stats *stats,
                       hass_spec_emit emit, void *ud);
// Write the metrics of one request as JSONL to f: one {"type":"cycle",...} record per cycle
// ("accepted", "tree", "depth", "budget": [total, depth, top_k], "draft_ms", "verify_ms"), then
// {"type":"request","generated","cycles","prefill_ms","total_ms"}; each carries id (borrowed,
// may be NULL). hass-stats(1) reads this. HASS_EIO when the write fails.
hass_err hass_spec_metrics_write(FILE *f, const void *id_json, const hass_spec_stats *st);

// Change the sampler of later calls.
void hass_spec_set_sampler(hass_spec *s, const hass_sampler *smp);
// Change the seed used by the next hass_spec_generate (each call re-seeds from it).
void hass_spec_set_seed(hass_spec *s, uint64_t seed);
// The tree budget currently chosen (for reports).
hass_tree_cfg hass_spec_current_tree(const hass_spec *s);
// Verify cost curve measured for --tree auto: n points of (tokens, ms). Returns n.
int hass_spec_cost_curve(const hass_spec *s, const int **n_tok, const double **ms);

#endif
