// chi2.h: Pearson chi-square goodness of fit for the sampling tests (test-only helper).
#ifndef HASS_TEST_CHI2_H
#define HASS_TEST_CHI2_H

#include <math.h>
#include <stdint.h>

// Chi-square statistic of counts against expected probabilities p over n cells; cells with
// expected count < 5 are pooled into one. *df gets the degrees of freedom used.
static inline double chi2_stat(const int64_t *counts, const double *p, int n, int64_t total,
                               int *df) {
    double stat = 0.0, pool_e = 0.0, pool_o = 0.0;
    int cells = 0;
    for (int i = 0; i < n; i++) {
        double e = p[i] * (double)total;
        if (e < 5.0) {
            pool_e += e;
            pool_o += (double)counts[i];
            continue;
        }
        stat += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
        cells++;
    }
    if (pool_e > 0.0 || pool_o > 0.0) {
        double e = pool_e > 1e-9 ? pool_e : 1e-9;
        stat += (pool_o - e) * (pool_o - e) / e;
        cells++;
    }
    *df = cells > 1 ? cells - 1 : 1;
    return stat;
}

// Upper critical value of chi-square with df degrees of freedom at normal quantile z
// (Wilson-Hilferty; z = 3.72 is alpha = 1e-4).
static inline double chi2_crit(int df, double z) {
    double a = 2.0 / (9.0 * df);
    double t = 1.0 - a + z * sqrt(a);
    return df * t * t * t;
}

#endif
