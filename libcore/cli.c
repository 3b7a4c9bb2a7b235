// cli.c: version line, usage errors and checked flag values for cmd/.
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

// Print the version line.
void hass_cli_version(FILE *out, const char *prog) {
    fprintf(out, "%s %s (%s)\n", prog, HASS_VERSION, hass_build_config());
}

// Print a usage error and the help hint.
int hass_cli_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry '%s --help'\n", prog);
    return HASS_EXIT_USAGE;
}

// Print an error line and return the exit code.
int hass_cli_fail(int exit_code, const char *fmt, ...) {
    if (hass_verbosity >= 1) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: error: ", hass_log_prog());
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    return exit_code;
}

// Checked integer flag.
int hass_cli_int(const char *prog, const char *flag, const char *s, int64_t lo, int64_t hi,
                 int64_t *out) {
    if (hass_parse_i64(s, lo, hi, out))
        return hass_cli_usage_error(prog, "%s: %s", flag, hass_errmsg());
    return 0;
}

// Checked real flag.
int hass_cli_real(const char *prog, const char *flag, const char *s, double lo, double hi,
                  double *out) {
    if (hass_parse_f64(s, lo, hi, out))
        return hass_cli_usage_error(prog, "%s: %s", flag, hass_errmsg());
    return 0;
}

// Open an output path or stdout.
FILE *hass_cli_open_out(const char *path) {
    if (!path || !strcmp(path, "-")) return stdout;
    FILE *f = fopen(path, "w");
    if (!f) hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
    return f;
}

// Open an input path or stdin.
FILE *hass_cli_open_in(const char *path) {
    if (!path || !strcmp(path, "-")) return stdin;
    FILE *f = fopen(path, "r");
    if (!f) hass_seterr(HASS_EIO, "%s: %s", path, strerror(errno));
    return f;
}
