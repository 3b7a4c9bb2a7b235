// unit.h: tiny test harness for tests/unit/test_*.c. Each check prints "ok <name>" or
// "FAIL <name>: <detail>"; tests/run.sh counts those lines. Skips print "skip: <name> (<why>)".
#ifndef HASS_UNIT_H
#define HASS_UNIT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failed = 0;

// Record a named check.
#define CHECK(name, cond, ...)                                                                 \
    do {                                                                                       \
        if (cond) {                                                                            \
            printf("ok %s\n", name);                                                           \
        } else {                                                                               \
            unit_failed++;                                                                     \
            printf("FAIL %s: ", name);                                                         \
            printf(__VA_ARGS__);                                                               \
            printf(" (%s:%d)\n", __FILE__, __LINE__);                                          \
        }                                                                                      \
        fflush(stdout);                                                                        \
    } while (0)

#define SKIP(name, why) printf("skip: %s (%s)\n", name, why)

// Normalised squared error sum (a-b)^2 / sum b^2 over n floats (sum (a-b)^2 when b is all zero).
static inline double unit_nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

// Shared test data folder (../shared/data beside the checkout, or $HASS_DATA).
static inline const char *unit_data_dir(void) {
    const char *d = getenv("HASS_DATA");
    return d && *d ? d : "../shared/data";
}

// Path under the data folder, in a static buffer per call site.
static inline const char *unit_data(char *buf, size_t n, const char *rel) {
    snprintf(buf, n, "%s/%s", unit_data_dir(), rel);
    return buf;
}

// Whether a file exists.
static inline int unit_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

// Exit status for main: non-zero when any check failed.
#define UNIT_DONE() return unit_failed ? 1 : 0

#endif
