// test_train_ops.c: every training op's backward against central finite differences.
//
// Method: for an op y = f(x, ...) and a fixed random probe r, the scalar L = sum(r * y) is
// evaluated in double from the f32 forward. For up to 48 coordinates of every input that has a
// gradient, the central difference (L(x+h) - L(x-h)) / 2h (h = 1e-2, in f32 inputs) is compared
// with the backward's value (run with dy = r). The error of a coordinate is
// |analytic - fd| / max(|analytic|, |fd|, 1e-2 * max|analytic| over the tensor); the check
// passes when the largest is below 1e-2. (f32 forwards limit the finite differences to about
// 1e-4 relative; a wrong gradient term gives errors of order 1.)
#include "quant.h"
#include "train_ops.h"
#include "unit.h"

#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define FD_H 1e-2f
#define FD_TOL 1e-2
#define FD_MAXPTS 48

static uint64_t rng = 0x1234567u;

// Uniform float in [lo, hi) from a fixed xorshift stream.
static float urand(float lo, float hi) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}

// n random floats in [lo, hi).
static float *rnd(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = urand(lo, hi);
    return x;
}

// n zeros.
static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

// sum(r * y) in double.
static double probe(const float *r, const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * y[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

// Compare grad g of x (n values) with central differences of loss(ctx); returns the max error.
static double fd_check(loss_fn loss, void *ctx, float *x, const float *g, size_t n) {
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    size_t step = n > FD_MAXPTS ? n / FD_MAXPTS : 1;
    for (size_t i = (size_t)(urand(0, 1) * (float)step) % (step ? step : 1); i < n; i += step) {
        float x0 = x[i];
        x[i] = x0 + FD_H;
        double lp = loss(ctx);
        x[i] = x0 - FD_H;
        double lm = loss(ctx);
        x[i] = x0;
        double fd = (lp - lm) / (2.0 * FD_H);
        double den = fmax(fmax(fabs(fd), fabs(g[i])), 1e-2 * gmax);
        double e = den > 0 ? fabs(fd - g[i]) / den : 0;
        if (e > worst || e != e) worst = e != e ? 1e30 : e;
    }
    return worst;
}

// Report one gradient check.
static void report(const char *name, double err) {
    CHECK(name, err < FD_TOL, "max relative error %.3g >= %.g", err, FD_TOL);
}

// ---- linear ----------------------------------------------------------------------------------

typedef struct {
    float *x, *w, *b, *y, *r;
    int n, ni, no;
} lin_ctx;

static double lin_loss(void *p) {
    lin_ctx *c = p;
    hass_train_ops_linear_fwd(c->y, c->x, c->w, c->b, c->n, c->ni, c->no);
    return probe(c->r, c->y, (size_t)c->n * c->no);
}

static void test_linear(void) {
    lin_ctx c = {.n = 5, .ni = 11, .no = 7};
    c.x = rnd((size_t)c.n * c.ni, -1, 1);
    c.w = rnd((size_t)c.no * c.ni, -1, 1);
    c.b = rnd((size_t)c.no, -1, 1);
    c.y = zeros((size_t)c.n * c.no);
    c.r = rnd((size_t)c.n * c.no, -1, 1);
    float *dx = zeros((size_t)c.n * c.ni), *dw = zeros((size_t)c.no * c.ni), *db = zeros(c.no);
    hass_train_ops_linear_bwd(dx, dw, db, c.r, c.x, c.w, c.n, c.ni, c.no);
    report("linear dx", fd_check(lin_loss, &c, c.x, dx, (size_t)c.n * c.ni));
    report("linear dw", fd_check(lin_loss, &c, c.w, dw, (size_t)c.no * c.ni));
    report("linear db", fd_check(lin_loss, &c, c.b, db, c.no));
    // accumulation: a second backward adds the same amount
    float d0 = dw[3];
    hass_train_ops_linear_bwd(NULL, dw, NULL, c.r, c.x, c.w, c.n, c.ni, c.no);
    CHECK("linear bwd accumulates", fabsf(dw[3] - 2 * d0) <= 1e-5f * fabsf(d0) + 1e-7f,
          "%g vs 2*%g", dw[3], d0);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
}

// ---- RMSNorm ---------------------------------------------------------------------------------

typedef struct {
    float *x, *w, *y, *rs, *r;
    int n, dim;
} rms_ctx;

static double rms_loss(void *p) {
    rms_ctx *c = p;
    hass_train_ops_rmsnorm_fwd(c->y, c->rs, c->x, c->w, c->n, c->dim, 1e-5f);
    return probe(c->r, c->y, (size_t)c->n * c->dim);
}

static void test_rmsnorm(void) {
    rms_ctx c = {.n = 4, .dim = 13};
    size_t m = (size_t)c.n * c.dim;
    c.x = rnd(m, -2, 2), c.w = rnd(c.dim, 0.5f, 1.5f), c.y = zeros(m), c.rs = zeros(c.n);
    c.r = rnd(m, -1, 1);
    rms_loss(&c);
    float *dx = zeros(m), *dw = zeros(c.dim);
    hass_train_ops_rmsnorm_bwd(dx, dw, c.r, c.x, c.w, c.rs, c.n, c.dim);
    report("rmsnorm dx", fd_check(rms_loss, &c, c.x, dx, m));
    report("rmsnorm dw", fd_check(rms_loss, &c, c.w, dw, c.dim));
    free(c.x), free(c.w), free(c.y), free(c.rs), free(c.r), free(dx), free(dw);
}

// ---- RoPE ------------------------------------------------------------------------------------

typedef struct {
    float *x, *y, *r;
    int32_t *pos;
    int n, nh, d;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t m = (size_t)c->n * c->nh * c->d;
    memcpy(c->y, c->x, m * sizeof(float));
    hass_train_ops_rope_fwd(c->y, c->pos, c->n, c->nh, c->d, 10000.f);
    return probe(c->r, c->y, m);
}

static void test_rope(void) {
    rope_ctx c = {.n = 5, .nh = 3, .d = 8};
    size_t m = (size_t)c.n * c.nh * c.d;
    c.x = rnd(m, -1, 1), c.y = zeros(m), c.r = rnd(m, -1, 1);
    c.pos = malloc(c.n * sizeof(int32_t));
    for (int i = 0; i < c.n; i++) c.pos[i] = 3 * i + 1;
    float *dx = malloc(m * sizeof(float));
    memcpy(dx, c.r, m * sizeof(float));
    hass_train_ops_rope_bwd(dx, c.pos, c.n, c.nh, c.d, 10000.f);
    report("rope dx", fd_check(rope_loss, &c, c.x, dx, m));
    // rotate-half layout: position 0 is the identity, dims i and i+d/2 pair up
    float v[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    int32_t p1 = 1;
    hass_train_ops_rope_fwd(v, &p1, 1, 1, 8, 10000.f);
    CHECK("rope rotate-half pairs 0 with d/2", fabsf(v[0] - cosf(1)) < 1e-6f &&
          fabsf(v[4] - sinf(1)) < 1e-6f && v[1] == 0 && v[3] == 0, "%g %g", v[0], v[4]);
    free(c.x), free(c.y), free(c.r), free(c.pos), free(dx);
}

// ---- attention -------------------------------------------------------------------------------

typedef struct {
    float *q, *k, *v, *out, *prob, *r;
    int n, nh, nkv, d, s, n_pad;
} att_ctx;

static double att_loss(void *p) {
    att_ctx *c = p;
    hass_train_ops_attn_fwd(c->out, c->prob, c->q, c->k, c->v, c->n, c->nh, c->nkv, c->d, c->s, c->n_pad);
    return probe(c->r, c->out, (size_t)c->n * c->nh * c->d);
}

static void test_attn(int s, int n_pad) {
    att_ctx c = {.n = 6, .nh = 4, .nkv = 2, .d = 4, .s = s, .n_pad = n_pad};
    size_t mq = (size_t)c.n * c.nh * c.d, mk = (size_t)(s + 1) * c.n * c.nkv * c.d;
    c.q = rnd(mq, -1.5f, 1.5f), c.k = rnd(mk, -1.5f, 1.5f), c.v = rnd(mk, -1, 1);
    c.out = zeros(mq), c.prob = zeros((size_t)c.nh * c.n * c.n), c.r = rnd(mq, -1, 1);
    att_loss(&c);
    float *dq = zeros(mq), *dk = zeros(mk), *dv = zeros(mk), *ds = zeros((size_t)c.nh * c.n * c.n);
    hass_train_ops_attn_bwd(dq, dk, dv, ds, c.r, c.prob, c.q, c.k, c.v, c.n, c.nh, c.nkv, c.d, s);
    char nm[96];
    const char *kind = n_pad ? "leaky" : "masked";
    snprintf(nm, sizeof nm, "attn %s s=%d dq", kind, s);
    report(nm, fd_check(att_loss, &c, c.q, dq, mq));
    snprintf(nm, sizeof nm, "attn %s s=%d dk", kind, s);
    report(nm, fd_check(att_loss, &c, c.k, dk, mk));
    snprintf(nm, sizeof nm, "attn %s s=%d dv", kind, s);
    report(nm, fd_check(att_loss, &c, c.v, dv, mk));
    // weights: rows sum to 1 (masked) or below 1 (leaky, rows with masked positions)
    double worst = 0;
    for (int h = 0; h < c.nh; h++)
        for (int i = 0; i < c.n; i++) {
            double z = 0;
            for (int kp = 0; kp < c.n; kp++) z += c.prob[((size_t)h * c.n + i) * c.n + kp];
            double want = 1.0;
            if (n_pad && i < n_pad - 1) want = z < 1.0 - 1e-6 ? z : 0; // must be < 1
            if (fabs(z - want) > worst) worst = fabs(z - want);
        }
    snprintf(nm, sizeof nm, "attn %s s=%d weight rows", kind, s);
    CHECK(nm, worst < 1e-5, "row sums off by %g", worst);
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.prob), free(c.r);
    free(dq), free(dk), free(dv), free(ds);
}

// The selector reproduces the worked L=5 example of SPEC-HASS section 5.
static void test_selector(void) {
    static const char *want[3][5] = {
        {"0....", "00...", "000..", "0000.", "00000"},
        {"1....", "01...", "001..", "0001.", "00001"},
        {"2....", "12...", "012..", "0012.", "00012"},
    };
    int bad = 0;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 5; i++)
            for (int k = 0; k < 5; k++) {
                int c = hass_train_ops_attn_copy(i, k, s);
                char ch = c < 0 ? '.' : (char)('0' + c);
                if (ch != want[s][i][k]) bad++;
            }
    CHECK("attn selector matches SPEC L=5 table", bad == 0, "%d entries differ", bad);
}

// ---- SwiGLU ----------------------------------------------------------------------------------

typedef struct {
    float *g, *u, *m, *r;
    size_t n;
} swi_ctx;

static double swi_loss(void *p) {
    swi_ctx *c = p;
    hass_train_ops_swiglu_fwd(c->m, c->g, c->u, c->n);
    return probe(c->r, c->m, c->n);
}

static void test_swiglu(void) {
    swi_ctx c = {.n = 40};
    c.g = rnd(c.n, -4, 4), c.u = rnd(c.n, -2, 2), c.m = zeros(c.n), c.r = rnd(c.n, -1, 1);
    float *dg = zeros(c.n), *du = zeros(c.n);
    hass_train_ops_swiglu_bwd(dg, du, c.r, c.g, c.u, c.n);
    report("swiglu dg", fd_check(swi_loss, &c, c.g, dg, c.n));
    report("swiglu du", fd_check(swi_loss, &c, c.u, du, c.n));
    free(c.g), free(c.u), free(c.m), free(c.r), free(dg), free(du);
}

// ---- losses ----------------------------------------------------------------------------------

typedef struct {
    float *x, *t, *coef;
    double *l;
    int n, H;
} sl1_ctx;

static double sl1_loss(void *p) {
    sl1_ctx *c = p;
    hass_train_ops_smoothl1(NULL, c->l, c->x, c->t, NULL, c->n, c->H);
    double s = 0;
    for (int r = 0; r < c->n; r++) s += c->coef[r] * c->l[r];
    return s;
}

static void test_smoothl1(void) {
    sl1_ctx c = {.n = 3, .H = 20};
    size_t m = (size_t)c.n * c.H;
    c.x = rnd(m, -3, 3), c.t = zeros(m), c.coef = rnd(c.n, 0.2f, 1), c.l = calloc(c.n, sizeof(double));
    for (size_t i = 0; i < m; i++) // keep clear of the kink at |z| = 1
        if (fabsf(fabsf(c.x[i]) - 1.f) < 0.05f) c.x[i] *= 1.2f;
    float *dx = zeros(m);
    hass_train_ops_smoothl1(dx, c.l, c.x, c.t, c.coef, c.n, c.H);
    report("smoothl1 dx", fd_check(sl1_loss, &c, c.x, dx, m));
    float a[2] = {0.5f, 3.f}, z[2] = {0, 0};
    double l[1];
    hass_train_ops_smoothl1(NULL, l, a, z, NULL, 1, 2);
    CHECK("smoothl1 values (beta 1, mean over H)", fabs(l[0] - (0.125 + 2.5) / 2) < 1e-9, "%g", l[0]);
    free(c.x), free(c.t), free(c.coef), free(c.l), free(dx);
}

typedef struct {
    float *lq, *lp, *cp, *ck;
    double *pl, *kl;
    int n, V, K;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    hass_train_ops_soft_ce(NULL, c->pl, c->kl, NULL, c->lq, c->lp, NULL, NULL, c->n, c->V, c->K);
    double s = 0;
    for (int r = 0; r < c->n; r++) s += c->cp[r] * c->pl[r] + c->ck[r] * c->kl[r];
    return s;
}

static void test_soft_ce(void) {
    ce_ctx c = {.n = 4, .V = 50, .K = 10};
    size_t m = (size_t)c.n * c.V;
    c.lq = rnd(m, -3, 3), c.lp = rnd(m, -3, 3), c.cp = rnd(c.n, 0, 1), c.ck = rnd(c.n, 0, 1);
    c.pl = calloc(c.n, sizeof(double)), c.kl = calloc(c.n, sizeof(double));
    float *dl = zeros(m);
    hass_train_ops_soft_ce(dl, c.pl, c.kl, NULL, c.lq, c.lp, c.cp, c.ck, c.n, c.V, c.K);
    report("soft_ce+topk dlogits", fd_check(ce_loss, &c, c.lq, dl, m));
    // values against a direct double computation on row 0
    double zq = 0, zp = 0, pl = 0, kl = 0;
    for (int j = 0; j < c.V; j++) zq += exp(c.lq[j]), zp += exp(c.lp[j]);
    int idx[10];
    hass_train_ops_topk(idx, c.lp, c.V, 10);
    for (int j = 0; j < c.V; j++) pl -= exp(c.lp[j]) / zp * (c.lq[j] - log(zq));
    for (int t = 0; t < 10; t++) kl -= exp(c.lp[idx[t]]) / zp * (c.lq[idx[t]] - log(zq));
    // P is stored in f32 and e^x is a 1-ulp polynomial: 1e-6 relative is the f32 round-off
    CHECK("soft_ce value", fabs(pl - c.pl[0]) < 1e-6 * fabs(pl), "%.12g vs %.12g", c.pl[0], pl);
    CHECK("topk loss value (no renormalisation)", fabs(kl - c.kl[0]) < 1e-6 * fabs(kl),
          "%.12g vs %.12g", c.kl[0], kl);
    int sorted = 1;
    for (int t = 1; t < 10; t++) sorted &= c.lp[idx[t - 1]] >= c.lp[idx[t]];
    int larger = 0; // nothing outside the top-K is larger than its last entry
    for (int j = 0; j < c.V; j++) {
        int in = 0;
        for (int t = 0; t < 10; t++) in |= idx[t] == j;
        if (!in && c.lp[j] > c.lp[idx[9]]) larger++;
    }
    CHECK("topk selects the K largest, sorted", sorted && !larger, "sorted %d larger %d", sorted, larger);
    float tie[5] = {1, 2, 2, 0, 2};
    int ti[2];
    hass_train_ops_topk(ti, tie, 5, 2);
    CHECK("topk ties: lower index first", ti[0] == 1 && ti[1] == 2, "%d %d", ti[0], ti[1]);
    free(c.lq), free(c.lp), free(c.cp), free(c.ck), free(c.pl), free(c.kl), free(dl);
}

// ---- kernel paths ------------------------------------------------------------------------------

// y = a b + y0 through hass_train_ops_gemm with strides, under the current kernel path.
static float *gemm_run(const float *a, const float *b, const float *y0, int n, int K, int M) {
    int ldy = M + 3;
    float *y = malloc((size_t)n * ldy * sizeof(float));
    for (int r = 0; r < n; r++) memcpy(y + (size_t)r * ldy, y0 + (size_t)r * M, M * sizeof(float));
    hass_train_ops_gemm(y, ldy, a, K, b, M, n, K, M);
    for (int r = 0; r < n; r++) memmove(y + (size_t)r * M, y + (size_t)r * ldy, M * sizeof(float));
    return y;
}

// gemm against a double reference at ragged sizes; the C, AVX2 and AVX-512 paths and 1 vs 2
// threads give the same bits (one k-ordered FMA chain per element on every path).
static void test_gemm(void) {
    const int sz[][3] = {{1, 1, 1}, {3, 17, 5}, {4, 64, 64}, {7, 300, 130}, {33, 576, 700}, {5, 1030, 67}};
    for (size_t i = 0; i < sizeof sz / sizeof *sz; i++) {
        int n = sz[i][0], K = sz[i][1], M = sz[i][2];
        float *a = rnd((size_t)n * K, -1, 1), *b = rnd((size_t)K * M, -1, 1), *y0 = rnd((size_t)n * M, -1, 1);
        float *y = gemm_run(a, b, y0, n, K, M);
        double worst = 0;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < M; c++) {
                double s = y0[(size_t)r * M + c];
                for (int k = 0; k < K; k++) s += (double)a[(size_t)r * K + k] * b[(size_t)k * M + c];
                worst = fmax(worst, fabs(s - y[(size_t)r * M + c]) / (1 + fabs(s)));
            }
        CHECK("gemm vs double reference", worst < 1e-5 * sqrt(K), "%dx%dx%d: %.3g", n, K, M, worst);
        int same = 1;
        for (int p = 0; p < 2; p++) {
            hass_kernel_set_path(p); // C, then AVX2
            float *yp = gemm_run(a, b, y0, n, K, M);
            same &= !memcmp(yp, y, (size_t)n * M * sizeof(float));
            free(yp);
        }
        hass_kernel_set_path(2); // back to the best the CPU has
#ifdef _OPENMP
        omp_set_num_threads(1);
        float *y1 = gemm_run(a, b, y0, n, K, M);
        omp_set_num_threads(2);
        float *y2 = gemm_run(a, b, y0, n, K, M);
        same &= !memcmp(y1, y, (size_t)n * M * sizeof(float)) && !memcmp(y2, y, (size_t)n * M * sizeof(float));
        free(y1), free(y2);
#endif
        CHECK("gemm bit-identical on every path and thread count", same, "%dx%dx%d", n, K, M);
        free(a), free(b), free(y0), free(y);
    }
}

