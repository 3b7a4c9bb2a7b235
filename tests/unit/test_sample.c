// test_sample.c: RNG determinism and range, logits processor (temperature, top-k, top-p,
// ties), inverse-CDF sampling against exact distributions (chi-square), argmax and top-k.
#include "chi2.h"
#include "sample.h"
#include "unit.h"

// xoshiro256** reference outputs for state {1,2,3,4} (from the authors' C code).
static void test_rng(void) {
    hass_rng r = {{1, 2, 3, 4}};
    uint64_t want[3] = {11520ull, 0ull, 1509978240ull};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        uint64_t v = hass_rng_next(&r);
        if (v != want[i]) ok = 0;
    }
    CHECK("rng_xoshiro_reference", ok, "outputs differ from the reference sequence");

    hass_rng a, b, c;
    hass_rng_seed(&a, 42);
    hass_rng_seed(&b, 42);
    hass_rng_seed(&c, 43);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = hass_rng_next(&a), y = hass_rng_next(&b), z = hass_rng_next(&c);
        if (x != y) same = 0;
        if (x != z) differ = 1;
    }
    CHECK("rng_seed_deterministic", same, "same seed gave different sequences");
    CHECK("rng_seed_distinct", differ, "seeds 42 and 43 gave the same sequence");

    hass_rng z0;
    hass_rng_seed(&z0, 0);
    CHECK("rng_seed_zero_valid", (z0.s[0] | z0.s[1] | z0.s[2] | z0.s[3]) != 0, "zero state");

    double mn = 1, mx = 0, sum = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = hass_rng_uniform(&a);
        if (u < mn) mn = u;
        if (u > mx) mx = u;
        sum += u;
    }
    CHECK("rng_uniform_range", mn >= 0.0 && mx < 1.0, "min %g max %g", mn, mx);
    CHECK("rng_uniform_mean", fabs(sum / n - 0.5) < 0.005, "mean %g", sum / n);
}

static void test_argmax_topk(void) {
    float x[8] = {1, 5, 3, 5, -2, 5, 0, 4};
    CHECK("argmax_tie_lowest", hass_sample_argmax(x, 8) == 1, "got %d", hass_sample_argmax(x, 8));
    int32_t idx[4];
    float val[4];
    hass_topk(x, 8, 4, idx, val);
    CHECK("topk_order_ties", idx[0] == 1 && idx[1] == 3 && idx[2] == 5 && idx[3] == 7,
          "got %d %d %d %d", idx[0], idx[1], idx[2], idx[3]);
    CHECK("topk_values", val[0] == 5 && val[3] == 4, "got %g %g", val[0], val[3]);
    float big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (float)((i * 37) % 101);
    int32_t id2[10];
    hass_topk(big, 1000, 10, id2, NULL);
    int ok = 1;
    for (int j = 0; j < 10; j++) {
        // value 100 appears at i where i*37 % 101 == 100: every 101 steps; 10 lowest such ids
        if (big[id2[j]] != 100.f) ok = 0;
        if (j && id2[j] <= id2[j - 1]) ok = 0;
    }
    CHECK("topk_large_ties_by_id", ok, "first %d", id2[0]);
    float l[5] = {0, 1, 2, 3, 4};
    hass_log_softmax(l, 5);
    double s = 0;
    for (int i = 0; i < 5; i++) s += exp(l[i]);
    CHECK("log_softmax_normalised", fabs(s - 1) < 1e-6, "sum %g", s);
}

