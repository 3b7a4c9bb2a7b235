// test_kernels_cpu.c: known answers for the CPU twins of the CUDA kernels (libcore/engine/ops_cpu.c),
// which are the specification the GPU kernels are tested against. Runs everywhere.
#include "accept.h"
#include "ops.h"
#include "unit.h"

// bf16 conversion: exact values, round to nearest even at halfway points, NaN kept.
static void test_bf16(void) {
    CHECK("bf16 1.0", hass_f32_to_bf16(1.0f) == 0x3f80, "%04x", hass_f32_to_bf16(1.0f));
    CHECK("bf16 -2.0", hass_f32_to_bf16(-2.0f) == 0xc000, "%04x", hass_f32_to_bf16(-2.0f));
    float h1 = 1.0f + 1.0f / 256, h3 = 1.0f + 3.0f / 256; // halfway cases
    CHECK("bf16 ties to even (down)", hass_f32_to_bf16(h1) == 0x3f80, "%04x", hass_f32_to_bf16(h1));
    CHECK("bf16 ties to even (up)", hass_f32_to_bf16(h3) == 0x3f82, "%04x", hass_f32_to_bf16(h3));
    CHECK("bf16 round trip", hass_bf16_to_f32(0x3fc0) == 1.5f, "%g", hass_bf16_to_f32(0x3fc0));
    float nan = hass_bf16_to_f32(hass_f32_to_bf16(NAN));
    CHECK("bf16 NaN stays NaN", nan != nan, "%g", nan);
}

// RoPE: position 0 is the identity, pair (1, 0) at angle 1 becomes (cos 1, sin 1), layouts.
static void test_rope(void) {
    float x[8] = {1, 0, 1, 0, 0.5f, -2, 3, 4}, y[8];
    memcpy(y, x, sizeof x);
    int32_t p0 = 0, p1 = 1;
    hass_cpu_rope(y, &p0, 1, 8, 2, 4, 10000.f, HASS_ROPE_PAIRS);
    CHECK("rope pos 0 identity", !memcmp(x, y, sizeof x), "changed");
    hass_cpu_rope(y, &p1, 1, 8, 1, 2, 10000.f, HASS_ROPE_PAIRS);
    CHECK("rope angle 1", fabsf(y[0] - cosf(1)) < 1e-6f && fabsf(y[1] - sinf(1)) < 1e-6f,
          "(%g, %g)", y[0], y[1]);
    // head_dim 4: adjacent rotates (0,1) by 1 and (2,3) by 1/100; half rotates (0,2) and (1,3)
    float a[4] = {1, 0, 1, 0}, b[4] = {1, 1, 0, 0};
    hass_cpu_rope(a, &p1, 1, 4, 1, 4, 10000.f, HASS_ROPE_PAIRS);
    hass_cpu_rope(b, &p1, 1, 4, 1, 4, 10000.f, HASS_ROPE_HALF);
    CHECK("rope layouts pair differently",
          fabsf(a[0] - b[0]) < 1e-6f && fabsf(a[1] - b[2]) < 1e-6f && fabsf(a[2] - b[1]) < 1e-6f &&
              fabsf(a[3] - b[3]) < 1e-6f && fabsf(a[2] - cosf(0.01f)) < 1e-6f,
          "adjacent (%g %g %g %g) half (%g %g %g %g)", a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]);
}

