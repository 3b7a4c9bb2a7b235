// test_train.c: the full HASS training step (libcore/train/train.c).
//  - against tests/data/train_step_ref{,_leaky}.bin, made by tests/gen/gen_train_ref.py with HIPS
//    autograd in float64 (independent code: padded batch, the reference's 0/1 mask matrices):
//    noise, per-step losses, top-1/top-3 counts, summed gradients and the weights after two
//    AdamW steps. Tolerances (C runs in f32): losses 2e-5 relative; gradients max|diff| <= 2e-4
//    * max|ref| per tensor; weights |diff| <= 2e-3 * lr + 1e-6 (Adam's normalised update can
//    amplify tiny gradient differences up to lr).
//  - the whole-batch gradient against central finite differences of the batch loss (S = 1);
//  - schedule values, noise properties, NaN handling, exact resume, thread-count invariance.
#include "train.h"
#include "unit.h"

#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// ---- fixture reader --------------------------------------------------------------------------

typedef struct {
    char name[96];
    int dtype; // 0 f64, 1 i64
    int ndim;
    uint32_t dims[4];
    size_t n;
    void *data;
} entry;

typedef struct {
    entry *e;
    int n;
} fixture;

// Read the HTRF file written by gen_train_ref.py; returns 0 on success.
static int fixture_load(fixture *fx, const char *path) {
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[4];
    uint32_t ver, cnt;
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "HTRF", 4) || fread(&ver, 4, 1, f) != 1 ||
        ver != 1 || fread(&cnt, 4, 1, f) != 1 || cnt > 10000) {
        fclose(f);
        return -1;
    }
    fx->e = calloc(cnt, sizeof(entry));
    for (uint32_t i = 0; i < cnt; i++) {
        entry *e = &fx->e[i];
        uint16_t nl;
        uint8_t dt, nd;
        if (fread(&nl, 2, 1, f) != 1 || nl >= sizeof e->name || fread(e->name, 1, nl, f) != nl ||
            fread(&dt, 1, 1, f) != 1 || fread(&nd, 1, 1, f) != 1 || nd > 4)
            goto bad;
        e->dtype = dt, e->ndim = nd, e->n = 1;
        for (int k = 0; k < nd; k++) {
            if (fread(&e->dims[k], 4, 1, f) != 1) goto bad;
            e->n *= e->dims[k];
        }
        e->data = malloc(e->n * 8 + 8);
        if (fread(e->data, 8, e->n, f) != e->n) goto bad;
        fx->n++;
    }
    fclose(f);
    return 0;
bad:
    fclose(f);
    return -1;
}

static void fixture_free(fixture *fx) {
    for (int i = 0; i < fx->n; i++) free(fx->e[i].data);
    free(fx->e);
}

// Entry by name (NULL when absent).
static const entry *fx_get(const fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->e[i].name, name)) return &fx->e[i];
    return NULL;
}

static const double *fx_f64(const fixture *fx, const char *name) {
    const entry *e = fx_get(fx, name);
    return e && e->dtype == 0 ? e->data : NULL;
}

static const int64_t *fx_i64(const fixture *fx, const char *name) {
    const entry *e = fx_get(fx, name);
    return e && e->dtype == 1 ? e->data : NULL;
}

// ---- the reference step ----------------------------------------------------------------------

// Set dims and options from the fixture's cfg/hyper entries.
static void ref_setup(const fixture *fx, hass_train_dims *dm, hass_train_opts *o) {
    const int64_t *c = fx_i64(fx, "cfg");
    const double *h = fx_f64(fx, "hyper");
    *dm = (hass_train_dims){.n_embd = (int)c[0], .n_head = (int)c[1], .n_head_kv = (int)c[2],
                            .n_ff = (int)c[3], .n_vocab = (int)c[4], .fc_bias = 1,
                            .rope_theta = (float)h[0], .norm_eps = (float)h[1]};
    hass_train_opts_default(o);
    o->n_align = (int)c[5], o->topk = (int)c[6], o->warmup = c[8], o->total = c[9];
    o->seed = (uint64_t)c[10], o->leaky = (int)c[11];
    o->v_w = (float)h[2], o->p_w = (float)h[3], o->topk_w = (float)h[4], o->noise_std = (float)h[5];
    o->lr = (float)h[6], o->beta1 = (float)h[7], o->beta2 = (float)h[8], o->eps = (float)h[9];
    o->wd = (float)h[10], o->clip = (float)h[11];
}

