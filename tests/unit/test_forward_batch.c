// test_forward_batch.c: hass_forward_batch, several sequences in one forward: a prefill, a
// decode row, a tree block (mask, positions) and a causal block without logits, each after its
// own history, give every sequence's logits, features and cache entries bit-identical to
// forwarding it alone (memcmp), with a scratch of their own or the first cache's, with the
// logits in one contiguous buffer or in separate ones, in both precisions; and a bad sequence
// fails the whole call naming it, with nothing appended to any cache.
#include "forward.h"
#include "quant.h"
#include "unit.h"

enum { NS = 4, MAXN = 9, TREE = 7 };

// Tree of sequence 2: parents of its 7 nodes.
static const int PARENT[TREE] = {-1, 0, 0, 1, 2, 3, 1};

// The test's sequences: history length, block length, logit rows (n_rows < 0: none).
typedef struct seq_def {
    int n_hist, n;
    int rows[MAXN], n_rows;
    int tree;
} seq_def;

static const seq_def DEFS[NS] = {
    {0, 9, {8, 2}, 2, 0},                  // a prefill from empty, two rows out of order
    {5, 1, {0}, 1, 0},                     // one decode row
    {6, TREE, {0, 1, 2, 3, 4, 5, 6}, 7, 1}, // a tree block
    {3, 3, {0}, -1, 0},                    // a causal block, features only
};

// Token i of sequence k's history (h = 1) or block (h = 0).
static int32_t tok_of(int k, int h, int i, int V) {
    return (int32_t)(((k * 131 + h * 17 + i * 7919 + 13) % (V - 3)) + 3);
}

// The blocks' inputs: tokens, positions and the tree mask.
typedef struct inputs {
    int32_t tok[NS][MAXN], pos[NS][MAXN];
    uint8_t mask[TREE * TREE];
} inputs;

// Fill the blocks' tokens, the tree's positions (history + depth) and mask.
static void make_inputs(inputs *in, int V) {
    memset(in, 0, sizeof *in);
    for (int k = 0; k < NS; k++)
        for (int i = 0; i < DEFS[k].n; i++) {
            in->tok[k][i] = tok_of(k, 0, i, V);
            in->pos[k][i] = DEFS[k].n_hist + i;
        }
    for (int i = 0; i < TREE; i++) {
        int d = 0;
        for (int a = i; a >= 0; a = PARENT[a], d++) in->mask[i * TREE + a] = 1;
        in->pos[2][i] = DEFS[2].n_hist + d - 1;
    }
}

// Fresh caches holding each sequence's history; NULL entries on failure.
static int fill_caches(hass_model *m, hass_kv **kv) {
    int V = hass_model_config(m)->n_vocab;
    for (int k = 0; k < NS; k++) {
        hass_err e;
        kv[k] = hass_kv_new(m, 64, &e);
        if (!kv[k]) return 0;
        int32_t h[16];
        for (int i = 0; i < DEFS[k].n_hist; i++) h[i] = tok_of(k, 1, i, V);
        if (DEFS[k].n_hist && hass_forward(m, kv[k], h, NULL, DEFS[k].n_hist, NULL, NULL, NULL))
            return 0;
    }
    return 1;
}

// The call's description of sequence k over in, into logits lg and features ft.
static hass_fwd_seq seq_of(const inputs *in, hass_kv *kv, int k, float *lg, float *ft) {
    const seq_def *d = &DEFS[k];
    hass_fwd_seq q = {kv, in->tok[k], d->tree ? in->pos[k] : NULL, d->n,
                      d->tree ? in->mask : NULL, d->rows, d->n_rows > 0 ? d->n_rows : 0,
                      d->n_rows > 0 ? lg : NULL, ft};
    return q;
}

// Free the caches.
static void free_caches(hass_kv **kv) {
    for (int k = 0; k < NS; k++) hass_kv_free(kv[k]), kv[k] = NULL;
}

// One more token forwarded after each block, alone: its logits (NS, V) (checks the caches).
static hass_err next_logits(hass_model *m, hass_kv **kv, float *out) {
    int V = hass_model_config(m)->n_vocab;
    for (int k = 0; k < NS; k++) {
        int32_t t = tok_of(k, 1, 99, V);
        hass_err e = hass_forward(m, kv[k], &t, NULL, 1, NULL, out + (size_t)k * V, NULL);
        if (e) return e;
    }
    return HASS_OK;
}

// Logit-row offsets of each sequence in one contiguous buffer; returns the total.
static int offsets(int *off) {
    int t = 0;
    for (int k = 0; k < NS; k++) {
        off[k] = t;
        t += DEFS[k].n_rows > 0 ? DEFS[k].n_rows : 0;
    }
    return t;
}

