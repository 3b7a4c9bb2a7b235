// unicode.c: UTF-8 codec and category lookup over the generated range table.
#include "unicode.h"


// Category group of a codepoint (binary search over the range starts).
int hass_unicode_cat(uint32_t cp) {
    if (cp > 0x10FFFF) return HASS_UCAT_C;
    int32_t lo = 0, hi = hass_ucd_n_ranges - 1;
    while (lo < hi) {
        int32_t mid = (lo + hi + 1) / 2;
        if ((hass_ucd_ranges[mid] >> 4) <= cp) lo = mid;
        else hi = mid - 1;
    }
    return (int)(hass_ucd_ranges[lo] & 15);
}

// Whether cp has the Unicode White_Space property.
int hass_unicode_is_space(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000: return 1;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

// Flags of a codepoint from the tables.
static unsigned flags_slow(uint32_t cp) {
    unsigned f = 0;
    switch (hass_unicode_cat(cp)) {
    case HASS_UCAT_L: f = HASS_UF_L; break;
    case HASS_UCAT_N: f = HASS_UF_N; break;
    case HASS_UCAT_P: f = HASS_UF_P; break;
    case HASS_UCAT_S: f = HASS_UF_S; break;
    case HASS_UCAT_M: f = HASS_UF_M; break;
    default: break;
    }
    if (hass_unicode_is_space(cp)) f |= HASS_UF_SPACE;
    return f;
}

// HASS_UF_* flags of ASCII (what flags_slow gives for 0..127, written out for speed).
static const unsigned char ascii_flags[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 32, 32, 32, 32, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    32, 4, 4, 4, 8, 4, 4, 4, 4, 4, 4, 8, 4, 4, 4, 4,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 4, 8, 8, 8, 4,
    4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4, 8, 4,
    8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 8, 4, 8, 0,
};

// HASS_UF_* flags of a codepoint (ASCII from a small table).
unsigned hass_unicode_flags(uint32_t cp) {
    if (cp < 128) return ascii_flags[cp];
    return flags_slow(cp);
}

// Decode one UTF-8 sequence; -1 for invalid/truncated/overlong/surrogate.
int hass_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    *cp = c;
    if (c < 0x80) return 1;
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return -1;
    if ((size_t)len > n) return -1;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;
    *cp = v;
    return len;
}

// Encode cp as UTF-8.
int hass_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = 0xC0 | (cp >> 6); o[1] = 0x80 | (cp & 0x3F); return 2; }
    if (cp < 0x10000) {
        o[0] = 0xE0 | (cp >> 12); o[1] = 0x80 | ((cp >> 6) & 0x3F); o[2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    o[0] = 0xF0 | (cp >> 18); o[1] = 0x80 | ((cp >> 12) & 0x3F);
    o[2] = 0x80 | ((cp >> 6) & 0x3F); o[3] = 0x80 | (cp & 0x3F);
    return 4;
}

// Length of the longest valid UTF-8 prefix.
size_t hass_utf8_valid_prefix(const char *s, size_t n, size_t *bad) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) { i++; continue; }
        uint32_t cp;
        int l = hass_utf8_decode(u + i, n - i, &cp);
        if (l < 0) break;
        i += (size_t)l;
    }
    if (bad) *bad = i;
    return i;
}

// Trailing bytes that start a valid but unfinished sequence (0 if none).
int hass_utf8_incomplete_tail(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (int k = 1; k <= 3 && (size_t)k <= n; k++) {
        unsigned c = u[n - k];
        if ((c & 0xC0) == 0x80) continue; // continuation: look further back
        int len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        if (len <= k) return 0;
        // check the bytes so far are a valid start (second-byte limits of E0/ED/F0/F4)
        if (k >= 2) {
            unsigned c1 = u[n - k + 1];
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
                (c == 0xF4 && c1 > 0x8F))
                return 0;
        }
        return k;
    }
    return 0;
}
