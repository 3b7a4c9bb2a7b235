// roofline.c: the machine's roofline (roofline.h): streaming read bandwidth over a buffer much
// larger than L3 and vpdpbusd zmm throughput, on the thread team (pool.h), each result checked.
#include "roofline.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RL_X86 1
#endif

enum {
    RL_CHUNK = 1 << 17, // 64-bit words a read task (1 MiB)
    RL_PAD = 8,         // words between two threads' sums (one cache line)
    RL_MAXT = 256,      // most threads (the pool's limit)
    RL_NACC = 16,       // independent vpdpbusd accumulators
    RL_ITERS = 1 << 18, // iterations (RL_NACC vpdpbusd each) of a vpdpbusd task
    RL_TASKS = 8,       // vpdpbusd tasks a thread, so that a late thread does not idle the rest
};
static const uint64_t RL_MUL = 0x9E3779B97F4A7C15ull; // word i of the read buffer is i * RL_MUL

size_t hass_roofline_read_bytes(void) {
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    size_t b = l3 > 0 ? 4 * (size_t)l3 : 0, lo = (size_t)256 << 20, hi = (size_t)1 << 30;
    return b < lo ? lo : b > hi ? hi : b;
}

// A timed job: the data, the per-thread sums and what each task does.
typedef struct rl_job {
    const uint64_t *w;  // (n_words) read buffer
    const uint8_t *a;   // (64) vpdpbusd unsigned operand
    const int8_t *b;    // (64) vpdpbusd signed operand
    uint64_t *sum;      // (RL_MAXT * RL_PAD) thread k's sum at sum[k * RL_PAD]
} rl_job;

