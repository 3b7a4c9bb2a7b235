// test_forward_qwen.c: our forward pass on the Qwen2.5-Coder K-quant GGUFs (Q4_K, Q6_K, Q5_0,
// Q8_0 weights) against llama.cpp (llama-cpp-python 0.3.36) on the same files (issue 23).
// Fixtures: tests/data/ref_qwen{05,15}_llamacpp.bin.gz (tests/gen/gen_ref_qwen.py): 9 own chat
// and code prompts, the top-16 logits at every prompt position and along llama.cpp's 64-step
// greedy path.
//
// One batched forward per prompt covers both: the prompt followed by llama.cpp's greedy ids
// (teacher forcing). Our rows are batch invariant (forward.h), so up to the first step where
// our argmax differs from llama.cpp's id this is exactly our own greedy decoding, and that step
// is where our greedy path would part from llama.cpp's.
//
// Tolerance (the SmolLM2 Q4_1 rule of test_forward_ref.c): both engines round activations to
// 8 bits before the integer dot products, but differently (llama.cpp: Q8_K blocks of 256 for
// the K-quants, Q8_0/Q8_1 blocks of 32 for Q5_0/Q8_0; we: blocks of 32 throughout), so logits
// carry a noise that only a bit-exact copy of ggml would remove. Required, per model: every
// top-16 logit at every prompt position and greedy step within QWEN_TOL of llama.cpp; the
// argmax equal wherever llama.cpp's margin (top1 - top2) exceeds NEAR_TIE; every greedy
// divergence at a near tie (llama.cpp's margin below NEAR_TIE, both margins printed); and at
// least QWEN_MIN_SAME of the 9 greedy paths identical. Measured: docs/REF-QWEN.md.
//
// Position 0 of the 1.5B is not compared with llama.cpp (printed only). The first token is
// Qwen's attention sink: its residual stream reaches |x| = 3680 and layer 26's ffn_down input
// 1138, which cancels it back to 402, so 8-bit rounding of that input is amplified. llama.cpp's
// Q8_K (one scale per 256 values) is off by 12.0 logits there from an exact f64 forward of the
// first token "The" (argmax 15 where f64 has 16); ours (32-value blocks) by 2.6, argmax 16; with
// f32 activations both engines agree with f64 to 4e-4. At position 0 of all 9 prompts
// llama.cpp's argmax is 15 and ours 16. Every later position of the 1.5B and every position
// of the 0.5B is held to the rule above.
//
// By default only the 0.5B's raw_c_fib and chat_prime run (about 180 rows, under a minute of
// one core); HASS_REF_QWEN_FULL=1 runs all 9 prompts on the 0.5B and the 1.5B (880 rows each,
// the 1.5B about three times the work per row). Model files are $HASS_MODELS/<name> (default
// models/); absent files are skipped.
#include "forward.h"
#include "sample.h"
#include "ref.h"
#include "unit.h"

#define NEAR_TIE 0.5f
#define QWEN_TOL 1.0
#define QWEN_MIN_SAME 6

// Per-model tallies over all prompts.
typedef struct {
    double worst;       // largest top-16 |diff| (prompt rows and greedy rows)
    double worst_rel;   // largest top-16 |diff| over the standard deviation of our row
    int n_rows, n_top1; // prompt rows compared, rows whose argmax agrees
    int argmax_bad;     // prompt rows whose argmax differs where the reference margin > NEAR_TIE
    int n_same, gen_bad;
    int from_pos;       // first prompt position compared (1: skip the attention-sink token)
} tally;

// Top-1 minus top-2 of a row.
static float row_margin(const float *x, int n) {
    int a = hass_sample_argmax(x, n);
    float second = -INFINITY;
    for (int j = 0; j < n; j++)
        if (j != a && x[j] > second) second = x[j];
    return x[a] - second;
}

