// test_forward_ref.c: our forward pass against llama.cpp (llama-cpp-python 0.3.36) on the same
// GGUF files: full last-position logits, the top-16 logits at every prompt position, and greedy
// 64-token continuations (fixtures: tests/data/ref_*_llamacpp.bin.gz, made by
// tests/gen/gen_ref_llamacpp.py); and against a numpy f64 forward on the dequantized weights
// (tests/data/ref_*_f32.bin.gz, tests/gen/gen_ref_numpy.py).
//
// Tolerance. Both llama.cpp and we quantize activations to 8 bits per 32-block for the Q4_1/Q8_0
// dot products (we copy its rounding: fp16 block scales, fp16 KV cache and fp16 attention
// probabilities), but the float summation orders differ, and in SmolLM2 an 8-bit rounding that
// flips on one element of a block moves that element by d = max|x|/127, which then grows over 30
// layers. Measured: our own AVX2 and AVX-512 paths, which differ ONLY in float summation order,
// give last-position logits up to 0.77 apart on a 5-token prompt (about 0.2 of the logits'
// standard deviation), the same size as the distance to llama.cpp (0.6 to 1.3, 0.18 to 0.38 std).
// So for SmolLM2 Q4_1 we require: max |diff| over all V logits of the last position <= 0.5 std;
// the argmax equal at every prompt position whose reference margin (top1 - top2) exceeds
// NEAR_TIE; greedy continuations that may diverge only at a near-tie (reference margin below
// NEAR_TIE, printed with both margins). Identical 64-token greedy paths on 9 of 10 prompts are
// not reachable at this noise floor for SmolLM2: measured on these 14 prompts, our AVX2 and
// AVX-512 paths give identical 64-token paths on only 3 (first divergences at margins 0.002 to
// 0.47), and each matches llama.cpp on 4 to 6. That count is printed, and required (>= 90%) for
// stories260K, which is F32
// throughout and agrees with llama.cpp to 1e-3 of the logit std (measured 6e-4) and with the
// numpy f64 forward to 3e-3 (measured 1.5e-3: our KV cache and attention probabilities are
// fp16 like llama.cpp's). Against the f64 forward SmolLM2 measures 0.22 of the std (llama.cpp:
// 0.37), within the same 0.5 bound.
//
// The f32 mode (hass_model_set_precision(m, HASS_PREC_F32): weights dequantized inside the
// matmul, f32 activations, f32 KV cache) is held to the references that do f32 or f64 arithmetic
// on the same weights (run_f32): llama.cpp on the F32-weights copy of the SmolLM2 file
// (ref_smollm2_f32w_llamacpp, f32 KV cache) and numpy f64 (ref_*_f32). Tolerance 1e-3 absolute
// on every top-16 logit at every prompt position and greedy step and on the stored full last
// logits: numpy and llama.cpp's f32 path differ by at most 8.4e-5 (tests/data/README.md section
// 5), we measure 6.5e-5 against llama.cpp and 5e-5 against numpy, and only summation order
// separates the three. Greedy 64-step paths must be identical on >= 13 of 14 SmolLM2 prompts
// (measured: 14 of 14) and every divergence a near tie (reference margin below 3e-3; the two
// smallest margins on these paths are 0.0008 and 0.0018).
#include "forward.h"
#include "sample.h"
#include "ref.h"
#include "unit.h"

#define NEAR_TIE 0.5f

// Model path: $HASS_MODELS/<file> or $HASS_DATA/<file>.
static const char *model_path(char *buf, size_t n, const char *file, int in_data) {
    const char *d = getenv("HASS_MODELS");
    if (in_data) snprintf(buf, n, "%s/%s", unit_data_dir(), file);
    else snprintf(buf, n, "%s/%s", d && *d ? d : "models", file);
    return buf;
}

// A fixture with its model, cache and logit buffers.
typedef struct {
    ref_file *rf;
    hass_model *m;
    hass_kv *kv;
    int V;
    float *lg; // (longest prompt, V) prompt logits
    float *l1; // (V) one decoding step
} fixture;

