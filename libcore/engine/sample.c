// sample.c: xoshiro256** RNG, logits processor (temperature, top-k, top-p), inverse-CDF
// sampling, argmax and top-k selection. See sample.h for the exact definitions.
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// RNG

// splitmix64 step: used only to expand the seed.
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Seed the four state words from splitmix64(seed).
void hass_rng_seed(hass_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

// Rotate left.
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// xoshiro256** next output.
uint64_t hass_rng_next(hass_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

// Uniform in [0, 1) from the top 53 bits.
double hass_rng_uniform(hass_rng *r) { return (double)(hass_rng_next(r) >> 11) * 0x1.0p-53; }

// ----------------------------------------------------------------------------
// selection helpers

// Whether (va, ia) ranks before (vb, ib): larger value first, then lower index. NaN ranks last.
static inline int ranks_before(float va, int32_t ia, float vb, int32_t ib) {
    if (isnan(va)) return isnan(vb) ? ia < ib : 0;
    if (isnan(vb)) return 1;
    if (va != vb) return va > vb;
    return ia < ib;
}

// Difference between the largest and the second largest of n logits.
float hass_top2_margin(const float *x, int n) {
    float a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] > a) b = a, a = x[i];
        else if (x[i] > b) b = x[i];
    }
    return a - b;
}

// Index of the largest value, lowest index on ties.
int32_t hass_sample_argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (ranks_before(x[i], i, x[best], best)) best = i;
    return best;
}

// Sift the heap entry at i down; the root is the entry ranking last (the worst kept).
static void heap_down(int32_t *idx, float *val, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && ranks_before(val[w], idx[w], val[l], idx[l])) w = l;
        if (r < k && ranks_before(val[w], idx[w], val[r], idx[r])) w = r;
        if (w == i) return;
        int32_t ti = idx[i]; idx[i] = idx[w]; idx[w] = ti;
        float tv = val[i]; val[i] = val[w]; val[w] = tv;
        i = w;
    }
}

// Top-k by a bounded heap, then heap-sort into descending rank order.
static void topk_impl(const float *x, int n, int k, int32_t *idx, float *val) {
    if (k <= 0) return;
    for (int i = 0; i < k; i++) { idx[i] = i; val[i] = x[i]; }
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(idx, val, k, i);
    for (int i = k; i < n; i++) {
        if (ranks_before(x[i], i, val[0], idx[0])) {
            idx[0] = i;
            val[0] = x[i];
            heap_down(idx, val, k, 0);
        }
    }
    // heap sort: repeatedly move the worst to the end -> descending rank order
    for (int m = k - 1; m > 0; m--) {
        int32_t ti = idx[0]; idx[0] = idx[m]; idx[m] = ti;
        float tv = val[0]; val[0] = val[m]; val[m] = tv;
        heap_down(idx, val, m, 0);
    }
}

// The k best of x, descending, ties by lower index. val may be NULL (then a stack buffer helps
// for small k; large k uses idx-only bookkeeping through a temporary array).
void hass_topk(const float *x, int n, int k, int32_t *idx, float *val) {
    if (k > n) k = n;
    if (val) {
        topk_impl(x, n, k, idx, val);
        return;
    }
    float stackv[256];
    float *v = k <= 256 ? stackv : malloc(sizeof(float) * (size_t)k);
    HASS_ASSERT(v);
    topk_impl(x, n, k, idx, v);
    if (v != stackv) free(v);
}

// In-place log-softmax, max-subtracted, sum in double in index order.
void hass_log_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    float lse = mx + (float)log(s);
    for (int i = 0; i < n; i++) x[i] -= lse;
}

// ----------------------------------------------------------------------------
// processor

// Whether the sampler is greedy.
int hass_sampler_greedy(const hass_sampler *s) { return !s || !(s->temp > 0.f); }

// Quickselect: afterwards a[k] holds the (k+1)-th largest value (NaN treated as -inf).
static float kth_largest(float *a, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float piv = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] > piv) i++;
            while (a[j] < piv) j--;
            if (i <= j) {
                float t = a[i]; a[i] = a[j]; a[j] = t;
                i++; j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return a[k];
}

