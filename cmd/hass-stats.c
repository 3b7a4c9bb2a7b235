// hass-stats: summarise speculative-decoding metrics (the JSONL of hass-verify --metrics):
// tau, per-depth acceptance, tokens/s, and the speedup over an autoregressive run given beside it.
//
// Input records (one per line): {"type":"cycle","id":..,"accepted":A,"tree":N,"depth":D,
// "draft_ms":..,"verify_ms":..} per verification cycle, and {"type":"request","id":..,
// "generated":G,"cycles":C,"total_ms":T} per request. Conventions (SPEC-HASS.md section 8):
// tau = mean over requests of (mean accepted drafts per cycle + 1); per-depth acceptance at d =
// cycles that accepted >= d drafts / cycles that accepted >= d-1 drafts with a tree of depth
// >= d; tokens/s = mean over requests of generated / total time; speedup = that mean divided by
// the same mean of the AR run (a ratio of per-request means).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"

static const char *PROG = "hass-stats";

#define MAX_DEPTH 64

typedef struct summary {
    int64_t n_req;          // requests
    double sum_tau;         // sum over requests with cycles of (mean accepted + 1)
    int64_t n_tau;          // requests with cycles
    double sum_tps;         // sum of per-request tokens/s
    int64_t n_tps;
    int64_t n_gen;          // tokens over all requests
    double total_ms;        // time over all requests
    int64_t n_cycles;
    double draft_ms, verify_ms;
    int64_t tree_tokens;
    int64_t reach[MAX_DEPTH + 1], hit[MAX_DEPTH + 1];
    // per-request accumulation of cycles (by id order of appearance)
    double req_acc;
    int64_t req_cyc;
} summary;

// Full help on stdout.
static void usage(void) {
    printf("usage: %s [OPTIONS] [METRICS.jsonl]\n"
           "\n"
           "Summarise the per-cycle metrics of speculative decoding (hass-verify --metrics):\n"
           "tau (mean accepted drafts + 1, averaged per request), per-depth acceptance,\n"
           "tokens/s, and the speedup over an autoregressive run's metrics given with --ar.\n"
           "\n"
           "      --ar FILE         metrics of the autoregressive baseline (same machine, same run)\n"
           "      --json            one JSON object instead of text\n"
           "  -v, --verbose         more messages on stderr\n"
           "  -q, --quiet           fewer messages on stderr\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build\n"
           "\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 malformed input.\n"
           "See hass-stats(1) and hass-verify(1).\n",
           PROG);
}

// Number field of a record (def when absent).
static double num(const json_t *o, const char *k, double def) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

// Fold one record into the summary. HASS_EFORMAT for a record of unknown shape.
static hass_err fold(summary *s, const json_t *r, const char *where) {
    const char *type = json_string_value(json_object_get(r, "type"));
    if (!type) return hass_seterr(HASS_EFORMAT, "%s: \"type\" missing (cycle or request)", where);
    if (!strcmp(type, "cycle")) {
        double a = num(r, "accepted", -1), d = num(r, "depth", -1);
        if (a < 0 || d < 0)
            return hass_seterr(HASS_EFORMAT, "%s: cycle record needs \"accepted\" and \"depth\"", where);
        s->n_cycles++;
        s->req_acc += a;
        s->req_cyc++;
        s->draft_ms += num(r, "draft_ms", 0);
        s->verify_ms += num(r, "verify_ms", 0);
        s->tree_tokens += (int64_t)num(r, "tree", 1);
        int ai = (int)a, di = (int)d;
        for (int k = 1; k <= di && k <= MAX_DEPTH; k++) {
            if (ai < k - 1) break;
            s->reach[k]++;
            if (ai >= k) s->hit[k]++;
        }
    } else if (!strcmp(type, "request")) {
        double g = num(r, "generated", -1), t = num(r, "total_ms", -1);
        if (g < 0 || t < 0)
            return hass_seterr(HASS_EFORMAT, "%s: request record needs \"generated\" and \"total_ms\"", where);
        s->n_req++;
        s->n_gen += (int64_t)g;
        s->total_ms += t;
        if (t > 0) {
            s->sum_tps += g / (t / 1e3);
            s->n_tps++;
        }
        if (s->req_cyc > 0) {
            s->sum_tau += s->req_acc / s->req_cyc + 1.0;
            s->n_tau++;
        } else {
            s->sum_tau += 1.0; // plain decoding: tau 1 by definition
            s->n_tau++;
        }
        s->req_acc = 0;
        s->req_cyc = 0;
    }
    return HASS_OK;
}