// Load fixture and model (one thread: steady on a shared machine) in precision prec and check
// that they match; 0 when the model is absent (skipped) or loading failed (reported).
static int fixture_open(fixture *f, const char *tag, const char *fx, const char *model,
                        int prec) {
    char fbuf[1024], err[512], name[256];
    memset(f, 0, sizeof *f);
    if (!unit_exists(model)) {
        snprintf(name, sizeof name, "forward_ref_%s", tag);
        SKIP(name, "model file not present");
        return 0;
    }
    f->rf = ref_load(ref_path(fbuf, sizeof fbuf, fx), err, sizeof err);
    snprintf(name, sizeof name, "forward_ref_%s_fixture_loads", tag);
    CHECK(name, f->rf != NULL, "%s", err);
    if (!f->rf) return 0;
    hass_err e;
    f->m = hass_model_load(model, 1, &e);
    snprintf(name, sizeof name, "forward_ref_%s_model_loads", tag);
    CHECK(name, f->m && hass_model_set_precision(f->m, prec) == HASS_OK &&
          hass_model_precision(f->m) == prec, "%s", hass_errmsg());
    if (!f->m) {
        ref_free(f->rf);
        return 0;
    }
    f->V = hass_model_config(f->m)->n_vocab;
    snprintf(name, sizeof name, "forward_ref_%s_vocab", tag);
    CHECK(name, f->V == f->rf->n_vocab, "model vocab %d, fixture %d", f->V, f->rf->n_vocab);
    f->kv = hass_kv_new(f->m, 1024, &e);
    int max_tok = 0;
    for (int i = 0; i < f->rf->n_prompts; i++)
        if (f->rf->p[i].n_tok > max_tok) max_tok = f->rf->p[i].n_tok;
    f->lg = malloc((size_t)max_tok * f->V * sizeof(float));
    f->l1 = malloc((size_t)f->V * sizeof(float));
    return 1;
}

// Free what fixture_open made.
static void fixture_close(fixture *f) {
    free(f->lg);
    free(f->l1);
    hass_kv_free(f->kv);
    hass_model_free(f->m);
    ref_free(f->rf);
}

// Forward prompt p from an empty cache into f->lg (all rows); 0 on failure (reported).
static int prompt_forward(fixture *f, const char *tag, const ref_prompt *p) {
    char name[256];
    hass_kv_truncate(f->kv, 0);
    if (!hass_forward(f->m, f->kv, p->tok, NULL, p->n_tok, NULL, f->lg, NULL)) return 1;
    snprintf(name, sizeof name, "forward_ref_%s_%s_forward", tag, p->name);
    CHECK(name, 0, "%s", hass_errmsg());
    return 0;
}

// Compare one fixture against the model; tag names the checks.
static void run(const char *tag, const char *fx, const char *model, double rel_tol,
                int need_90, int do_greedy) {
    char name[256];
    fixture f;
    if (!fixture_open(&f, tag, fx, model, HASS_PREC_Q8)) return;
    ref_file *rf = f.rf;
    hass_model *m = f.m;
    hass_kv *kv = f.kv;
    int V = f.V;
    float *lg = f.lg, *l1 = f.l1;
    hass_err e;
    int n_gen_prompts = 0, n_gen_same = 0, gen_bad = 0, argmax_bad = 0, n_rows = 0;
    double worst_rel = 0;
    for (int pi = 0; pi < rf->n_prompts && V == rf->n_vocab; pi++) {
        const ref_prompt *p = &rf->p[pi];
        if (!prompt_forward(&f, tag, p)) continue;
        e = HASS_OK;
        // full logits of the last position
        if (p->n_last == V) {
            const float *ours = lg + (size_t)(p->n_tok - 1) * V;
            double md = 0;
            for (int j = 0; j < V; j++) {
                double d = fabs(ours[j] - p->last[j]);
                if (d > md) md = d;
            }
            double sd = ref_stddev(p->last, V), rel = md / sd;
            if (rel > worst_rel) worst_rel = rel;
            printf("# %s %s: last-position max|diff| %.4f, logit std %.3f, rel %.4f\n", tag,
                   p->name, md, sd, rel);
            snprintf(name, sizeof name, "forward_ref_%s_%s_last_logits", tag, p->name);
            CHECK(name, rel <= rel_tol, "max |diff| %.4f is %.4f of the logit std %.3f (tol %.4f)",
                  md, rel, sd, rel_tol);
        }
        // argmax at every prompt position (near-ties excepted) and top-k logits
        for (int t = 0; t < p->n_pos; t++) {
            const float *ours = lg + (size_t)t * V;
            const ref_row *r = &p->pos[t];
            int a = hass_sample_argmax(ours, V);
            n_rows++;
            if (a != r->argmax && r->margin > NEAR_TIE) {
                argmax_bad++;
                printf("# %s %s pos %d: argmax %d, reference %d (margin %.3f)\n", tag, p->name, t,
                       a, r->argmax, r->margin);
            }
        }
        // greedy continuation from the prompt
        if (do_greedy && p->n_gen > 0) {
            int limit = p->eos_at >= 0 ? p->eos_at + 1 : p->n_gen, same = 1;
            int32_t t = (int32_t)hass_sample_argmax(lg + (size_t)(p->n_tok - 1) * V, V);
            float our_margin = 0;
            for (int s = 0; s < limit; s++) {
                if (s > 0) {
                    if ((e = hass_forward(m, kv, &t, NULL, 1, NULL, l1, NULL))) break;
                    t = hass_sample_argmax(l1, V);
                    float second = -INFINITY;
                    for (int j = 0; j < V; j++)
                        if (j != t && l1[j] > second) second = l1[j];
                    our_margin = l1[t] - second;
                }
                if (t != p->gen[s]) {
                    same = 0;
                    printf("# %s %s: greedy diverges at step %d: ours %d, reference %d; "
                           "reference margin %.4f, ours %.4f\n", tag, p->name, s, t, p->gen[s],
                           p->gen_row[s].margin, our_margin);
                    if (p->gen_row[s].margin > NEAR_TIE) gen_bad++;
                    break;
                }
            }
            n_gen_prompts++;
            n_gen_same += same;
        }
    }
    printf("# %s: worst last-position rel diff %.4f; greedy identical on %d of %d prompts\n",
           tag, worst_rel, n_gen_same, n_gen_prompts);
    snprintf(name, sizeof name, "forward_ref_%s_argmax_all_positions", tag);
    CHECK(name, argmax_bad == 0, "%d of %d positions disagree beyond a near-tie", argmax_bad,
          n_rows);
    snprintf(name, sizeof name, "forward_ref_%s_greedy_90pct", tag);
    if (need_90 && do_greedy)
        CHECK(name, n_gen_prompts >= 10 && n_gen_same * 10 >= n_gen_prompts * 9,
              "greedy identical on %d of %d prompts", n_gen_same, n_gen_prompts);
    snprintf(name, sizeof name, "forward_ref_%s_greedy_divergence_near_tie", tag);
    if (do_greedy)
        CHECK(name, gen_bad == 0, "%d divergences at steps with reference margin > %.2f", gen_bad,
          NEAR_TIE);
    fixture_close(&f);
}