// Attention: one key returns its value; equal keys average; mask hides block entries.
static void test_attention(void) {
    float q[2] = {1, 0}, k[6] = {1, 0, 1, 0, 5, 5}, v[6] = {2, 4, 6, 8, 100, 100}, o[4];
    hass_cpu_attention(o, q, k, v, NULL, 0, 1, 2, 1, 1, 2);
    CHECK("attention single key", o[0] == 2 && o[1] == 4, "(%g, %g)", o[0], o[1]);
    // n_past 2 equal keys, block of 1 masked out: mean of the two values
    uint8_t mask0[1] = {0};
    hass_cpu_attention(o, q, k, v, mask0, 2, 1, 2, 1, 1, 2);
    CHECK("attention masked block, average of equal keys", fabsf(o[0] - 4) < 1e-6f && fabsf(o[1] - 6) < 1e-6f,
          "(%g, %g)", o[0], o[1]);
    // nothing visible -> zeros
    hass_cpu_attention(o, q, k, v, mask0, 0, 1, 2, 1, 1, 2);
    CHECK("attention nothing visible", o[0] == 0 && o[1] == 0, "(%g, %g)", o[0], o[1]);
    // GQA: 2 query heads share 1 KV head
    float q2[4] = {1, 0, 0, 1};
    hass_cpu_attention(o, q2, k, v, NULL, 0, 1, 4, 2, 1, 2);
    CHECK("attention GQA", o[0] == 2 && o[1] == 4 && o[2] == 2 && o[3] == 4, "(%g %g %g %g)",
          o[0], o[1], o[2], o[3]);
}

