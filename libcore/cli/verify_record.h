// verify_record.h: hass-verify's per-record glue: read a token record's keys, generate
// (gen.h), build the output record (or the error record).
//
// Seeds: the sampler of a record is seeded from the run's seed and the record itself (its
// "seed" key, else its "id", else its index), so shards of a fan-out give the same output as
// one process.
#ifndef HASS_VERIFY_RECORD_H
#define HASS_VERIFY_RECORD_H

#include <jansson.h>

#include "gen.h"
#include "stream.h"

// Sampler seed of a record: its integer "seed" key if any, else a hash of the run's seed and its
// "id", else of the run's seed and its index in the input.
uint64_t hass_verify_record_seed(uint64_t seed, const json_t *rec, int64_t index);

// Largest per-record "max_new" (the range of --max-new).
#define HASS_RECORD_MAX_NEW (1 << 24)

// One record of hass-verify: read "tokens" (and the optional per-record "max_new", an integer in
// [0, HASS_RECORD_MAX_NEW], and "seed", an integer in [0, 2^63 - 1], that override the run's;
// anything else there is an error record), generate, and return the output record (the input
// keys plus "generated", "finish", "stop" when a stop string matched, "margins" when asked, and
// "timing": prefill_ms, decode_ms, tok_s, decode_cpu_ms); the run's metrics go to the metrics
// file of the hass_gen, if any. With stream set, {"id":..,"type":"delta","tokens":[..]} records
// go out through w as tokens are accepted. Delta records of an earlier stage are returned
// unchanged. On failure *out is the error record (input keys, "finish":"error", "error") and
// the code says why.
hass_err hass_verify_record(hass_gen *g, const hass_gen_cfg *cfg, const json_t *in,
                            const char *where, int64_t index, int stream, hass_stream_writer *w,
                            json_t **out);

// The pieces of hass_verify_record, for a caller that generates records otherwise (--batch).

// A token record read for generation.
typedef struct hass_verify_in {
    int32_t *ids;       // (n) the prompt, owned by the caller once read
    int64_t n;
    hass_gen_cfg cfg;   // the run's settings with the record's "max_new"
    uint64_t seed;      // its sampler seed (hass_verify_record_seed)
} hass_verify_in;

// Read record in for a context of n_ctx and a vocabulary of n_vocab: HASS_OK with *out NULL and
// vi filled (free vi->ids), or *out is already the output record (a delta of an earlier stage:
// HASS_OK; the error record of a bad record: the error), exactly as hass_verify_record.
hass_err hass_verify_record_read(int n_ctx, int n_vocab, const hass_gen_cfg *cfg, const json_t *in,
                                 const char *where, int64_t index, hass_verify_in *vi,
                                 json_t **out);
// The output record of in for generation r (e = HASS_OK), or its error record (the current
// error message, prefixed with where). New reference.
json_t *hass_verify_record_out(const json_t *in, const hass_gen_cfg *cfg, const char *where,
                               hass_err e, const hass_gen_out *r);

// Where a record's delta records go.
typedef struct hass_verify_delta {
    hass_stream_writer *w;
    const json_t *id;   // borrowed "id" of the input (may be NULL)
} hass_verify_delta;
// A hass_gen_emit_fn writing {"id":..,"type":"delta","tokens":[..]} through ctx (a
// hass_verify_delta).
hass_err hass_verify_record_delta(void *ctx, const int32_t *ids, int n);

#endif
