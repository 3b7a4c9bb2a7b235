// hass-detok: adds "text" to JSONL records from their generated tokens.
// This version parses its flags and refuses work: the tokenizer arrives in the next change.
#include <getopt.h>

#include "cli.h"

static const char *PROG = "hass-detok";

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL [OPTIONS] [FILE...]\n"
           "\n"
           "Turn the tokens of each JSONL record into text.\n"
           "\n"
           "  -m, --model FILE      target model (GGUF)\n"
           "  -v, --verbose         more messages on stderr\n"
           "  -q, --quiet           fewer messages on stderr\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 malformed input, 4 no device.\n",
           PROG);
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"verbose", no_argument, 0, 'v'},     {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    const char *model = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "m:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'v': hass_verbosity++; break;
        case 'q': hass_verbosity--; break;
        case 'h': usage(); return 0;
        case 'V': hass_cli_version(stdout, PROG); return 0;
        default: return hass_cli_usage_error(PROG, "unknown option");
        }
    }
    if (!model) return hass_cli_usage_error(PROG, "-m MODEL is required");
    return hass_cli_fail(HASS_EXIT_RUNTIME, "detokenization is not built yet in this version");
}
