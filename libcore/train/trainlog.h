// trainlog.h: what a training run writes besides weights: the JSONL log OUT/log.jsonl (one
// "train" line per optimiser step, one "eval" line per held-out evaluation, documented in
// docs/TRAINING.md), its truncation on resume, the loss curves (gnuplot) and the plain notes on
// stderr.
#ifndef HASS_TRAINLOG_H
#define HASS_TRAINLOG_H

#include <jansson.h>

#include "hass.h"
#include "train.h"

// A plain note on stderr at the default verbosity (2 and up): "<prog>: <text>", no level tag.
void hass_trainlog_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Write text to path atomically (a temporary file, fsync, rename). HASS_EIO on failure.
hass_err hass_trainlog_write_atomic(const char *path, const char *text);
// Keep only the lines of the log at path whose "step" is <= step (resume), atomically. A missing
// log is fine. HASS_EIO or HASS_ENOMEM on failure.
hass_err hass_trainlog_truncate(const char *path, int64_t step);
// Add the per-alignment-step arrays vloss, ploss, kloss, acc1, acc3 of st to j. The accuracies
// are divided by n_mask_tot; sums (3 per step: v, p, k loss times mask count) when not NULL give
// the losses as sums / n_mask_tot instead of st's.
void hass_trainlog_put_steps(json_t *j, const hass_train_stats *st, int64_t n_mask_tot,
                             const double *sums); // (3 * st->n_align) or NULL
// Append j as one compact line to log (path names it in errors) and flush; takes j's reference.
hass_err hass_trainlog_line(FILE *log, const char *path, json_t *j);
// Write DIR/curves.tsv and DIR/curves.gp from DIR/log.jsonl and run gnuplot for DIR/curves.png
// when it is installed (a note at -v when not, a warning when it fails).
void hass_trainlog_plot(const char *dir);

#endif
