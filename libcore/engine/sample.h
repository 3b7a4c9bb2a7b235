// sample.h: seeded RNG, the logits processor (temperature -> top-k -> top-p) and sampling.
//
// RNG: xoshiro256** (Blackman & Vigna 2018), state seeded from one 64-bit seed through
// splitmix64, so every seed (0 included) gives a valid, well-mixed state. hass_rng_uniform
// returns (next >> 11) * 2^-53, a double in [0, 1) with 53 random bits.
//
// Logits processor (applied to every distribution the suite samples from, including the bonus
// token of speculative decoding):
//   1. temperature: l / temp; temp <= 0 means greedy (a one-hot distribution on the argmax);
//   2. top-k (k > 0 and k < n): keep the k largest; ties broken by the lower token id;
//   3. top-p (0 < p < 1): after softmax over the survivors, keep the shortest prefix of them in
//      descending order (ties: lower id first) whose mass reaches p; at least one token stays;
//   then renormalise. Filtered tokens get probability exactly 0.
// Sampling is by inverse CDF: walk the ids in ascending order and return the first id whose
// cumulative mass exceeds u * total (u uniform in [0, 1)); ids with probability 0 are never
// returned.
#ifndef HASS_SAMPLE_H
#define HASS_SAMPLE_H

#include "hass.h"

typedef struct hass_rng {
    uint64_t s[4];
} hass_rng;

// Seed the generator (splitmix64 expansion of seed).
void hass_rng_seed(hass_rng *r, uint64_t seed);
// Next raw 64-bit output of xoshiro256**.
uint64_t hass_rng_next(hass_rng *r);
// Uniform double in [0, 1).
double hass_rng_uniform(hass_rng *r);

typedef struct hass_sampler {
    float temp;  // <= 0: greedy
    int top_k;   // <= 0 or >= n: off
    float top_p; // <= 0 or >= 1: off
} hass_sampler;

// Whether the sampler is greedy (temp <= 0).
int hass_sampler_greedy(const hass_sampler *s);

// Processed next-token distribution: probs[i] for i < n, summing to 1 (zeros where filtered).
// Greedy samplers give a one-hot on the argmax.
void hass_sampler_probs(const hass_sampler *s,
                        const float *logits, // (n)
                        int n,
                        float *probs); // (n) out

// Sample one id from unnormalised non-negative weights p by inverse CDF with uniform u in [0,1).
// Returns -1 when every weight is 0.
int32_t hass_sample_probs(const float *p, // (n)
                          int n, double u);

// Sample one token from logits with the processor; greedy samplers return the argmax and draw
// nothing from rng. scratch holds n floats.
int32_t hass_sample_token(const hass_sampler *s, const float *logits, int n, hass_rng *rng,
                    float *scratch); // (n)

// Index of the largest value; the lowest index wins ties (NaN never wins).
int32_t hass_sample_argmax(const float *x, int n);

// Largest minus second largest of n logits (the --margins value of a step).
float hass_top2_margin(const float *x, int n);

// The k largest values of x in descending order, ties broken by the lower index; writes k ids
// (and values when val is not NULL). k must be <= n. O(n log k), no allocation.
void hass_topk(const float *x, // (n)
               int n, int k,
               int32_t *idx, // (k) out
               float *val);  // (k) out, may be NULL

// In-place log-softmax of x (n values), max-subtracted, sum in double, fixed order.
void hass_log_softmax(float *x, int n);

#endif