// Check one model in one precision: alone vs together (own scratch or the first cache's,
// contiguous logits or separate buffers).
static void check_model(const char *tag0, const char *path, int prec) {
    char name[256], tag[64];
    hass_err e;
    snprintf(tag, sizeof tag, "%s%s", tag0, prec == HASS_PREC_F32 ? "_f32" : "");
    hass_model *m = hass_model_load(path, 2, &e);
    snprintf(name, sizeof name, "forward_batch_%s_load", tag);
    CHECK(name, m != NULL && !hass_model_set_precision(m, prec), "%s", hass_errmsg());
    if (!m) return;
    const hass_model_cfg *c = hass_model_config(m);
    size_t V = (size_t)c->n_vocab, C = (size_t)c->n_embd;
    inputs in;
    make_inputs(&in, (int)V);
    int off[NS], n_lg = offsets(off);
    float *la = calloc((size_t)n_lg * V, sizeof(float)), *fa = calloc(NS * MAXN * C, sizeof(float));
    float *lb = calloc((size_t)n_lg * V, sizeof(float)), *fb = calloc(NS * MAXN * C, sizeof(float));
    float *na = malloc(NS * V * sizeof(float)), *nb = malloc(NS * V * sizeof(float));
    hass_kv *kv[NS] = {0};
    // alone, one sequence after another
    int ok = fill_caches(m, kv);
    for (int k = 0; k < NS && ok; k++) {
        hass_fwd_seq q = seq_of(&in, kv[k], k, la + (size_t)off[k] * V, fa + (size_t)k * MAXN * C);
        ok = !hass_forward_batch(m, NULL, &q, 1);
    }
    ok = ok && !next_logits(m, kv, na);
    free_caches(kv);
    snprintf(name, sizeof name, "forward_batch_%s_alone", tag);
    CHECK(name, ok, "%s", hass_errmsg());
    hass_fwd_scratch *sc = hass_fwd_scratch_new(m, &e);
    for (int mode = 0; mode < 3 && ok; mode++) { // own scratch + contiguous, first cache's, separate
        float *sep[NS] = {0};
        int got = fill_caches(m, kv);
        hass_fwd_seq qs[NS];
        for (int k = 0; k < NS; k++) {
            float *lg = lb + (size_t)off[k] * V;
            if (mode == 2 && DEFS[k].n_rows > 0) lg = sep[k] = malloc((size_t)DEFS[k].n_rows * V * sizeof(float));
            qs[k] = seq_of(&in, kv[k], k, lg, fb + (size_t)k * MAXN * C);
        }
        memset(fb, 0, NS * MAXN * C * sizeof(float));
        got = got && !hass_forward_batch(m, mode == 1 ? NULL : sc, qs, NS);
        for (int k = 0; k < NS && got && mode == 2; k++)
            if (sep[k]) memcpy(lb + (size_t)off[k] * V, sep[k], (size_t)DEFS[k].n_rows * V * sizeof(float));
        got = got && !next_logits(m, kv, nb);
        int same = got && !memcmp(la, lb, (size_t)n_lg * V * sizeof(float)) &&
                   !memcmp(fa, fb, NS * MAXN * C * sizeof(float)) &&
                   !memcmp(na, nb, NS * V * sizeof(float));
        for (int k = 0; k < NS; k++) {
            same = same && hass_kv_len(kv[k]) == DEFS[k].n_hist + DEFS[k].n + 1;
            free(sep[k]);
        }
        free_caches(kv);
        static const char *MODE[3] = {"scratch", "first_cache", "separate_logits"};
        snprintf(name, sizeof name, "forward_batch_%s_%s_equals_alone", tag, MODE[mode]);
        CHECK(name, same, "logits, features or cache entries differ from each sequence alone (%s)",
              got ? "bits differ" : hass_errmsg());
    }
    // a bad token in sequence 2, then a cache given twice: errors, nothing appended anywhere
    if (fill_caches(m, kv)) {
        hass_fwd_seq qs[NS];
        for (int k = 0; k < NS; k++) qs[k] = seq_of(&in, kv[k], k, lb + (size_t)off[k] * V, NULL);
        int32_t bad[TREE];
        memcpy(bad, in.tok[2], sizeof bad);
        bad[3] = (int32_t)V;
        qs[2].tok = bad;
        e = hass_forward_batch(m, sc, qs, NS);
        int kept = 1;
        for (int k = 0; k < NS; k++) kept &= hass_kv_len(kv[k]) == DEFS[k].n_hist;
        snprintf(name, sizeof name, "forward_batch_%s_bad_token", tag);
        CHECK(name, e == HASS_ERANGE && strstr(hass_errmsg(), "sequence 2: token id") && kept,
              "e=%d '%s'", e, hass_errmsg());
        qs[2].tok = in.tok[2];
        qs[3].kv = kv[1];
        e = hass_forward_batch(m, sc, qs, NS);
        kept = 1;
        for (int k = 0; k < NS; k++) kept &= hass_kv_len(kv[k]) == DEFS[k].n_hist;
        snprintf(name, sizeof name, "forward_batch_%s_shared_cache", tag);
        CHECK(name, e == HASS_EINVAL && strstr(hass_errmsg(), "sequence 3: the cache of sequence 1") && kept,
              "e=%d '%s'", e, hass_errmsg());
    }
    free_caches(kv);
    hass_fwd_scratch_free(sc);
    free(la); free(fa); free(lb); free(fb); free(na); free(nb);
    hass_model_free(m);
}

int main(void) {
    char path[2][1024];
    const char *md = getenv("HASS_MODELS"), *tag[2] = {"stories260k", "smollm2"};
    unit_data(path[0], sizeof path[0], "models/stories260K/stories260K-v3-f32.gguf");
    snprintf(path[1], sizeof path[1], "%s/SmolLM2-135M-Instruct.Q4_1.gguf", md && *md ? md : "models");
    for (int k = 0; k < 2; k++) {
        if (!unit_exists(path[k])) {
            char name[64];
            snprintf(name, sizeof name, "forward_batch_%s", tag[k]);
            SKIP(name, "model not present");
            continue;
        }
        check_model(tag[k], path[k], HASS_PREC_Q8);
        check_model(tag[k], path[k], HASS_PREC_F32);
    }
    UNIT_DONE();
}