// Max |a - b| / scale over n values with f64 reference b; scale = max|b| when rel, else 1.
static double maxdiff(const float *a, const double *b, size_t n, int rel) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? 1e30 : d;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return rel ? m / (s > 0 ? s : 1) : m;
}

static void test_reference(const char *path, const char *tag) {
    fixture fx;
    char nm[160];
    if (fixture_load(&fx, path)) {
        snprintf(nm, sizeof nm, "%s: fixture %s readable", tag, path);
        CHECK(nm, 0, "cannot read %s (run from the repo root)", path);
        return;
    }
    hass_train_dims dm;
    hass_train_opts o;
    ref_setup(&fx, &dm, &o);
    int n_seq = (int)fx_i64(&fx, "cfg")[7];
    hass_err err;
    hass_train *t = hass_train_new(&dm, &o, 16, &err);
    HASS_ASSERT(t);
    int H = dm.n_embd, V = dm.n_vocab;
    float *E = malloc(sizeof(float) * V * H), *W = malloc(sizeof(float) * V * H);
    for (int i = 0; i < V * H; i++) E[i] = (float)fx_f64(&fx, "embed")[i], W[i] = (float)fx_f64(&fx, "head")[i];
    hass_train_seq seqs[4];
    int32_t *ids[4];
    float *feat[4];
    uint8_t *mask[4];
    for (int b = 0; b < n_seq; b++) {
        snprintf(nm, sizeof nm, "seq%d.ids", b);
        const entry *ei = fx_get(&fx, nm);
        int L = (int)ei->n;
        ids[b] = malloc(L * sizeof(int32_t)), feat[b] = malloc(sizeof(float) * L * H), mask[b] = malloc(L);
        for (int i = 0; i < L; i++) ids[b][i] = (int32_t)((int64_t *)ei->data)[i];
        snprintf(nm, sizeof nm, "seq%d.feat", b);
        for (int i = 0; i < L * H; i++) feat[b][i] = (float)fx_f64(&fx, nm)[i];
        snprintf(nm, sizeof nm, "seq%d.mask", b);
        for (int i = 0; i < L; i++) mask[b][i] = (uint8_t)fx_i64(&fx, nm)[i];
        seqs[b] = (hass_train_seq){.n = L, .ids = ids[b], .feat = feat[b], .mask = mask[b]};
    }
    hass_tparams *w = hass_train_weights(t), *g = hass_train_grads(t);
    for (int i = 0; i < HASS_TPARAMS_N; i++) {
        float *p;
        int r, c;
        const char *name = hass_tparams_tensor(w, &dm, i, &p, &r, &c);
        snprintf(nm, sizeof nm, "init.%s", name);
        const double *src = fx_f64(&fx, nm);
        HASS_ASSERT(src);
        for (int k = 0; k < r * c; k++) p[k] = (float)src[k];
    }
    for (int step = 0; step < 2; step++) {
        for (int b = 0; b < n_seq; b++) seqs[b].noise_key = hass_train_noise_key(o.seed, step, b);
        // the noise stream is the same as the generator's (bit for bit)
        int L0 = seqs[0].n;
        float *nz = malloc(sizeof(float) * L0 * H);
        memcpy(nz, feat[0], sizeof(float) * L0 * H);
        hass_train_noise(nz, L0, H, o.noise_std, 1, seqs[0].noise_key);
        snprintf(nm, sizeof nm, "step%d.noisy0", step);
        snprintf(nm + 80, 80, "%s: step %d noise = reference", tag, step);
        CHECK(nm + 80, maxdiff(nz, fx_f64(&fx, nm), (size_t)L0 * H, 0) == 0, "max diff %g",
              maxdiff(nz, fx_f64(&fx, nm), (size_t)L0 * H, 0));
        free(nz);

        hass_train_stats st;
        hass_train_zero_grad(t);
        err = hass_train_batch(t, E, W, seqs, n_seq, 1, &st);
        snprintf(nm, sizeof nm, "%s: step %d batch runs", tag, step);
        CHECK(nm, err == HASS_OK, "%s", hass_errmsg());
        snprintf(nm, sizeof nm, "step%d.stats", step);
        const double *rs = fx_f64(&fx, nm);
        double lerr = 0;
        int accbad = 0;
        for (int s = 0; s < o.n_align; s++) {
            const double *r = rs + 5 * s;
            double mine[3] = {st.vloss[s], st.ploss[s], st.kloss[s]};
            for (int k = 0; k < 3; k++) lerr = fmax(lerr, fabs(mine[k] - r[k]) / fabs(r[k]));
            accbad += st.top1[s] != (int64_t)r[3] || st.top3[s] != (int64_t)r[4];
        }
        snprintf(nm, sizeof nm, "%s: step %d losses of the %d alignment steps", tag, step, o.n_align);
        CHECK(nm, lerr < 2e-5, "max relative error %g", lerr);
        snprintf(nm, sizeof nm, "%s: step %d top-1/top-3 counts", tag, step);
        CHECK(nm, accbad == 0, "%d steps differ", accbad);
        double gerr = 0;
        const char *worst = "";
        for (int i = 0; i < HASS_TPARAMS_N; i++) {
            float *p;
            int r, c;
            const char *name = hass_tparams_tensor(g, &dm, i, &p, &r, &c);
            snprintf(nm, sizeof nm, "step%d.grad.%s", step, name);
            double e = maxdiff(p, fx_f64(&fx, nm), (size_t)r * c, 1);
            if (e > gerr) gerr = e, worst = name;
        }
        snprintf(nm, sizeof nm, "%s: step %d gradients (sum over alignment steps)", tag, step);
        CHECK(nm, gerr < 2e-4, "max relative error %g in %s", gerr, worst);
        err = hass_train_update(t, &st);
        double perr = 0;
        for (int i = 0; i < HASS_TPARAMS_N; i++) {
            float *p;
            int r, c;
            const char *name = hass_tparams_tensor(w, &dm, i, &p, &r, &c);
            snprintf(nm, sizeof nm, "step%d.param.%s", step, name);
            double e = maxdiff(p, fx_f64(&fx, nm), (size_t)r * c, 0);
            if (e > perr) perr = e, worst = name;
        }
        snprintf(nm, sizeof nm, "%s: step %d weights after clip + AdamW (lr %g)", tag, step, st.lr);
        CHECK(nm, err == HASS_OK && perr <= 2e-3 * st.lr + 1e-6, "max diff %g in %s", perr, worst);
    }
    for (int b = 0; b < n_seq; b++) free(ids[b]), free(feat[b]), free(mask[b]);
    free(E), free(W);
    hass_train_free(t);
    fixture_free(&fx);
}

