// mapfile.c: read-only mapping of a whole file, with the open/stat/mmap errors said once.
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// Map a regular, non-empty file read-only.
hass_err hass_file_map(const char *path, const uint8_t **map, uint64_t *n_bytes) {
    *map = NULL;
    *n_bytes = 0;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    hass_err e = HASS_OK;
    if (fd < 0 || fstat(fd, &sb) != 0) e = hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode)) e = hass_seterr(HASS_EIO, "%s: not a regular file", path);
    else if (sb.st_size == 0) e = hass_seterr(HASS_EFORMAT, "%s: empty file", path);
    if (!e) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            e = hass_seterr(HASS_EIO, "%s: mmap: %s", path, strerror(errno));
        } else {
            *map = m;
            *n_bytes = (uint64_t)sb.st_size;
        }
    }
    if (fd >= 0) close(fd);
    return e;
}

// Release a mapping.
void hass_file_unmap(const uint8_t *map, uint64_t n_bytes) {
    if (map) munmap((void *)map, n_bytes);
}

void hass_file_map_drop(const uint8_t *p, uint64_t n) {
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + ps - 1) / ps * ps;
    uintptr_t b = ((uintptr_t)p + n) / ps * ps;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED); // a read-only file mapping: refetched
}