// One prompt: forward prompt + greedy ids in one block (lg: (n_tok + n_cmp - 1, V)), then
// compare the prompt rows and walk the greedy rows to the first divergence.
static void run_prompt(hass_model *m, hass_kv *kv, const ref_file *rf, const ref_prompt *p,
                       const char *tag, int32_t *seq, float *lg, tally *t) {
    char name[256];
    // greedy steps compared: up to the end of generation (llama.cpp's path goes on after it)
    int n_cmp = p->eos_at >= 0 ? p->eos_at + 1 : p->n_gen;
    int V = rf->n_vocab, n = p->n_tok + (n_cmp > 0 ? n_cmp - 1 : 0);
    memcpy(seq, p->tok, (size_t)p->n_tok * sizeof *seq);
    if (n_cmp > 1) memcpy(seq + p->n_tok, p->gen, (size_t)(n_cmp - 1) * sizeof *seq);
    hass_kv_truncate(kv, 0);
    if (hass_forward(m, kv, seq, NULL, n, NULL, lg, NULL)) {
        snprintf(name, sizeof name, "forward_qwen_%s_%s_forward", tag, p->name);
        CHECK(name, 0, "%s", hass_errmsg());
        return;
    }
    double pw = 0, gw = 0, rel = 0;
    int top1 = 0;
    if (t->from_pos) // position 0 is not held to llama.cpp (run_model); printed for the record
        printf("# %s %s pos 0 (not compared): top-16 max|diff| %.3f, argmax ours %d, llama.cpp "
               "%d\n", tag, p->name, ref_row_diff(lg, &p->pos[0], rf->top_k),
               hass_sample_argmax(lg, V), p->pos[0].argmax);
    for (int i = t->from_pos; i < p->n_pos; i++) {
        const float *ours = lg + (size_t)i * V;
        const ref_row *r = &p->pos[i];
        double d = ref_row_diff(ours, r, rf->top_k), sd = ref_stddev(ours, V);
        if (d > pw) pw = d;
        if (d / sd > rel) rel = d / sd;
        int a = hass_sample_argmax(ours, V);
        top1 += a == r->argmax;
        if (a != r->argmax && r->margin > NEAR_TIE) {
            t->argmax_bad++;
            printf("# %s %s pos %d: argmax %d, llama.cpp %d (its margin %.3f)\n", tag, p->name,
                   i, a, r->argmax, r->margin);
        }
    }
    int div = -1;
    for (int s = 0; s < n_cmp && div < 0; s++) {
        const float *row = lg + (size_t)(p->n_tok - 1 + s) * V;
        double d = ref_row_diff(row, &p->gen_row[s], rf->top_k);
        if (d > gw) gw = d;
        if (hass_sample_argmax(row, V) != p->gen[s]) div = s;
    }
    int n_rows = p->n_pos - t->from_pos;
    if (div < 0) {
        t->n_same++;
        printf("# %s %-14s n_tok %3d: top-1 %d/%d, top-16 max|diff| %.3f (%.3f std); greedy "
               "identical (%d steps), max|diff| on the path %.3f\n", tag, p->name, p->n_tok,
               top1, n_rows, pw, rel, n_cmp, gw);
    } else {
        const float *row = lg + (size_t)(p->n_tok - 1 + div) * V;
        float rm = p->gen_row[div].margin;
        printf("# %s %-14s n_tok %3d: top-1 %d/%d, top-16 max|diff| %.3f (%.3f std); greedy "
               "parts at step %d: ours %d, llama.cpp %d; margin llama.cpp %.4f, ours %.4f; "
               "max|diff| on the path %.3f\n", tag, p->name, p->n_tok, top1, n_rows, pw, rel, div,
               hass_sample_argmax(row, V), p->gen[div], rm, row_margin(row, V), gw);
        if (rm >= NEAR_TIE) t->gen_bad++;
    }
    if (pw > t->worst) t->worst = pw;
    if (gw > t->worst) t->worst = gw;
    if (rel > t->worst_rel) t->worst_rel = rel;
    t->n_rows += n_rows;
    t->n_top1 += top1;
}

// Whether prompt name is in the NULL-terminated list (NULL list: every prompt).
static int selected(const char *name, const char *const *only) {
    for (int i = 0; only && only[i]; i++)
        if (strcmp(only[i], name) == 0) return 1;
    return only == NULL;
}