// ---- a small random problem for the other checks ---------------------------------------------

static uint64_t rs = 99;

static float urand(float lo, float hi) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rs >> 40) * (1.0 / 16777216.0));
}

typedef struct {
    hass_train_dims dm;
    hass_train_opts o;
    float *E, *W;
    hass_train_seq seq[2];
    int32_t *ids[2];
    float *feat[2];
    uint8_t *mask[2];
} problem;

// Random head of the given sizes, two sequences of lengths L0 and L1.
static void problem_init(problem *pb, int H, int nh, int nkv, int I, int V, int L0, int L1) {
    memset(pb, 0, sizeof *pb);
    pb->dm = (hass_train_dims){H, nh, nkv, I, V, 1, 10000.f, 1e-5f};
    hass_train_opts_default(&pb->o);
    pb->o.topk_w = 1.0f;
    pb->o.noise_std = 0.01f;
    pb->o.lr = 1e-3f;
    pb->o.warmup = 2, pb->o.total = 20;
    pb->E = malloc(sizeof(float) * V * H), pb->W = malloc(sizeof(float) * V * H);
    for (int i = 0; i < V * H; i++) pb->E[i] = urand(-1, 1), pb->W[i] = urand(-1, 1);
    int Ls[2] = {L0, L1};
    for (int b = 0; b < 2; b++) {
        int L = Ls[b];
        pb->ids[b] = malloc(L * sizeof(int32_t)), pb->feat[b] = malloc(sizeof(float) * L * H);
        pb->mask[b] = malloc(L);
        for (int i = 0; i < L; i++) pb->ids[b][i] = (int32_t)(urand(0, 1) * V) % V, pb->mask[b][i] = i >= 1;
        for (int i = 0; i < L * H; i++) pb->feat[b][i] = urand(-1.5f, 1.5f);
        pb->seq[b] = (hass_train_seq){L, pb->ids[b], pb->feat[b], pb->mask[b],
                                      hass_train_noise_key(5, 0, b)};
    }
}

