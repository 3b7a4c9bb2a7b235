// hass-verify: owns the target model and the decode loop (plain or speculative).
// This version: --inspect prints a model file's metadata; decoding arrives with the engine.
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "gguf.h"

static const char *PROG = "hass-verify";

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL [OPTIONS] [FILE...]\n"
           "       %s --inspect MODEL [--json] [--full]\n"
           "\n"
           "Decode each token record of the input with the target model.\n"
           "\n"
           "  -m, --model FILE      target model (GGUF)\n"
           "      --inspect FILE    print the header, metadata and tensor table of a GGUF file\n"
           "      --json            with --inspect: one JSON object per line\n"
           "      --full            with --inspect: print whole arrays\n"
           "  -v, --verbose         more messages on stderr (repeatable)\n"
           "  -q, --quiet           fewer messages on stderr (repeatable)\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 malformed input, 4 no device.\n"
           "See hass-verify(1) and hass(7).\n",
           PROG, PROG);
}

// Print a GGUF file's metadata; exit code.
static int inspect(const char *path, int json, int full) {
    hass_err e;
    hass_gguf *g = hass_gguf_open(path, &e);
    if (!g) return hass_cli_fail(hass_exit_code(e), "%s", hass_errmsg());
    if (json) hass_gguf_print_json(g, stdout);
    else hass_gguf_print(g, stdout, full);
    hass_gguf_free(g);
    return fflush(stdout) == 0 ? 0 : hass_cli_fail(HASS_EXIT_RUNTIME, "write failed");
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"inspect", required_argument, 0, 'I'},
        {"json", no_argument, 0, 'J'},        {"full", no_argument, 0, 'F'},
        {"verbose", no_argument, 0, 'v'},     {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    const char *model = NULL, *insp = NULL;
    int json = 0, full = 0, c;
    while ((c = getopt_long(argc, argv, "m:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'I': insp = optarg; break;
        case 'J': json = 1; break;
        case 'F': full = 1; break;
        case 'v': hass_verbosity++; break;
        case 'q': hass_verbosity--; break;
        case 'h': usage(); return 0;
        case 'V': hass_cli_version(stdout, PROG); return 0;
        default: return hass_cli_usage_error(PROG, "unknown option");
        }
    }
    if (insp) return inspect(insp, json, full);
    if (!model) return hass_cli_usage_error(PROG, "-m MODEL is required");
    return hass_cli_fail(HASS_EXIT_RUNTIME, "decoding is not built yet in this version");
}
