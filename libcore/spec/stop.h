// stop.h: when a generation ends: one set of rules for plain and speculative decoding.
//
// The decode loop (spec.h) offers every token it would commit, in order, to a hass_stop, which
// says whether the token belongs in the output and whether the generation ends with it:
//  - an end-of-generation id of the tokenizer (EOS, end-of-turn) ends it and is not kept
//    ("eos"), unless ignore_eos;
//  - a stop id ends it and is kept ("stop");
//  - a stop string that appears in the text of the kept tokens ends it at the token completing
//    it, which is kept ("stop"; stop_idx says which string);
//  - the max_new-th kept token ends it ("length").
// The loop also ends a generation with "length" when the context is full. Tokens a speculative
// cycle accepted past the end are dropped, so every mode stops at the same token.
#ifndef HASS_STOP_H
#define HASS_STOP_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

// Why a generation ended ("finish" in hass-verify's output record).
typedef enum hass_finish {
    HASS_FINISH_NONE = 0,   // still running (or the caller's emit callback stopped it)
    HASS_FINISH_EOS = 1,    // an end-of-generation token of the model (not kept in the output)
    HASS_FINISH_LENGTH = 2, // max_new tokens, or the context is full
    HASS_FINISH_STOP = 3,   // a stop id, or a stop string appeared in the text (its token is kept)
} hass_finish;

// Name of a finish reason ("eos", "length", "stop"; "none").
const char *hass_finish_name(hass_finish f);

// The rules of one generation (everything borrowed).
typedef struct hass_stop_cfg {
    int max_new;               // most tokens kept
    int ignore_eos;            // end-of-generation ids are ordinary tokens
    const hass_tokenizer *tok; // end-of-generation ids and token bytes (NULL: neither)
    const int32_t *ids;        // (n_ids) stop ids
    int n_ids;
    const char *const *strs;   // (n_strs) stop strings (need tok)
    int n_strs;
} hass_stop_cfg;

// The tracker of one generation: feed it the tokens one by one.
typedef struct hass_stop {
    const hass_stop_cfg *cfg; // borrowed
    char *text;               // (len) bytes of the kept tokens (only with stop strings), owned
    size_t len, cap;
    int n_gen;                // tokens kept so far
    int stop_idx;             // index of the stop string that matched, -1 if none
    hass_finish finish;       // why it ended; HASS_FINISH_NONE while it goes on
} hass_stop;

// Start tracking a generation under cfg (borrowed: outlives the tracker).
void hass_stop_init(hass_stop *s, const hass_stop_cfg *cfg);
// Free the text buffer.
void hass_stop_free(hass_stop *s);
// Offer the next token: returns HASS_FINISH_EOS when id ends the generation unkept,
// HASS_FINISH_STOP / HASS_FINISH_LENGTH when keeping id ends it, HASS_FINISH_NONE to go on (also
// s->finish). *keep says whether id belongs in the output.
hass_finish hass_stop_push(hass_stop *s, int32_t id, int *keep);

#endif