static void problem_free(problem *pb) {
    for (int b = 0; b < 2; b++) free(pb->ids[b]), free(pb->feat[b]), free(pb->mask[b]);
    free(pb->E), free(pb->W);
}

// Random weights (seeded) into t.
static void random_weights(hass_train *t, uint64_t seed) {
    rs = seed;
    float *p = hass_train_buf(t, 0);
    for (size_t i = 0; i < hass_train_n_params(t); i++) p[i] = urand(-0.3f, 0.3f);
}

// Whole-batch gradient against central differences of the batch loss (f32 forward).
static void test_batch_fd(void) {
    problem pb;
    problem_init(&pb, 8, 2, 1, 12, 30, 6, 4);
    pb.o.n_align = 1; // with S > 1 the copies are detached: the HASS gradient is then not the
                      // derivative of the summed loss (the reference fixtures cover S = 3)
    hass_err err;
    hass_train *t = hass_train_new(&pb.dm, &pb.o, 8, &err);
    random_weights(t, 3);
    hass_train_stats st;
    hass_train_zero_grad(t);
    hass_train_batch(t, pb.E, pb.W, pb.seq, 2, 1, &st);
    size_t n = hass_train_n_params(t);
    float *g = malloc(n * sizeof(float)), *p = hass_train_buf(t, 0);
    memcpy(g, hass_train_buf(t, 1), n * sizeof(float));
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    for (size_t i = 0; i < n; i += n / 60) {
        float x0 = p[i], h = 1e-2f;
        p[i] = x0 + h;
        hass_train_batch(t, pb.E, pb.W, pb.seq, 2, 1, &st);
        double lp = st.loss;
        p[i] = x0 - h;
        hass_train_batch(t, pb.E, pb.W, pb.seq, 2, 1, &st);
        double lm = st.loss;
        p[i] = x0;
        double fd = (lp - lm) / (2 * h);
        double e = fabs(fd - g[i]) / fmax(fmax(fabs(fd), fabs(g[i])), 1e-2 * gmax);
        if (getenv("FD_DEBUG")) printf("# %zu g %g fd %g\n", i, g[i], fd);
        worst = fmax(worst, e);
    }
    CHECK("batch gradient = finite differences of the batch loss (S=1, top-K on)", worst < 2e-2,
          "max relative error %g", worst);
    free(g);
    hass_train_free(t);
    problem_free(&pb);
}

