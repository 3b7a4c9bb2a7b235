// head_drafter.h: the in-process drafter of a draft head on the target's device, in one call:
// load the head (checked against the target and its tokenizer), then the GPU drafter
// (cuda_draft.h) on a CUDA backend, else the CPU drafter (draft.h) with its layer weights in
// 8-bit Q8_0 unless exact (a head whose widths do not allow it stays exact, with an info line).
// hass-verify (in-process speculative decoding) and hass-draft (the drafter process) use it.
#ifndef HASS_HEAD_DRAFTER_H
#define HASS_HEAD_DRAFTER_H

#include "spec.h"

typedef struct hass_head_drafter hass_head_drafter;

// The drafter of the head at path (a directory: config.json + model.safetensors) for the
// target of backend b (borrowed; must outlive the drafter), whose tokenizer has fingerprint
// tok_fp; sequences of up to n_ctx positions (<= 0: the head's training context), trees up to
// max. NULL with *err: the head's load errors (HASS_EVOCAB for another target), the drafter's.
hass_head_drafter *hass_head_drafter_open(const char *path, hass_backend *b, uint32_t tok_fp,
                                          int n_ctx, const hass_tree_cfg *max, int exact,
                                          hass_err *err);
// Another CPU drafter over d's head, opened as d was: the head's tensors are shared (loaded
// once), the drafter's cache, work and converted copy of the layer (bf16 or Q8_0, as d's) are
// its own (hass-verify --batch: one per record in flight). Free it before d. NULL with *err:
// HASS_EUNSUP for a GPU drafter, out of memory.
hass_head_drafter *hass_head_drafter_fork(const hass_head_drafter *d, hass_err *err);
// The drafter interface of spec.h over d (borrowed).
hass_drafter hass_head_drafter_iface(hass_head_drafter *d);
// Feature width C of the head.
int hass_head_drafter_n_embd(const hass_head_drafter *d);
// Free (NULL ok).
void hass_head_drafter_free(hass_head_drafter *d);

#endif