static void test_processor(void) {
    float logits[6] = {2.0f, 1.0f, 2.0f, 0.5f, -1.0f, 2.0f};
    float p[6];
    hass_sampler g = {0.f, 0, 1.f};
    hass_sampler_probs(&g, logits, 6, p);
    CHECK("probs_greedy_onehot", p[0] == 1.f && p[2] == 0.f && p[5] == 0.f, "p0 %g", p[0]);

    hass_sampler t1 = {1.f, 0, 1.f};
    hass_sampler_probs(&t1, logits, 6, p);
    double z = 0;
    for (int i = 0; i < 6; i++) z += exp(logits[i]);
    int ok = 1;
    for (int i = 0; i < 6; i++)
        if (fabs(p[i] - exp(logits[i]) / z) > 1e-6) ok = 0;
    CHECK("probs_softmax_t1", ok, "p0 %g", p[0]);

    hass_sampler t05 = {0.5f, 0, 1.f};
    hass_sampler_probs(&t05, logits, 6, p);
    z = 0;
    for (int i = 0; i < 6; i++) z += exp(logits[i] / 0.5);
    CHECK("probs_temperature", fabs(p[1] - exp(1.0 / 0.5) / z) < 1e-6, "p1 %g", p[1]);

    // top-k = 2 with a three-way tie at 2.0: ids 0 and 2 stay, 5 goes
    hass_sampler k2 = {1.f, 2, 1.f};
    hass_sampler_probs(&k2, logits, 6, p);
    CHECK("probs_topk_tie_lower_id", fabs(p[0] - 0.5f) < 1e-6 && fabs(p[2] - 0.5f) < 1e-6 &&
                                         p[5] == 0.f && p[1] == 0.f,
          "p %g %g %g %g", p[0], p[1], p[2], p[5]);

    // top-p: probs .5 .3 .2 -> p=0.7 keeps the first two (0.8 >= 0.7)
    float l3[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    hass_sampler tp = {1.f, 0, 0.7f};
    hass_sampler_probs(&tp, l3, 3, p);
    CHECK("probs_topp_prefix", fabs(p[0] - 0.625f) < 1e-5 && fabs(p[1] - 0.375f) < 1e-5 &&
                                   p[2] == 0.f,
          "p %g %g %g", p[0], p[1], p[2]);
    hass_sampler tp2 = {1.f, 0, 0.4f};
    hass_sampler_probs(&tp2, l3, 3, p);
    CHECK("probs_topp_keeps_one", p[0] == 1.f && p[1] == 0.f, "p %g %g", p[0], p[1]);

    // order: temperature, then top-k, then top-p over the top-k survivors
    float l4[4] = {3.f, 2.f, 1.f, 0.f};
    hass_sampler kp = {2.f, 3, 0.6f};
    hass_sampler_probs(&kp, l4, 4, p);
    double e0 = exp(1.5), e1 = exp(1.0), e2 = exp(0.5), zz = e0 + e1 + e2;
    // survivors 0,1,2: p0 = e0/zz = .506 < .6 -> keep 0 and 1
    CHECK("probs_k_then_p", fabs(p[0] - e0 / (e0 + e1)) < 1e-5 && p[2] == 0.f && p[3] == 0.f,
          "p %g %g %g (%g)", p[0], p[1], p[2], e0 / zz);
}

// Empirical sampling matches the processed distribution (chi-square, alpha 1e-4).
static void test_sampling_chi2(void) {
    enum { V = 12, N = 200000 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = (float)sin(i * 1.7) * 2.f;
    hass_sampler s = {0.8f, 8, 0.95f};
    float exact[V], scratch[V];
    hass_sampler_probs(&s, logits, V, exact);
    double pe[V];
    for (int i = 0; i < V; i++) pe[i] = exact[i];
    int64_t counts[V] = {0};
    hass_rng r;
    hass_rng_seed(&r, 7);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int32_t t = hass_sample_token(&s, logits, V, &r, scratch);
        if (t < 0 || t >= V || exact[t] == 0.f) bad++;
        else counts[t]++;
    }
    CHECK("sample_never_filtered", bad == 0, "%d samples outside the support", bad);
    int df;
    double st = chi2_stat(counts, pe, V, N, &df);
    CHECK("sample_chi2", st < chi2_crit(df, 3.72), "chi2 %g df %d crit %g", st, df,
          chi2_crit(df, 3.72));
    // and a wrong distribution (no temperature) is rejected by the same statistic
    hass_sampler s1 = {1.0f, 8, 0.95f};
    float wrong[V];
    hass_sampler_probs(&s1, logits, V, wrong);
    for (int i = 0; i < V; i++) pe[i] = wrong[i] > 0 ? wrong[i] : 1e-12;
    st = chi2_stat(counts, pe, V, N, &df);
    CHECK("sample_chi2_detects_wrong_temp", st > chi2_crit(df, 3.72), "chi2 %g", st);

    float w[4] = {0.f, 0.f, 0.f, 0.f};
    CHECK("sample_probs_all_zero", hass_sample_probs(w, 4, 0.3) == -1, "expected -1");
    float w2[4] = {0.f, 1.f, 0.f, 1.f};
    CHECK("sample_probs_inverse_cdf",
          hass_sample_probs(w2, 4, 0.0) == 1 && hass_sample_probs(w2, 4, 0.49) == 1 &&
              hass_sample_probs(w2, 4, 0.5) == 3 && hass_sample_probs(w2, 4, 0.999999) == 3,
          "wrong cells");
}

int main(void) {
    test_rng();
    test_argmax_topk();
    test_processor();
    test_sampling_chi2();
    UNIT_DONE();
}