// Comparison context for sorting survivor ids by probability (desc), then id (asc).
static _Thread_local const float *g_sort_p;
// qsort comparator over ids by descending probability, ascending id.
static int cmp_prob_desc(const void *a, const void *b) {
    int32_t ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    float pa = g_sort_p[ia], pb = g_sort_p[ib];
    if (pa != pb) return pa > pb ? -1 : 1;
    return ia < ib ? -1 : 1;
}

// Processed distribution (temperature, top-k, top-p, renormalise).
void hass_sampler_probs(const hass_sampler *s, const float *logits, int n, float *probs) {
    if (hass_sampler_greedy(s)) {
        memset(probs, 0, sizeof(float) * (size_t)n);
        probs[hass_sample_argmax(logits, n)] = 1.f;
        return;
    }
    float inv_t = 1.0f / s->temp;
    // survivors of top-k are marked by keep[i]; we reuse probs as scratch for the threshold
    int use_k = s->top_k > 0 && s->top_k < n;
    float thr = -INFINITY;
    int n_eq_keep = n; // how many entries equal to thr may stay (lowest ids first)
    if (use_k) {
        for (int i = 0; i < n; i++) probs[i] = isnan(logits[i]) ? -INFINITY : logits[i];
        thr = kth_largest(probs, n, s->top_k - 1);
        int n_gt = 0;
        for (int i = 0; i < n; i++)
            if (logits[i] > thr) n_gt++;
        n_eq_keep = s->top_k - n_gt;
    }
    // softmax over survivors; filtered entries get -1 as a marker first
    float mx = -INFINITY;
    int eq_seen = 0;
    for (int i = 0; i < n; i++) {
        float l = logits[i];
        int keep = !isnan(l);
        if (keep && use_k) {
            if (l > thr) keep = 1;
            else if (l == thr && eq_seen < n_eq_keep) { keep = 1; eq_seen++; }
            else keep = 0;
        }
        if (keep) {
            probs[i] = l * inv_t;
            if (probs[i] > mx) mx = probs[i];
        } else {
            probs[i] = NAN;
        }
    }
    double sum = 0.0;
    int n_keep = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(probs[i])) { probs[i] = 0.f; continue; }
        probs[i] = (float)exp((double)probs[i] - mx);
        sum += probs[i];
        n_keep++;
    }
    if (!(sum > 0.0)) { // all logits NaN or -inf: fall back to the argmax
        memset(probs, 0, sizeof(float) * (size_t)n);
        probs[hass_sample_argmax(logits, n)] = 1.f;
        return;
    }
    for (int i = 0; i < n; i++) probs[i] = (float)(probs[i] / sum);
    if (s->top_p > 0.f && s->top_p < 1.f && n_keep > 1) {
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_keep);
        HASS_ASSERT(ids);
        int m = 0;
        for (int i = 0; i < n; i++)
            if (probs[i] > 0.f) ids[m++] = i;
        g_sort_p = probs;
        qsort(ids, (size_t)m, sizeof(int32_t), cmp_prob_desc);
        double cum = 0.0;
        int cut = m;
        for (int j = 0; j < m; j++) {
            cum += probs[ids[j]];
            if (cum >= s->top_p) { cut = j + 1; break; }
        }
        double kept = 0.0;
        for (int j = cut; j < m; j++) probs[ids[j]] = 0.f;
        for (int i = 0; i < n; i++) kept += probs[i];
        for (int i = 0; i < n; i++) probs[i] = (float)(probs[i] / kept);
        free(ids);
    }
}

// Inverse CDF over unnormalised weights in id order.
int32_t hass_sample_probs(const float *p, int n, double u) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += p[i];
    if (!(total > 0.0)) return -1;
    double target = u * total, cum = 0.0;
    int32_t last = -1;
    for (int i = 0; i < n; i++) {
        if (p[i] <= 0.f) continue;
        cum += p[i];
        last = i;
        if (cum > target) return i;
    }
    return last; // rounding: u*total at the very top
}

// Sample a token with the processor (argmax when greedy).
int32_t hass_sample_token(const hass_sampler *s, const float *logits, int n, hass_rng *rng,
                    float *scratch) {
    if (hass_sampler_greedy(s)) return hass_sample_argmax(logits, n);
    hass_sampler_probs(s, logits, n, scratch);
    return hass_sample_probs(scratch, n, hass_rng_uniform(rng));
}
