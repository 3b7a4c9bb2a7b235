// bench_llama.c: GPU benchmark on synthetic weights of LLaMA-2-7B shape (bf16): device copy
// bandwidth and the decode floor, GEMV vs cuBLAS at small n, decode step (plain and CUDA graph),
// verify of 1..64 tree tokens, a draft cycle (EAGLE-2 shape: depth 6, top-k 10) and the
// projected speedup. A benchmark, not a test: numbers go to stdout as "key value" lines.
//   bench_llama [--layers N] [--past N] [--reps N]
// Exit: 0 ok, 1 runtime failure (out of device memory...), 2 usage, 4 no CUDA device.
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "hass.h"
#include "ops.h"

// Fail with the library message and the exit code of its error.
#define TRY(call)                                                                              \
    do {                                                                                       \
        hass_err e_ = (call);                                                                  \
        if (e_) {                                                                              \
            fprintf(stderr, "bench_llama: %s: %s\n", #call, hass_errmsg());                    \
            exit(e_ == HASS_ENODEV ? 4 : 1);                                                   \
        }                                                                                      \
    } while (0)

// Ascending order of doubles for qsort.
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Median of n values (sorts them).
static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static int g_reps = 15;

// Median seconds of a forward of n tokens after n_past (inputs set), plain launches.
static double time_forward(hass_cuda_llama *m, int n_past, int n, int use_mask) {
    double t[64];
    TRY(hass_cuda_llama_forward(m, n_past, n, use_mask)); // warm-up
    TRY(hass_cuda_stream_sync());
    for (int r = 0; r < g_reps; r++) {
        double t0 = hass_now();
        TRY(hass_cuda_llama_forward(m, n_past, n, use_mask));
        TRY(hass_cuda_stream_sync());
        t[r] = hass_now() - t0;
    }
    return median(t, g_reps);
}

// Median seconds of the same forward captured once as a CUDA graph and replayed.
static double time_forward_graph(hass_cuda_llama *m, int n_past, int n, int use_mask) {
    void *g = NULL;
    double t[64];
    TRY(hass_cuda_graph_begin());
    hass_err fe = hass_cuda_llama_forward(m, n_past, n, use_mask);
    hass_err ge = hass_cuda_graph_end(&g);
    if (fe || ge) {
        fprintf(stderr, "bench_llama: graph capture failed: %s\n", hass_errmsg());
        hass_cuda_graph_free(g);
        return -1;
    }
    TRY(hass_cuda_graph_launch(g));
    TRY(hass_cuda_stream_sync());
    for (int r = 0; r < g_reps; r++) {
        double t0 = hass_now();
        TRY(hass_cuda_graph_launch(g));
        TRY(hass_cuda_stream_sync());
        t[r] = hass_now() - t0;
    }
    hass_cuda_graph_free(g);
    return median(t, g_reps);
}

// A random tree of n nodes as (parent-first) block mask and positions n_past + depth.
static void make_tree(uint8_t *mask, int32_t *pos, int32_t *tok, int n, int n_past, int n_vocab,
                      uint32_t *seed) {
    int32_t par[256], depth[256];
    memset(mask, 0, (size_t)n * n);
    for (int i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        par[i] = i == 0 ? -1 : (int)((*seed >> 8) % (uint32_t)(i < 10 ? i : 10)) + (i < 10 ? 0 : i - 10);
        depth[i] = i == 0 ? 0 : depth[par[i]] + 1;
        pos[i] = n_past + depth[i];
        tok[i] = (int32_t)((*seed >> 4) % (uint32_t)n_vocab);
        for (int j = i; j >= 0; j = par[j]) mask[(size_t)i * n + j] = 1;
    }
}

// Device-to-device copy bandwidth (read + write bytes per second), median of 10 copies of 1 GiB.
static double copy_bandwidth(void) {
    size_t nb = (size_t)1 << 30;
    void *a, *b;
    double t[10];
    TRY(hass_cuda_malloc(&a, nb));
    TRY(hass_cuda_malloc(&b, nb));
    TRY(hass_cuda_d2d(b, a, nb));
    TRY(hass_cuda_stream_sync());
    for (int r = 0; r < 10; r++) {
        double t0 = hass_now();
        TRY(hass_cuda_d2d(b, a, nb));
        TRY(hass_cuda_stream_sync());
        t[r] = hass_now() - t0;
    }
    hass_cuda_free(a);
    hass_cuda_free(b);
    return 2.0 * (double)nb / median(t, 10);
}

// Median seconds of one matmul call (n tokens, in -> out) on the given path, 20 calls per sample.
static double time_matmul(hass_cuda_llama *m, const uint16_t *w, int n, int in, int out, int path) {
    double t[64];
    TRY(hass_cuda_matmul_bf16(m->cublas, m->logits, m->xb, w, n, in, out, 0.f, path));
    TRY(hass_cuda_stream_sync());
    for (int r = 0; r < g_reps; r++) {
        double t0 = hass_now();
        for (int k = 0; k < 20; k++)
            TRY(hass_cuda_matmul_bf16(m->cublas, m->logits, m->xb, w, n, in, out, 0.f, path));
        TRY(hass_cuda_stream_sync());
        t[r] = (hass_now() - t0) / 20;
    }
    return median(t, g_reps);
}

// Print usage to f.
static void usage(FILE *f) {
    fprintf(f, "usage: bench_llama [--layers N] [--past N] [--reps N] [--attn-only]\n"
               "GPU benchmark of a LLaMA-2-7B-shaped stack on synthetic bf16 weights.\n");
}

int main(int argc, char **argv) {
    int n_layer = 32, n_past = 512, attn_only = 0;
    static const struct option opts[] = {{"layers", required_argument, 0, 'l'},
                                         {"past", required_argument, 0, 'p'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"attn-only", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, "l:p:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
        case 'p':
        case 'r':
            if (hass_parse_i64(optarg, c == 'p' ? 0 : 1, c == 'r' ? 64 : 4000, &v)) {
                fprintf(stderr, "bench_llama: bad value '%s' for -%c\n", optarg, c);
                return 2;
            }
            if (c == 'l') n_layer = (int)v;
            else if (c == 'p') n_past = (int)v;
            else g_reps = (int)v;
            break;
        case 'a': attn_only = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (hass_cuda_device_count() == 0) {
        fprintf(stderr, "bench_llama: no CUDA device\n");
        return 4;
    }
    char name[256];
    size_t fr, tot;
    TRY(hass_cuda_device_name(name, sizeof name));
    TRY(hass_cuda_mem_info(&fr, &tot));
    printf("device %s (%.1f GiB free)\n", name, (double)fr / (1 << 30));
    void *stream;
    TRY(hass_cuda_stream_create(&stream));
    hass_cuda_set_stream(stream);

    double bw = copy_bandwidth();
    printf("copy_bandwidth_GBps %.1f\n", bw / 1e9);

    hass_cuda_llama_cfg cfg = {.n_layer = n_layer, .n_embd = 4096, .n_head = 32, .n_kv_head = 32,
                               .n_ff = 11008, .n_vocab = 32000, .n_ctx = n_past + 128,
                               .max_tok = 64, .rope_layout = HASS_ROPE_PAIRS,
                               .rope_theta = 10000.f, .norm_eps = 1e-5f};
    hass_err err;
    hass_cuda_llama *m = hass_cuda_llama_new(&cfg, &err);
    if (!m) {
        fprintf(stderr, "bench_llama: %s\n", hass_errmsg());
        return err == HASS_ENODEV ? 4 : 1;
    }
    TRY(hass_cuda_llama_randomize(m, 1));
    double floor_s = (double)m->weight_bytes / bw;
    printf("model llama2-7b-shape layers %d weights_read_GB %.3f past %d\n", n_layer,
           (double)m->weight_bytes / 1e9, n_past);
    printf("decode_floor_ms %.3f\n", floor_s * 1e3);

    if (attn_only) { // two calls of a 60-token tree attention (for a profiler), then stop
        int32_t tk[64], ps[64];
        uint8_t mk[64 * 64];
        uint32_t sd = 7;
        make_tree(mk, ps, tk, 60, n_past, 32000, &sd);
        TRY(hass_cuda_h2d(m->mask, mk, 60 * 60));
        for (int r = 0; r < 2; r++)
            TRY(hass_cuda_attention(m->att, m->qkv, m->k_cache, m->v_cache, m->mask, n_past, 60,
                                    m->qkv_dim, 32, 32, 128));
        TRY(hass_cuda_stream_sync());
        return 0;
    }

    // GEMV kernel vs cuBLAS at small n, on the layer-0 matrices and the LM head
    const struct { const char *what; const uint16_t *w; int in, out; } mats[] = {
        {"qkv", m->layers[0].wqkv, 4096, m->qkv_dim}, {"gate_up", m->layers[0].w_gu, 4096, 2 * 11008},
        {"down", m->layers[0].w_down, 11008, 4096},   {"lm_head", m->lm_head, 4096, 32000}};
    int gemv_max = 0, still = 1;
    TRY(hass_cuda_fill_bf16(m->xb, (size_t)64 * 11008, 5, 1.f, 0.f));
    for (int n = 1; n <= 64; n *= 2) {
        double tb = 0, tg = 0;
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++) {
            double b = time_matmul(m, mats[i].w, n, mats[i].in, mats[i].out, 1);
            double g = n <= 8 ? time_matmul(m, mats[i].w, n, mats[i].in, mats[i].out, 2) : 1e9;
            double bytes = (double)mats[i].in * mats[i].out * 2;
            printf("matmul %s n %d cublas_us %.1f (%.0f GB/s) gemv_us %.1f (%.0f GB/s)\n",
                   mats[i].what, n, b * 1e6, bytes / b / 1e9, n <= 8 ? g * 1e6 : 0,
                   n <= 8 ? bytes / g / 1e9 : 0);
            tb += b, tg += g;
        }
        if (still && tg < tb) gemv_max = n;
        else still = 0;
    }
    hass_cuda_matmul_set_gemv_max(gemv_max);
    printf("gemv_max_n %d\n", gemv_max);

    // decode step
    uint32_t seed = 42;
    int32_t tok[64], pos[64];
    uint8_t mask[64 * 64];
    tok[0] = 1, pos[0] = n_past;
    TRY(hass_cuda_llama_set_input(m, tok, pos, NULL, 1));
    double dec = time_forward(m, n_past, 1, 0), decg = time_forward_graph(m, n_past, 1, 0);
    printf("decode_ms %.3f decode_graph_ms %.3f\n", dec * 1e3, decg * 1e3);
    double best_dec = decg > 0 && decg < dec ? decg : dec;
    printf("decode_vs_floor %.3f (target <= 1.3: %s)\n", best_dec / floor_s,
           best_dec / floor_s <= 1.3 ? "MET" : "MISSED");

    // attention alone, per layer (n_past 512): decode and a 60-token tree
    for (int k = 0; k < 2; k++) {
        int n = k ? 60 : 1;
        make_tree(mask, pos, tok, n, n_past, 32000, &seed);
        TRY(hass_cuda_h2d(m->mask, mask, (size_t)n * n));
        double ts[64];
        for (int r = 0; r <= g_reps; r++) {
            double t0 = hass_now();
            for (int l = 0; l < 10; l++)
                TRY(hass_cuda_attention(m->att, m->qkv, m->k_cache, m->v_cache, m->mask, n_past, n,
                                        m->qkv_dim, 32, 32, 128));
            TRY(hass_cuda_stream_sync());
            if (r) ts[r - 1] = (hass_now() - t0) / 10;
        }
        printf("attention n %d past %d us_per_layer %.1f\n", n, n_past, median(ts, g_reps) * 1e6);
    }

    // verify of n tree tokens
    static const int ns[] = {1, 2, 4, 8, 16, 32, 48, 60, 64};
    double ver[9], verg[9];
    for (int i = 0; i < 9; i++) {
        int n = ns[i];
        make_tree(mask, pos, tok, n, n_past, 32000, &seed);
        TRY(hass_cuda_llama_set_input(m, tok, pos, mask, n));
        ver[i] = time_forward(m, n_past, n, 1);
        verg[i] = time_forward_graph(m, n_past, n, 1);
        printf("verify n %2d ms %.3f graph_ms %.3f ratio_to_1 %.3f\n", n, ver[i] * 1e3,
               verg[i] * 1e3, (verg[i] > 0 ? verg[i] : ver[i]) / (verg[0] > 0 ? verg[0] : ver[0]));
    }
    double v60 = verg[7] > 0 ? verg[7] : ver[7], v1 = verg[0] > 0 ? verg[0] : ver[0];
    printf("verify60_vs_verify1 %.3f (target <= 1.3: %s)\n", v60 / v1, v60 / v1 <= 1.3 ? "MET" : "MISSED");

    // acceptance + KV compaction on the device (a 60-node tree, 5 kept)
    int32_t *d_path, *d_np, *d_par, *d_tgt, *d_idx;
    int32_t par[64], tgt[64], idx[5] = {0, 3, 9, 20, 41};
    for (int i = 0; i < 60; i++) par[i] = i ? (i - 1) / 3 : -1, tgt[i] = tok[i];
    TRY(hass_cuda_malloc((void **)&d_path, 64 * 4));
    TRY(hass_cuda_malloc((void **)&d_np, 4));
    TRY(hass_cuda_malloc((void **)&d_par, 64 * 4));
    TRY(hass_cuda_malloc((void **)&d_tgt, 64 * 4));
    TRY(hass_cuda_malloc((void **)&d_idx, 5 * 4));
    TRY(hass_cuda_h2d(d_par, par, 60 * 4));
    TRY(hass_cuda_h2d(d_tgt, tgt, 60 * 4));
    TRY(hass_cuda_h2d(d_idx, idx, 5 * 4));
    double ta[64];
    for (int r = 0; r < g_reps; r++) {
        double t0 = hass_now();
        TRY(hass_cuda_argmax(d_tgt, m->logits, 60, 32000));
        TRY(hass_cuda_accept_greedy(d_path, d_np, m->tok, d_par, d_tgt, 60));
        TRY(hass_cuda_kv_compact(m->k_cache, m->v_cache, d_idx, 5, n_past, n_layer,
                                 (size_t)cfg.n_ctx * m->kv_dim, m->kv_dim));
        TRY(hass_cuda_stream_sync());
        ta[r] = hass_now() - t0;
    }
    double acc_s = median(ta, g_reps);
    printf("accept_compact_ms %.3f\n", acc_s * 1e3);

    // draft cycle: a one-layer head of the same width with the target's LM head, plus the fc
    // (2E -> E) per step; catch-up over 4 accepted tokens, then 5 expansions of 10 nodes with
    // log-softmax + top-10 each and a host round trip per level (tree bookkeeping).
    hass_cuda_llama_cfg dc = cfg;
    dc.n_layer = 1;
    hass_cuda_llama *d = hass_cuda_llama_new(&dc, &err);
    if (!d) {
        fprintf(stderr, "bench_llama: draft: %s\n", hass_errmsg());
        return err == HASS_ENODEV ? 4 : 1;
    }
    TRY(hass_cuda_llama_randomize(d, 9));
    uint16_t *fc;
    float *fcin, *topv;
    int32_t *topi, hi[100];
    TRY(hass_cuda_malloc((void **)&fc, (size_t)4096 * 8192 * 2));
    TRY(hass_cuda_fill_bf16(fc, (size_t)4096 * 8192, 3, 0.01f, 0.f));
    TRY(hass_cuda_malloc((void **)&fcin, (size_t)64 * 8192 * 4));
    TRY(hass_cuda_fill_f32(fcin, (size_t)64 * 8192, 4, 1.f, 0.f));
    TRY(hass_cuda_malloc((void **)&topv, 100 * 4));
    TRY(hass_cuda_malloc((void **)&topi, 100 * 4));
    uint16_t *fcxb;
    TRY(hass_cuda_malloc((void **)&fcxb, (size_t)64 * 8192 * 2));
    double td[64];
    for (int r = 0; r <= g_reps; r++) {
        double t0 = hass_now();
        for (int level = 0; level < 6; level++) {
            int n = level == 0 ? 4 : 10;
            make_tree(mask, pos, tok, n, n_past + level, 32000, &seed);
            TRY(hass_cuda_llama_set_input(d, tok, pos, mask, n));
            TRY(hass_cuda_matmul(d->cublas, d->x, fcin, fc, fcxb, n, 8192, 4096, 0.f));
            TRY(hass_cuda_llama_forward(d, n_past + level * 10, n, 1));
            TRY(hass_cuda_log_softmax(d->logits, d->logits, n, 32000));
            TRY(hass_cuda_topk(topi, topv, d->logits, n, 32000, 10));
            TRY(hass_cuda_d2h(hi, topi, (size_t)n * 10 * 4));
        }
        if (r > 0) td[r - 1] = hass_now() - t0;
    }
    double draft_s = median(td, g_reps);
    printf("draft_cycle_ms %.3f (6 levels, top-10)\n", draft_s * 1e3);

    double cycle = draft_s + v60 + acc_s;
    printf("cycle_ms %.3f (draft + verify 60 + accept)\n", cycle * 1e3);
    static const double taus[] = {3.0, 3.5, 4.0, 4.5, 5.0};
    for (int i = 0; i < 5; i++)
        printf("projected_speedup tau %.1f: %.2fx\n", taus[i], taus[i] * best_dec / cycle);

    hass_cuda_free(fc), hass_cuda_free(fcin), hass_cuda_free(fcxb), hass_cuda_free(topv), hass_cuda_free(topi);
    hass_cuda_free(d_path), hass_cuda_free(d_np), hass_cuda_free(d_par), hass_cuda_free(d_tgt), hass_cuda_free(d_idx);
    hass_cuda_llama_free(d);
    hass_cuda_llama_free(m);
    hass_cuda_set_stream(NULL);
    hass_cuda_stream_destroy(stream);
    return 0;
}