// The learning-rate schedule in optimiser steps.
static void test_schedule(void) {
    hass_train_opts o;
    hass_train_opts_default(&o);
    o.lr = 1.0f, o.warmup = 10, o.total = 110;
    float want[][2] = {{0, 0}, {5, 0.5f}, {10, 1}, {60, 0.5f}, {109, 0.01f}, {110, 0}, {500, 0}};
    int bad = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        bad += fabsf(hass_train_lr(&o, (int64_t)want[i][0]) - want[i][1]) > 1e-6f;
    CHECK("lr schedule: warmup from 0, linear decay to 0 at T", bad == 0, "%d values off", bad);
    o.warmup = 0, o.total = 0;
    CHECK("lr schedule: constant without T", hass_train_lr(&o, 1000) == 1.0f, "%g", hass_train_lr(&o, 1000));
}

// Noise amplitude, centring, determinism and key separation.
static void test_noise(void) {
    int L = 64, H = 32;
    float *a = calloc(L * H, sizeof(float)), *b = calloc(L * H, sizeof(float));
    uint64_t k = hass_train_noise_key(1, 2, 3);
    hass_train_noise(a, L, H, 0.2f, 1, k);
    hass_train_noise(b, L, H, 0.2f, 1, k);
    double amp = 0.2 * 512 / L, mx = 0, mean = 0;
    for (int i = 0; i < L * H; i++) mx = fmax(mx, fabs(a[i])), mean += a[i];
    mean /= L * H;
    CHECK("noise within +-std*256/L, centred", mx <= amp / 2 && mx > 0.45 * amp && fabs(mean) < 0.05 * amp,
          "max %g (amp %g) mean %g", mx, amp, mean);
    CHECK("noise deterministic per key", !memcmp(a, b, sizeof(float) * L * H), "differs");
    memset(b, 0, sizeof(float) * L * H);
    hass_train_noise(b, L, H, 0.2f, 1, hass_train_noise_key(1, 2, 4));
    CHECK("noise keys differ per sample", memcmp(a, b, sizeof(float) * L * H) != 0, "same");
    CHECK("noise keys differ per epoch", hass_train_noise_key(1, 3, 3) != k && hass_train_noise_key(2, 2, 3) != k,
          "collision");
    free(a), free(b);
}

// NaN in the input gives ERANGE; a NaN gradient leaves the weights untouched.
static void test_nan(void) {
    problem pb;
    problem_init(&pb, 8, 2, 1, 12, 30, 6, 4);
    hass_err err;
    hass_train *t = hass_train_new(&pb.dm, &pb.o, 8, &err);
    random_weights(t, 4);
    pb.feat[0][3 * 8 + 2] = NAN;
    hass_train_stats st;
    hass_train_zero_grad(t);
    err = hass_train_batch(t, pb.E, pb.W, pb.seq, 2, 1, &st);
    CHECK("NaN feature -> loss not finite (ERANGE)", err == HASS_ERANGE, "err %d", err);
    size_t n = hass_train_n_params(t);
    float *before = malloc(n * sizeof(float));
    memcpy(before, hass_train_buf(t, 0), n * sizeof(float));
    hass_train_buf(t, 1)[5] = NAN;
    err = hass_train_update(t, &st);
    CHECK("NaN gradient -> update refused, weights kept",
          err == HASS_ERANGE && !memcmp(before, hass_train_buf(t, 0), n * sizeof(float)) &&
          hass_train_step(t) == 0, "err %d", err);
    pb.ids[1][2] = 30;
    err = hass_train_batch(t, pb.E, pb.W, pb.seq, 2, 1, &st);
    CHECK("token outside the vocabulary -> EINVAL", err == HASS_EINVAL, "err %d", err);
    free(before);
    hass_train_free(t);
    problem_free(&pb);
}

// Run n optimiser steps of the problem (noise keyed by step).
static void run_steps(hass_train *t, problem *pb, int n) {
    hass_train_stats st;
    for (int i = 0; i < n; i++) {
        int64_t step = hass_train_step(t);
        for (int b = 0; b < 2; b++) pb->seq[b].noise_key = hass_train_noise_key(9, step, b);
        hass_train_zero_grad(t);
        hass_train_batch(t, pb->E, pb->W, pb->seq, 2, 1, &st);
        hass_train_update(t, &st);
    }
}

