// hass-bench: time the CPU engine: prefill of a P-token prompt, decoding of G tokens, and the
// cost of one forward over N block tokens after a committed context (the verify cost curve).
// A benchmark, not a test: results (medians over --reps runs) go to stdout as JSONL.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "forward.h"
#include "roofline.h"
#include "sample.h"

static const char *PROG = "hass-bench";

// Full help on stdout.
static void usage(void) {
    printf("usage: %s -m MODEL [OPTIONS]\n"
           "       %s --roofline [-t N]\n"
           "\n"
           "Time prefill, decode and the N-token forward cost of the engine; one JSON\n"
           "object per measurement on stdout (medians over --reps runs).\n"
           "\n"
           "  -m, --model FILE      target model (GGUF file or HF directory)\n"
           "  -t, --threads N       kernel threads (0 = all cores, default)\n"
           "  -p, --prompt N        prefill length (default 512; 0 skips)\n"
           "  -g, --gen N           decode length (default 128; 0 skips)\n"
           "  -c, --context N       committed context before each curve forward (default 128)\n"
           "      --curve LIST      block sizes of the forward cost curve (default\n"
           "                        1,2,4,8,16,32,64; 'none' skips)\n"
           "  -r, --reps N          repetitions, the median is reported (default 5)\n"
           "      --seed N          seed of the random prompt ids (default 1)\n"
           "      --device DEV      cuda, cpu or auto (default): where the model runs\n"
           "      --f32             f32 activations: no 8-bit activation rounding; slower;\n"
           "                        matches llama.cpp's F32 path\n"
           "      --roofline        measure the machine instead (no model): streaming read\n"
           "                        bandwidth (1, 2 and N threads) and vpdpbusd zmm\n"
           "                        multiply-adds/s (1 and N threads; AVX-512 VNNI)\n"
           "  -v, --verbose         more messages on stderr\n"
           "  -q, --quiet           fewer messages on stderr\n"
           "  -h, --help            this help\n"
           "  -V, --version         version and build (cpu-only or cuda)\n"
           "\n"
           "Exit status: 0 ok, 1 runtime failure, 2 usage, 3 malformed model file, 4 no device.\n",
           PROG, PROG);
}

// --roofline: the read bandwidth with 1, 2 and n_threads threads and the vpdpbusd throughput
// with 1 and n_threads, one JSON object each (best of 3 runs); a "skipped" object without
// AVX-512 VNNI.
static int roofline(int n_threads) {
    int th[3] = {1, 2, n_threads}, n = n_threads > 2 ? 3 : 2;
    double r[3];
    size_t bytes = hass_roofline_read_bytes();
    if (hass_roofline_read(bytes, th, n, 3, r)) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    for (int i = 0; i < n; i++)
        printf("{\"bench\":\"roofline_read\",\"threads\":%d,\"mib\":%zu,\"gb_s\":%.2f}\n", th[i],
               bytes >> 20, r[i]);
    if (!hass_roofline_has_vnni()) {
        printf("{\"bench\":\"roofline_vpdpbusd\",\"skipped\":\"no AVX-512 VNNI on this CPU\"}\n");
        return 0;
    }
    th[1] = n_threads;
    n = n_threads > 1 ? 2 : 1;
    if (hass_roofline_vnni(th, n, 3, r)) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    for (int i = 0; i < n; i++)
        printf("{\"bench\":\"roofline_vpdpbusd\",\"threads\":%d,\"gmac_s\":%.1f}\n", th[i], r[i]);
    return 0;
}

