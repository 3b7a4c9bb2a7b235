// cuda_draft.h: the HASS/EAGLE draft head's forward on the GPU, the twin of draft.c (same
// contract: push committed pairs, lazy catch-up, EAGLE-2 tree for a root), built from the
// kernels of kernels/: fc over [E(x); f] (+ bias), one decoder layer without input/final norm
// (rotate-half RoPE with the head's theta, attention over the stable KV and the tree's scratch
// entries, SwiGLU MLP after the post-attention norm), the target's LM head and log-softmax on
// the device, and the top-K of every expanded row (hass_cuda_topk) as the only thing copied back
// when K <= 16. Head weights are uploaded as bf16; the embedding and LM head are the CUDA
// backend's (shared, not copied). Scratch entries follow the stable ones in the device cache,
// so one attention call sees both (the tree rows' queries are padded to the scratch block).
//
// A head with a draft vocabulary (h->dvocab) drafts over its ids only, as draft.c: their rows of
// the LM head are gathered on the device once.
//
// Differences from draft.c: bf16 weights and rounded matmul inputs (the CPU head is f32), the
// target's bf16 embedding; trees agree with the CPU drafter's except where draft scores are
// within that rounding (near ties).
#ifndef HASS_CUDA_DRAFT_H
#define HASS_CUDA_DRAFT_H

#include "backend.h"
#include "draft.h"
#include "spec.h"

typedef struct hass_cuda_draft hass_cuda_draft;

#ifdef HASS_WITH_CUDA
// A GPU drafter for head h (weights copied to the device; h may be freed after) over the CUDA
// backend b (borrowed: embedding and LM head), sequences of up to n_ctx positions (<= 0: the
// model's training context, as draft.c), trees up to cfg. NULL with *err (HASS_EINVAL for a CPU
// backend, HASS_EVOCAB when the head does not fit the target, HASS_ENOMEM on the device).
hass_cuda_draft *hass_cuda_draft_new(const hass_head *h, hass_backend *b, int n_ctx,
                                     const hass_tree_cfg *cfg, hass_err *err);
// Free; NULL is a no-op.
void hass_cuda_draft_free(hass_cuda_draft *d);
// hass_draft_reset / _push / _tree on the GPU (see draft.h).
void hass_cuda_draft_reset(hass_cuda_draft *d);
hass_err hass_cuda_draft_push(hass_cuda_draft *d, const float *feats, // (m, C)
                              const int32_t *next_tok,                // (m)
                              int m);
hass_err hass_cuda_draft_tree(hass_cuda_draft *d, int32_t root, hass_tree *t);
// Stable entries so far.
int hass_cuda_draft_n_stable(const hass_cuda_draft *d);
// Copy the draft output at the last stable position (C floats) to the host (tests).
hass_err hass_cuda_draft_last(const hass_cuda_draft *d, float *out);
// The drafter interface of spec.h over d (borrowed).
hass_drafter hass_drafter_cuda(hass_cuda_draft *d);
#endif

#endif
