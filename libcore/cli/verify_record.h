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

#endif
