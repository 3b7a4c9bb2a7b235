// verify_batch.h: hass-verify --batch N: a stream's token records decoded up to N at a time
// (gen_batch.h, plain or speculative decoding), written in input order through a bounded
// reorder buffer, or as they finish.
//
// It sits behind the stream filter (stream.h): hass_verify_batch_record takes the place of
// hass_verify_record (the same reading, error records and output records), and the writer's
// hold hook routes every record the filter writes (error records, forwarded records) through
// the reorder buffer so that they keep their place. Deltas (--stream) go out as they come, so
// the deltas of the records in flight interleave (each carries its record's "id"). The buffer
// holds at most 4N records: when it is full, decoding goes on without taking new records until
// the oldest one is written.
#ifndef HASS_VERIFY_BATCH_H
#define HASS_VERIFY_BATCH_H

#include "gen_batch.h"
#include "verify_record.h"

typedef struct hass_verify_batch hass_verify_batch;

// Called with every output record once it is done (before it is written), for the caller's
// counts; NULL for a record that failed.
typedef void (*hass_verify_done_fn)(void *ctx, const json_t *out);

// Settings of a batched run.
typedef struct hass_verify_batch_cfg {
    int n;                      // records in flight (--batch)
    int n_ctx;                  // each record's context (<= 0: the model's)
    int stream;                 // write delta records
    int finish_order;           // write records as they finish, not in input order
    const hass_gen_cfg *gen;    // the run's sampling and stop settings (borrowed)
    FILE *metrics;              // request (and cycle) records (hass_spec_metrics_write), or NULL
                                // (borrowed)
    hass_verify_done_fn done;   // may be NULL
    void *done_ctx;
} hass_verify_batch_cfg;

// Late failures (a record that failed after it was taken), for the run's counts.
typedef struct hass_verify_batch_stats {
    int64_t n_failed;
    int exit_code;              // hass_record_exit_code of the first one, 0 if none
} hass_verify_batch_stats;

// A batched run of model m (borrowed) writing to w (borrowed; its hold hook is set).
hass_verify_batch *hass_verify_batch_new(hass_model *m, const hass_tokenizer *tok,
                                         const hass_verify_batch_cfg *cfg, hass_stream_writer *w,
                                         hass_err *err);
// Free (records still held are dropped); NULL is a no-op. The writer's hold hook is unset.
void hass_verify_batch_free(hass_verify_batch *vb);
// Capacity of each record's cache.
int hass_verify_batch_ctx(const hass_verify_batch *vb);
// Decode speculatively (before the first record): hass_gen_batch_set_draft; the metrics file
// then gets each record's cycles too.
hass_err hass_verify_batch_set_draft(hass_verify_batch *vb, hass_head_drafter *hd,
                                     const hass_spec_cfg *sc);
// One input record (hass_stream_fn's contract, as hass_verify_record with the record's index):
// a bad record's error record or a forwarded record now, else HASS_OK with *out NULL: it is
// decoded from the next step on and written when its turn comes.
hass_err hass_verify_batch_record(hass_verify_batch *vb, const json_t *in, const char *where,
                                  int64_t index, json_t **out);
// After the input: decode every record in flight and write everything held. HASS_EIO when the
// output failed.
hass_err hass_verify_batch_finish(hass_verify_batch *vb, hass_verify_batch_stats *st);

#endif
