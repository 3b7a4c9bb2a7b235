// hass.h: the umbrella header of libhass: version, error codes, logging, progress.
//
// Rules (DESIGN.md section 7): libcore never exits and never writes stdout. Fallible calls
// return hass_err (0 = HASS_OK, negative on failure) and leave a message for hass_errmsg().
// Constructors return NULL and set *err. Getters borrow. _free(NULL) is a no-op.
#ifndef HASS_H
#define HASS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HASS_VERSION "0.1.0"

// ----------------------------------------------------------------------------
// errors

typedef enum hass_err {
    HASS_OK = 0,
    HASS_EIO = -1,      // read/write/open failed
    HASS_ENOMEM = -2,   // allocation failed
    HASS_EFORMAT = -3,  // malformed input (magic, bounds, JSON, CRC)
    HASS_EVERSION = -4, // a format version we do not read
    HASS_EVOCAB = -5,   // vocabulary or fingerprint mismatch
    HASS_ECUDA = -6,    // CUDA or cuBLAS call failed
    HASS_ENODEV = -7,   // no device of the requested kind
    HASS_EINVAL = -8,   // bad argument from the caller
    HASS_EUNSUP = -9,   // valid but unsupported (dtype, architecture)
    HASS_ERANGE = -10,  // value outside a limit (context length, token id)
} hass_err;

// Name of an error code ("EFORMAT").
const char *hass_strerror(hass_err e);
// Last message left by hass_seterr in this thread ("" when none).
const char *hass_errmsg(void);
// Record an error message for this thread and return the code (for `return hass_seterr(...)`).
hass_err hass_seterr(hass_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prepend "<where>: " to the current message (keeps the code's message chain readable).
void hass_errprefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Exit codes of the suite (DESIGN.md section 7, hass.7).
enum {
    HASS_EXIT_OK = 0,
    HASS_EXIT_RUNTIME = 1,
    HASS_EXIT_USAGE = 2,
    HASS_EXIT_INPUT = 3,
    HASS_EXIT_DEVICE = 4,
    HASS_EXIT_SELFCHECK = 5,
};
// Exit code of DESIGN.md section 7 for an error code (1 runtime, 3 malformed, 4 device, 2 usage).
int hass_exit_code(hass_err e);
// Exit code for one failed record of a stream: input problems (malformed, out of range, another
// vocabulary or version) 3, everything else 1.
int hass_record_exit_code(hass_err e);

// Abort on a broken invariant (never for bad input); stays on in release builds.
#define HASS_ASSERT(x)                                                                         \
    do {                                                                                       \
        if (!(x)) hass_assert_fail(__FILE__, __LINE__, #x);                                    \
    } while (0)
void hass_assert_fail(const char *file, int line, const char *expr) __attribute__((noreturn));

// ----------------------------------------------------------------------------
// logging: one verbosity level (zstd): 0 silent, 1 errors, 2 warnings (default), 3 progress/info,
// 4 debug. Everything goes to stderr.

extern int hass_verbosity;
// Name printed before log lines ("hass-verify").
void hass_log_set_prog(const char *prog);
const char *hass_log_prog(void);
// Print a log line at `level` when the verbosity allows it.
void hass_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define HASS_ERROR(...) hass_log(1, __VA_ARGS__)
#define HASS_WARN(...) hass_log(2, __VA_ARGS__)
#define HASS_INFO(...) hass_log(3, __VA_ARGS__)
#define HASS_DEBUG(...) hass_log(4, __VA_ARGS__)

// Monotonic wall clock in seconds.
double hass_now(void);
// CPU time of the process in seconds (all threads).
double hass_cpu_now(void);

// Rate-limited progress on stderr (at most ~6 updates per second). Enabled when stderr is a tty
// or forced with --progress.
typedef struct hass_progress {
    int enabled;       // print at all
    double t_start;    // when started
    double t_last;     // last print
    int64_t n_total;   // expected units (0 = unknown)
    const char *what;  // label ("records")
    int printed;       // something is on the line (needs a newline at the end)
} hass_progress;

// Start a progress line; force: 1 on, 0 off, -1 auto (tty).
void hass_progress_init(hass_progress *p, const char *what, int64_t n_total, int force);
// Report n_done units; prints only if enough time has passed.
void hass_progress_update(hass_progress *p, int64_t n_done);
// Finish the line (prints the final count once).
void hass_progress_end(hass_progress *p, int64_t n_done);

// ----------------------------------------------------------------------------
// checked number parsing (flags): whole string must parse and be in [lo, hi].

hass_err hass_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
hass_err hass_parse_f64(const char *s, double lo, double hi, double *out);

// ----------------------------------------------------------------------------
// build configuration

// "cpu-only" or "cuda <version> sm_90"; static string.
const char *hass_build_config(void);
// Number of CUDA devices usable now (0 without CUDA or device).
int hass_cuda_device_count(void);

#endif