// Sum the words of read chunks [i0, i1) into thread k's sum (8 independent chains, so the adds
// keep up with the loads).
static void read_chunks(void *ctx, int k, int i0, int i1) {
    rl_job *j = ctx;
    uint64_t a[8] = {0};
    const uint64_t *p = j->w + (size_t)i0 * RL_CHUNK, *e = j->w + (size_t)i1 * RL_CHUNK;
    for (; p < e; p += 8)
        for (int t = 0; t < 8; t++) a[t] += p[t];
    j->sum[(size_t)k * RL_PAD] += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// Run n_tasks tasks of fn on a team of n_threads, best (shortest) wall time of reps runs; every
// run's thread sums added together must equal `want` (mod 2^bits).
static hass_err timed(int n_threads, int reps, int n_tasks, hass_pool_fn fn, rl_job *j,
                      uint64_t want, int bits, double *best) {
    hass_err e = HASS_OK;
    hass_pool *pool = n_threads > 1 ? hass_pool_new(n_threads, &e) : NULL;
    if (e) return e;
    uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
    *best = 0;
    for (int r = 0; r < reps && !e; r++) {
        for (int k = 0; k < RL_MAXT; k++) j->sum[(size_t)k * RL_PAD] = 0;
        double t0 = hass_now();
        hass_pool_run(pool, n_tasks, fn, j);
        double dt = hass_now() - t0;
        uint64_t got = 0;
        for (int k = 0; k < RL_MAXT; k++) got += j->sum[(size_t)k * RL_PAD];
        if ((got & mask) != (want & mask))
            e = hass_seterr(HASS_EINVAL, "roofline: %d threads summed %llx, expected %llx",
                            n_threads, (unsigned long long)(got & mask),
                            (unsigned long long)(want & mask));
        if (r == 0 || dt < *best) *best = dt;
    }
    hass_pool_free(pool);
    return e;
}

hass_err hass_roofline_read(size_t bytes, const int *threads, int n, int reps, double *gb_s) {
    size_t n_chunks = bytes / (RL_CHUNK * 8);
    if (n_chunks < 1) n_chunks = 1;
    size_t n_words = n_chunks * RL_CHUNK;
    uint64_t *w = aligned_alloc(64, n_words * 8), *sum = calloc(RL_MAXT * RL_PAD, 8);
    hass_err e = HASS_OK;
    if (!w || !sum) e = hass_seterr(HASS_ENOMEM, "roofline: no %zu MiB read buffer", n_words >> 17);
    for (size_t i = 0; !e && i < n_words; i++) w[i] = i * RL_MUL;
    // sum of i * RL_MUL over the words: RL_MUL * n (n - 1) / 2 (mod 2^64)
    uint64_t tri = n_words % 2 ? n_words * ((n_words - 1) / 2) : n_words / 2 * (n_words - 1);
    uint64_t want = tri * RL_MUL;
    rl_job j = {w, NULL, NULL, sum};
    for (int i = 0; i < n && !e; i++) {
        double dt;
        e = timed(threads[i], reps, (int)n_chunks, read_chunks, &j, want, 64, &dt);
        gb_s[i] = e ? 0 : (double)(n_words * 8) / dt / 1e9;
    }
    free(w);
    free(sum);
    return e;
}

int hass_roofline_has_vnni(void) {
#ifdef RL_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

#ifdef RL_X86
// RL_ITERS rounds of RL_NACC independent vpdpbusd (acc += dot4(a, b) per 32-bit lane) from
// accumulators that start at their index; the sum of all their lanes (mod 2^32).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static uint32_t
vnni_loop(const uint8_t *a, const int8_t *b) {
    __m512i va = _mm512_loadu_si512((const void *)a), vb = _mm512_loadu_si512((const void *)b);
    __m512i acc[RL_NACC];
    for (int i = 0; i < RL_NACC; i++) acc[i] = _mm512_set1_epi32(i);
    for (int it = 0; it < RL_ITERS; it++) {
        _Pragma("GCC unroll 16")
        for (int i = 0; i < RL_NACC; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], va, vb);
    }
    __m512i s = acc[0];
    for (int i = 1; i < RL_NACC; i++) s = _mm512_add_epi32(s, acc[i]);
    return (uint32_t)_mm512_reduce_add_epi32(s);
}

// Run vpdpbusd tasks [i0, i1) on thread k.
static void vnni_tasks(void *ctx, int k, int i0, int i1) {
    rl_job *j = ctx;
    for (int i = i0; i < i1; i++) j->sum[(size_t)k * RL_PAD] += vnni_loop(j->a, j->b);
}
#endif

hass_err hass_roofline_vnni(const int *threads, int n, int reps, double *gmac_s) {
    if (!hass_roofline_has_vnni()) return hass_seterr(HASS_ENODEV, "roofline: no AVX-512 VNNI");
#ifdef RL_X86
    uint8_t a[64];
    int8_t b[64];
    uint32_t dot = 0; // sum over the 16 lanes of dot4(a, b)
    for (int i = 0; i < 64; i++) {
        a[i] = (uint8_t)(i * 7 % 251);
        b[i] = (int8_t)(i % 9 - 4);
        dot += (uint32_t)(a[i] * b[i]);
    }
    uint64_t *sum = calloc(RL_MAXT * RL_PAD, 8);
    if (!sum) return hass_seterr(HASS_ENOMEM, "roofline: out of memory");
    // one task: lanes of accumulator i start at i (16 lanes, 16 accumulators: 16 * 120) and gain
    // RL_ITERS * dot4 each round
    uint32_t task = 16u * 120u + (uint32_t)RL_NACC * (uint32_t)RL_ITERS * dot;
    rl_job j = {NULL, a, b, sum};
    hass_err e = HASS_OK;
    for (int i = 0; i < n && !e; i++) {
        int n_tasks = threads[i] * RL_TASKS;
        double dt;
        e = timed(threads[i], reps, n_tasks, vnni_tasks, &j, (uint64_t)n_tasks * task, 32, &dt);
        gmac_s[i] = e ? 0 : (double)n_tasks * RL_ITERS * RL_NACC * 64 / dt / 1e9;
    }
    free(sum);
    return e;
#else
    (void)threads, (void)n, (void)reps, (void)gmac_s;
    return HASS_ENODEV;
#endif
}