// Load model and fixture, run the prompts in only (NULL: all), check the tallies: at least
// min_same greedy paths identical; prompt rows from position from_pos on.
static void run_model(const char *tag, const char *fx, const char *file,
                      const char *const *only, int min_same, int from_pos) {
    char path[1024], fbuf[1024], err[512], name[256];
    const char *d = getenv("HASS_MODELS"), *th = getenv("HASS_TEST_THREADS");
    snprintf(path, sizeof path, "%s/%s", d && *d ? d : "models", file);
    snprintf(name, sizeof name, "forward_qwen_%s", tag);
    if (!unit_exists(path)) {
        SKIP(name, "model file not present");
        return;
    }
    ref_file *rf = ref_load(ref_path(fbuf, sizeof fbuf, fx), err, sizeof err);
    snprintf(name, sizeof name, "forward_qwen_%s_fixture_loads", tag);
    CHECK(name, rf != NULL, "%s", err);
    if (!rf) return;
    hass_err e;
    hass_model *m = hass_model_load(path, th && *th ? atoi(th) : 1, &e);
    snprintf(name, sizeof name, "forward_qwen_%s_model_loads", tag);
    CHECK(name, m && hass_model_config(m)->n_vocab == rf->n_vocab, "%s",
          m ? "vocabulary size differs from the fixture" : hass_errmsg());
    int max_n = 0;
    for (int i = 0; i < rf->n_prompts; i++)
        if (rf->p[i].n_tok + rf->p[i].n_gen > max_n) max_n = rf->p[i].n_tok + rf->p[i].n_gen;
    hass_kv *kv = m ? hass_kv_new(m, max_n, &e) : NULL;
    int32_t *seq = malloc((size_t)max_n * sizeof *seq);
    float *lg = malloc((size_t)max_n * rf->n_vocab * sizeof *lg); // (max_n, V)
    tally t = {0};
    t.from_pos = from_pos;
    int n_run = 0;
    for (int i = 0; kv && seq && lg && i < rf->n_prompts &&
                    hass_model_config(m)->n_vocab == rf->n_vocab; i++)
        if (selected(rf->p[i].name, only)) {
            run_prompt(m, kv, rf, &rf->p[i], tag, seq, lg, &t);
            n_run++;
        }
    printf("# %s: top-1 agreement %d of %d prompt positions; worst top-16 |diff| %.3f "
           "(%.3f of the logit std); greedy identical on %d of %d prompts\n", tag, t.n_top1,
           t.n_rows, t.worst, t.worst_rel, t.n_same, n_run);
    snprintf(name, sizeof name, "forward_qwen_%s_top16_logits", tag);
    CHECK(name, t.n_rows > 0 && t.worst <= QWEN_TOL, "worst top-16 |diff| %.3f (tol %.2f)",
          t.worst, QWEN_TOL);
    snprintf(name, sizeof name, "forward_qwen_%s_argmax_all_positions", tag);
    CHECK(name, t.n_rows > 0 && t.argmax_bad == 0,
          "%d of %d positions disagree where llama.cpp's margin > %.2f", t.argmax_bad, t.n_rows,
          NEAR_TIE);
    snprintf(name, sizeof name, "forward_qwen_%s_greedy_divergence_near_tie", tag);
    CHECK(name, t.n_rows > 0 && t.gen_bad == 0,
          "%d greedy divergences where llama.cpp's margin >= %.2f", t.gen_bad, NEAR_TIE);
    snprintf(name, sizeof name, "forward_qwen_%s_greedy_identical", tag);
    CHECK(name, n_run > 0 && t.n_same >= min_same, "%d of %d paths identical (need %d)",
          t.n_same, n_run, min_same);
    free(lg);
    free(seq);
    hass_kv_free(kv);
    hass_model_free(m);
    ref_free(rf);
}

int main(void) {
    const char *full = getenv("HASS_REF_QWEN_FULL");
    // default: one code and one chat prompt of the 0.5B (about 180 rows; the whole set is 880)
    static const char *const quick[] = {"raw_c_fib", "chat_prime", NULL};
    int all = full && *full && strcmp(full, "0") != 0;
    run_model("qwen05", "ref_qwen05_llamacpp.bin.gz", "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf",
              all ? NULL : quick, all ? QWEN_MIN_SAME : 2, 0);
    // 1.5B position 0: see the top of this file
    if (all)
        run_model("qwen15", "ref_qwen15_llamacpp.bin.gz",
                  "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf", NULL, QWEN_MIN_SAME, 1);
    else
        SKIP("forward_qwen_full", "slow: HASS_REF_QWEN_FULL=1 runs all 9 prompts on the 0.5B "
             "and the 1.5B");
    UNIT_DONE();
}