// Read a metrics file into a summary; the exit code.
static int read_file(const char *path, summary *s) {
    FILE *f = hass_cli_open_in(path);
    if (!f) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    hass_jsonl_reader rd;
    hass_jsonl_reader_init(&rd, f, strcmp(path, "-") ? path : "<stdin>");
    int rc = 0;
    for (;;) {
        json_t *o = NULL;
        hass_err e = hass_jsonl_read(&rd, &o);
        if (e) {
            HASS_ERROR("%s", hass_errmsg());
            rc = HASS_EXIT_INPUT;
            if (e == HASS_EIO) break;
            continue;
        }
        if (!o) break;
        char where[512];
        snprintf(where, sizeof where, "%s:%lld", rd.name, (long long)rd.line);
        if (fold(s, o, where)) {
            HASS_ERROR("%s", hass_errmsg());
            rc = HASS_EXIT_INPUT;
        }
        json_decref(o);
    }
    hass_jsonl_reader_free(&rd);
    if (f != stdin) fclose(f);
    return rc;
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    enum { O_AR = 256, O_JSON };
    static const struct option opts[] = {
        {"ar", required_argument, 0, O_AR}, {"json", no_argument, 0, O_JSON}, {0, 0, 0, 0}};
    hass_cli cl;
    hass_cli_init(&cl, PROG, usage, 0, opts, "");
    const char *ar = NULL;
    int json = 0, c, rc;
    while ((c = getopt_long(argc, argv, cl.shortopts, cl.opts, NULL)) != -1) {
        switch (c) {
        case O_AR: ar = optarg; break;
        case O_JSON: json = 1; break;
        default:
            if ((rc = hass_cli_flag(&cl, c, optarg)) >= 0) return rc;
        }
    }
    if (argc - optind > 1) return hass_cli_usage_error(PROG, "one metrics file at most");
    const char *in = optind < argc ? argv[optind] : "-";
    summary s, a;
    memset(&s, 0, sizeof s);
    memset(&a, 0, sizeof a);
    rc = read_file(in, &s);
    if (ar) {
        int r2 = read_file(ar, &a);
        if (r2) rc = r2;
    }
    if (s.n_req == 0) return hass_cli_fail(rc ? rc : HASS_EXIT_INPUT, "%s: no request records", in);
    double tau = s.sum_tau / s.n_tau, tps = s.n_tps ? s.sum_tps / s.n_tps : 0.0;
    double ar_tps = a.n_tps ? a.sum_tps / a.n_tps : 0.0;
    int maxd = 0;
    for (int k = 1; k <= MAX_DEPTH; k++)
        if (s.reach[k]) maxd = k;
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "requests", json_integer(s.n_req));
        json_object_set_new(o, "cycles", json_integer(s.n_cycles));
        json_object_set_new(o, "generated", json_integer(s.n_gen));
        json_object_set_new(o, "tau", json_real(tau));
        json_object_set_new(o, "tok_s", json_real(tps));
        json_t *pd = json_array();
        for (int k = 1; k <= maxd; k++)
            json_array_append_new(pd, json_real((double)s.hit[k] / (double)s.reach[k]));
        json_object_set_new(o, "accept_by_depth", pd);
        if (s.n_cycles) {
            json_object_set_new(o, "mean_tree", json_real((double)s.tree_tokens / s.n_cycles));
            json_object_set_new(o, "draft_ms", json_real(s.draft_ms / s.n_cycles));
            json_object_set_new(o, "verify_ms", json_real(s.verify_ms / s.n_cycles));
        }
        if (ar) {
            json_object_set_new(o, "ar_tok_s", json_real(ar_tps));
            json_object_set_new(o, "speedup", ar_tps > 0 ? json_real(tps / ar_tps) : json_null());
        }
        hass_jsonl_write(stdout, o, 1);
        json_decref(o);
    } else {
        printf("requests      %lld\n", (long long)s.n_req);
        printf("cycles        %lld\n", (long long)s.n_cycles);
        printf("generated     %lld\n", (long long)s.n_gen);
        printf("tau           %.3f\n", tau);
        for (int k = 1; k <= maxd; k++)
            printf("accept@%-6d %.3f (%lld/%lld)\n", k, (double)s.hit[k] / (double)s.reach[k],
                   (long long)s.hit[k], (long long)s.reach[k]);
        if (s.n_cycles)
            printf("per cycle     tree %.1f, draft %.2f ms, verify %.2f ms\n",
                   (double)s.tree_tokens / s.n_cycles, s.draft_ms / s.n_cycles,
                   s.verify_ms / s.n_cycles);
        printf("tok/s         %.2f\n", tps);
        if (ar) {
            printf("ar tok/s      %.2f\n", ar_tps);
            if (ar_tps > 0) printf("speedup       %.3f\n", tps / ar_tps);
        }
    }
    if (fflush(stdout) != 0) return hass_cli_fail(HASS_EXIT_RUNTIME, "write failed");
    return rc;
}