// The soft-CE row kernels: AVX-512 and the C twin give the same bits (V not a multiple of 16).
static void test_ce_paths(void) {
    int n = 3, V = 2053, K = 10;
    size_t m = (size_t)n * V;
    float *lq = rnd(m, -8, 8), *lp = rnd(m, -8, 8), cp[3] = {0.3f, 1, 0.1f}, ck[3] = {1, 0, 0.5f};
    float *d1 = zeros(m), *d2 = zeros(m);
    double p1[3], k1[3], p2[3], k2[3];
    int a1[3], a2[3];
    hass_train_ops_soft_ce(d1, p1, k1, a1, lq, lp, cp, ck, n, V, K);
    hass_kernel_set_path(0);
    hass_train_ops_soft_ce(d2, p2, k2, a2, lq, lp, cp, ck, n, V, K);
    hass_kernel_set_path(2);
    CHECK("soft_ce: vector and C paths bit-identical",
          !memcmp(d1, d2, m * sizeof(float)) && !memcmp(p1, p2, sizeof p1) && !memcmp(k1, k2, sizeof k1) &&
              !memcmp(a1, a2, sizeof a1), "ploss %.17g vs %.17g", p1[0], p2[0]);
    free(lq), free(lp), free(d1), free(d2);
}

int main(void) {
    test_gemm();
    test_ce_paths();
    test_linear();
    test_rmsnorm();
    test_rope();
    test_selector();
    for (int s = 0; s < 3; s++) test_attn(s, 0);
    for (int s = 0; s < 3; s++) test_attn(s, 9);
    test_swiglu();
    test_smoothl1();
    test_soft_ce();
    UNIT_DONE();
}
