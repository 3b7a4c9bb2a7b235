// trainfeat.h: conversations -> feature shard (SPEC-HASS section 3, docs/TRAINING.md): render
// each conversation of ShareGPT JSON or JSONL files with a chat template, tokenize it, mark the
// assistant tokens (the loss mask), truncate, run the target over it and store its post-norm
// features of every position in a shard (shard.h). Notes and progress go to stderr.
#ifndef HASS_TRAINFEAT_H
#define HASS_TRAINFEAT_H

#include "hass.h"

// What to extract (hass-train --features).
typedef struct hass_features_cfg {
    const char *model; // target model (GGUF)
    const char *out;   // shard to write
    const char *tmpl;  // chat template name; NULL or "auto": the one the model carries
    const char *dtype; // feature storage: "bf16" (NULL: bf16) or "f16"
    int64_t limit;     // use at most this many conversations (0: all)
    int64_t max_len;   // truncate conversations to this many positions
    int threads;       // CPU threads (0: all cores)
    int f32;           // 1: f32 activations (no 8-bit activation rounding)
    int progress;      // progress line: 1 on, 0 off, -1 when stderr is a terminal
} hass_features_cfg;

// Write the feature shard c->out from the conversations of files[0..n_files). Unusable records
// are skipped with a note at -v. Errors: HASS_EINVAL (unknown template name), HASS_EFORMAT (no
// template recognised in the model, no usable conversation, malformed files), else those of the
// model, the tokenizer and the shard writer (then no shard appears at c->out).
hass_err hass_features_make(const hass_features_cfg *c, const char *const *files, int n_files);

#endif
