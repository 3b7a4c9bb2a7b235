// fuzz.h: shared helpers of the libFuzzer targets (tests/fuzz/README.md). Each target feeds the
// bytes to one public libcore API, as a file (a memfd or a file in a private temp folder) or an
// in-memory FILE, and checks nothing but that the call returns: the sanitizers do the checking.
#ifndef HASS_FUZZ_H
#define HASS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hass.h"

// Silence the library's log lines (warnings about bad input are expected by the thousand).
static inline void fuzz_quiet(void) { hass_verbosity = 0; }

// The bytes as a readable file: a memfd, named by its /proc path (static; one per target).
static inline const char *fuzz_memfd(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    return path;
}

// A private temp folder of this process (made once, under /dev/shm when it exists).
static inline const char *fuzz_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/hass-fuzz.XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

// Write n bytes to file name in the temp folder; returns the path (static per call site buffer).
static inline const char *fuzz_file(const char *name, const void *data, size_t n, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) abort();
    return path;
}

// Split the input in two: a u16 little-endian length of the first part, the first part, the rest.
static inline void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na,
                       const uint8_t **b, size_t *nb) {
    size_t k = size >= 2 ? (size_t)(data[0] | data[1] << 8) : 0;
    size_t left = size >= 2 ? size - 2 : 0;
    if (k > left) k = left;
    *a = data + (size >= 2 ? 2 : size);
    *na = k;
    *b = *a + k;
    *nb = left - k;
}

// Split the input (fuzz_split) into two files of the temp folder: name_a (removed when its part
// is empty) and name_b. Returns the path of name_b (static).
static inline const char *fuzz_two_files(const uint8_t *data, size_t size, const char *name_a,
                                         const char *name_b) {
    const uint8_t *a, *b;
    size_t na, nb;
    static char pa[128], pb[128];
    fuzz_split(data, size, &a, &na, &b, &nb);
    fuzz_file(name_a, a, na, pa, sizeof pa);
    if (!na) unlink(pa);
    return fuzz_file(name_b, b, nb, pb, sizeof pb);
}

#endif
