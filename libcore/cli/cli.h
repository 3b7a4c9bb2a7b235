// cli.h: helpers shared by the binaries in cmd/: version line, usage errors, the flags every
// binary shares. Nothing here exits; functions return the exit code (hass.h's HASS_EXIT_*) for
// cmd/ to use.
#ifndef HASS_CLI_H
#define HASS_CLI_H

#include <getopt.h>

#include "backend.h"
#include "hass.h"
#include "stream.h"
#include "tree.h"

// Groups of shared flags a binary takes (hass_cli_init); -v/--verbose, -q/--quiet, -h/--help
// and -V/--version come with every binary.
enum {
    HASS_CLI_MODEL = 1 << 0,    // -m, --model FILE
    HASS_CLI_OUTPUT = 1 << 1,   // -o, --output FILE; -f, --force; --bin; --buffered
    HASS_CLI_THREADS = 1 << 2,  // --threads N (0 = all cores)
    HASS_CLI_DEVICE = 1 << 3,   // --device cuda|cpu|auto
    HASS_CLI_F32 = 1 << 4,      // --f32
    HASS_CLI_PROGRESS = 1 << 5, // --progress, --no-progress
    HASS_CLI_TREE = 1 << 6,     // --tree-total N, --tree-depth N, --tree-topk N
};

// getopt value of --threads, for a binary that also gives it a short letter (hass-bench's -t).
#define HASS_CLI_OPT_THREADS 0x10000

// The shared flags' values and the getopt tables of one binary.
typedef struct hass_cli {
    const char *prog;
    void (*usage)(void);     // prints the full help on stdout
    unsigned groups;         // HASS_CLI_* taken
    const char *model;       // -m (NULL: not given)
    const char *output;      // -o ("-": stdout)
    int force, bin, buffered;
    int64_t threads;         // --threads (0: all cores)
    int64_t threads_lo, threads_hi; // its accepted range (default [0, 1024])
    hass_device dev;         // --device (default auto)
    int f32;                 // --f32
    int progress;            // 1 --progress, 0 --no-progress, -1 neither
    hass_tree_cfg tree;      // tree flags (default total 60, depth 6, top-k 10)
    struct option opts[64];  // the binary's long options, then the shared ones
    char shortopts[64];      // the binary's short options, then the shared ones
} hass_cli;

// Set defaults and build the getopt tables: own (terminated by a zero row) and own_short are the
// binary's own options; the groups' flags are appended. Parse with
//   getopt_long(argc, argv, c->shortopts, c->opts, NULL)
// and hand every option the binary's switch does not know to hass_cli_flag.
void hass_cli_init(hass_cli *c, const char *prog, void (*usage)(void), unsigned groups,
                   const struct option *own, const char *own_short);
// One shared flag (getopt's value opt, its argument arg): -1 when parsing goes on, else the exit
// code to return now: 0 after --help or --version (1 with a message when stdout cannot be
// written), 2 after a usage error (a bad value, an unknown option).
int hass_cli_flag(hass_cli *c, int opt, const char *arg);
// The usage error "-m MODEL is required" when -m was not given, else 0.
int hass_cli_need_model(const hass_cli *c);
// Check that --device can be had now: 0, or HASS_EXIT_DEVICE after the message.
int hass_cli_check_device(const hass_cli *c);
// Load -m with --threads and --f32. NULL with *err.
hass_model *hass_cli_load_model(const hass_cli *c, hass_err *err);
// Open -o (stdout for "-"): the stream, or NULL after the message (exit code 1).
FILE *hass_cli_open_output(const hass_cli *c);
// Refuse --bin to a terminal without -f: HASS_EXIT_USAGE after the message, else 0.
int hass_cli_refuse_tty(const hass_cli *c, FILE *out);

// Print "<prog> 0.1.0 (cpu-only)" to out.
void hass_cli_version(FILE *out, const char *prog);
// Print "<prog>: error: <msg>" and "try '<prog> --help'" to stderr; returns HASS_EXIT_USAGE.
int hass_cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Print "<prog>: error: <msg>" to stderr (always, unless verbosity is 0); returns exit_code.
int hass_cli_fail(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The same with the exit code of error e (hass_exit_code): "<prog>: error: <msg>".
int hass_cli_fail_err(hass_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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

#endif
