// draft.h: the HASS/EAGLE draft forward with its own KV cache, and tree drafting.
//
// For a pair (f_t, x_{t+1}) at position t: u = W_fc [E(x_{t+1}); f_t] + b_fc, then one LLaMA
// decoder layer with NO input norm and NO final norm: h = u + Attn(u); o = h + MLP(RMSNorm(h)).
// RoPE is rotate-half ((i, i + D/2) pairs) with the head's rope_theta; GQA as in the target.
// The token embedding E and the LM head are the target's (hass_model_embed/_lm_head): nothing
// is copied. o_t approximates f_{t+1}; draft log-probs are log_softmax(W_head o_t) at T = 1.
//
// KV cache: a stable part (one entry per committed position, built only from true target
// features) and a scratch part for the tree (K entries per expansion step), thrown away every
// cycle. A cycle: hass_draft_push (newly committed pairs; catch-up is lazy), then
// hass_draft_tree(root) runs the catch-up and the EAGLE-2 expansion and leaves the tree in t.
#ifndef HASS_DRAFT_H
#define HASS_DRAFT_H

#include "forward.h"
#include "head.h"
#include "tree.h"

typedef struct hass_draft hass_draft;

// Fill a head target description from a loaded target model (dims, rope, fingerprint).
void hass_head_target_of(const hass_model *m, uint32_t tok_fingerprint, hass_head_target *tg);

// A drafter for head h (borrowed) over target m (borrowed: embedding, LM head, kernels), for
// sequences of up to n_ctx positions and trees up to cfg. NULL with *err.
hass_draft *hass_draft_new(const hass_head *h, hass_model *m, int n_ctx, const hass_tree_cfg *cfg,
                           hass_err *err);
// Free (NULL ok).
void hass_draft_free(hass_draft *d);
// Requantize the layer's weights to Q8_0 blocks (per 32 values an fp16 scale and 8-bit values;
// activations then pass through 8 bits as in the target's matmuls): a level streams about half
// the bytes and costs about half the time on a CPU. Drafts may differ slightly from the head's
// exact forward; speculative output does not. Call before the first push. HASS_EUNSUP (the
// drafter stays exact) when a layer width is not a multiple of 32.
hass_err hass_draft_quantize(hass_draft *d);
// Start a new sequence (drops the stable KV and pending pairs).
void hass_draft_reset(hass_draft *d);
// Committed pairs waiting for catch-up, and stable entries so far.
int hass_draft_n_pending(const hass_draft *d);
int hass_draft_n_stable(const hass_draft *d);
// Feature width C.
int hass_draft_n_embd(const hass_draft *d);
// The draft output at the last stable position (C floats), NULL before the first catch-up
// (compared with the GPU drafter's in the tests).
const float *hass_draft_last(const hass_draft *d);
// Queue m newly committed pairs (feats[i], next_tok[i]) at the next positions.
hass_err hass_draft_push(hass_draft *d, const float *feats, // (m, C)
                         const int32_t *next_tok,           // (m)
                         int m);
// Catch up on the pending pairs (no-op when none).
hass_err hass_draft_catchup(hass_draft *d);
// Catch up, then build the tree for root with configuration cfg (<= the one given to _new)
// into t (whose cfg must equal *cfg). The last pushed pair's token must be root.
hass_err hass_draft_tree(hass_draft *d, int32_t root, hass_tree *t);

#endif
