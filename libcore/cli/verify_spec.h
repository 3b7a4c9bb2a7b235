// verify_spec.h: hass-verify's speculative decoding state: the in-process drafter of --draft
// and its decoder (or the --batch run's drafters), the back channel to a hass-draft process, the
// --metrics file, and the key of the --tree auto cost cache.
#ifndef HASS_VERIFY_SPEC_H
#define HASS_VERIFY_SPEC_H

#include <stdio.h>

#include "draft_remote.h"
#include "head_drafter.h"
#include "spec.h"
#include "verify_batch.h"

// Speculative decoding state of a run (all owned).
typedef struct hass_verify_spec {
    hass_head_drafter *hd; // the in-process drafter (--draft)
    hass_remote *remote;   // two-process mode: the back channel to hass-draft
    hass_spec *spec;
    FILE *metrics;
    hass_tree_cfg tc;      // tree flags
    int tree_auto;
    int lost;              // the remote drafter was lost (said)
    int64_t n_lost;        // records decoded after that ("draft":"lost")
} hass_verify_spec;

// The flags hass_verify_spec_setup reads.
typedef struct hass_verify_spec_opts {
    const char *draft;   // --draft HEAD
    int draft_exact;     // --draft-exact
    int tree_auto;       // --tree auto
    const char *metrics; // --metrics FILE or NULL
} hass_verify_spec_opts;

// Open the metrics file at path, if given and not yet open; the exit code (a message said).
int hass_verify_spec_metrics(hass_verify_spec *sp, const char *path);
// Open the metrics file, load the head (checked against the target), its drafter and the
// decoder on b (vb: the batch's decoders instead, one drafter per slot); the exit code.
int hass_verify_spec_setup(hass_verify_spec *sp, hass_backend *b, const hass_tokenizer *tok,
                           const hass_verify_spec_opts *o, int n_ctx, hass_verify_batch *vb);
// Free the state (zeroed after); non-zero when closing the metrics file failed.
int hass_verify_spec_teardown(hass_verify_spec *sp);

#endif
