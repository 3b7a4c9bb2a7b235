// cli.c: version line, usage errors, checked flag values and the shared flags for cmd/.
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

// Print "<prog>: error: <fmt...>" unless verbosity is 0.
static void vfail(const char *fmt, va_list ap) {
    if (hass_verbosity < 1) return;
    fprintf(stderr, "%s: error: ", hass_log_prog());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

// Print an error line and return the exit code.
int hass_cli_fail(int exit_code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    return exit_code;
}

// Print an error line and return the exit code of e.
int hass_cli_fail_err(hass_err e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    return hass_exit_code(e);
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

// FNV-1a, 64 bits, of a string, continuing from h.
static uint64_t fnv64(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// Make a directory and any missing parents (mkdir -p); 0 on success.
static int make_dirs(char *d) {
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int bad = mkdir(d, 0755) != 0 && errno != EEXIST;
        *p = '/';
        if (bad) return -1;
    }
    return mkdir(d, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

// The cache file for prefix and key (see cli.h).
char *hass_cli_cache_file(const char *prefix, const char *key) {
    const char *env = getenv("HASS_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && !*env) return NULL; // caching off
    char dir[4096];
    if (env) snprintf(dir, sizeof dir, "%s", env);
    else if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/hass", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/hass", home);
    else return NULL;
    if (make_dirs(dir)) return NULL;
    uint64_t h = fnv64(1469598103934665603ull, key);
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r"); // the same key on another machine is another file
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) { h = fnv64(h, line); break; }
    if (f) fclose(f);
    size_t n = strlen(dir) + strlen(prefix) + 32;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s-%016llx.json", dir, prefix, (unsigned long long)h);
    return p;
}

// One of --tree-total/--tree-depth/--tree-topk into cfg (checked range).
static int tree_flag(const char *prog, int which, const char *arg, hass_tree_cfg *cfg) {
    static const char *names[3] = {"--tree-total", "--tree-depth", "--tree-topk"};
    static const int64_t hi[3] = {HASS_TREE_MAX_TOTAL, HASS_TREE_MAX_LEVELS, HASS_TREE_MAX_TOPK};
    int64_t v;
    int rc = hass_cli_int(prog, names[which], arg, 1, hi[which], &v);
    if (rc) return rc;
    int *field[3] = {&cfg->n_total, &cfg->levels, &cfg->top_k};
    *field[which] = (int)v;
    return 0;
}

// getopt values of the shared long-only flags (above any binary's own).
enum { O_BIN = HASS_CLI_OPT_THREADS + 1, O_BUF, O_DEVICE, O_F32, O_PROG, O_NOPROG, O_TTOTAL,
       O_TDEPTH, O_TTOPK };

// The shared flags: the getopt row, the group that takes it (0: every binary), its short letter.
static const struct shared {
    struct option o;
    unsigned group;
    const char *letter;
} shared[] = {
    {{"model", required_argument, 0, 'm'}, HASS_CLI_MODEL, "m:"},
    {{"output", required_argument, 0, 'o'}, HASS_CLI_OUTPUT, "o:"},
    {{"force", no_argument, 0, 'f'}, HASS_CLI_OUTPUT, "f"},
    {{"bin", no_argument, 0, O_BIN}, HASS_CLI_OUTPUT, ""},
    {{"buffered", no_argument, 0, O_BUF}, HASS_CLI_OUTPUT, ""},
    {{"threads", required_argument, 0, HASS_CLI_OPT_THREADS}, HASS_CLI_THREADS, ""},
    {{"device", required_argument, 0, O_DEVICE}, HASS_CLI_DEVICE, ""},
    {{"f32", no_argument, 0, O_F32}, HASS_CLI_F32, ""},
    {{"progress", no_argument, 0, O_PROG}, HASS_CLI_PROGRESS, ""},
    {{"no-progress", no_argument, 0, O_NOPROG}, HASS_CLI_PROGRESS, ""},
    {{"tree-total", required_argument, 0, O_TTOTAL}, HASS_CLI_TREE, ""},
    {{"tree-depth", required_argument, 0, O_TDEPTH}, HASS_CLI_TREE, ""},
    {{"tree-topk", required_argument, 0, O_TTOPK}, HASS_CLI_TREE, ""},
    {{"verbose", no_argument, 0, 'v'}, 0, "v"},
    {{"quiet", no_argument, 0, 'q'}, 0, "q"},
    {{"help", no_argument, 0, 'h'}, 0, "h"},
    {{"version", no_argument, 0, 'V'}, 0, "V"},
};

// Defaults and the getopt tables (see cli.h).
void hass_cli_init(hass_cli *c, const char *prog, void (*usage)(void), unsigned groups,
                   const struct option *own, const char *own_short) {
    memset(c, 0, sizeof *c);
    c->prog = prog;
    c->usage = usage;
    c->groups = groups;
    c->output = "-";
    c->threads_hi = 1024;
    c->dev = HASS_DEVICE_AUTO;
    c->progress = -1;
    c->tree = (hass_tree_cfg){60, 6, 10};
    size_t n = 0, cap = sizeof c->opts / sizeof *c->opts;
    for (; own && own[n].name; n++) {
        HASS_ASSERT(n + 1 < cap);
        c->opts[n] = own[n];
    }
    HASS_ASSERT(strlen(own_short) < sizeof c->shortopts);
    strcpy(c->shortopts, own_short);
    for (size_t i = 0; i < sizeof shared / sizeof *shared; i++) {
        if (shared[i].group && !(groups & shared[i].group)) continue;
        HASS_ASSERT(n + 1 < cap && strlen(c->shortopts) + 2 < sizeof c->shortopts);
        c->opts[n++] = shared[i].o;
        strcat(c->shortopts, shared[i].letter);
    }
    c->opts[n] = (struct option){0, 0, 0, 0};
}

// Exit code after --help or --version: 0 when stdout took it all, else 1 with a message.
static int stdout_done(void) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return HASS_EXIT_OK;
    return hass_cli_fail(HASS_EXIT_RUNTIME, "<stdout>: write failed: %s", strerror(errno));
}

// One shared flag; -1 to go on, else the exit code.
int hass_cli_flag(hass_cli *c, int opt, const char *arg) {
    int rc = 0;
    switch (opt) {
    case 'm': c->model = arg; break;
    case 'o': c->output = arg; break;
    case 'f': c->force = 1; break;
    case O_BIN: c->bin = 1; break;
    case O_BUF: c->buffered = 1; break;
    case HASS_CLI_OPT_THREADS:
        rc = hass_cli_int(c->prog, "--threads", arg, c->threads_lo, c->threads_hi, &c->threads);
        break;
    case O_DEVICE:
        if (hass_device_parse(arg, &c->dev))
            rc = hass_cli_usage_error(c->prog, "--device: %s", hass_errmsg());
        break;
    case O_F32: c->f32 = 1; break;
    case O_PROG: c->progress = 1; break;
    case O_NOPROG: c->progress = 0; break;
    case O_TTOTAL:
    case O_TDEPTH:
    case O_TTOPK: rc = tree_flag(c->prog, opt - O_TTOTAL, arg, &c->tree); break;
    case 'v': hass_verbosity++; break;
    case 'q': hass_verbosity--; break;
    case 'h': c->usage(); return stdout_done();
    case 'V': hass_cli_version(stdout, c->prog); return stdout_done();
    default: return hass_cli_usage_error(c->prog, "unknown option");
    }
    return rc ? rc : -1;
}

// "-m MODEL is required" unless -m was given.
int hass_cli_need_model(const hass_cli *c) {
    return c->model ? 0 : hass_cli_usage_error(c->prog, "-m MODEL is required");
}

// --device usable now?
int hass_cli_check_device(const hass_cli *c) {
    hass_device got; // hass_backend_new resolves again
    if (hass_device_resolve(c->dev, &got)) return hass_cli_fail(HASS_EXIT_DEVICE, "%s", hass_errmsg());
    return 0;
}

// -m with --threads and --f32.
hass_model *hass_cli_load_model(const hass_cli *c, hass_err *err) {
    hass_model *m = hass_model_load(c->model, (int)c->threads, err);
    if (m && c->f32) hass_model_set_precision(m, HASS_PREC_F32);
    return m;
}

// Open -o.
FILE *hass_cli_open_output(const hass_cli *c) {
    FILE *out = hass_cli_open_out(c->output);
    if (!out) hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    return out;
}

// --bin to a terminal without -f?
int hass_cli_refuse_tty(const hass_cli *c, FILE *out) {
    if (!hass_stream_refuse_tty(out, c->bin, c->force)) return 0;
    return hass_cli_fail(HASS_EXIT_USAGE, "stdout is a terminal; pipe it, use -o or -f");
}