// SwiGLU, add and matmul on small known cases.
static void test_elementwise(void) {
    float gu[4] = {0, 1, 5, 2}, y[2];
    hass_cpu_swiglu(y, gu, 1, 2);
    CHECK("swiglu", y[0] == 0 && fabsf(y[1] - 2.0f / (1 + expf(-1))) < 1e-6f, "(%g, %g)", y[0], y[1]);
    float a[2] = {1, 2}, b[2] = {10, 20};
    hass_cpu_add(a, b, 2);
    CHECK("add", a[0] == 11 && a[1] == 22, "(%g, %g)", a[0], a[1]);
    // W = [[1, 0], [0, 2], [1, 1]] (bf16), x = [1.00390625, 3] -> bf16(x) = [1, 3]
    uint16_t w[6] = {0x3f80, 0, 0, 0x4000, 0x3f80, 0x3f80};
    float x[2] = {1.00390625f, 3}, out[3] = {0, 0, 100};
    hass_cpu_matmul(out, x, w, 1, 2, 3, 0.f);
    CHECK("matmul rounds x to bf16", out[0] == 1 && out[1] == 6 && out[2] == 4, "(%g %g %g)",
          out[0], out[1], out[2]);
    out[2] = 100;
    hass_cpu_matmul(out + 2, x, w + 4, 1, 2, 1, 1.f);
    CHECK("matmul beta 1 adds", out[2] == 104, "%g", out[2]);
    uint16_t tab[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
    int32_t tok[3] = {1, 2, -1};
    float e[6];
    hass_cpu_embed(e, tab, tok, 3, 2, 2);
    CHECK("embed rows and zero for a bad id", e[0] == 3 && e[1] == 4 && e[2] == 0 && e[3] == 0 && e[4] == 0,
          "(%g %g %g %g)", e[0], e[1], e[2], e[3]);
}

// Argmax, top-k (ties to the lower index), log-softmax.
static void test_rows(void) {
    float x[4] = {1, 3, 3, 2};
    int32_t i, idx[6];
    float v[6];
    hass_cpu_argmax(&i, x, 1, 4);
    CHECK("argmax tie -> lower index", i == 1, "%d", i);
    hass_cpu_topk(idx, v, x, 1, 4, 3);
    CHECK("topk sorted, ties by index", idx[0] == 1 && idx[1] == 2 && idx[2] == 3 && v[2] == 2,
          "%d %d %d", idx[0], idx[1], idx[2]);
    hass_cpu_topk(idx, v, x, 1, 4, 6);
    CHECK("topk k > n pads with -1", idx[3] == 0 && idx[4] == -1 && v[5] == -INFINITY, "%d %d",
          idx[3], idx[4]);
    float u[4] = {7, 7, 7, 7}, l[4];
    hass_cpu_log_softmax(l, u, 1, 4);
    CHECK("log_softmax uniform", fabsf(l[0] + logf(4)) < 1e-6f && l[3] == l[0], "%g", l[0]);
}

// Sampling rules: greedy, top-k 1, the u split of two tokens, top-p keeping only the best.
static void test_sample(void) {
    float x[3] = {0, logf(3), -100}; // p = 1/4, 3/4, ~0
    int32_t t;
    float u;
    hass_cpu_sample(&t, x, &(float){0.9f}, 1, 3, 0.f, 0, 1.f);
    CHECK("sample temp 0 is argmax", t == 1, "%d", t);
    hass_cpu_sample(&t, x, &(float){0.0f}, 1, 3, 1.f, 1, 1.f);
    CHECK("sample top_k 1 is argmax", t == 1, "%d", t);
    u = 0.2f;
    hass_cpu_sample(&t, x, &u, 1, 3, 1.f, 0, 1.f);
    CHECK("sample u 0.2 -> first token", t == 0, "%d", t);
    u = 0.3f;
    hass_cpu_sample(&t, x, &u, 1, 3, 1.f, 0, 1.f);
    CHECK("sample u 0.3 -> second token", t == 1, "%d", t);
    u = 0.1f;
    hass_cpu_sample(&t, x, &u, 1, 3, 1.f, 0, 0.5f);
    CHECK("sample top_p 0.5 keeps only the best", t == 1, "%d", t);
    hass_cpu_sample(&t, x, &u, 1, 3, 1.f, 3, 0.5f);
    CHECK("sample top_k 3 top_p 0.5 keeps only the best", t == 1, "%d", t);
    u = 0.2f;
    hass_cpu_sample(&t, x, &u, 1, 3, 1.f, 3, 1.f);
    CHECK("sample top_k order: u 0.2 -> best token", t == 1, "%d", t);
    u = 0.8f;
    hass_cpu_sample(&t, x, &u, 1, 3, 1.f, 3, 1.f);
    CHECK("sample top_k order: u 0.8 -> second best", t == 0, "%d", t);
}

// Greedy acceptance on a hand-made tree, and KV compaction.
static void test_accept_compact(void) {
    //        0
    //      1   2      tokens: 1:'a' 2:'b'; target after 0 is 'b' -> node 2
    //     3     4,5   4:'c' 5:'d'; target after 2 is 'd' -> node 5; target after 5 'x': stop
    int32_t tok[6] = {0, 'a', 'b', 'z', 'c', 'd'}, par[6] = {-1, 0, 0, 1, 2, 2};
    int32_t tgt[6] = {'b', 'q', 'd', 'q', 'q', 'x'}, path[6], np;
    hass_cpu_accept_greedy(path, &np, tok, par, tgt, 6);
    CHECK("accept greedy path", np == 3 && path[0] == 0 && path[1] == 2 && path[2] == 5, "n %d", np);
    tgt[0] = 'y';
    hass_cpu_accept_greedy(path, &np, tok, par, tgt, 6);
    CHECK("accept greedy root only", np == 1 && path[0] == 0, "n %d", np);
    // 2 layers, ctx 6, dim 1; L0 2; keep 0, 2, 3 of the block -> entries 2,4,5 -> 2,3,4
    float k[12] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}, v[12];
    for (int i = 0; i < 12; i++) v[i] = -k[i];
    int32_t idx[3] = {0, 2, 3};
    hass_cpu_kv_compact(k, v, idx, 3, 2, 2, 6, 1);
    CHECK("kv compact", k[2] == 2 && k[3] == 4 && k[4] == 5 && k[9] == 14 && k[10] == 15 &&
                            v[3] == -4 && v[10] == -15 && k[1] == 1,
          "%g %g %g", k[2], k[3], k[4]);
}

