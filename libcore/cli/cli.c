// cli.c: version line, usage errors and checked flag values for cmd/.
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
int hass_tree_flag(const char *prog, int which, const char *arg, hass_tree_cfg *cfg) {
    static const char *names[3] = {"--tree-total", "--tree-depth", "--tree-topk"};
    static const int64_t hi[3] = {HASS_TREE_MAX_TOTAL, HASS_TREE_MAX_LEVELS, HASS_TREE_MAX_TOPK};
    int64_t v;
    int rc = hass_cli_int(prog, names[which], arg, 1, hi[which], &v);
    if (rc) return rc;
    int *field[3] = {&cfg->n_total, &cfg->levels, &cfg->top_k};
    *field[which] = (int)v;
    return 0;
}
