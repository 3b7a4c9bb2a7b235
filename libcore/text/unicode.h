// unicode.h: UTF-8 decoding/encoding and the Unicode category groups the pre-tokenizers need.
//
// Categories come from a generated range table (libcore/text/unicode_data.c, made once by
// tests/gen/gen_unicode.py from Python's unicodedata). White space is the Unicode White_Space
// property (what \s means in the tokenizers' regexes). No regex library is used anywhere.
#ifndef HASS_UNICODE_H
#define HASS_UNICODE_H

#include <stddef.h>
#include <stdint.h>

// Category groups (first letter of the general category).
enum {
    HASS_UCAT_OTHER = 0,
    HASS_UCAT_L = 1, // letters
    HASS_UCAT_N = 2, // numbers
    HASS_UCAT_P = 3, // punctuation
    HASS_UCAT_S = 4, // symbols
    HASS_UCAT_M = 5, // marks
    HASS_UCAT_Z = 6, // separators
    HASS_UCAT_C = 7, // control, format, unassigned, surrogates, private use
};

// Flag bits of a codepoint, for the matchers.
enum {
    HASS_UF_L = 1,     // \p{L}
    HASS_UF_N = 2,     // \p{N}
    HASS_UF_P = 4,     // \p{P}
    HASS_UF_S = 8,     // \p{S}
    HASS_UF_M = 16,    // \p{M}
    HASS_UF_SPACE = 32 // \s (White_Space)
};

extern const char hass_unicode_version[];
extern const int32_t hass_ucd_n_ranges;
extern const uint32_t hass_ucd_ranges[];

// Category group of a codepoint (HASS_UCAT_*).
int hass_unicode_cat(uint32_t cp);
// Whether cp has the Unicode White_Space property.
int hass_unicode_is_space(uint32_t cp);
// HASS_UF_* flags of a codepoint.
unsigned hass_unicode_flags(uint32_t cp);

// Decode one UTF-8 sequence at s (n bytes left). Returns its length (1-4) and sets *cp; an
// invalid or truncated sequence returns -1 (*cp = the first byte, to be treated as one unit).
int hass_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
// Encode cp as UTF-8 into out (4 bytes room); returns the length.
int hass_utf8_encode(uint32_t cp, char *out);
// Length of the longest prefix of s that is valid UTF-8; *bad (may be NULL) gets the offset of
// the first invalid byte, or n when all is valid.
size_t hass_utf8_valid_prefix(const char *s, size_t n, size_t *bad);
// Whether the n bytes at s end in an incomplete but so far valid UTF-8 sequence; returns how many
// trailing bytes belong to it (0 if none).
int hass_utf8_incomplete_tail(const char *s, size_t n);

#endif