// The stochastic acceptance twin is accept.c's rule: random trees (duplicate tokens among
// siblings included), logits peaked enough that drafts get accepted, several processors; the
// uniforms hass_accept_sample draws are given to the twin, which must return the same path and
// bonus. Also checks that the walks both accept and reject (the test exercises both branches).
static void test_accept_sample_twin(void) {
    enum { V = 40, NMAX = 24, TRIALS = 400 };
    static const float procs[][3] = {{1.f, 0, 1.f}, {0.7f, 5, 1.f}, {1.3f, 0, 0.8f}, {1.f, 3, 0.6f}};
    hass_tree_cfg tc = {NMAX, NMAX - 1, NMAX - 1}; // any shape of NMAX nodes
    hass_err e;
    hass_tree *t = hass_tree_new(&tc, &e);
    float *logits = malloc(sizeof(float) * NMAX * V), probs[V];
    uint64_t st = 99;
    int bad = 0, acc_any = 0, rej_any = 0, first_bad = -1;
    for (int trial = 0; trial < TRIALS && t; trial++) {
        int n = 1 + (int)((st = st * 6364136223846793005ull + 1442695040888963407ull) >> 33) % NMAX;
        int32_t tok[NMAX], par[NMAX];
        tok[0] = 1, par[0] = -1;
        for (int i = 1; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            par[i] = (int)((st >> 33) % (uint64_t)i);
            tok[i] = (int)((st >> 20) % 6); // few tokens: duplicates among siblings happen
        }
        for (int i = 0; i < n * V; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            float r = (float)((st >> 40) & 0xffff) / 65536.f;
            logits[i] = (i % V < 6 ? 3.f : 0.f) + 2.f * r; // tokens 0..5 likely
        }
        if (hass_tree_set(t, n, tok, par)) {
            bad++;
            continue;
        }
        const float *pr = procs[trial % 4];
        hass_sampler smp = {pr[0], (int)pr[1], pr[2]};
        hass_rng rng, copy;
        hass_rng_seed(&rng, (uint64_t)trial);
        copy = rng;
        double u[NMAX + 1];
        for (int i = 0; i <= n; i++) u[i] = hass_rng_uniform(&copy);
        hass_accept_result r;
        hass_accept_sample(t, logits, V, &smp, &rng, probs, &r);
        int32_t path[NMAX], np = 0, bonus = -2;
        hass_cpu_accept_sample(path, &np, &bonus, tok, par, logits, u, n, V, smp.temp, smp.top_k,
                               smp.top_p, probs);
        int same = np == r.n_acc + 1 && bonus == r.bonus;
        for (int i = 0; same && i < np; i++) same = path[i] == r.path[i];
        if (!same && first_bad < 0) first_bad = trial;
        bad += !same;
        acc_any |= r.n_acc > 0;
        rej_any |= r.n_acc == 0 && n > 1;
    }
    CHECK("accept_sample twin == accept.c (400 random trees, 4 processors)",
          t && bad == 0 && acc_any && rej_any, "%d differ (first trial %d), accepted %d rejected %d",
          bad, first_bad, acc_any, rej_any);
    hass_tree_free(t);
    free(logits);
}

// KV store: the K part (after q_dim) and the V part of each qkv row land at rows n_past + r.
static void test_kv_store_cpu(void) {
    // two rows of stride 7: q (2 values), k (2), v (2), one unused
    float qkv[14] = {1, 2, 10, 11, 20, 21, -1, 3, 4, 12, 13, 22, 23, -1};
    float k[8] = {0}, v[8] = {0};
    hass_cpu_kv_store(k, v, qkv, 1, 2, 7, 2, 2);
    float ek[8] = {0, 0, 10, 11, 12, 13, 0, 0}, ev[8] = {0, 0, 20, 21, 22, 23, 0, 0};
    CHECK("kv store rows after n_past", !memcmp(k, ek, sizeof k) && !memcmp(v, ev, sizeof v),
          "k %g %g %g %g v %g %g %g %g", k[2], k[3], k[4], k[5], v[2], v[3], v[4], v[5]);
}

int main(void) {
    test_bf16();
    test_rope();
    test_attention();
    test_elementwise();
    test_rows();
    test_sample();
    test_accept_compact();
    test_accept_sample_twin();
    test_kv_store_cpu();
    UNIT_DONE();
}
