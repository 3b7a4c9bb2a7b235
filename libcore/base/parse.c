// parse.c: checked number parsing for flags (whole string, range-checked).
#include "hass.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

// Parse a decimal integer in [lo, hi].
hass_err hass_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s) return hass_seterr(HASS_EINVAL, "empty number");
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return hass_seterr(HASS_EINVAL, "'%s' is not an integer", s);
    if (v < lo || v > hi)
        return hass_seterr(HASS_EINVAL, "%lld is outside [%lld, %lld]", v, (long long)lo,
                           (long long)hi);
    *out = v;
    return HASS_OK;
}

// Parse a finite real number in [lo, hi].
hass_err hass_parse_f64(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return hass_seterr(HASS_EINVAL, "empty number");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return hass_seterr(HASS_EINVAL, "'%s' is not a number", s);
    if (v < lo || v > hi) return hass_seterr(HASS_EINVAL, "%g is outside [%g, %g]", v, lo, hi);
    *out = v;
    return HASS_OK;
}