// The f32 engine mode (HASS_PREC_F32) against a reference that did f32 (llama.cpp on the
// F32-weights copy) or f64 (numpy) arithmetic on the same dequantized weights: top-k logits at
// every prompt position and along the greedy path, full last logits where stored, all within
// tol (absolute); argmax equal wherever the reference margin exceeds tol; greedy paths over all
// stored steps identical on at least min_same prompts, every divergence printed with the
// reference's margin there and required to be below 2 * tol + 1e-3 (a near tie at the measured
// noise). Prints one line per prompt.
static void run_f32(const char *tag, const char *fx, const char *model, double tol,
                    int min_same, int do_greedy) {
    char name[256];
    fixture f;
    if (!fixture_open(&f, tag, fx, model, HASS_PREC_F32)) return;
    ref_file *rf = f.rf;
    hass_model *m = f.m;
    hass_kv *kv = f.kv;
    int V = f.V;
    float *lg = f.lg, *l1 = f.l1;
    hass_err e;
    int n_gen_prompts = 0, n_same = 0, gen_bad = 0, argmax_bad = 0, n_rows = 0;
    double worst = 0, worst_last = 0;
    for (int pi = 0; pi < rf->n_prompts && V == rf->n_vocab; pi++) {
        const ref_prompt *p = &rf->p[pi];
        if (!prompt_forward(&f, tag, p)) continue;
        e = HASS_OK;
        double pw = 0, lw = 0;
        for (int t = 0; t < p->n_pos; t++) {
            const float *ours = lg + (size_t)t * V;
            const ref_row *r = &p->pos[t];
            double d = ref_row_diff(ours, r, rf->top_k);
            if (d > pw) pw = d;
            n_rows++;
            int a = hass_sample_argmax(ours, V);
            if (a != r->argmax && r->margin > tol) {
                argmax_bad++;
                printf("# %s %s pos %d: argmax %d, reference %d (margin %.5f)\n", tag, p->name,
                       t, a, r->argmax, r->margin);
            }
        }
        if (p->n_last == V) {
            const float *ours = lg + (size_t)(p->n_tok - 1) * V;
            for (int j = 0; j < V; j++) {
                double d = fabs(ours[j] - p->last[j]);
                if (d > lw) lw = d;
            }
            if (lw > worst_last) worst_last = lw;
        }
        // greedy path over every stored step (the references do not stop at EOS)
        int32_t t = (int32_t)hass_sample_argmax(lg + (size_t)(p->n_tok - 1) * V, V);
        const float *row = lg + (size_t)(p->n_tok - 1) * V;
        int div = -1;
        float our_margin = 0;
        int n_gen = do_greedy ? p->n_gen : 0;
        for (int s = 0; s < n_gen; s++) {
            if (s > 0) {
                if ((e = hass_forward(m, kv, &t, NULL, 1, NULL, l1, NULL))) break;
                row = l1;
                t = hass_sample_argmax(l1, V);
            }
            float second = -INFINITY;
            for (int j = 0; j < V; j++)
                if (j != t && row[j] > second) second = row[j];
            our_margin = row[t] - second;
            double d = ref_row_diff(row, &p->gen_row[s], rf->top_k);
            if (d > pw) pw = d;
            if (t != p->gen[s]) {
                div = s;
                break;
            }
        }
        if (pw > worst) worst = pw;
        if (n_gen > 0) {
            n_gen_prompts++;
            if (e) {
                snprintf(name, sizeof name, "forward_ref_%s_%s_greedy", tag, p->name);
                CHECK(name, 0, "%s", hass_errmsg());
            } else if (div < 0) {
                n_same++;
                printf("# %s %s: greedy identical (%d steps); top-%d max|diff| %.2e\n", tag,
                       p->name, p->n_gen, rf->top_k, pw);
            } else {
                float rm = p->gen_row[div].margin;
                printf("# %s %s: greedy diverges at step %d: ours %d, reference %d; reference "
                       "margin %.5f, ours %.5f; top-%d max|diff| %.2e\n", tag, p->name, div, t,
                       p->gen[div], rm, our_margin, rf->top_k, pw);
                if (rm > 2 * tol + 1e-3) gen_bad++;
            }
        }
        if (p->n_last == V)
            printf("# %s %s: full last-position logits max|diff| %.2e\n", tag, p->name, lw);
        snprintf(name, sizeof name, "forward_ref_%s_%s_logits", tag, p->name);
        CHECK(name, pw <= tol && lw <= tol, "top-%d max |diff| %.3g, full last logits %.3g "
              "(tol %.3g)", rf->top_k, pw, lw, tol);
    }
    if (do_greedy) printf("# %s: greedy identical on %d of %d prompts\n", tag, n_same, n_gen_prompts);
    printf("# %s: worst top-%d logit diff %.2e, worst full last-logit diff %.2e (tol %.1e)\n",
           tag, rf->top_k, worst, worst_last, tol);
    snprintf(name, sizeof name, "forward_ref_%s_argmax_all_positions", tag);
    CHECK(name, argmax_bad == 0, "%d of %d positions disagree beyond margin %.1e", argmax_bad,
          n_rows, tol);
    snprintf(name, sizeof name, "forward_ref_%s_greedy_identical", tag);
    if (do_greedy)
        CHECK(name, n_same >= min_same, "greedy identical on %d of %d prompts (need %d)",
              n_same, n_gen_prompts, min_same);
    snprintf(name, sizeof name, "forward_ref_%s_greedy_divergence_near_tie", tag);
    if (do_greedy)
        CHECK(name, gen_bad == 0, "%d divergences where the reference margin exceeds %.1e",
              gen_bad, 2 * tol + 1e-3);
    fixture_close(&f);
}

