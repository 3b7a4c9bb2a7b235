// qwen_dump_logits.c: write our full logits at every prompt position of a HASSREF fixture's
// prompts, for gen_ref_qwen.py --compare (full-vocabulary error against llama.cpp; the committed
// fixtures hold only top-16 rows). A one-off analysis tool, not a test. Build and run from the
// repository root after `make`:
//   cc -O2 -Ilibcore/base -Ilibcore/io -Ilibcore/formats -Ilibcore/text -Ilibcore/engine
//      -Itests/unit tests/gen/qwen_dump_logits.c build-cpu/libhass.a -lm -ljansson -lz
//      -fopenmp -o /tmp/qwen_dump_logits                          (one command line)
//   /tmp/qwen_dump_logits [--f32] MODEL tests/data/ref_qwen05_llamacpp.bin.gz OUT [PROMPT...]
//   python3 tests/gen/gen_ref_qwen.py --model qwen05 --compare OUT [--f32-gguf F32COPY]
// --f32: HASS_PREC_F32 (f32 activations and KV cache), to compare with llama.cpp on an all-F32
// copy of the file (tests/gen/gen_ref_f32gguf.py) and an f32 KV cache.
// OUT: per prompt, u32 name length, name, u32 n_tok, u32 V, f32 logits (n_tok, V).
// (A CUDA build's libhass.a also needs -lcublas -lcudart -lstdc++.)
#include <stdio.h>

#include "forward.h"
#include "ref.h"

// Write a little-endian u32 (the tool runs on x86).
static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }

// Whether name is among the requested prompts (none requested: all).
static int wanted(const char *name, char **list, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return n == 0;
}

int main(int argc, char **argv) {
    int f32 = argc > 1 && strcmp(argv[1], "--f32") == 0;
    argc -= f32, argv += f32;
    if (argc < 4) {
        fprintf(stderr, "usage: qwen_dump_logits [--f32] MODEL FIXTURE OUT [PROMPT...]\n");
        return 2;
    }
    char err[512];
    ref_file *rf = ref_load(argv[2], err, sizeof err);
    if (!rf) return fprintf(stderr, "%s\n", err), 1;
    hass_err e;
    hass_model *m = hass_model_load(argv[1], 1, &e);
    if (!m || (f32 && hass_model_set_precision(m, HASS_PREC_F32)))
        return fprintf(stderr, "%s\n", hass_errmsg()), 1;
    int V = hass_model_config(m)->n_vocab, max_n = 1;
    for (int i = 0; i < rf->n_prompts; i++)
        if (rf->p[i].n_tok > max_n) max_n = rf->p[i].n_tok;
    hass_kv *kv = hass_kv_new(m, max_n, &e);
    float *lg = malloc((size_t)max_n * V * sizeof *lg); // (max_n, V)
    FILE *out = fopen(argv[3], "wb");
    if (!kv || !lg || !out) return fprintf(stderr, "cannot set up %s\n", argv[3]), 1;
    for (int i = 0; i < rf->n_prompts; i++) {
        const ref_prompt *p = &rf->p[i];
        if (!wanted(p->name, argv + 4, argc - 4)) continue;
        hass_kv_truncate(kv, 0);
        if (hass_forward(m, kv, p->tok, NULL, p->n_tok, NULL, lg, NULL))
            return fprintf(stderr, "%s: %s\n", p->name, hass_errmsg()), 1;
        put_u32(out, (uint32_t)strlen(p->name));
        fwrite(p->name, 1, strlen(p->name), out);
        put_u32(out, (uint32_t)p->n_tok);
        put_u32(out, (uint32_t)V);
        fwrite(lg, sizeof *lg, (size_t)p->n_tok * V, out);
        fprintf(stderr, "%s: %d positions\n", p->name, p->n_tok);
    }
    fclose(out);
    free(lg);
    hass_kv_free(kv);
    hass_model_free(m);
    ref_free(rf);
    return 0;
}