// Median of n doubles (sorts in place).
static double median(double *x, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
            double t = x[j];
            x[j] = x[j - 1];
            x[j - 1] = t;
        }
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int main(int argc, char **argv) {
    hass_log_set_prog(PROG);
    static const struct option opts[] = {
        {"threads", required_argument, 0, 't'}, {"prompt", required_argument, 0, 'p'},
        {"gen", required_argument, 0, 'g'},     {"context", required_argument, 0, 'c'},
        {"curve", required_argument, 0, 'C'},   {"reps", required_argument, 0, 'r'},
        {"seed", required_argument, 0, 'S'},    {"roofline", no_argument, 0, 'R'},
        {0, 0, 0, 0}};
    hass_cli cl;
    hass_cli_init(&cl, PROG, usage, HASS_CLI_MODEL | HASS_CLI_DEVICE | HASS_CLI_F32, opts,
                  "t:p:g:c:r:");
    const char *curve = "1,2,4,8,16,32,64";
    int64_t n_prompt = 512, n_gen = 128, n_ctx0 = 128, reps = 5, seed = 1;
    int c, rc, roof = 0;
    while ((c = getopt_long(argc, argv, cl.shortopts, cl.opts, NULL)) != -1) {
        switch (c) {
        case 'R': roof = 1; break;
        case 't': if ((rc = hass_cli_flag(&cl, HASS_CLI_OPT_THREADS, optarg)) >= 0) return rc; break;
        case 'p': if ((rc = hass_cli_int(PROG, "--prompt", optarg, 0, 1 << 20, &n_prompt))) return rc; break;
        case 'g': if ((rc = hass_cli_int(PROG, "--gen", optarg, 0, 1 << 20, &n_gen))) return rc; break;
        case 'c': if ((rc = hass_cli_int(PROG, "--context", optarg, 0, 1 << 20, &n_ctx0))) return rc; break;
        case 'C': curve = optarg; break;
        case 'r': if ((rc = hass_cli_int(PROG, "--reps", optarg, 1, 1000, &reps))) return rc; break;
        case 'S': if ((rc = hass_cli_int(PROG, "--seed", optarg, 0, INT64_MAX, &seed))) return rc; break;
        default: if ((rc = hass_cli_flag(&cl, c, optarg)) >= 0) return rc;
        }
    }
    if (roof && cl.model) return hass_cli_usage_error(PROG, "--roofline takes no model");
    if (roof) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        return roofline(cl.threads > 0 ? (int)cl.threads : cores > 0 ? (int)cores : 1);
    }
    if ((rc = hass_cli_need_model(&cl))) return rc;
    if (optind < argc) return hass_cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if ((rc = hass_cli_check_device(&cl))) return rc;
    int sizes[64], n_sizes = 0;
    if (strcmp(curve, "none")) {
        char *dup = strdup(curve), *save = NULL;
        rc = 0;
        for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int64_t v;
            if (n_sizes == 64) rc = hass_cli_usage_error(PROG, "--curve: at most 64 sizes");
            else rc = hass_cli_int(PROG, "--curve", tok, 1, 4096, &v);
            if (rc) break;
            sizes[n_sizes++] = (int)v;
        }
        free(dup);
        if (rc) return rc;
    }
    hass_err e;
    hass_model *m = hass_cli_load_model(&cl, &e);
    if (!m) return hass_cli_fail_err(e, "%s", hass_errmsg());
    const hass_model_cfg *cfg = hass_model_config(m);
    int V = cfg->n_vocab, max_n = (int)n_prompt;
    for (int i = 0; i < n_sizes; i++) max_n = sizes[i] > max_n ? sizes[i] : max_n;
    int need = (int)(n_prompt + n_gen);
    for (int i = 0; i < n_sizes; i++) need = (int)n_ctx0 + sizes[i] > need ? (int)n_ctx0 + sizes[i] : need;
    hass_backend *b = hass_backend_new(m, cl.dev, &e);
    hass_seq *kv = b ? hass_seq_new(b, need + 1, max_n, &e) : NULL;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(max_n > n_ctx0 ? max_n : n_ctx0) + 4);
    float *logits = malloc(sizeof(float) * (size_t)V);
    double *t = malloc(sizeof(double) * (size_t)reps), *tc = malloc(sizeof(double) * (size_t)reps);
    if (!kv) return hass_cli_fail_err(e, "%s", hass_errmsg());
    if (!tok || !logits || !t || !tc) return hass_cli_fail(HASS_EXIT_RUNTIME, "out of memory");
    uint64_t s = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
    int n_tok = max_n > n_ctx0 ? max_n : (int)n_ctx0;
    for (int i = 0; i < n_tok; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)V);
    }
    if ((e = hass_seq_reserve(kv, max_n))) return hass_cli_fail(HASS_EXIT_RUNTIME, "%s", hass_errmsg());
    const char *name = strrchr(cl.model, '/') ? strrchr(cl.model, '/') + 1 : cl.model;
    uint64_t wbytes, wmacs;
    hass_model_weight_cost(m, &wbytes, &wmacs);
    const hass_wmat *lm = hass_model_lm_head_w(m);
    printf("{\"bench\":\"config\",\"model\":\"%s\",\"threads\":%d,\"kernels\":\"%s\",\"reps\":%d,"
           "\"precision\":\"%s\",\"device\":\"%s\",\"weight_bytes\":%llu,\"weight_macs\":%llu,"
           "\"lm_head_macs\":%llu}\n",
           name, hass_model_threads(m), hass_kernel_path(), (int)reps, cl.f32 ? "f32" : "q8",
           b->ops->name, (unsigned long long)wbytes, (unsigned long long)wmacs,
           (unsigned long long)lm->n_in * (unsigned long long)lm->n_out);
    int last;
    // warm-up (page in the weights)
    hass_seq_truncate(kv, 0);
    last = 0;
    if ((e = hass_seq_forward_rows(kv, tok, NULL, 1, NULL, &last, 1, logits, NULL))) goto fail;
    if (n_prompt > 0) {
        for (int r = 0; r < reps; r++) {
            hass_seq_truncate(kv, 0);
            last = (int)n_prompt - 1;
            double t0 = hass_now(), c0 = hass_cpu_now();
            if ((e = hass_seq_forward_rows(kv, tok, NULL, (int)n_prompt, NULL, &last, 1, logits, NULL))) goto fail;
            t[r] = hass_now() - t0;
            tc[r] = hass_cpu_now() - c0;
        }
        double md = median(t, (int)reps), mc = median(tc, (int)reps);
        printf("{\"bench\":\"prefill\",\"n\":%d,\"ms\":%.3f,\"tok_s\":%.2f,\"cpu_ms\":%.3f}\n",
               (int)n_prompt, md * 1e3, n_prompt / md, mc * 1e3);
    }
    if (n_gen > 0) {
        for (int r = 0; r < reps; r++) {
            hass_seq_truncate(kv, 0);
            int32_t cur = tok[0];
            double t0 = hass_now(), c0 = hass_cpu_now();
            for (int i = 0; i < n_gen; i++) {
                int zero = 0;
                if ((e = hass_seq_forward_rows(kv, &cur, NULL, 1, NULL, &zero, 1, logits, NULL))) goto fail;
                cur = hass_sample_argmax(logits, V);
            }
            t[r] = hass_now() - t0;
            tc[r] = hass_cpu_now() - c0;
        }
        double md = median(t, (int)reps), mc = median(tc, (int)reps);
        printf("{\"bench\":\"decode\",\"n\":%d,\"ms_per_token\":%.3f,\"tok_s\":%.2f,"
               "\"cpu_ms_per_token\":%.3f}\n", (int)n_gen, md * 1e3 / n_gen, n_gen / md,
               mc * 1e3 / n_gen);
    }
    if (n_sizes) {
        float *lg = malloc(sizeof(float) * (size_t)V * (size_t)max_n);
        hass_seq_truncate(kv, 0);
        if (n_ctx0 > 0 && (e = hass_seq_forward(kv, tok, NULL, (int)n_ctx0, NULL, NULL, NULL))) goto fail;
        for (int k = 0; k < n_sizes; k++) {
            int n = sizes[k];
            for (int r = -1; r < reps; r++) { // r = -1: untimed, after the previous size's work
                hass_seq_truncate(kv, (int)n_ctx0);
                double t0 = hass_now(), c0 = hass_cpu_now();
                if ((e = hass_seq_forward(kv, tok, NULL, n, NULL, lg, NULL))) goto fail;
                if (r < 0) continue;
                t[r] = hass_now() - t0;
                tc[r] = hass_cpu_now() - c0;
            }
            double md = median(t, (int)reps), mc = median(tc, (int)reps);
            printf("{\"bench\":\"forward\",\"n\":%d,\"context\":%d,\"ms\":%.3f,\"tok_s\":%.2f,"
                   "\"cpu_ms\":%.3f}\n", n, (int)n_ctx0, md * 1e3, n / md, mc * 1e3);
            fflush(stdout);
        }
        free(lg);
    }
    free(tok);
    free(logits);
    free(t);
    free(tc);
    hass_seq_free(kv);
    hass_backend_free(b);
    hass_model_free(m);
    return 0;
fail:
    return hass_cli_fail_err(e, "%s", hass_errmsg());
}