int main(void) {
    char b1[1024], b2[1024];
    model_path(b1, sizeof b1, "models/stories260K/stories260K-v3-f32.gguf", 1);
    model_path(b2, sizeof b2, "SmolLM2-135M-Instruct.Q4_1.gguf", 0);
    run("stories260k", "ref_stories260k_llamacpp.bin.gz", b1, 1e-3, 1, 1);
    // our KV cache and attention probabilities are fp16 (as llama.cpp's): 3e-3 of the std vs f64
    run("stories260k_f64", "ref_stories260k_f32.bin.gz", b1, 3e-3, 1, 1);
    run("smollm2", "ref_smollm2_llamacpp.bin.gz", b2, 0.5, 0, 1);
    // numpy f64 forward on the dequantized weights (no activation quantization): logits and
    // prompt-position argmax only (the greedy paths are the llama.cpp comparison's job)
    run("smollm2_f64", "ref_smollm2_f32.bin.gz", b2, 0.5, 0, 0);
    // f32 mode (HASS_PREC_F32): numpy f64 and llama.cpp's own f32 path on the same weights
    // (numpy's SmolLM2 greedy paths equal llama.cpp's, so its prompt rows suffice)
    run_f32("smollm2_f32_numpy", "ref_smollm2_f32.bin.gz", b2, 1e-3, 13, 0);
    run_f32("smollm2_f32_llamacpp", "ref_smollm2_f32w_llamacpp.bin.gz", b2, 1e-3, 13, 1);
    run_f32("stories260k_f32_numpy", "ref_stories260k_f32.bin.gz", b1, 1e-3, 11, 1);
    UNIT_DONE();
}
