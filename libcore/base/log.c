// log.c: verbosity-gated logging, a monotonic clock and rate-limited progress on stderr.
#include "hass.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

int hass_verbosity = 2;
static const char *g_prog = "hass";

// Set the program name used as log prefix.
void hass_log_set_prog(const char *prog) { g_prog = prog; }
const char *hass_log_prog(void) { return g_prog; }

// Print one log line to stderr when verbosity >= level.
void hass_log(int level, const char *fmt, ...) {
    if (hass_verbosity < level) return;
    static const char *tag[] = {"", "error: ", "warning: ", "", "debug: "};
    fprintf(stderr, "%s: %s", g_prog, tag[level < 0 ? 0 : level > 4 ? 4 : level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

// Seconds on a monotonic clock.
double hass_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Process CPU time in seconds (all threads).
double hass_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Start a progress reporter.
void hass_progress_init(hass_progress *p, const char *what, int64_t n_total, int force) {
    p->enabled = force < 0 ? (isatty(2) && hass_verbosity >= 2) : force;
    p->t_start = p->t_last = hass_now();
    p->n_total = n_total;
    p->what = what;
    p->printed = 0;
}

// Print "\r<prog>: 12/80 records (3.1/s, eta 20s)".
static void progress_print(hass_progress *p, int64_t n_done, double t) {
    double el = t - p->t_start, rate = el > 0 ? (double)n_done / el : 0;
    if (p->n_total > 0) {
        double eta = rate > 0 ? (double)(p->n_total - n_done) / rate : 0;
        fprintf(stderr, "\r%s: %lld/%lld %s (%.1f/s, eta %.0fs)   ", g_prog, (long long)n_done,
                (long long)p->n_total, p->what, rate, eta);
    } else {
        fprintf(stderr, "\r%s: %lld %s (%.1f/s)   ", g_prog, (long long)n_done, p->what, rate);
    }
    p->printed = 1;
}

// Report progress, at most about 6 times a second.
void hass_progress_update(hass_progress *p, int64_t n_done) {
    if (!p->enabled) return;
    double t = hass_now();
    if (t - p->t_last < 1.0 / 6) return;
    p->t_last = t;
    progress_print(p, n_done, t);
}

// Print the final count and end the line.
void hass_progress_end(hass_progress *p, int64_t n_done) {
    if (!p->enabled) return;
    progress_print(p, n_done, hass_now());
    fputc('\n', stderr);
}
