// roofline.h: the machine's roofline, measured (`hass-bench --roofline`, `make bench`): the
// streaming read bandwidth from memory and the throughput of vpdpbusd on zmm registers (AVX-512
// VNNI: 64 8-bit multiply-adds an instruction), the two ceilings of the quantized matmul. Each
// measurement checks the result of the work it timed. A benchmark, never a test of speed.
#ifndef HASS_ROOFLINE_H
#define HASS_ROOFLINE_H

#include <stddef.h>

#include "hass.h"

// Bytes of the read buffer: 4 times the L3 cache the C library reports, at least 256 MiB and at
// most 1 GiB, so that every pass streams from memory.
size_t hass_roofline_read_bytes(void);

// Streaming read bandwidth, GB/s (1e9 bytes a second): for each of the n thread counts
// threads[i], the best of `reps` passes of the threads summing the 64-bit words of one buffer of
// `bytes` (filled once). HASS_ENOMEM without the buffer, HASS_EINVAL when a sum comes out wrong.
hass_err hass_roofline_read(size_t bytes, const int *threads, int n, int reps,
                            double *gb_s); // (n)

// Whether the CPU has AVX-512 VNNI (what hass_roofline_vnni needs).
int hass_roofline_has_vnni(void);

// vpdpbusd zmm throughput, G multiply-adds a second: for each of the n thread counts threads[i],
// the best of `reps` runs of the threads each issuing independent vpdpbusd (16 accumulators, no
// memory traffic). HASS_ENODEV without AVX-512 VNNI, HASS_EINVAL when a sum comes out wrong.
hass_err hass_roofline_vnni(const int *threads, int n, int reps, double *gmac_s); // (n)

#endif