// Restoring weights, moments and step into a fresh trainer continues bit for bit.
static void test_resume(void) {
    problem pb;
    problem_init(&pb, 16, 4, 2, 24, 50, 9, 7);
    hass_err err;
    hass_train *a = hass_train_new(&pb.dm, &pb.o, 16, &err), *b = hass_train_new(&pb.dm, &pb.o, 16, &err);
    random_weights(a, 11);
    run_steps(a, &pb, 2);
    size_t n = hass_train_n_params(a);
    for (int k = 0; k < 4; k += (k == 0 ? 2 : 1)) memcpy(hass_train_buf(b, k), hass_train_buf(a, k), n * sizeof(float));
    hass_train_set_step(b, hass_train_step(a));
    run_steps(a, &pb, 3);
    run_steps(b, &pb, 3);
    CHECK("resume from (weights, m, v, step) is bit-exact",
          !memcmp(hass_train_buf(a, 0), hass_train_buf(b, 0), n * sizeof(float)) &&
          hass_train_step(a) == 5 && hass_train_step(b) == 5, "weights differ");
    hass_train_free(a), hass_train_free(b);
    problem_free(&pb);
}

// Evaluation (train=0) changes no gradient; train with zero noise gives the same losses.
static void test_eval(void) {
    problem pb;
    problem_init(&pb, 8, 2, 2, 12, 30, 6, 5);
    pb.o.noise_std = 0;
    hass_err err;
    hass_train *t = hass_train_new(&pb.dm, &pb.o, 8, &err);
    random_weights(t, 5);
    hass_train_stats s1, s2;
    hass_train_zero_grad(t);
    hass_train_batch(t, pb.E, pb.W, pb.seq, 2, 0, &s1);
    size_t n = hass_train_n_params(t);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= hass_train_buf(t, 1)[i] == 0.f;
    hass_train_batch(t, pb.E, pb.W, pb.seq, 2, 1, &s2);
    CHECK("eval pass: no gradients, same losses as training without noise",
          zero && s1.loss == s2.loss && s1.n_mask == 4 + 3 && s1.top3[2] >= s1.top1[2],
          "zero %d loss %g vs %g n_mask %lld", zero, s1.loss, s2.loss, (long long)s1.n_mask);
    hass_train_free(t);
    problem_free(&pb);
}

// Results do not depend on the number of threads.
static void test_threads(void) {
#ifdef _OPENMP
    problem pb;
    problem_init(&pb, 256, 4, 2, 512, 700, 64, 50); // big enough for the ops to go parallel
    hass_err err;
    size_t n = 0;
    float *res[2] = {NULL, NULL};
    int nt0 = omp_get_max_threads();
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k == 0 ? 1 : 3);
        hass_train *t = hass_train_new(&pb.dm, &pb.o, 64, &err);
        random_weights(t, 6);
        run_steps(t, &pb, 2);
        n = hass_train_n_params(t);
        res[k] = malloc(n * sizeof(float));
        memcpy(res[k], hass_train_buf(t, 0), n * sizeof(float));
        hass_train_free(t);
    }
    omp_set_num_threads(nt0);
    CHECK("1 thread and 3 threads give bit-identical weights", !memcmp(res[0], res[1], n * sizeof(float)),
          "differ");
    free(res[0]), free(res[1]);
    problem_free(&pb);
#else
    SKIP("1 thread and 3 threads give bit-identical weights", "built without OpenMP");
#endif
}

int main(void) {
    test_reference("tests/data/train_step_ref.bin", "ref masked");
    test_reference("tests/data/train_step_ref_leaky.bin", "ref leaky");
    test_batch_fd();
    test_schedule();
    test_noise();
    test_nan();
    test_resume();
    test_eval();
    test_threads();
    UNIT_DONE();
}
