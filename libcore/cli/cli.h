// cli.h: helpers shared by the binaries in cmd/: version line, usage errors, shared flags.
// Nothing here exits; functions return the exit code for cmd/ to use.
#ifndef HASS_CLI_H
#define HASS_CLI_H

#include "hass.h"
#include "tree.h"

// Exit codes of the suite (DESIGN.md section 7, hass.7).
enum {
    HASS_EXIT_OK = 0,
    HASS_EXIT_RUNTIME = 1,
    HASS_EXIT_USAGE = 2,
    HASS_EXIT_INPUT = 3,
    HASS_EXIT_DEVICE = 4,
    HASS_EXIT_SELFCHECK = 5,
};

// Print "<prog> 0.1.0 (cpu-only)" to out.
void hass_cli_version(FILE *out, const char *prog);
// Print "<prog>: error: <msg>" and "try '<prog> --help'" to stderr; returns HASS_EXIT_USAGE.
int hass_cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Print "<prog>: error: <msg>" to stderr (always, unless verbosity is 0); returns exit_code.
int hass_cli_fail(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Parse an integer flag value in [lo, hi]; on error prints a usage error naming the flag.
int hass_cli_int(const char *prog, const char *flag, const char *s, int64_t lo, int64_t hi,
                 int64_t *out);
// Parse a real flag value in [lo, hi]; on error prints a usage error naming the flag.
int hass_cli_real(const char *prog, const char *flag, const char *s, double lo, double hi,
                  double *out);
// Open an output file ("-" = stdout). Returns NULL with a message on failure.
FILE *hass_cli_open_out(const char *path);
// Open an input file ("-" = stdin). Returns NULL with a message on failure.
FILE *hass_cli_open_in(const char *path);
// A file for measurements kept between runs: DIR/<prefix>-<16 hex digits>.json, the digits a
// hash of key and this machine's CPU model, DIR = $HASS_CACHE_DIR, else $XDG_CACHE_HOME/hass,
// else $HOME/.cache/hass (made with its parents when missing). NULL (caller frees otherwise) when
// HASS_CACHE_DIR is set empty, no directory is known, or it cannot be made.
char *hass_cli_cache_file(const char *prefix, const char *key);

// Parse a tree flag for a binary: which 0 = --tree-total, 1 = --tree-depth, 2 = --tree-topk;
// sets the field of cfg. Returns 0, or the usage exit code after printing the error.
int hass_tree_flag(const char *prog, int which, const char *arg, hass_tree_cfg *cfg);

#endif
